"""Binary records of consents: the compact consent layout of the Redis store.

A number's consents are one byte string (the value of its field in its bucket hash, see
docs/store.md), the concatenation of records::

    record := uvarint(len(body)) body
    body   := uvarint(version) id  flags
              uvarint(professional) uvarint(product category) uvarint(channel)
              instant(collected_at, from 2026-01-01)
              [instant(expires_at)] [instant(withdrawn_at)] [instant(agreed_slot_start)]
              [instant(agreed_slot_end, from the slot start if any)]
              [uvarint(timezone)] [uvarint(call centre)] [uvarint(address region)]
              proof_ref (the rest)

``version`` and the id come first so the Lua scripts can tell records apart without
knowing the rest. The id is ``uvarint(len) utf-8 bytes``, or, for the importer's
derived form ``c-<24 hex digits>``, a zero byte and the 12 bytes of the hex digits.
Professionals, product categories, channels, time zones, call centres and address regions
are small integers of the list's dictionary
(``intern_key``). An instant is whole seconds relative to a reference,
``uvarint(zigzag(seconds - reference))``, followed by ``uvarint(microseconds)`` only in a
record whose flags say it has sub-second instants; the optional instants are relative to
``collected_at`` (so a year is 4 bytes). Flags (one byte) say which optional parts
follow. Nothing is lost: a record decodes to the same ``ConsentRecord`` the JSON codec
gives back (UTC instants, microseconds kept).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone

from gateway.core.model import ConsentRecord

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DERIVED_ID = re.compile(r"c-[0-9a-f]{24}")
DERIVED_ID_BYTES = 12

F_EXPIRES = 1
F_WITHDRAWN = 2
F_TIMEZONE = 4
F_SLOT_START = 8
F_CALL_CENTRE = 16
F_SLOT_END = 32
F_MICROS = 64  # every instant of the record is followed by its microseconds
F_ADDRESS_REGION = 128

#: ``collected_at`` is stored relative to this instant (2026-01-01T00:00:00Z): 4 bytes
#: from 2021-10 to 2030-04, 5 bytes beyond, never lost.
COLLECTED_REF_S = 1_767_225_600

# dictionary kinds (the term's key in the dictionary hash is "<kind>:<term>")
PROFESSIONAL, CATEGORY, CHANNEL, TIMEZONE, CALL_CENTRE, REGION = "p", "c", "h", "z", "k", "r"


class PackError(ValueError):
    """A stored record that cannot be decoded (truncated or foreign bytes)."""


def intern_key(kind: str, term: str) -> str:
    return f"{kind}:{term}"


def _uv(n: int, out: bytearray) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


_BYTE = [bytes((i,)) for i in range(0x100)]
_SMALL = _BYTE[:0x80]


def _zz(delta: int) -> bytes:
    """uvarint(zigzag(delta)) as bytes: one C call for the common sizes."""
    z = (delta << 1) if delta >= 0 else ((-delta << 1) - 1)
    if z < 0x80:
        return _SMALL[z]
    if z < 0x4000:
        return bytes(((z & 0x7F) | 0x80, z >> 7))
    if z < 0x200000:
        return bytes(((z & 0x7F) | 0x80, ((z >> 7) & 0x7F) | 0x80, z >> 14))
    if z < 0x10000000:
        return bytes(((z & 0x7F) | 0x80, ((z >> 7) & 0x7F) | 0x80,
                      ((z >> 14) & 0x7F) | 0x80, z >> 21))
    out = bytearray()
    _uv(z, out)
    return bytes(out)


def encode_id(consent_id: str) -> bytes:
    """The id field: ``uvarint(len) bytes``, or ``0`` and 12 bytes for a derived id."""
    if len(consent_id) == 26 and _DERIVED_ID.fullmatch(consent_id):
        return b"\x00" + bytes.fromhex(consent_id[2:])
    raw = consent_id.encode("utf-8")
    if not raw:
        raise ValueError("consent record without id")
    out = bytearray()
    _uv(len(raw), out)
    return bytes(out + raw)


def decode_id(field: bytes) -> str:
    if field[:1] == b"\x00":
        return "c-" + field[1:].hex()
    return field[_Reader(field, 0, len(field)).skip_uv():].decode("utf-8")


def _aware_seconds(value: datetime, what: str) -> tuple[int, int]:
    """(whole seconds since the epoch, microseconds) of an aware instant."""
    tz = value.tzinfo
    if tz is None or (type(tz) is not timezone and value.utcoffset() is None):
        raise ValueError(f"consent {what} must be a timezone-aware datetime, got {value!r}")
    us = value.microsecond
    if not us:
        return int(value.timestamp()), 0  # a whole number of seconds: exact
    # timestamp() is exact to well under a microsecond here; the rounding removes it
    return round(value.timestamp() - us / 1_000_000), us


#: A record's dictionary terms: professional, product category, channel, time zone,
#: call centre, address region (the last three optional).
Terms = tuple[str, str, str, str | None, str | None, str | None]
#: A consent encoded but for what only the store knows when it writes it -- the version
#: of the import and the dictionary ids of its terms: (number as an integer, id and
#: flags, terms, instants, proof reference). The importer spools consents in this form.
Pre = tuple[int, bytes, Terms, bytes, bytes]
_TERM_KINDS = (PROFESSIONAL, CATEGORY, CHANNEL, TIMEZONE, CALL_CENTRE, REGION)


def encode_fixed(consent_id: str, collected: datetime, expires: datetime | None,
                 withdrawn: datetime | None, start: datetime | None, end: datetime | None,
                 optional_terms: int) -> tuple[bytes, bytes]:
    """(id and flags, instants) of a record: the parts the dictionary does not change.
    ``optional_terms`` holds the F_TIMEZONE, F_CALL_CENTRE, F_ADDRESS_REGION flags of the
    terms present. Refuses naive instants (ValueError)."""
    sec, us = _aware_seconds(collected, "collected_at")
    secs = [sec - COLLECTED_REF_S]
    micros = [us]
    flags = optional_terms
    if expires is not None:
        flags |= F_EXPIRES
        e_sec, e_us = _aware_seconds(expires, "expires_at")
        secs.append(e_sec - sec)
        micros.append(e_us)
    if withdrawn is not None:
        flags |= F_WITHDRAWN
        w_sec, w_us = _aware_seconds(withdrawn, "withdrawn_at")
        secs.append(w_sec - sec)
        micros.append(w_us)
    slot_ref = sec
    if start is not None:
        flags |= F_SLOT_START
        slot_ref, s_us = _aware_seconds(start, "agreed_slot_start")
        secs.append(slot_ref - sec)
        micros.append(s_us)
    if end is not None:
        flags |= F_SLOT_END
        n_sec, n_us = _aware_seconds(end, "agreed_slot_end")
        secs.append(n_sec - slot_ref)
        micros.append(n_us)
    if any(micros):
        out = bytearray()
        for delta, i_us in zip(secs, micros, strict=True):
            out += _zz(delta)
            _uv(i_us, out)
        return encode_id(consent_id) + _BYTE[flags | F_MICROS], bytes(out)
    return encode_id(consent_id) + _BYTE[flags], b"".join([_zz(delta) for delta in secs])


def encode_fixed_whole(consent_id: str, collected: datetime, expires: datetime,
                       withdrawn: datetime | None, start: datetime | None,
                       end: datetime | None, optional_terms: int) -> tuple[bytes, bytes]:
    """:func:`encode_fixed` (the same bytes) for aware instants whose ``timestamp()`` is
    defined (fixed offsets, as ``datetime.fromisoformat`` gives), in fewer steps; a record
    with a sub-second instant goes through :func:`encode_fixed`."""
    if (collected.microsecond or expires.microsecond
            or (withdrawn is not None and withdrawn.microsecond)
            or (start is not None and start.microsecond)
            or (end is not None and end.microsecond)):
        return encode_fixed(consent_id, collected, expires, withdrawn, start, end,
                            optional_terms)
    sec = int(collected.timestamp())
    flags = optional_terms | F_EXPIRES
    out = [_zz(sec - COLLECTED_REF_S), _zz(int(expires.timestamp()) - sec)]
    if withdrawn is not None:
        flags |= F_WITHDRAWN
        out.append(_zz(int(withdrawn.timestamp()) - sec))
    slot_ref = sec
    if start is not None:
        flags |= F_SLOT_START
        slot_ref = int(start.timestamp())
        out.append(_zz(slot_ref - sec))
    if end is not None:
        flags |= F_SLOT_END
        out.append(_zz(int(end.timestamp()) - slot_ref))
    return encode_id(consent_id) + _BYTE[flags], b"".join(out)


def optional_flags(zone: str | None, centre: str | None, region: str | None) -> int:
    return ((F_TIMEZONE if zone is not None else 0)
            | (F_CALL_CENTRE if centre is not None else 0)
            | (F_ADDRESS_REGION if region is not None else 0))


def terms_of_record(r: ConsentRecord) -> Terms:
    return (r.professional, r.product_category, r.channel, r.timezone, r.call_centre,
            r.address_region)


def pre_encode(r: ConsentRecord) -> Pre:
    """The record in the importer's spool form (ValueError for a record the store refuses:
    no number or id, a number that is not E.164, a naive instant)."""
    if not r.e164 or not r.id:
        raise ValueError("consent record without number or id")
    digits = r.e164[1:] if r.e164.startswith("+") else ""
    if not digits.isdigit() or not digits.isascii() or digits[0] == "0" or len(digits) > 15:
        raise ValueError(f"consent {r.id!r}: not an E.164 number")
    head, instants = encode_fixed(
        r.id, r.collected_at, r.expires_at, r.withdrawn_at, r.agreed_slot_start,
        r.agreed_slot_end, optional_flags(r.timezone, r.call_centre, r.address_region))
    return (int(digits), head, terms_of_record(r), instants, r.proof_ref.encode("utf-8"))


def term_keys(terms: Terms) -> Iterator[str]:
    """The dictionary keys (``intern_key``) a record with these terms needs."""
    for kind, term in zip(_TERM_KINDS, terms, strict=True):
        if term is not None:
            yield f"{kind}:{term}"


def term_ids(terms: Terms, ids: Mapping[str, int]) -> tuple[bytes, bytes]:
    """(professional, category and channel ids; time zone, centre and region ids) as they
    sit in a record (KeyError for a term not interned yet)."""
    professional, category, channel, zone, centre, region = terms
    first = bytearray()
    for key in ("p:" + professional, "c:" + category, "h:" + channel):
        _uv(ids[key], first)
    rest = bytearray()
    if zone is not None:
        _uv(ids["z:" + zone], rest)
    if centre is not None:
        _uv(ids["k:" + centre], rest)
    if region is not None:
        _uv(ids["r:" + region], rest)
    return bytes(first), bytes(rest)


def uv_bytes(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    _uv(n, out)
    return bytes(out)


def assemble(version: bytes, head: bytes, first_ids: bytes, instants: bytes,
             other_ids: bytes, proof: bytes) -> bytes:
    """A whole record from its parts (``version``: ``uv_bytes(version)``)."""
    body = b"".join((version, head, first_ids, instants, other_ids, proof))
    size = len(body)
    return (_SMALL[size] if size < 0x80 else uv_bytes(size)) + body


def encode(r: ConsentRecord, version: int, ids: Mapping[str, int]) -> bytes:
    """One record; ``ids`` maps ``intern_key(kind, term)`` to dictionary ids (KeyError
    for a term not interned yet). Refuses naive instants (ValueError)."""
    head, instants = encode_fixed(
        r.id, r.collected_at, r.expires_at, r.withdrawn_at, r.agreed_slot_start,
        r.agreed_slot_end, optional_flags(r.timezone, r.call_centre, r.address_region))
    first, rest = term_ids(terms_of_record(r), ids)
    return assemble(uv_bytes(version), head, first, instants, rest,
                    r.proof_ref.encode("utf-8"))


def pre_decode(pre: Pre) -> ConsentRecord:
    """The consent of a pre-encoded record (what the store gives back for it)."""
    number, head, terms, instants, proof = pre
    ids: dict[str, int] = {}
    for key in term_keys(terms):
        ids.setdefault(key, len(ids))
    first, rest = term_ids(terms, ids)
    data = assemble(_SMALL[1], head, first, instants, rest, proof)
    names = {i: key.split(":", 1)[1] for key, i in ids.items()}
    return decode(next(records(data)), f"+{number}", names)


class PreEncoded:
    """Consents in the importer's spool form, a batch at a time (read once).

    Iterated, it gives ``ConsentRecord`` values (any store takes it); the compact Redis
    layout takes its :meth:`batches` as they are and only adds the version and the
    dictionary ids. ``unique_numbers``: no two records have the same number (the
    importer counted them), so a replace import has nothing to merge; None: not known
    yet (the file is still being validated while it is written), the store checks the
    numbers as it writes them. ``content_hash``: set by the importer once the batches
    are exhausted (the file's hash is known at its end), then the one committed."""

    def __init__(self, batches: AsyncIterable[list[Pre]], *,
                 unique_numbers: bool | None = False) -> None:
        self._batches = batches
        self.unique_numbers = unique_numbers
        self.content_hash: str | None = None

    def batches(self) -> AsyncIterable[list[Pre]]:
        return self._batches

    async def __aiter__(self) -> AsyncIterator[ConsentRecord]:
        async for batch in self._batches:
            for pre in batch:
                yield pre_decode(pre)


class _Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def uv(self) -> int:
        pos = self.pos
        if pos < self.end:  # one byte (dictionary ids, most deltas): no loop
            b = self.data[pos]
            if b < 0x80:
                self.pos = pos + 1
                return b
        n = shift = 0
        while True:
            if self.pos >= self.end:
                raise PackError("truncated consent record")
            b = self.data[self.pos]
            self.pos += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                return n
            shift += 7
            if shift > 63:
                raise PackError("varint too long in a consent record")

    def skip_uv(self) -> int:
        self.uv()
        return self.pos

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise PackError("truncated consent record")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def instant(self, ref: int, micros: bool) -> tuple[int, datetime]:
        z = self.uv()
        sec = ref + ((z >> 1) if not z & 1 else -((z + 1) >> 1))
        us = self.uv() if micros else 0
        return sec, _EPOCH + timedelta(seconds=sec, microseconds=us)


class Packed:
    """One record as found in a value: its version, raw id and where its body lies."""

    __slots__ = ("data", "end", "id", "start", "version")

    def __init__(self, version: int, raw_id: bytes, data: bytes, start: int, end: int) -> None:
        self.version, self.id, self.data, self.start, self.end = (
            version, raw_id, data, start, end)


def records(data: bytes) -> Iterator[Packed]:
    """The records of one value, in stored order (raises PackError on bad bytes)."""
    pos, size = 0, len(data)
    while pos < size:
        head = _Reader(data, pos, size)
        length = head.uv()
        end = head.pos + length
        if end > size:
            raise PackError("truncated consent record")
        body = _Reader(data, head.pos, end)
        version = body.uv()
        id_at = body.pos
        id_size = body.uv()
        body.take(id_size if id_size else DERIVED_ID_BYTES)
        yield Packed(version, data[id_at:body.pos], data, body.pos, end)
        pos = end


def decode(p: Packed, e164: str, terms: Mapping[int, str]) -> ConsentRecord:
    """The consent of one record; ``terms`` maps dictionary ids to terms (KeyError if
    an id is unknown: the caller reads the dictionary again)."""
    r = _Reader(p.data, p.start, p.end)
    flags = r.take(1)[0]
    professional = terms[r.uv()]
    category = terms[r.uv()]
    channel = terms[r.uv()]
    micros = bool(flags & F_MICROS)
    sec, collected = r.instant(COLLECTED_REF_S, micros)
    expires = r.instant(sec, micros)[1] if flags & F_EXPIRES else None
    withdrawn = r.instant(sec, micros)[1] if flags & F_WITHDRAWN else None
    slot_start = slot_end = None
    slot_ref = sec
    if flags & F_SLOT_START:
        slot_ref, slot_start = r.instant(sec, micros)
    if flags & F_SLOT_END:
        slot_end = r.instant(slot_ref, micros)[1]
    zone = terms[r.uv()] if flags & F_TIMEZONE else None
    centre = terms[r.uv()] if flags & F_CALL_CENTRE else None
    region = terms[r.uv()] if flags & F_ADDRESS_REGION else None
    proof = r.take(r.end - r.pos).decode("utf-8")
    return ConsentRecord(
        id=decode_id(p.id), e164=e164, professional=professional, product_category=category,
        collected_at=collected, expires_at=expires, channel=channel, proof_ref=proof,
        withdrawn_at=withdrawn, timezone=zone, agreed_slot_start=slot_start,
        agreed_slot_end=slot_end, call_centre=centre, address_region=region,
    )


def terms_of(r: ConsentRecord) -> Iterator[tuple[str, str]]:
    """(kind, term) pairs a record needs in the dictionary."""
    yield PROFESSIONAL, r.professional
    yield CATEGORY, r.product_category
    yield CHANNEL, r.channel
    if r.timezone is not None:
        yield TIMEZONE, r.timezone
    if r.call_centre is not None:
        yield CALL_CENTRE, r.call_centre
    if r.address_region is not None:
        yield REGION, r.address_region
