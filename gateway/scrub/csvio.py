"""Lead files: CSV with a header row, any columns, one of them the number.

The delimiter (``,`` ``;`` tab ``|``) is detected from the header line; a UTF-8 BOM is
skipped. Rows that cannot be used (no number, broken quoting, oversized field) are
returned as unusable :class:`Lead` objects: reported, never fatal.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from typing import TextIO

from gateway.scrub.core import ADDED_COLUMNS, Lead

#: Header names recognised as the number column (case-insensitive, trimmed).
NUMBER_COLUMN_NAMES = ("number", "phone", "telephone", "téléphone")
#: Longest field accepted (characters); a longer one makes its row invalid.
MAX_FIELD_CHARS = 4096
#: Most columns a header may have: every short row is padded to the header's width, so
#: a header of 60,000 empty names turned 11-byte rows into 60 kB ones (2 GB for a batch).
MAX_COLUMNS = 1000
#: Physical lines one CSV record may span (quoted newlines). A record that spans more, or
#: that spans several and cannot be used, is taken for a quote left open: its first line
#: is an invalid row and the lines after it are read again as rows of their own.
MAX_RECORD_LINES = 8
_DELIMITERS = ",;\t|"


class ScrubInputError(ValueError):
    """The file cannot be scrubbed at all (no header, no number column...)."""


def find_number_column(header: Sequence[str], wanted: str | None) -> int:
    """Index of the number column: ``wanted`` if given, else the one detected."""
    names = [h.strip().lower() for h in header]
    if wanted is not None:
        key = wanted.strip().lower()
        if names.count(key) > 1:
            raise ScrubInputError(f"{names.count(key)} columns named {wanted!r}: rename one")
        try:
            return names.index(key)
        except ValueError:
            raise ScrubInputError(
                f"no column {wanted!r} in the header ({', '.join(header)})") from None
    found = [i for i, n in enumerate(names) if n in NUMBER_COLUMN_NAMES]
    if len(found) == 1:
        return found[0]
    if not found:
        raise ScrubInputError(
            f"no number column (looked for {', '.join(NUMBER_COLUMN_NAMES)}; the header has "
            f"{', '.join(header) or 'nothing'}): name it with --number-column")
    raise ScrubInputError(
        f"several number columns ({', '.join(header[i] for i in found)}): "
        "choose one with --number-column")


def added_names(header: Sequence[str]) -> tuple[str, ...]:
    """The added columns' names; prefixed ``gw_`` when the lead file already uses one."""
    taken = {h.strip().lower() for h in header}
    if taken.isdisjoint(ADDED_COLUMNS):
        return ADDED_COLUMNS
    return tuple(f"gw_{name}" for name in ADDED_COLUMNS)


def sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class _Lines:
    """The physical lines given to the csv reader: ``record`` keeps those of the record
    being read, ``again`` (reversed) those to give again before the stream's next."""

    def __init__(self, stream: TextIO) -> None:
        self._next = iter(stream).__next__
        self.record: list[str] = []
        self.again: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.again.pop() if self.again else self._next()
        self.record.append(line)
        return line


class CsvLeads:
    """Iterate the leads of a CSV text stream (``header`` is read on construction)."""

    def __init__(self, stream: TextIO, *, number_column: str | None = None) -> None:
        first = stream.readline()
        if first.startswith("\ufeff"):
            first = first[1:]
        if not first.strip():
            raise ScrubInputError("empty file: a header row is required")
        self.delimiter = sniff_delimiter(first)
        try:
            header_rows = list(csv.reader([first], delimiter=self.delimiter))
        except csv.Error as exc:  # e.g. a field past the csv module's field size limit
            raise ScrubInputError(f"unreadable header row: {exc}") from None
        self.header: list[str] = header_rows[0] if header_rows else []
        if len(self.header) > MAX_COLUMNS:
            raise ScrubInputError(
                f"the header has {len(self.header)} columns (at most {MAX_COLUMNS})")
        self.number_index = find_number_column(self.header, number_column)
        self._lines = _Lines(stream)
        self._record = self._lines.record
        self._reader = csv.reader(self._lines, delimiter=self.delimiter)
        self.rows_read = 0

    def __iter__(self) -> Iterator[Lead]:
        width = len(self.header)
        record = self._record
        while True:
            record.clear()
            error = None
            try:
                fields = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                fields, error = [], f"unreadable CSV row: {exc}"
            if len(record) > 1 and (len(record) > MAX_RECORD_LINES or error is not None
                                    or len(fields) != width
                                    or max(map(len, fields), default=0) > MAX_FIELD_CHARS):
                yield self._runaway(width)
            elif error is not None:
                self.rows_read += 1
                yield Lead(self.rows_read, [""] * width, None, error)
            elif fields:  # else a blank line
                self.rows_read += 1
                yield lead_from_fields(self.rows_read, fields, width, self.number_index)

    def _runaway(self, width: int) -> Lead:
        """A quote left open swallowed the lines after its own: that line is an invalid
        row, the others are read again."""
        first, *rest = self._record
        self._lines.again.extend(reversed(rest))
        self.rows_read += 1
        try:
            fields = next(csv.reader([first.rstrip("\r\n")], delimiter=self.delimiter), [])
        except csv.Error:
            fields = []
        return Lead(self.rows_read, _fit([f[:MAX_FIELD_CHARS] for f in fields], width), None,
                    f"unbalanced quotes: a quoted field runs over {len(self._record)} lines "
                    "(the lines after this one are read as rows of their own)")

    def batches(self, size: int) -> Iterator[list[Lead]]:
        batch: list[Lead] = []
        for lead in self:
            batch.append(lead)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch


def lead_from_fields(line: int, fields: list[str], width: int, number_index: int) -> Lead:
    """One lead; a row with the wrong field count or an oversized field is unusable."""
    if max(map(len, fields), default=0) > MAX_FIELD_CHARS:
        kept = [f[:MAX_FIELD_CHARS] for f in fields]
        return Lead(line, _fit(kept, width), None,
                    f"a field is longer than {MAX_FIELD_CHARS} characters")
    if len(fields) != width:
        return Lead(line, _fit(fields, width), None,
                    f"{len(fields)} fields where the header has {width}")
    number = fields[number_index].strip()
    if not number:
        return Lead(line, fields, None, "empty number")
    return Lead(line, fields, number)


def _fit(fields: list[str], width: int) -> list[str]:
    """Pad a short row; a long row keeps its extra fields joined in the last column."""
    if len(fields) < width:
        return fields + [""] * (width - len(fields))
    if len(fields) > width and width:
        return [*fields[: width - 1], "|".join(fields[width - 1:])]
    return fields
