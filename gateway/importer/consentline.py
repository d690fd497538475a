"""The common consent lines, converted a column at a time (no Python code per cell).

The chunked pass (:mod:`gateway.importer.fastconsent`) checks a line's cells through
small helpers (a call per instant, per encoded varint, per id...). Most lines of a real
file have one shape, and :class:`LineShape` takes them faster:

- :meth:`LineShape.columns`, a whole chunk at once, when the chunk is ASCII and no cell
  needs stripping (no blank but inner spaces, no bare CR, no comment) and every line has
  the header's number of cells: one ``split`` of the chunk gives the columns; the numbers
  are matched by one regular expression over the column -- ``+33`` (or, in France, ``0``)
  and the bulk fragment of France (:func:`gateway.core.e164.bulk_fragments`, the
  fragment fastlist reads opposition lists with, proven equal to ``listed_fast``) --; each
  instant column is one ``map`` of ``datetime.fromisoformat``; the relative instants are
  differences of instants (their varints cached); ids, flags, terms, records and
  duplicate keys are assembled by ``map`` and ``zip``. Optional columns may be empty on
  some rows;
- :meth:`LineShape.convert`, one line without blanks, in one function, when the chunk
  cannot be taken whole.

The bytes are those of ``consent_pack.encode_fixed_whole`` and the per-line converter.
Whatever they do not take -- another number (overseas, foreign, unknown to the fragment),
a sub-second instant, a rule a row breaks (an expiry before the collection...), an
unknown zone or département -- goes to the per-line converter as before, which decides as
it always did: the shape never refuses a line, it only declines it. Property tests
(tests/importer/test_consentline.py) check that what they take gives byte for byte the
per-line converter's spool records, duplicate keys and counts.

(One compiled pattern capturing every column of the line was measured first: 3 µs per
``fullmatch`` of the bench's 280-character line, more than the split and the maps.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import and_, attrgetter, itemgetter, or_, sub
from typing import Any

from gateway.core.e164 import bulk_fragments
from gateway.store.consent_pack import (
    _BYTE,
    _SMALL,
    COLLECTED_REF_S,
    F_ADDRESS_REGION,
    F_CALL_CENTRE,
    F_EXPIRES,
    F_SLOT_END,
    F_SLOT_START,
    F_TIMEZONE,
    F_WITHDRAWN,
    Pre,
    Terms,
    _zz,
    encode_id,
)

# --- named limits (docs/import-formats.md) ---------------------------------------------
MAX_CACHED_DELTAS = 1 << 16  # distinct relative instants whose varint is kept
MAX_CACHED_TERMS = 1024  # distinct zones and départements accepted, per file
_MAX_LINE = 1024  # reader.MAX_FIELD_CHARS: a line no longer holds no longer cell

_COLUMNS = ("number", "professional", "product_category", "collected_at", "expires_at",
            "channel", "proof_ref", "withdrawn_at", "timezone", "agreed_slot_start",
            "agreed_slot_end", "consent_id", "call_centre", "address_region")
#: bytes of a chunk that str.strip() would remove besides the space, CR and LF
BLANKS = (b"\t", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x1f")
_ID_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))  # rows._ID_RE's characters

fromisoformat = datetime.fromisoformat
#: fastconsent.key64 of a key that is not a bare number: its 64-bit string hash
KEY_MASK = (1 << 64) - 1
#: years where an instant with an offset may fall outside the calendar in UTC (refused by
#: rows.parse_instant): left to the per-line converter
EDGE_YEARS = frozenset({1, 9999})
_tz = attrgetter("tzinfo")
_year = attrgetter("year")
_us = attrgetter("microsecond")
_COLLECTED_REF = datetime.fromtimestamp(COLLECTED_REF_S, UTC)
_NOT_ID = re.compile(r"[^\x21-\x7e]")  # rows._ID_RE's complement


class _Varints(dict[timedelta, bytes]):
    """uvarint(zigzag(seconds)) of whole-second deltas, computed on a miss (kept while the
    cache has room)."""

    def __missing__(self, delta: timedelta) -> bytes:
        got = _zz(delta.days * 86_400 + delta.seconds)
        if len(self) < MAX_CACHED_DELTAS:
            self[delta] = got
        return got


def _instants(values: list[str]) -> list[datetime] | None:
    """The instants of a column, all whole seconds; None when one is not or is no
    ISO-8601 instant (the per-line path says why). Naive ones are caught by the caller
    (subtracting one from an aware instant raises TypeError)."""
    try:
        instants = list(map(fromisoformat, values))
    except ValueError:
        return None
    if any(map(_us, instants)) or not EDGE_YEARS.isdisjoint(map(_year, instants)):
        return None
    return instants


class LineShape:
    """The converter of one file's common lines (its header fixes where each cell is)."""

    def __init__(self, header: list[str], region: str,
                 zone_ok: Callable[[str], bool],
                 department: Callable[[str], str | None],
                 interned: dict[Terms, Terms], max_interned: int,
                 derived_id: Callable[[str, str, str, datetime, str], str]) -> None:
        at = {name: i for i, name in enumerate(header)}
        self._at = at
        self._width = len(header)
        missing = len(header)  # the extra "" after the cells
        self._pick = itemgetter(*(at.get(name, missing) for name in _COLUMNS))
        self._national = region == "FR"
        self._nsn = _france_nsn()
        self._numbers = _numbers_re(self._national)
        self._varints = _Varints()
        self._zone_ok = zone_ok
        self._department = department
        self._interned = interned
        self._max_interned = max_interned
        self._derived_id = derived_id
        self.deltas: dict[int, bytes] = {}
        self.zones: set[str] = set()
        self.departments: dict[str, str] = {}

    def convert(self, cells: list[str]) -> tuple[Pre, int] | None:
        """(spool tuple, key64 of the duplicate key) of a line's cells -- as split, with
        one extra ``""`` for the columns the header lacks, of a line without blanks or
        quotes, no longer than ``_MAX_LINE`` -- or None: the per-line converter decides."""
        (number, professional, category, c_raw, e_raw, channel, proof, w_raw, zone, s_raw,
         n_raw, given, centre, dept) = self._pick(cells)
        if number[:3] == "+33":
            if self._nsn(number, 3) is None:
                return None
            e164 = number
        elif self._national and len(number) == 10 and number[0] == "0":
            if self._nsn(number, 1) is None:  # (?!0): the second digit is not 0
                return None
            e164 = "+33" + number[1:]
        else:
            return None
        if not professional or not category or not channel:
            return None
        try:
            collected = fromisoformat(c_raw)
            expires = fromisoformat(e_raw)
            withdrawn = fromisoformat(w_raw) if w_raw else None
            start = fromisoformat(s_raw) if s_raw else None
            end = fromisoformat(n_raw) if n_raw else None
        except ValueError:
            return None
        if (collected.tzinfo is None or expires.tzinfo is None or collected.microsecond
                or expires.microsecond or collected.year in EDGE_YEARS
                or expires.year in EDGE_YEARS):
            return None
        sec = int(collected.timestamp())
        ex = int(expires.timestamp()) - sec
        if ex < 0:
            return None
        deltas = self.deltas
        out = [_zz(sec - COLLECTED_REF_S), deltas.get(ex) or self._delta(ex)]
        flags = F_EXPIRES
        if withdrawn is not None:
            if (withdrawn.tzinfo is None or withdrawn.microsecond
                    or withdrawn.year in EDGE_YEARS):
                return None
            ex = int(withdrawn.timestamp()) - sec
            if ex < 0:
                return None
            flags |= F_WITHDRAWN
            out.append(deltas.get(ex) or self._delta(ex))
        if start is not None or end is not None:
            if (start is None or end is None or start.tzinfo is None or end.tzinfo is None
                    or start.microsecond or end.microsecond or start.year in EDGE_YEARS
                    or end.year in EDGE_YEARS):
                return None
            slot = int(start.timestamp())
            ex = int(end.timestamp()) - slot
            if ex <= 0:
                return None
            flags |= F_SLOT_START | F_SLOT_END
            slot -= sec
            out.append(deltas.get(slot) or self._delta(slot))
            out.append(deltas.get(ex) or self._delta(ex))
        if zone:
            if zone not in self.zones:
                if not self._zone_ok(zone):
                    return None
                if len(self.zones) < MAX_CACHED_TERMS:
                    self.zones.add(zone)
            flags |= F_TIMEZONE
        region: str | None = None
        if dept:
            region = self.departments.get(dept)
            if region is None:
                region = self._department(dept)
                if region is None:
                    return None
                if len(self.departments) < MAX_CACHED_TERMS:
                    self.departments[dept] = region
            flags |= F_ADDRESS_REGION
        if centre:
            flags |= F_CALL_CENTRE
        if given:
            if len(given) > 128 or not _ID_CHARS.issuperset(given):
                return None
            cid = given
        else:
            cid = self._derived_id(e164, professional, category, collected, proof)
        terms: Terms = (professional, category, channel, zone or None, centre or None, region)
        if len(self._interned) < self._max_interned:
            terms = self._interned.setdefault(terms, terms)
        return ((int(e164[1:]), encode_id(cid) + _BYTE[flags], terms, b"".join(out),
                 proof.encode()), hash(f"{e164}\x1f{cid}") & KEY_MASK)

    def columns(self, lines: list[str], delimiter: str
                ) -> tuple[list[Pre], list[int], list[int], int] | None:
        """(spool tuples, key64 of their duplicate keys, numbers, rows without proof) of
        whole lines -- ASCII, without blanks, CRs or comments, one row each -- checked a
        column at a time; None when one line is not the common kind (any row the per-line
        converter would decline, an optional column filled on some rows only): the
        per-line path reads them all. The same records as :meth:`convert`, row for row."""
        n, width, at = len(lines), self._width, self._at
        if (list(map(str.count, lines, repeat(delimiter, n))).count(width - 1) != n
                or max(map(len, lines)) > _MAX_LINE or self._numbers is None):
            return None
        flat = delimiter.join(lines).split(delimiter)

        def column(name: str) -> list[str] | None:
            i = at.get(name)
            return None if i is None else flat[i::width]

        numbers = flat[at["number"]::width]
        if len(self._numbers.findall("\n".join(numbers))) != n:
            return None
        e164s = (numbers if "0" not in map(itemgetter(0), numbers)
                 else [x if x[0] == "+" else "+33" + x[1:] for x in numbers])
        texts = [flat[at[name]::width] for name in ("professional", "product_category",
                                                    "channel")]
        if any("" in values for values in texts):
            return None
        optional: dict[str, list[str] | None] = {}
        for name in ("withdrawn_at", "agreed_slot_start", "agreed_slot_end", "timezone",
                     "call_centre", "address_region"):
            values = column(name)
            optional[name] = None if values is None or values.count("") == n else values
        collected = _instants(flat[at["collected_at"]::width])
        expires = _instants(flat[at["expires_at"]::width])
        if collected is None or expires is None or None in map(_tz, collected):
            return None
        withdrawn = optional["withdrawn_at"]
        starts, ends = optional["agreed_slot_start"], optional["agreed_slot_end"]
        varint = self._varints.__getitem__
        zero = timedelta(0)
        flags = F_EXPIRES
        some: list[list[int]] = []  # flags of columns filled on some rows only
        try:
            deltas = list(map(sub, expires, collected))
            if min(deltas) < zero:
                return None
            parts: list[Iterable[bytes]] = [
                map(_zz, map(int, map(timedelta.total_seconds, map(
                    sub, collected, repeat(_COLLECTED_REF, n))))),
                map(varint, deltas)]
            if withdrawn is not None:
                rows = _filled(withdrawn)
                instants = _instants(_at(withdrawn, rows))
                if instants is None:
                    return None
                deltas = list(map(sub, instants, _at(collected, rows)))
                if min(deltas) < zero:
                    return None
                parts.append(_spread(map(varint, deltas), rows, n))
                if rows is None:
                    flags |= F_WITHDRAWN
                else:
                    some.append(_flags(F_WITHDRAWN, rows, n))
            if starts is not None or ends is not None:
                if starts is None or ends is None or list(map(bool, starts)) != list(
                        map(bool, ends)):
                    return None  # a slot needs both ends
                rows = _filled(starts)
                slot_starts = _instants(_at(starts, rows))
                slot_ends = _instants(_at(ends, rows))
                if slot_starts is None or slot_ends is None:
                    return None
                offsets = list(map(sub, slot_starts, _at(collected, rows)))
                deltas = list(map(sub, slot_ends, slot_starts))
                if min(deltas) <= zero:
                    return None
                parts.append(_spread(map(varint, offsets), rows, n))
                parts.append(_spread(map(varint, deltas), rows, n))
                if rows is None:
                    flags |= F_SLOT_START | F_SLOT_END
                else:
                    some.append(_flags(F_SLOT_START | F_SLOT_END, rows, n))
        except TypeError:  # a naive instant
            return None
        zones = optional["timezone"]
        if zones is not None:
            for zone in set(zones) - {""}:
                if zone not in self.zones:
                    if not self._zone_ok(zone):
                        return None
                    if len(self.zones) < MAX_CACHED_TERMS:
                        self.zones.add(zone)
        regions: list[str | None] | None = None
        if (values := optional["address_region"]) is not None:
            found: dict[str, str | None] = {"": None}
            for dept in set(values) - {""}:
                region = self.departments.get(dept) or self._department(dept)
                if region is None:
                    return None
                found[dept] = region
            regions = list(map(found.__getitem__, values))
        centres = optional["call_centre"]
        terms_of: list[Sequence[str | None] | None] = []
        for bit, values in ((F_TIMEZONE, zones), (F_CALL_CENTRE, centres),
                            (F_ADDRESS_REGION, optional["address_region"])):
            if values is None:
                terms_of.append(None)
            elif "" in values:
                some.append([bit if v else 0 for v in values])
                terms_of.append([v or None for v in values])
            else:
                flags |= bit
                terms_of.append(values)
        if regions is not None:
            terms_of[2] = regions
        proofs = column("proof_ref")
        ids = column("consent_id")
        if ids is not None and (max(map(len, ids)) > 128 or _NOT_ID.search("".join(ids))):
            return None  # a given id rows._ID_RE refuses
        if ids is None or "" in ids:
            ids = self._derived(ids or [""] * n, e164s, texts, collected, proofs)
        sizes = list(map(len, ids))
        if 26 in sizes or max(sizes) >= 0x80:  # a derived id's form: encode_id decides
            id_bytes = list(map(encode_id, ids))
        else:
            id_bytes = list(map(bytes.__add__, map(_SMALL.__getitem__, sizes),
                                map(str.encode, ids)))
        terms: list[Terms] = list(zip(
            *texts, *(values or repeat(None, n) for values in terms_of), strict=True))
        if len(self._interned) + n <= self._max_interned:
            terms = list(map(self._interned.setdefault, terms, terms))
        ints = list(map(int, e164s))
        records: list[Pre] = list(zip(
            ints, map(bytes.__add__, id_bytes, map(_BYTE.__getitem__, _or(flags, some, n))
                      if some else repeat(_BYTE[flags], n)), terms,
            map(b"".join, zip(*parts, strict=True)),
            map(str.encode, proofs) if proofs is not None else repeat(b"", n), strict=True))
        keys = list(map(and_, map(hash, map("\x1f".join, zip(e164s, ids, strict=True))),
                        repeat(KEY_MASK, n)))
        without_proof = n if proofs is None else proofs.count("")
        return records, keys, ints, without_proof

    def _derived(self, ids: list[str], e164s: list[str], texts: list[list[str]],
                 collected: list[datetime], proofs: list[str] | None) -> list[str]:
        """The given ids, and the derived one where none is given (rows.consent_id)."""
        derived = self._derived_id
        return [given or derived(e164, professional, category, at, proof)
                for given, e164, professional, category, at, proof in zip(
                    ids, e164s, texts[0], texts[1], collected, proofs or repeat("", len(ids)),
                    strict=True)]

    def _delta(self, delta: int) -> bytes:
        got = _zz(delta)
        if len(self.deltas) < MAX_CACHED_DELTAS:
            self.deltas[delta] = got
        return got


def _filled(values: list[str]) -> list[int] | None:
    """The rows where an optional column is filled; None when it is on every row."""
    if "" not in values:
        return None
    return [i for i, value in enumerate(values) if value]


def _at(values: list[Any], rows: list[int] | None) -> list[Any]:
    return values if rows is None else [values[i] for i in rows]


def _spread(encoded: Iterable[bytes], rows: list[int] | None, n: int) -> Iterable[bytes]:
    """Varints of the filled rows, ``b""`` on the others."""
    if rows is None:
        return encoded
    out = [b""] * n
    for i, value in zip(rows, encoded, strict=True):
        out[i] = value
    return out


def _flags(bit: int, rows: list[int], n: int) -> list[int]:
    out = [0] * n
    for i in rows:
        out[i] = bit
    return out


def _or(flags: int, some: list[list[int]], n: int) -> Iterable[int]:
    """Each row's flags: those of every row, and those of its partly filled columns."""
    combined: Iterable[int] = repeat(flags, n)
    for bits in some:
        combined = map(or_, combined, bits)
    return combined


def _france_nsn() -> Callable[[str, int], Any]:
    """``fullmatch(text, pos)`` of a French national significant number that
    ``listed_fast`` lists as valid under +33 (no match: the per-line converter decides)."""
    frags = bulk_fragments(33)
    if frags is None:  # pragma: no cover - the metadata always gives France a fragment
        return lambda _text, _pos: None
    return re.compile(frags.valid, re.ASCII).fullmatch


def _numbers_re(national: bool) -> re.Pattern[str] | None:
    """Lines (MULTILINE) holding one number :meth:`LineShape.convert` takes: +33 and a
    valid national significant number, or in France ``0`` and one."""
    frags = bulk_fragments(33)
    if frags is None:  # pragma: no cover - the metadata always gives France a fragment
        return None
    lead = r"(?:\+33|0(?=[0-9]{9}$))" if national else r"\+33"
    return re.compile(f"^{lead}(?:{frags.valid})$", re.ASCII | re.MULTILINE)
