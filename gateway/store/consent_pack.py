"""Binary records of consents: the compact consent layout of the Redis store.

A number's consents are one byte string (the value of its field in its bucket hash, see
docs/store.md), the concatenation of records::

    record := uvarint(len(body)) body
    body   := uvarint(version) uvarint(len(id)) id  uvarint(flags)
              uvarint(professional) uvarint(product category) uvarint(channel)
              instant(collected_at)
              [delta(expires_at)] [delta(withdrawn_at)] [uvarint(timezone)]
              [delta(agreed_slot_start)] [delta(agreed_slot_end, from the slot start if any)]
              [uvarint(call centre)] uvarint(len(proof_ref)) proof_ref

``version``, the length of the id and the id come first so the Lua scripts can tell
records apart without knowing the rest. An id of the importer's derived form
``c-<24 hex digits>`` is stored as a zero byte and its 12 bytes; any other id (printable
ASCII, never starting with a zero byte) as is. Professionals, product categories,
channels, time zones and call centres are small integers of the list's dictionary
(``intern_key``). An instant is whole seconds since the epoch and, only when it has
them, its microseconds: ``uvarint(zigzag(seconds) * 2 + has_us) [uvarint(us)]``; the
optional instants are stored relative to ``collected_at`` (so a year is 4 bytes).
Flags say which optional parts follow. Nothing is lost: a record decodes to the same
``ConsentRecord`` the JSON codec gives back (UTC instants, microseconds kept).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta

from gateway.core.model import ConsentRecord

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DERIVED_ID = re.compile(r"c-[0-9a-f]{24}")

F_EXPIRES = 1
F_WITHDRAWN = 2
F_TIMEZONE = 4
F_SLOT_START = 8
F_CALL_CENTRE = 16
F_SLOT_END = 32

# dictionary kinds (the term's key in the dictionary hash is "<kind>:<term>")
PROFESSIONAL, CATEGORY, CHANNEL, TIMEZONE, CALL_CENTRE = "p", "c", "h", "z", "k"


class PackError(ValueError):
    """A stored record that cannot be decoded (truncated or foreign bytes)."""


def intern_key(kind: str, term: str) -> str:
    return f"{kind}:{term}"


def _uv(n: int, out: bytearray) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _seconds(value: datetime) -> tuple[int, int]:
    d = value - _EPOCH  # exact: timedelta keeps days, seconds and microseconds
    return d.days * 86400 + d.seconds, d.microseconds


def _instant(sec: int, us: int, ref: int, out: bytearray) -> None:
    delta = sec - ref
    z = (delta << 1) if delta >= 0 else ((-delta << 1) - 1)
    _uv((z << 1) | (1 if us else 0), out)
    if us:
        _uv(us, out)


def encode_id(consent_id: str) -> bytes:
    if len(consent_id) == 26 and _DERIVED_ID.fullmatch(consent_id):
        return b"\x00" + bytes.fromhex(consent_id[2:])
    raw = consent_id.encode("utf-8")
    if raw[:1] == b"\x00":
        raise ValueError("consent id starting with a NUL byte")
    return raw


def decode_id(raw: bytes) -> str:
    if raw[:1] == b"\x00":
        return "c-" + raw[1:].hex()
    return raw.decode("utf-8")


def encode(r: ConsentRecord, version: int, term_id: Callable[[str, str], int]) -> bytes:
    """One record (``term_id(kind, term)`` gives the dictionary id of a term)."""
    body = bytearray()
    _uv(version, body)
    cid = encode_id(r.id)
    _uv(len(cid), body)
    body += cid
    flags = ((F_EXPIRES if r.expires_at is not None else 0)
             | (F_WITHDRAWN if r.withdrawn_at is not None else 0)
             | (F_TIMEZONE if r.timezone is not None else 0)
             | (F_SLOT_START if r.agreed_slot_start is not None else 0)
             | (F_SLOT_END if r.agreed_slot_end is not None else 0)
             | (F_CALL_CENTRE if r.call_centre is not None else 0))
    _uv(flags, body)
    _uv(term_id(PROFESSIONAL, r.professional), body)
    _uv(term_id(CATEGORY, r.product_category), body)
    _uv(term_id(CHANNEL, r.channel), body)
    sec, us = _seconds(r.collected_at)
    _instant(sec, us, 0, body)
    if r.expires_at is not None:
        _instant(*_seconds(r.expires_at), sec, body)
    if r.withdrawn_at is not None:
        _instant(*_seconds(r.withdrawn_at), sec, body)
    if r.timezone is not None:
        _uv(term_id(TIMEZONE, r.timezone), body)
    slot_ref = sec
    if r.agreed_slot_start is not None:
        start = _seconds(r.agreed_slot_start)
        _instant(*start, sec, body)
        slot_ref = start[0]
    if r.agreed_slot_end is not None:
        _instant(*_seconds(r.agreed_slot_end), slot_ref, body)
    if r.call_centre is not None:
        _uv(term_id(CALL_CENTRE, r.call_centre), body)
    proof = r.proof_ref.encode("utf-8")
    _uv(len(proof), body)
    body += proof
    out = bytearray()
    _uv(len(body), out)
    return bytes(out + body)


class _Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def uv(self) -> int:
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

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise PackError("truncated consent record")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def instant(self, ref: int) -> tuple[int, datetime]:
        v = self.uv()
        z = v >> 1
        sec = ref + ((z >> 1) if not z & 1 else -((z + 1) >> 1))
        us = self.uv() if v & 1 else 0
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
        raw_id = body.take(body.uv())
        yield Packed(version, raw_id, data, body.pos, end)
        pos = end


def decode(p: Packed, e164: str, terms: Mapping[int, str]) -> ConsentRecord:
    """The consent of one record; ``terms`` maps dictionary ids to terms (KeyError if
    an id is unknown: the caller reads the dictionary again)."""
    r = _Reader(p.data, p.start, p.end)
    flags = r.uv()
    professional = terms[r.uv()]
    category = terms[r.uv()]
    channel = terms[r.uv()]
    sec, collected = r.instant(0)
    expires = r.instant(sec)[1] if flags & F_EXPIRES else None
    withdrawn = r.instant(sec)[1] if flags & F_WITHDRAWN else None
    zone = terms[r.uv()] if flags & F_TIMEZONE else None
    slot_start = slot_end = None
    slot_ref = sec
    if flags & F_SLOT_START:
        slot_ref, slot_start = r.instant(sec)
    if flags & F_SLOT_END:
        slot_end = r.instant(slot_ref)[1]
    centre = terms[r.uv()] if flags & F_CALL_CENTRE else None
    proof = r.take(r.uv()).decode("utf-8")
    return ConsentRecord(
        id=decode_id(p.id), e164=e164, professional=professional, product_category=category,
        collected_at=collected, expires_at=expires, channel=channel, proof_ref=proof,
        withdrawn_at=withdrawn, timezone=zone, agreed_slot_start=slot_start,
        agreed_slot_end=slot_end, call_centre=centre,
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
