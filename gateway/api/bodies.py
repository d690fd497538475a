"""Scrub request bodies, sans-IO: lines in, leads out; scrubbed rows to output bytes.

CSV: a record ends at a newline once its double quotes balance, so records whose
quoted fields hold newlines are kept whole across reads. JSON lines: one object per
line, the number under the detected (or named) key; anything else is an invalid row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from gateway.scrub import CsvLeads, Lead, Scrubbed, ScrubInputError, added_names
from gateway.scrub.csvio import MAX_RECORD_LINES, NUMBER_COLUMN_NAMES, lead_from_fields


class BodyError(ValueError):
    """The body cannot be scrubbed at all (no header, no number column, ...)."""


class CsvBody:
    """Feed decoded lines; take leads; render scrubbed rows as CSV text."""

    def __init__(self, header_line: str, number_column: str | None) -> None:
        try:
            self._leads = CsvLeads(io.StringIO(header_line), number_column=number_column)
        except ScrubInputError as exc:
            raise BodyError(str(exc)) from None
        self.header = self._leads.header
        self.names = added_names(self.header)
        self._pending: list[str] = []
        self._quotes = 0
        self._count = 0

    def first_output(self) -> str:
        return self._render([[*self.header, *self.names]])

    def feed(self, line: str) -> Lead | None:
        """One physical line; a lead once a record is complete."""
        self._pending.append(line)
        self._quotes += line.count('"')
        if self._quotes % 2 and len(self._pending) < MAX_RECORD_LINES:
            return None
        return self.flush()

    def flush(self) -> Lead | None:
        if not self._pending:
            return None
        text, unbalanced = "".join(self._pending), self._quotes % 2 == 1
        self._pending, self._quotes = [], 0
        if not text.strip():
            return None
        self._count += 1
        width = len(self.header)
        if unbalanced:
            return Lead(self._count, [""] * width, None, "unbalanced quotes in the CSV record")
        try:
            rows = list(csv.reader(io.StringIO(text), delimiter=self._leads.delimiter))
        except csv.Error as exc:
            return Lead(self._count, [""] * width, None, f"unreadable CSV row: {exc}")
        fields = rows[0] if len(rows) == 1 else [f for r in rows for f in r]
        return lead_from_fields(self._count, fields, width, self._leads.number_index)

    def skip(self, error: str) -> Lead:
        """A physical line too long to read: an invalid record of its own."""
        self._pending, self._quotes = [], 0
        self._count += 1
        return Lead(self._count, [""] * len(self.header), None, error)

    def render(self, rows: Sequence[Scrubbed]) -> str:
        return self._render([[*r.lead.fields, *r.added] for r in rows])

    def _render(self, rows: list[list[str]]) -> str:
        buf = io.StringIO()
        csv.writer(buf, delimiter=self._leads.delimiter, lineterminator="\r\n").writerows(rows)
        return buf.getvalue()


class JsonLinesBody:
    """One JSON object per line in; the same object plus the added keys out."""

    def __init__(self, number_column: str | None) -> None:
        self._wanted = number_column.strip().lower() if number_column else None
        self._count = 0
        self._objects: dict[int, dict[str, Any]] = {}

    def first_output(self) -> str:
        return ""

    def feed(self, line: str) -> Lead | None:
        if not line.strip():
            return None
        self._count += 1
        n = self._count
        try:
            obj = json.loads(line)
        except ValueError as exc:
            return self._bad(n, f"not JSON: {exc.args[0] if exc.args else exc}")
        except RecursionError:  # arrays or objects nested past the parser's depth
            return self._bad(n, "not JSON: nested too deeply")
        if not isinstance(obj, dict):
            return self._bad(n, "not a JSON object")
        wanted = (self._wanted,) if self._wanted is not None else NUMBER_COLUMN_NAMES
        found = [k for k in obj if k.strip().lower() in wanted]  # "Phone" and "phone": two
        if len(found) != 1:
            return self._bad(n, "no number key" if not found else "several number keys", obj)
        value = obj[found[0]]
        if not isinstance(value, str | int) or isinstance(value, bool):
            return self._bad(n, "the number is not a string", obj)
        self._objects[n] = obj
        number = str(value).strip()
        if not number:
            return Lead(n, (), None, "empty number")
        return Lead(n, (), number)

    def flush(self) -> Lead | None:
        return None

    def skip(self, error: str) -> Lead:
        self._count += 1
        return self._bad(self._count, error)

    def _bad(self, n: int, error: str, obj: dict[str, Any] | None = None) -> Lead:
        self._objects[n] = obj if obj is not None else {}
        return Lead(n, (), None, error)

    def render(self, rows: Sequence[Scrubbed]) -> str:
        out = []
        for row in rows:
            obj = self._objects.pop(row.lead.line, {})
            names = added_names(list(obj))
            doc = {**obj, **row.as_dict(names)}
            if not obj:
                doc = {"line": row.lead.line, **doc}
            out.append(json.dumps(doc, ensure_ascii=False) + "\n")
        return "".join(out)
