"""Export of audit records for an inspector: filter by time, number, campaign.

"Why was this number called on that day?" ->
``export(lines, since=day_start, until=day_end, number="06 12 34 56 78", fmt="csv")``.

The number filter normalises the given number (national French by default) and, for
records written in ``hash`` mode, hashes it with the same key (``hash_key``); records
hashed under another key (other ``key_id``) cannot match and are counted apart.
JSONL export writes the stored canonical lines unchanged, so each exported record's
``hash`` still proves its content (the chain links are not checked: a filtered export
has gaps by design).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TextIO

import phonenumbers

from gateway.audit.record import digits_or_text, format_instant, hash_number, key_id
from gateway.text import writable

ExportFormat = Literal["jsonl", "csv"]

CSV_COLUMNS = (
    "ts", "local_times", "id", "campaign", "professional", "number", "number_mode",
    "verdict", "reason", "engine_verdict", "engine_reason", "shadow", "fail_open",
    "retry_after_s", "pack_id", "pack_hash", "consent_id", "contract_id", "lists", "zones",
    "attempts_seen", "attempts_limit", "attempt_window_s", "caller_id", "source",
    "latency_us", "context", "trace", "instance", "seq", "hash",
    # a row with "supersedes" replaces the earlier row of that decision id: its verdict
    # is what was enforced (the first record missed its write deadline)
    "supersedes", "audit_fault", "would_have_verdict", "would_have_reason",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+$")


@dataclass(slots=True)
class ExportStats:
    scanned: int = 0
    exported: int = 0
    unreadable: int = 0
    other_key: int = 0  # hashed records under another key: a number filter cannot match
    superseding: int = 0  # exported records that replace an earlier one (audit deadline)


class NumberFilter:
    """Matches a record's number field against one number, in full or keyed-hash mode."""

    def __init__(self, number: str, *, hash_key: str | None, default_region: str = "FR"):
        raw = number.strip()
        digits = "".join(c for c in raw if c.isdigit())
        e164: str | None = None
        try:
            parsed = phonenumbers.parse(raw, default_region)
            if phonenumbers.is_possible_number(parsed):
                e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            e164 = None
        self.full = {v for v in (e164, raw, digits) if v}
        self.key_id = key_id(hash_key) if hash_key else None
        # what a record hashes: the E.164 form, else the input's digits, else its text
        # (a dial string without a digit: gateway.audit.record)
        self.hashed = {hash_number(hash_key, v) for v in (e164, digits_or_text(raw)) if v} \
            if hash_key else set()

    def matches(self, rec: Mapping[str, Any], stats: ExportStats) -> bool:
        if rec.get("number_mode") == "hash":
            if rec.get("key_id") != self.key_id:
                stats.other_key += 1
                return False
            return rec.get("number") in self.hashed
        return rec.get("number") in self.full or rec.get("number_input") in self.full


class Exporter:
    """Sans-IO exporter: ``feed`` stored lines, rows are written to ``out``."""

    def __init__(self, out: TextIO, *, fmt: ExportFormat = "jsonl",
                 since: datetime | None = None, until: datetime | None = None,
                 number: str | None = None, campaign: str | None = None,
                 hash_key: str | None = None, default_region: str = "FR") -> None:
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"unknown export format {fmt!r}")
        self._out = out
        self._fmt = fmt
        self._since = format_instant(since) if since else None
        self._until = format_instant(until) if until else None
        self._campaign = campaign
        self._number = NumberFilter(number, hash_key=hash_key,
                                    default_region=default_region) if number else None
        self.stats = ExportStats()
        self._csv = csv.writer(out, lineterminator="\r\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(CSV_COLUMNS)

    def feed(self, raw: bytes | str | Mapping[str, Any]) -> bool:
        """Filter one record (stored line or parsed object); returns whether it was written."""
        self.stats.scanned += 1
        if isinstance(raw, Mapping):
            rec: Any = raw
            line = None
        else:
            line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            try:
                rec = json.loads(line)
            except (ValueError, RecursionError):  # nested past the parser's depth
                rec = None
        if not isinstance(rec, dict) or not isinstance(rec.get("ts"), str):
            self.stats.unreadable += 1
            return False
        ts = rec["ts"]
        if (self._since and ts < self._since) or (self._until and ts >= self._until):
            return False
        if self._campaign is not None and rec.get("campaign") != self._campaign:
            return False
        if self._number is not None and not self._number.matches(rec, self.stats):
            return False
        if rec.get("supersedes") is not None:
            self.stats.superseding += 1
        if self._csv is not None:
            self._csv.writerow([_cell(v) for v in _row(rec)])
        else:
            self._out.write((line.rstrip("\n") if line is not None
                             else json.dumps(rec, sort_keys=True, separators=(",", ":")))
                            + "\n")
        self.stats.exported += 1
        return True


def _row(rec: Mapping[str, Any]) -> list[Any]:
    engine = rec.get("engine") or {}
    pack = rec.get("pack") or {}
    counters = rec.get("counters") or {}
    lists = rec.get("lists") or []
    local = rec.get("local_times") or {}
    raw_fault = rec.get("audit_fault")
    fault: Mapping[str, Any] = raw_fault if isinstance(raw_fault, Mapping) else {}
    raw_would = fault.get("would_have")
    would: Mapping[str, Any] = raw_would if isinstance(raw_would, Mapping) else {}
    return [
        rec.get("ts"), " ".join(f"{z}={t}" for z, t in sorted(local.items())), rec.get("id"),
        rec.get("campaign"), rec.get("professional"), rec.get("number"),
        rec.get("number_mode"), rec.get("verdict"), rec.get("reason"), engine.get("verdict"),
        engine.get("reason"), rec.get("shadow"), rec.get("fail_open"),
        rec.get("retry_after_s"), pack.get("id"), pack.get("hash"), rec.get("consent_id"),
        rec.get("contract_id"),
        " ".join(f"{x.get('name')}@v{x.get('version')}/{x.get('age_s')}s" for x in lists),
        " ".join(rec.get("zones") or []), counters.get("attempts_seen"),
        counters.get("attempts_limit"), counters.get("attempt_window_s"),
        rec.get("caller_id"), rec.get("source"), rec.get("latency_us"),
        json.dumps(rec.get("context") or {}, sort_keys=True, ensure_ascii=False),
        " | ".join(rec.get("trace") or []), rec.get("instance"), rec.get("seq"),
        rec.get("hash"), rec.get("supersedes"), fault.get("kind"), would.get("verdict"),
        would.get("reason"),
    ]


def _cell(value: Any) -> str:
    """CSV cell text; neutralises spreadsheet formulas (a leading ``'``) except plain
    numbers such as ``+33612345678``. Quoting of commas, quotes, newlines is csv's."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    # a lone surrogate (an AMI header that was not UTF-8) as its escape, never an error
    # mid-export
    text = writable(str(value))
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def export(records: Iterable[bytes | str | Mapping[str, Any]], out: TextIO, *,
           since: datetime | None = None, until: datetime | None = None,
           number: str | None = None, campaign: str | None = None,
           fmt: ExportFormat = "jsonl", hash_key: str | None = None,
           default_region: str = "FR") -> ExportStats:
    """Write the records matching every given filter to ``out``; ``since`` inclusive,
    ``until`` exclusive (aware datetimes, compared in UTC)."""
    exporter = Exporter(out, fmt=fmt, since=since, until=until, number=number,
                        campaign=campaign, hash_key=hash_key, default_region=default_region)
    for raw in records:
        exporter.feed(raw)
    return exporter.stats


async def export_async(records: AsyncIterable[bytes | str | Mapping[str, Any]], out: TextIO,
                       **filters: Any) -> ExportStats:
    """:func:`export` over an async source (a Redis Stream reader)."""
    exporter = Exporter(out, **filters)
    async for raw in records:
        exporter.feed(raw)
    return exporter.stats
