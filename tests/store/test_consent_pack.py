"""Packed consent records (the compact Redis layout): lossless, compact, hostile bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.model import ConsentRecord
from gateway.importer import consent_id
from gateway.store import codec, consent_pack

aware = st.datetimes(
    min_value=datetime(1950, 1, 1), max_value=datetime(2200, 1, 1),
    timezones=st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-720, 840)),
)
texts = st.text(min_size=1, max_size=40)
E164 = "+33612345678"


class Dictionary:
    """Both directions of a dictionary, filled on demand (as INTERN does)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.terms: dict[int, str] = {}

    def intern(self, r: ConsentRecord) -> None:
        for kind, term in consent_pack.terms_of(r):
            key = consent_pack.intern_key(kind, term)
            if key not in self.ids:
                self.ids[key] = len(self.ids) + 1
                self.terms[self.ids[key]] = term


def round_trip(r: ConsentRecord, version: int = 7) -> tuple[bytes, ConsentRecord]:
    d = Dictionary()
    d.intern(r)
    packed = consent_pack.encode(r, version, d.ids)
    (p,) = consent_pack.records(packed)
    assert (p.version, consent_pack.decode_id(p.id)) == (version, r.id)
    return packed, consent_pack.decode(p, r.e164, d.terms)


@given(cid=texts | st.builds(lambda x: f"c-{x:024x}", st.integers(0, 16 ** 24 - 1)),
       professional=texts, category=texts, channel=texts, proof=st.text(max_size=300),
       collected=aware, expires=st.none() | aware, withdrawn=st.none() | aware,
       start=st.none() | aware, end=st.none() | aware, zone=st.none() | texts,
       centre=st.none() | texts, region=st.none() | st.sampled_from(["67", "2A", "971"]),
       version=st.integers(1, 2 ** 40))
def test_every_record_round_trips_like_the_json_codec(
        cid: str, professional: str, category: str, channel: str, proof: str,
        collected: datetime, expires: datetime | None, withdrawn: datetime | None,
        start: datetime | None, end: datetime | None, zone: str | None,
        centre: str | None, region: str | None, version: int) -> None:
    r = ConsentRecord(id=cid, e164=E164, professional=professional, product_category=category,
                      collected_at=collected, expires_at=expires, channel=channel,
                      proof_ref=proof, withdrawn_at=withdrawn, timezone=zone,
                      agreed_slot_start=start, agreed_slot_end=end, call_centre=centre,
                      address_region=region)
    packed, back = round_trip(r, version)
    assert back == codec.normalise_consent(r) == r
    assert back.collected_at.tzinfo is UTC
    # the importer's spool form: the same record once the store adds version and ids,
    # and the same consent read back by a store without the compact layout
    pre = consent_pack.pre_encode(r)
    assert pre[0] == int(E164[1:]) and pre[2] == consent_pack.terms_of_record(r)
    d = Dictionary()
    d.intern(r)
    first, rest = consent_pack.term_ids(pre[2], d.ids)
    assert consent_pack.assemble(consent_pack.uv_bytes(version), pre[1], first, pre[3], rest,
                                 pre[4]) == packed
    assert consent_pack.pre_decode(pre) == back


def test_a_consent_with_every_column_is_small() -> None:
    collected = datetime(2026, 3, 2, 14, 5, 9, tzinfo=UTC)
    r = ConsentRecord(
        id=consent_id(E164, "acme", "telecom", collected, "rec/2026/03/000000123.wav"),
        e164=E164, professional="acme", product_category="telecom", collected_at=collected,
        expires_at=collected + timedelta(days=3 * 365), channel="web",
        proof_ref="rec/2026/03/000000123.wav", withdrawn_at=collected + timedelta(days=90),
        timezone="Europe/Paris", agreed_slot_start=collected + timedelta(days=3, hours=2),
        agreed_slot_end=collected + timedelta(days=3, hours=2, minutes=30),
        call_centre="cc-lyon", address_region="67")
    packed, back = round_trip(r)
    assert back == r
    # length and version 2, derived id 13, flags 1, 6 terms 6, 5 instants 17, proof 25
    assert len(packed) <= 65
    as_json = codec.encode_consent(r)
    assert len(packed) * 3 < len(as_json) + len(r.id)


def test_naive_instants_are_refused() -> None:
    r = ConsentRecord(id="c1", e164=E164, professional="p", product_category="c",
                      collected_at=datetime(2026, 1, 1), expires_at=None, channel="web",
                      proof_ref="")
    d = Dictionary()
    d.intern(r)
    with pytest.raises(ValueError, match="timezone-aware"):
        consent_pack.encode(r, 1, d.ids)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_pack_errors(data: bytes) -> None:
    terms = {i: f"t{i}" for i in range(8)}
    try:
        for p in consent_pack.records(data):
            consent_pack.decode(p, E164, terms)
    except (consent_pack.PackError, KeyError, UnicodeDecodeError):
        pass  # the store turns these into StoreUnavailable (fail closed)


@given(st.lists(texts | st.builds(lambda x: f"c-{x:024x}", st.integers(0, 16 ** 24 - 1)),
                min_size=1, max_size=6), st.text(max_size=200))
def test_concatenated_records_are_told_apart(cids: list[str], proof: str) -> None:
    d = Dictionary()
    rows = [ConsentRecord(id=cid, e164=E164, professional="p", product_category="c",
                          collected_at=datetime(2026, 1, 1, tzinfo=UTC), expires_at=None,
                          channel="web", proof_ref=proof + str(i))
            for i, cid in enumerate(cids)]
    for r in rows:
        d.intern(r)
    value = b"".join(consent_pack.encode(r, i + 1, d.ids) for i, r in enumerate(rows))
    back = list(consent_pack.records(value))
    assert [(p.version, consent_pack.decode_id(p.id)) for p in back] == [
        (i + 1, cid) for i, cid in enumerate(cids)]
    assert [consent_pack.decode(p, E164, d.terms) for p in back] == rows


@given(collected=aware, expires=aware, withdrawn=st.none() | aware, start=st.none() | aware,
       end=st.none() | aware, whole=st.booleans(), terms=st.integers(0, 7))
def test_the_importers_encoder_gives_the_same_bytes(
        collected: datetime, expires: datetime, withdrawn: datetime | None,
        start: datetime | None, end: datetime | None, whole: bool, terms: int) -> None:
    """encode_fixed_whole (the chunked pass's, fixed offsets) == encode_fixed."""
    instants = [collected, expires, withdrawn, start, end]
    if whole:  # the common case: no sub-second instant
        instants = [None if i is None else i.replace(microsecond=0) for i in instants]
    flags = ((terms & 1) * consent_pack.F_TIMEZONE | (terms & 2 and consent_pack.F_CALL_CENTRE)
             | (terms & 4 and consent_pack.F_ADDRESS_REGION))
    c, e, w, s, n = instants
    assert c is not None and e is not None
    assert (consent_pack.encode_fixed_whole("crm-1", c, e, w, s, n, flags)
            == consent_pack.encode_fixed("crm-1", c, e, w, s, n, flags))



def _varints_by_loop(data: bytes, start: int, end: int, count: int) -> list[int | str]:
    """``count`` varints of ``data[start:end]`` read byte by byte (the reader before its
    one-byte shortcut), ending with the error it raised."""
    out: list[int | str] = []
    pos = start
    for _ in range(count):
        n = shift = 0
        while True:
            if pos >= end:
                return [*out, "truncated consent record"]
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift > 63:
                return [*out, "varint too long in a consent record"]
        out.append(n)
    return out


@given(st.binary(max_size=120), st.integers(0, 130), st.integers(0, 130), st.integers(0, 40))
def test_the_reader_reads_varints_as_the_byte_loop_did(data: bytes, start: int, end: int,
                                                       count: int) -> None:
    """Also past the record's end (bytes of the next record there): truncated."""
    end = min(max(start, end), len(data))
    reader = consent_pack._Reader(data, start, end)
    got: list[int | str] = []
    try:
        for _ in range(count):
            got.append(reader.uv())
    except consent_pack.PackError as exc:
        got.append(str(exc))
    assert got == _varints_by_loop(data, start, end, count)
