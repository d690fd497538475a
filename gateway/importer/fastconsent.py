"""The validating pass of consent CSV files, a chunk at a time, for canonical rows.

A consent file of a million rows is mostly one shape: unquoted fields, numbers in E.164
(``+33612345678``) or plain national form (``0612345678``), ISO-8601 instants with an
offset, a handful of professionals, categories and channels. Instead of a ``csv`` record
and a dict per row, the file is read in chunks of :data:`CHUNK_BYTES` cut at a line end;
each line is split on the delimiter and checked as a tuple:

- the number by :func:`gateway.core.e164.listed_fast` (valid numbers only; the national
  form is read as ``+33`` + its nine digits, as the opposition fast path does), the
  instants by ``datetime.fromisoformat`` (with an offset), the time zone and the
  département against caches of values already accepted, the repeated texts interned;
- a row the fast checks cannot vouch for (another number format, an unknown zone, an
  over-long field...) goes through the generic converter
  (:data:`gateway.importer.rows.CONSENTS`), with the same dict the generic reader builds;
- anything else -- a quote character (a field may span lines), a bare CR, a NUL, bytes
  that are not UTF-8, an over-long line, a row the generic converter refuses -- ends the
  fast pass with :class:`Fallback`: the caller runs the generic reader over the whole file,
  so every problem is reported with its line, column and wording, exactly as before.

The records spooled, the counts and the content hash equal the generic reader's; a
Hypothesis property (tests/importer/test_fastconsent.py) checks it on generated files.
"""

from __future__ import annotations

import io
import pickle
import re
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.core.e164 import listed_fast
from gateway.importer.consentline import BLANKS, EDGE_YEARS, KEY_MASK, LineShape
from gateway.importer.reader import (
    MAX_FIELD_CHARS,
    MAX_LINE_BYTES,
    Aborted,
    LineSource,
    check_header,
    first_line,
    line_chunks,
)
from gateway.importer.rows import _DEPARTMENT_RE, _ID_RE, CONSENTS, FieldProblem, consent_id
from gateway.store.consent_pack import Pre, Terms, encode_fixed_whole, optional_flags


class Sink(Protocol):
    """Where the validated rows go: a spool file, or an overlapped import's queue."""

    def write(self, data: bytes, /) -> int: ...


# --- named limits (docs/import-formats.md) ---------------------------------------------
CHUNK_BYTES = 1 << 20  # read and checked at once (plus one partial line carried over)
MAX_INTERNED = 65_536  # distinct combinations of terms shared (one tuple each)

_COLUMNS = ("number", "professional", "product_category", "collected_at", "expires_at",
            "channel", "proof_ref", "withdrawn_at", "timezone", "agreed_slot_start",
            "agreed_slot_end", "consent_id", "call_centre", "address_region")
fromisoformat = datetime.fromisoformat

_NATIONAL_RE = re.compile(r"0[1-9][0-9]{8}", re.ASCII)

Rows = Callable[[str, int], None]
Fraction = Callable[[str, float], None]


class Fallback(Exception):
    """The fast pass cannot vouch for the file: read it with the generic reader."""


def _instant(value: str) -> datetime | None:
    """``parse_instant`` for a value it accepts; None otherwise (the generic path says why)."""
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return None
    if instant.tzinfo is None:  # fromisoformat's offsets are fixed: never a None utcoffset
        return None
    return None if instant.year in EDGE_YEARS else instant


class _Converter:
    """One row (a list of stripped cells in header order) to a spool tuple and its key."""

    def __init__(self, header: list[str], region: str) -> None:
        self.header = header
        self.region = region
        at = {name: i for i, name in enumerate(header)}
        missing = len(header)  # the extra "" after the cells
        self.index = tuple(at.get(name, missing) for name in _COLUMNS)
        self.interned: dict[Terms, Terms] = {}
        self.zones: set[str] = set()
        self.departments: dict[str, str] = {}
        self.shape = LineShape(header, region, self._zone, self._department,
                               self.interned, MAX_INTERNED, consent_id)

    def _e164(self, raw: str) -> str | None:
        if raw[:1] == "+":
            listed = listed_fast(raw)
        elif self.region == "FR" and _NATIONAL_RE.fullmatch(raw):
            listed = listed_fast("+33" + raw[1:])
        else:
            return None
        return listed.e164 if listed is not None and listed.valid else None

    def _zone(self, value: str) -> bool:
        if value in self.zones:
            return True
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            return False
        if len(self.zones) < 1024:
            self.zones.add(value)
        return True

    def _department(self, value: str) -> str | None:
        found = self.departments.get(value)
        if found is None:
            match = _DEPARTMENT_RE.fullmatch(value.strip().upper())
            if match is None:
                return None
            found = match.group(1)
            if len(self.departments) < 1024:
                self.departments[value] = found
        return found

    def fast(self, cells: list[str]) -> tuple[Pre, str] | None:
        """(spool tuple -- ``consent_pack.pre_encode`` of the record --, duplicate key), or
        None when the generic converter must decide. ``cells`` ends with one extra ``""``:
        the value of every column the header does not have."""
        (i_number, i_professional, i_category, i_collected, i_expires, i_channel, i_proof,
         i_withdrawn, i_zone, i_start, i_end, i_id, i_centre, i_region) = self.index
        e164 = self._e164(cells[i_number])
        professional, category = cells[i_professional], cells[i_category]
        channel = cells[i_channel]
        if e164 is None or not professional or not category or not channel:
            return None
        try:
            collected = fromisoformat(cells[i_collected])
            expires = fromisoformat(cells[i_expires])
        except ValueError:
            return None
        if collected.tzinfo is None or expires.tzinfo is None or expires < collected:
            return None  # fromisoformat's offsets are fixed: utcoffset() is never None
        if collected.year in EDGE_YEARS or expires.year in EDGE_YEARS:
            return None  # perhaps out of range in UTC: parse_instant decides
        withdrawn = slot_start = slot_end = None
        if value := cells[i_withdrawn]:
            withdrawn = _instant(value)
            if withdrawn is None or withdrawn < collected:
                return None
        zone: str | None = cells[i_zone] or None
        if zone is not None:
            if zone not in self.zones and not self._zone(zone):
                return None
        start, end = cells[i_start], cells[i_end]
        if start or end:
            slot_start, slot_end = _instant(start), _instant(end)
            if slot_start is None or slot_end is None or slot_end <= slot_start:
                return None
        given = cells[i_id]
        if given and not _ID_RE.match(given):
            return None
        region = None
        if value := cells[i_region]:
            region = self._department(value)
            if region is None:
                return None
        proof = cells[i_proof]
        cid = given or consent_id(e164, professional, category, collected, proof)
        centre = cells[i_centre] or None
        terms: Terms = (professional, category, channel, zone, centre, region)
        if len(self.interned) < MAX_INTERNED:  # one tuple per combination of terms
            terms = self.interned.setdefault(terms, terms)
        fixed, instants = encode_fixed_whole(
            cid, collected, expires, withdrawn, slot_start, slot_end,
            optional_flags(zone, centre, region))
        return (int(e164[1:]), fixed, terms, instants, proof.encode()), f"{e164}\x1f{cid}"

    def generic(self, cells: list[str], region: str) -> tuple[tuple[Any, ...], str, bool]:
        """The generic converter on the generic reader's dict; Fallback if it refuses."""
        try:
            conv = CONSENTS.convert(dict(zip(self.header, cells, strict=False)), region)
        except FieldProblem:
            raise Fallback from None
        return CONSENTS.pack(conv.record), conv.key, conv.without_proof


def key64(key: str) -> int:
    """A duplicate key in 8 bytes: an E.164 number exactly, anything else hashed by the
    interpreter's 64-bit string hash (SipHash; keys are compared within one process
    only: two distinct keys of a million-row file collide with odds of 1 in 37 million)."""
    if key.startswith("+") and key[1:].isdigit() and len(key) <= 19:
        return int(key[1:])  # an E.164 number fits in 63 bits: exact
    return hash(key) & KEY_MASK


@dataclass(frozen=True, slots=True)
class Checked:
    """What one chunk holds: its rows, their duplicate keys and their spool batches."""

    rows: int
    without_proof: int
    keys: array[int]  # key64 of each row's duplicate key
    numbers: array[int]  # each row's number (E.164 digits as an integer)
    spooled: bytes  # pickled batches of spool tuples (b"" when not spooling)


def check_chunk(chunk: bytes, conv: _Converter, delimiter: str, *, spool: bool,
                batch_rows: int, shaped: bool = True) -> Checked:
    """The rows of ``chunk`` (whole lines); Fallback when the generic reader must read it.

    Pure (no I/O)."""
    if b'"' in chunk or b"\x00" in chunk:
        raise Fallback
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError:
        raise Fallback from None
    found = text.split("\n")
    ascii_only = text.isascii()  # then its lines' lengths are their sizes in bytes
    if max(map(len, found if ascii_only else chunk.split(b"\n"))) >= MAX_LINE_BYTES:
        raise Fallback
    if found[-1] == "":
        found.pop()
    # nothing in the chunk could make a cell need stripping or hide a CR inside a line:
    # its lines go to conv.shape (gateway/importer/consentline.py), all at once if they can
    clean = shaped and not any(b in chunk for b in BLANKS) and chunk.count(
        b"\r") == chunk.count(b"\r\n")
    if clean and ascii_only and not _padded(text, delimiter) and not (
            text[:1] == "#" or "\n#" in text):
        lines = [line[:-1] for line in found] if "\r" in text else found
        whole = conv.shape.columns(lines, delimiter)
        if whole is not None:
            records, row_keys, row_numbers, missing = whole
            out = io.BytesIO()
            if spool:
                for at in range(0, len(records), batch_rows):
                    pickle.dump(records[at:at + batch_rows], out,
                                protocol=pickle.HIGHEST_PROTOCOL)
            return Checked(len(records), missing, array("Q", row_keys),
                           array("Q", row_numbers), out.getvalue())
    width, region = len(conv.header), conv.region
    rows = without_proof = 0
    keys: array[int] = array("Q")
    numbers: array[int] = array("Q")
    out = io.BytesIO()
    batch: list[tuple[Any, ...]] = []
    shape = conv.shape.convert if clean else None
    for line in found:
        if line[-1:] == "\r":
            line = line[:-1]  # the CSV reader's line end
        got = None
        if (shape is not None and len(line) <= MAX_FIELD_CHARS and line.isascii()
                and " " not in line and line[:1] != "#"):
            cells = line.split(delimiter)
            if len(cells) == width:
                cells.append("")
                got = shape(cells)
        if got is not None:
            record, key_int = got
            without_proof += not record[4]
        else:
            if "\r" in line:
                raise Fallback
            if line[:1] == "#":
                continue
            cells = [c.strip() for c in line.split(delimiter)]
            if not any(cells):
                continue
            if len(cells) != width:
                raise Fallback
            cells.append("")
            fast = None
            if len(line) <= MAX_FIELD_CHARS or max(map(len, cells)) <= MAX_FIELD_CHARS:
                fast = conv.fast(cells)
            if fast is not None:
                record, key = fast
                without_proof += not record[4]
            else:
                record, key, missing = conv.generic(cells, region)
                without_proof += missing
            key_int = key64(key)
        rows += 1
        keys.append(key_int)
        numbers.append(record[0])
        if spool:
            batch.append(record)
            if len(batch) >= batch_rows:
                pickle.dump(batch, out, protocol=pickle.HIGHEST_PROTOCOL)
                batch = []
    if batch:
        pickle.dump(batch, out, protocol=pickle.HIGHEST_PROTOCOL)
    return Checked(rows, without_proof, keys, numbers, out.getvalue())


def _padded(text: str, delimiter: str) -> bool:
    """Whether a cell of these lines (ASCII, no other blank than the space) may begin or
    end with a space (a space beside a delimiter or a line end): strip() would change it."""
    return " " in text and (
        f" {delimiter}" in text or f"{delimiter} " in text or "\n " in text
        or " \n" in text or " \r" in text or text[:1] == " " or text[-1:] == " ")


def validate_consents(stream: BinaryIO, *, region: str, spool: Sink | None,
                      batch_rows: int, add_keys: Callable[[array[int]], None],
                      add_numbers: Callable[[array[int]], None],
                      progress: Rows | None, fraction: Fraction | None, size: int,
                      progress_every: int,
                      chunk_bytes: int = CHUNK_BYTES) -> tuple[int, int, str, int]:
    """(rows, without_proof, sha256 hex, bytes) of a clean consent CSV read in chunks.

    Raises :class:`Fallback` (before any error is reported) whenever the generic reader
    must read the file: the caller rewinds and truncates ``spool`` and starts again.
    ``spool`` gets the pickled batches of each clean chunk as soon as it is checked.
    """
    lines = LineSource(stream)
    try:
        first = first_line(lines)
    except Aborted:
        raise Fallback from None
    if first is None or first.cells is None or first.text.count('"') or check_header(
            first.cells, required=CONSENTS.required, optional=CONSENTS.optional,
            line=first.line):
        raise Fallback
    conv = _Converter(first.cells, region)
    delimiter = first.delimiter
    sha = lines.sha256
    read = lines.bytes_read
    rows = without_proof = reported = 0
    for part in line_chunks(stream, chunk_bytes, sha, read):
        read = part.bytes_read
        if len(part.carry) > MAX_LINE_BYTES:
            raise Fallback
        if part.lines:
            checked = check_chunk(part.lines, conv, delimiter, spool=spool is not None,
                                  batch_rows=batch_rows)
            rows += checked.rows
            without_proof += checked.without_proof
            add_keys(checked.keys)
            add_numbers(checked.numbers)
            if spool is not None and checked.spooled:
                spool.write(checked.spooled)
        if not part.last and rows - reported >= progress_every:
            reported = rows
            if fraction is not None and size:
                fraction("validating", min(1.0, read / size))
            if progress is not None:
                progress("validating", rows)
    return rows, without_proof, sha.hexdigest(), read
