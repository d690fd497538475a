"""The chunked pass of consent CSV files equals the generic reader, row for row.

The generic reader (``validate(..., fast=False)``: a ``csv`` record and a dict per row,
then the consent converter) is the reference. For generated files -- E.164 and national
numbers, numbers only phonenumbers reads, invalid ones, instants with ``Z``, offsets,
fractions, without an offset or not dates at all, zones known or not, slots, ids,
départements, comments, blank lines, CRLF, a BOM, quotes, ``;`` files, chunk sizes that
cut anywhere -- the fast pass spools the same records (field for field) with the same
counts and content hash, or hands the file to the generic reader, which then reports the
same errors. The row converter alone is also compared with the generic one on every row.
"""

from __future__ import annotations

import io
import pickle
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.importer import ImportFileError, import_file
from gateway.importer.fastconsent import _Converter
from gateway.importer.rows import CONSENTS, FieldProblem
from gateway.importer.run import SPECS, ImportKind, validate, validate_fast_consents
from gateway.store.memory import MemoryStore

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

_NUMBERS = st.one_of(
    st.builds(lambda n: f"+336{n:08d}", st.integers(0, 10**8 - 1)),
    st.builds(lambda n: f"06{n:08d}", st.integers(0, 10**8 - 1)),
    st.builds(lambda p, n: f"{p}{n:06d}", st.sampled_from(
        ["+33696", "0696", "+33262", "0262", "+33639", "0590", "+33801", "01", "09"]),
        st.integers(0, 10**6 - 1)),
    st.sampled_from(["06 12 34 56 78", "+44 7700 900123", "+447700900123", "+12025550123",
                     "0033612345678", "+3361234567", "061234567", "+33012345678", "",
                     "abc", "+33 6 12 34 56 78", "+262262123456", "0612345678 "]),
)
_INSTANTS = st.one_of(
    st.builds(lambda d, h, off: f"2025-{d // 28 + 1:02d}-{d % 28 + 1:02d}T{h:02d}:15:00{off}",
              st.integers(0, 12 * 28 - 1), st.integers(0, 23),
              st.sampled_from(["+00:00", "Z", "+02:00", "-05:00", "+01:00", ".5+00:00",
                               ".123456Z", ""])),
    st.sampled_from(["2025-06-01", "2025-06-01 10:00:00+02:00", "2025-13-01T00:00:00Z",
                     "not a date", "", "2026-01-01T00:00:00+0100", "20250601T100000Z"]),
)
_OPTIONAL = {
    "proof_ref": st.sampled_from(["", "rec/1.wav", "scan 12", "x" * 1025]),
    "withdrawn_at": _INSTANTS,
    "timezone": st.sampled_from(["", "Europe/Paris", "America/New_York", "Mars/Base", "UTC",
                                 "../etc"]),
    "agreed_slot_start": _INSTANTS,
    "agreed_slot_end": _INSTANTS,
    "consent_id": st.sampled_from(["", "crm-1", "crm-2", "with space", "é", "x" * 129]),
    "call_centre": st.sampled_from(["", "cc-1", "Lyon"]),
    "address_region": st.sampled_from(["", "67", "FR-67", "2a", "971", "6AE", "99", "fr-2b"]),
}
_REQUIRED = {
    "number": _NUMBERS,
    "professional": st.sampled_from(["acme", "energia", "", " telco "]),
    "product_category": st.sampled_from(["telecom", "energy", ""]),
    "collected_at": _INSTANTS,
    "expires_at": _INSTANTS,
    "channel": st.sampled_from(["web", "phone", ""]),
}


@st.composite
def _header(draw: st.DrawFn) -> list[str]:
    optional = draw(st.lists(st.sampled_from(sorted(_OPTIONAL)), unique=True))
    return draw(st.permutations([*_REQUIRED, *optional]))


def _at(year: int, hour: str = "10") -> st.SearchStrategy[str]:
    return st.builds(lambda d, off: f"{year}-{d // 28 + 1:02d}-{d % 28 + 1:02d}T{hour}:00:00{off}",
                     st.integers(0, 12 * 28 - 1), st.sampled_from(["Z", "+00:00", "+02:00"]))


_CLEAN = {  # values the fast pass should take (mostly): most rows of a real file
    "number": st.one_of(st.builds(lambda n: f"+336{n:08d}", st.integers(0, 10**8 - 1)),
                        st.builds(lambda n: f"06{n:08d}", st.integers(0, 10**8 - 1))),
    "professional": st.sampled_from(["acme", "energia"]),
    "product_category": st.sampled_from(["telecom", "energy"]),
    "collected_at": _at(2025),
    "expires_at": _at(2027),
    "channel": st.sampled_from(["web", "phone"]),
    "proof_ref": st.sampled_from(["", "rec/1.wav"]),
    "withdrawn_at": st.one_of(st.just(""), _at(2026)),
    "timezone": st.sampled_from(["", "Europe/Paris"]),
    "consent_id": st.one_of(st.just(""), st.builds(lambda i: f"crm-{i}", st.integers(0, 50))),
    "call_centre": st.sampled_from(["", "cc-1"]),
    "address_region": st.sampled_from(["", "67", "2A"]),
}


@st.composite
def _row(draw: st.DrawFn, header: list[str], noise: int = 3) -> list[str]:
    """A clean row (slot included when both ends are there), then a few values from the
    noisy strategies."""
    row = {name: draw(_CLEAN[name]) for name in header if name in _CLEAN}
    if "agreed_slot_start" in header or "agreed_slot_end" in header:
        day = draw(st.integers(1, 28))
        row["agreed_slot_start"] = f"2025-03-{day:02d}T09:00:00+01:00"
        row["agreed_slot_end"] = f"2025-03-{day:02d}T09:30:00Z"
    for name in draw(st.lists(st.sampled_from(header), max_size=noise)):
        row[name] = draw({**_REQUIRED, **_OPTIONAL}[name])
    return [row.get(name, "") for name in header]


@st.composite
def _file(draw: st.DrawFn) -> tuple[bytes, int]:
    header = draw(_header())
    delimiter = draw(st.sampled_from([",", ";"]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [delimiter.join(header)]
    noise = draw(st.sampled_from([0, 0, 1, 2]))  # noise 0: a clean file, the fast pass's
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.integers(0, 30))
        if kind == 0 and noise:
            lines.append(draw(st.sampled_from(["", "# comment", "  ", delimiter * 3,
                                               f'"a{delimiter}b"', "x", "\x00", "\u2028"])))
        else:
            lines.append(delimiter.join(draw(_row(header, noise))))
    text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + text).encode(), draw(st.integers(1, 600))


def _spooled(spool: Any) -> list[Any]:
    spool.seek(0)
    out: list[Any] = []
    while True:
        try:
            out.extend(pickle.load(spool))  # noqa: S301 -- the test's own spool
        except EOFError:
            return out


def _reference(data: bytes) -> tuple[Any, ...]:
    with tempfile.TemporaryFile() as spool:
        try:
            checked = validate(SPECS[ImportKind.CONSENTS], data, spool=spool, label="f",
                               fast=False)
        except ImportFileError as exc:
            return ("error", str(exc), exc.truncated)
        return (checked, _spooled(spool))


def _fast(data: bytes, chunk_bytes: int) -> tuple[Any, ...] | None:
    """The fast pass's answer, or None when it hands the file to the generic reader."""
    with tempfile.TemporaryFile() as spool:
        checked = validate_fast_consents(lambda: io.BytesIO(data), "FR", None, spool, None,
                                         chunk_bytes=chunk_bytes)
        return None if checked is None else (checked, _spooled(spool))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_file())
def test_fast_pass_equals_the_generic_reader(file: tuple[bytes, int]) -> None:
    data, chunk_bytes = file
    reference = _reference(data)
    fast = _fast(data, chunk_bytes)
    if fast is not None:
        assert fast == reference
    else:  # validate() then reads it generically: the same answer by construction
        with tempfile.TemporaryFile() as spool:
            try:
                checked = validate(SPECS[ImportKind.CONSENTS], data, spool=spool, label="f")
                assert (checked, _spooled(spool)) == reference
            except ImportFileError as exc:
                assert ("error", str(exc), exc.truncated) == reference


@settings(max_examples=1500, deadline=None)
@given(_header().flatmap(lambda h: st.tuples(st.just(h), _row(h))),
       st.sampled_from(["FR", "FR", "GB", "US"]))
@example((["number", "professional", "product_category", "collected_at", "expires_at",
           "channel"], ["0696123456", "acme", "energy", "2025-01-01T00:00:00Z",
                        "2026-01-01T00:00:00Z", "web"]), "FR")
def test_fast_row_equals_the_generic_converter(header_row: tuple[list[str], list[str]],
                                               region: str) -> None:
    """Every row the fast converter accepts, the generic one accepts with the same record;
    every row the generic one refuses, the fast one leaves to it."""
    header, row = header_row
    cells = [c.strip() for c in row]
    conv = _Converter(header, region)
    fast = conv.fast([*cells, ""]) if max(map(len, cells)) <= 1024 else None
    try:
        generic = CONSENTS.convert(dict(zip(header, cells, strict=True)), region)
    except FieldProblem:
        assert fast is None
        return
    if fast is not None:
        assert fast == (CONSENTS.pack(generic.record), generic.key)


def test_a_canonical_file_takes_the_fast_pass() -> None:
    header = ("number,professional,product_category,collected_at,expires_at,channel,"
              "proof_ref,withdrawn_at,timezone,agreed_slot_start,agreed_slot_end,consent_id,"
              "call_centre,address_region")
    rows = [f"+3361234{i:04d},acme,energy,2025-01-01T10:00:00+01:00,2028-01-01T10:00:00Z,web,"
            f"rec/{i}.wav,,Europe/Paris,2025-02-01T09:00:00+01:00,2025-02-01T09:30:00+01:00,"
            f",cc-{i % 3},67" for i in range(2000)]
    rows += ["0612340001,acme,energy,2025-01-01T10:00:00+01:00,2028-01-01T10:00:00Z,web,"
             ",,,,,,,"]  # national form, row 2's number, no proof: another consent
    rows += ["06 12 34 00 02,acme,energy,2025-01-01T10:00:00+01:00,2028-01-01T10:00:00Z,web,"
             "rec/2.wav,,Europe/Paris,2025-02-01T09:00:00+01:00,2025-02-01T09:30:00+01:00,,"
             "cc-2,67"]  # phonenumbers' format, the same facts as row 3: a duplicate
    data = ("\n".join([header, *rows]) + "\n").encode()
    fast = _fast(data, 4096)
    assert fast is not None and fast == _reference(data)
    checked, records = fast
    assert checked.rows == 2002 and checked.duplicates == 1 and checked.without_proof == 1
    assert records[2000][0] == 33612340001 and records[2001][0] == 33612340002


def test_a_bad_row_is_reported_by_the_generic_reader() -> None:
    data = (b"number,professional,product_category,collected_at,expires_at,channel\n"
            + b"+33612345678,acme,energy,2025-01-01T10:00:00Z,2028-01-01T10:00:00Z,web\n" * 3
            + b"+33612345678,acme,energy,2025-01-01T10:00:00,2028-01-01T10:00:00Z,web\n")
    assert _fast(data, 64) is None
    got = _reference(data)
    assert got[0] == "error" and "line 5, column collected_at" in got[1]


async def test_a_large_consent_file_reports_its_share_and_a_dry_run_changes_nothing(
        tmp_path: Path) -> None:
    """More than one chunk: the share done is reported while validating and while importing
    (percentage and ETA); a dry run validates the same way and leaves the store as it
    was."""
    header = "number;professional;product_category;collected_at;expires_at;channel;proof_ref"
    rows = [f"+3361{i:07d};acme;energy;2025-01-01T10:00:00Z;2028-01-01T10:00:00Z;web;r/{i}"
            for i in range(25_000)]
    path = tmp_path / "consents.csv"
    path.write_text("\r\n".join([header, *rows, rows[7]]) + "\r\n")  # > 1 MiB, one dup
    fast = validate_fast_consents(lambda: path.open("rb"), "FR", None, None, None)
    assert fast is not None and fast.rows == 25_001  # the chunked pass reads it
    store = MemoryStore()
    dry = await import_file(store, "consents", path, now=NOW, dry_run=True)
    assert dry.dry_run and dry.rows_read == 25_001 and dry.duplicates == 1
    assert not [i for i in await store.lists_status() if i.name == "consents"]
    shares: list[tuple[str, float]] = []
    report = await import_file(store, "consents", path, now=NOW,
                               progress_fraction=lambda phase, f: shares.append((phase, f)))
    assert report.imported == 25_000 and report.size == 25_000 and report.without_proof == 0
    validating = [f for phase, f in shares if phase == "validating"]
    assert validating and 0 < validating[0] < 1 and validating == sorted(validating)
    importing = [f for phase, f in shares if phase == "importing"]  # rows handed over
    assert importing and 0 < importing[0] < 1 and importing == sorted(importing)
    assert importing[-1] == 1.0
    facts = await store.load_facts(e164="+33610000007", professional="acme",
                                   campaign_id="c", now=NOW, attempt_window_s=86400,
                                   abandon_window_s=86400)
    assert [c.proof_ref for c in facts.consents] == ["r/7"]
