"""Importers: good files of each kind, bad files change nothing and name line + column."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.model import Facts
from gateway.importer import (
    MAX_LINE_BYTES,
    MAX_REPORTED_ERRORS,
    ImportFileError,
    ImportKind,
    consent_id,
    import_file,
)
from gateway.importer.progress import ProgressLine
from gateway.importer.run import SPECS, DuplicateCounter, validate
from gateway.store.base import ImportMode, Store
from gateway.store.factory import open_store
from gateway.store.memory import MemoryStore

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)

CONSENT_HEADER = "number,professional,product_category,collected_at,expires_at,channel,proof_ref"
CONSENT_ROW = ("06 12 34 56 78,acme,telecom,2026-09-01T10:00:00+02:00,2027-08-31T10:00:00+02:00,"
               "web,p1")


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """The same tests against the memory store and a real redis-server."""
    if request.param == "memory":
        s: Store = MemoryStore()
    else:
        url = request.getfixturevalue("redis_url")
        s = open_store(url, key_prefix=request.getfixturevalue("key_prefix"),
                       socket_timeout_s=5.0, connect_timeout_s=5.0)
    yield s
    await s.close()


async def facts(store: Store, e164: str, professional: str = "acme") -> Facts:
    return await store.load_facts(e164=e164, professional=professional, campaign_id="c",
                                  now=NOW, attempt_window_s=86400, abandon_window_s=86400)


async def snapshot(store: Store, *numbers: str) -> Any:
    """Everything an import could change, for before/after comparisons."""
    lists = sorted(await store.lists_status(), key=lambda i: i.name)
    return lists, [await facts(store, n) for n in numbers]


def lines(*rows: str, eol: str = "\n") -> bytes:
    return (eol.join(rows) + eol).encode("utf-8")


# --- good files -----------------------------------------------------------------------


async def test_consents_crlf_bom_quotes_and_column_order(store: Store) -> None:
    data = "\ufeff" + "\r\n".join([
        "proof_ref;channel;expires_at;collected_at;product_category;professional;number;timezone",
        '"ref;with;semicolons";"web\nform";2027-08-31T10:00:00+02:00;2026-09-01T10:00:00+02:00;'
        'telecom;acme;"+33 6 12 34 56 78";Europe/Paris',
        "p2;phone;2027-08-31T08:00:00Z;2026-09-01T08:00:00Z;telecom;acme;0612345679;",
    ]) + "\r\n"
    report = await import_file(store, "consents", data.encode(), now=NOW)
    assert (report.rows_read, report.imported, report.duplicates) == (2, 2, 0)
    assert report.mode == "merge" and report.format == "csv" and report.version >= 1
    assert len(report.content_hash) == 64
    (consent,) = (await facts(store, "+33612345678")).consents
    assert consent.proof_ref == "ref;with;semicolons"
    assert consent.channel == "web\nform"
    assert consent.timezone == "Europe/Paris"
    assert consent.collected_at == datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    assert consent.id == consent_id("+33612345678", "acme", "telecom",
                                    datetime(2026, 9, 1, 8, 0, tzinfo=UTC), "ref;with;semicolons")
    assert len((await facts(store, "+33612345679")).consents) == 1


async def test_consent_id_is_stable_across_formats() -> None:
    a = consent_id("+33612345678", "acme", "telecom",
                   datetime(2026, 9, 1, 10, 0, tzinfo=UTC), "p")
    b = consent_id("+33612345678", "acme", "telecom",
                   datetime.fromisoformat("2026-09-01T12:00:00+02:00"), "p")
    assert a == b and a.startswith("c-")
    assert a != consent_id("+33612345678", "acme", "energy",
                           datetime(2026, 9, 1, 10, 0, tzinfo=UTC), "p")


async def test_consent_given_id_slot_withdrawal_and_duplicates(store: Store) -> None:
    data = lines(
        "consent_id,number,professional,product_category,collected_at,expires_at,channel,"
        "withdrawn_at,agreed_slot_start,agreed_slot_end,call_centre",
        "K1,0612345678,acme,telecom,2026-09-01T10:00:00Z,2027-08-31T10:00:00Z,web,"
        "2026-11-01T10:00:00Z,,,",
        "K1,+33612345678,acme,telecom,2026-09-01T10:00:00Z,2027-08-31T10:00:00Z,web,"
        "2026-11-02T10:00:00Z,,,",
        "K2,0612345678,acme,telecom,2026-09-01T10:00:00Z,2027-08-31T10:00:00Z,phone,,"
        "2026-12-05T09:00:00Z,2026-12-05T10:00:00Z,cc-lyon",
    )
    report = await import_file(store, ImportKind.CONSENTS, data, now=NOW)
    assert (report.rows_read, report.imported, report.duplicates) == (3, 2, 1)
    assert report.without_proof == 3
    by_id = {c.id: c for c in (await facts(store, "+33612345678")).consents}
    assert set(by_id) == {"K1", "K2"}
    assert by_id["K2"].agreed_slot_end == datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    assert by_id["K2"].call_centre == "cc-lyon"
    assert by_id["K1"].withdrawn_at is not None


async def test_contracts(store: Store) -> None:
    data = lines(
        "contract_ref,number,professional,product_category,started_at,ends_at,timezone",
        "CTR-1,0612345678,acme,telecom,2026-01-01T00:00:00+01:00,,",
        "CTR-2,0262 20 12 34,acme,telecom,2026-01-01T00:00:00+04:00,2027-01-01T00:00:00+04:00,"
        "Indian/Reunion",
    )
    report = await import_file(store, "contracts", data, now=NOW)
    assert (report.kind, report.rows_read, report.size) == ("contracts", 2, 2)
    (contract,) = (await facts(store, "+262262201234")).contracts
    assert (contract.id, contract.timezone) == ("CTR-2", "Indian/Reunion")
    assert (await facts(store, "+33612345678")).contracts[0].ends_at is None


async def test_opposition_plain_with_comments_replace_mode(store: Store) -> None:
    first = lines("# bloctel snapshot", "", "06 12 34 56 78", "  0612345679  ",
                  "+33612345678", "# end")
    report = await import_file(store, "opposition", first, now=NOW, list_source="bloctel")
    assert (report.format, report.rows_read, report.duplicates, report.size) == (
        "plain", 3, 1, 2)
    assert report.mode == "replace" and report.list == "opposition:bloctel"
    second = lines("number,registered_at", "0612345680,2026-01-01T00:00:00+01:00")
    again = await import_file(store, "opposition", second, now=LATER, list_source="bloctel")
    assert again.version > report.version and again.size == 1 and again.format == "csv"
    assert (await facts(store, "+33612345678")).oppositions == ()
    (entry,) = (await facts(store, "+33612345680")).oppositions
    assert entry.source == "bloctel"


async def test_opposition_merge_mode_keeps_existing(store: Store) -> None:
    await import_file(store, "opposition", lines("0612345678"), now=NOW, list_source="internal")
    report = await import_file(store, "opposition", lines("0612345679"), now=LATER,
                               list_source="internal", mode=ImportMode.MERGE)
    assert report.size == 2


async def test_region_option_for_national_numbers(store: Store) -> None:
    report = await import_file(store, "opposition", lines("0692 12 34 56"), now=NOW,
                               list_source="tps", region="RE")
    assert report.size == 1
    assert (await facts(store, "+262692123456")).oppositions


async def test_import_from_a_path_with_progress(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "consents.csv"
    path.write_bytes(lines(CONSENT_HEADER, CONSENT_ROW))
    calls: list[tuple[str, int]] = []
    report = await import_file(store, "consents", path, now=NOW,
                               progress=lambda phase, n: calls.append((phase, n)))
    assert report.path == str(path) and report.rows_read == 1
    assert calls[-1] == ("done", 1)
    assert ("validating", 1) in calls


async def test_large_opposition_file_streams(store: Store, tmp_path: Path) -> None:
    n = 200_000
    path = tmp_path / "bloctel.txt"
    with path.open("w", encoding="ascii") as fh:
        for i in range(n):
            fh.write(f"06{i:08d}\n")
        fh.write("0600000000\n0600000001\n")  # two duplicates
    report = await import_file(store, "opposition", path, now=NOW, list_source="bloctel")
    assert (report.rows_read, report.duplicates, report.imported, report.size) == (
        n + 2, 2, n, n)
    assert (await facts(store, "+33600123456")).oppositions


# --- bad files ------------------------------------------------------------------------

BAD_CONSENTS: list[tuple[str, bytes, int, str | None, str]] = [
    ("naive datetime",
     lines(CONSENT_HEADER, CONSENT_ROW,
           "0612345679,acme,telecom,2026-09-01T10:00:00,2027-08-31T10:00:00Z,web,p"),
     3, "collected_at", "no UTC offset"),
    ("garbage number",
     lines(CONSENT_HEADER, "not-a-number,acme,telecom,2026-09-01T10:00:00Z,"
           "2027-08-31T10:00:00Z,web,p"), 2, "number", "not a valid phone number"),
    ("expires before collected",
     lines(CONSENT_HEADER, CONSENT_ROW, CONSENT_ROW,
           "0612345679,acme,telecom,2026-09-01T10:00:00Z,2026-08-31T10:00:00Z,web,p"),
     4, "expires_at", "before collected_at"),
    ("empty required field",
     lines(CONSENT_HEADER, "0612345679,,telecom,2026-09-01T10:00:00Z,2027-08-31T10:00:00Z,web,p"),
     2, "professional", "empty"),
    ("not a date",
     lines(CONSENT_HEADER, "0612345679,a,telecom,yesterday,2027-08-31T10:00:00Z,web,p"),
     2, "collected_at", "not an ISO-8601"),
    ("unknown column", lines(CONSENT_HEADER + ",colour", CONSENT_ROW + ",blue"),
     1, "colour", "unknown column"),
    ("missing required column",
     lines("number,professional,product_category,collected_at,channel",
           "0612345678,a,b,2026-09-01T10:00:00Z,web"), 1, "expires_at", "required column"),
    ("column given twice", lines(CONSENT_HEADER + ",number", CONSENT_ROW + ",x"),
     1, "number", "twice"),
    ("wrong field count", lines(CONSENT_HEADER, CONSENT_ROW, "0612345678,acme"),
     3, None, "2 fields where the header has 7"),
    ("not utf-8", lines(CONSENT_HEADER, CONSENT_ROW) + b"\xff\xfe\n", 3, None, "not UTF-8"),
    ("unterminated quote", lines(CONSENT_HEADER, '"0612345678,acme'), 2, None, "bad CSV"),
    ("over-long line", lines(CONSENT_HEADER, "x" * (MAX_LINE_BYTES + 10)), 2, None, "longer"),
    ("empty file", b"", 0, None, "empty file"),
    ("only comments", b"# nothing\n\n", 0, None, "empty file"),
]
BAD_CONSENTS_EXTRA = [  # (name, extra columns, their values, column named, problem)
    ("bad timezone", "timezone", "Mars/Olympus", "timezone", "unknown IANA time zone"),
    ("slot end before start", "agreed_slot_start,agreed_slot_end",
     "2026-12-05T10:00:00Z,2026-12-05T09:00:00Z", "agreed_slot_end",
     "not after agreed_slot_start"),
    ("slot start only", "agreed_slot_start", "2026-12-05T10:00:00Z", "agreed_slot_end",
     "both start and end"),
    ("withdrawn before collected", "withdrawn_at", "2026-01-01T00:00:00Z", "withdrawn_at",
     "before collected_at"),
    ("bad consent id", "consent_id", "has space", "consent_id", "printable ASCII"),
]
for _name, _cols, _vals, _column, _problem in BAD_CONSENTS_EXTRA:
    BAD_CONSENTS.append((_name, lines(CONSENT_HEADER + "," + _cols, CONSENT_ROW + "," + _vals),
                         2, _column, _problem))


@pytest.mark.parametrize(("data", "line", "column", "problem"),
                         [case[1:] for case in BAD_CONSENTS], ids=[c[0] for c in BAD_CONSENTS])
async def test_bad_consent_file_changes_nothing(store: Store, data: bytes, line: int,
                                                column: str | None, problem: str) -> None:
    await import_file(store, "consents", lines(CONSENT_HEADER, CONSENT_ROW.replace(
        "06 12 34 56 78", "0612345670")), now=NOW)
    before = await snapshot(store, "+33612345678", "+33612345679", "+33612345670")
    with pytest.raises(ImportFileError) as info:
        await import_file(store, "consents", data, now=LATER, mode=ImportMode.REPLACE)
    first = info.value.errors[0]
    assert first.line == line
    assert first.column == column
    assert problem in first.problem
    assert problem in str(info.value)
    assert await snapshot(store, "+33612345678", "+33612345679", "+33612345670") == before


async def test_errors_are_collected_up_to_the_limit(store: Store) -> None:
    bad = "0612345679,acme,telecom,2026-09-01T10:00:00,2027-08-31T10:00:00Z,web,p"
    data = lines(CONSENT_HEADER, CONSENT_ROW, *([bad] * 50))
    with pytest.raises(ImportFileError) as info:
        await import_file(store, "consents", data, now=NOW)
    assert len(info.value.errors) == MAX_REPORTED_ERRORS and info.value.truncated
    assert [e.line for e in info.value.errors] == list(range(3, 3 + MAX_REPORTED_ERRORS))
    assert await store.lists_status() == []


async def test_bad_row_at_the_end_of_a_large_opposition_file(store: Store) -> None:
    await import_file(store, "opposition", lines("0612345678"), now=NOW, list_source="bloctel")
    before = await snapshot(store, "+33612345678", "+33600000001")
    data = lines(*[f"06{i:08d}" for i in range(5000)], "06 garbage")
    with pytest.raises(ImportFileError) as info:
        await import_file(store, "opposition", data, now=LATER, list_source="bloctel")
    assert info.value.errors[0].line == 5001
    assert info.value.errors[0].column == "number"
    assert await snapshot(store, "+33612345678", "+33600000001") == before


@pytest.mark.parametrize("garbage", [
    bytes(range(256)) * 40,
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
    b"PK\x03\x04" + bytes(range(200, 256)) * 30,
])
async def test_binary_garbage_is_refused(store: Store, garbage: bytes) -> None:
    for kind in ("consents", "contracts", "opposition"):
        with pytest.raises(ImportFileError) as info:
            await import_file(store, kind, garbage, now=NOW, list_source="internal")
        assert info.value.errors
    assert await store.lists_status() == []


async def test_header_only_is_refused_unless_allowed(store: Store) -> None:
    await import_file(store, "opposition", lines("0612345678"), now=NOW, list_source="bloctel")
    with pytest.raises(ImportFileError, match="no rows"):
        await import_file(store, "opposition", lines("number"), now=LATER, list_source="bloctel")
    assert (await facts(store, "+33612345678")).oppositions
    report = await import_file(store, "opposition", lines("number"), now=LATER,
                               list_source="bloctel", allow_empty=True)
    assert report.size == 0


@pytest.mark.parametrize("source", ["", "Bloctel", "a b", "x" * 33, "../etc"])
async def test_bad_source_name(store: Store, source: str) -> None:
    with pytest.raises(ValueError, match="opposition list name"):
        await import_file(store, "opposition", lines("0612345678"), now=NOW, list_source=source)
    assert await store.lists_status() == []


async def test_missing_file(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot read"):
        await import_file(store, "consents", tmp_path / "nope.csv", now=NOW)


async def test_file_changed_after_validation_imports_what_was_validated(
        store: Store, tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(lines("0612345678"))

    def tamper(phase: str, rows: int) -> None:
        if phase == "validating":
            path.write_bytes(lines("not a number"))

    report = await import_file(store, "opposition", path, now=NOW, list_source="internal",
                               progress=tamper)
    assert report.size == 1
    assert (await facts(store, "+33612345678")).oppositions


async def test_a_failing_store_import_propagates(tmp_path: Path) -> None:
    class Broken(MemoryStore):
        async def import_opposition(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await import_file(Broken(), "opposition", lines("0612345678"), now=NOW,
                          list_source="internal")


# --- properties -----------------------------------------------------------------------


@given(st.lists(st.sampled_from(["+33612345678", "+33612345679", "c-abc", "x", "+1"]),
                max_size=60), st.integers(min_value=1, max_value=7))
def test_duplicate_counter_is_exact(keys: list[str], chunk: int) -> None:
    counter = DuplicateCounter(chunk_keys=chunk)
    for key in keys:
        counter.add(key)
    assert counter.count() == len(keys) - len(set(keys))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.sampled_from(list(ImportKind)))
def test_arbitrary_bytes_validate_or_raise_import_file_error(data: bytes,
                                                             kind: ImportKind) -> None:
    try:
        result = validate(SPECS[kind], data)
    except ImportFileError as exc:
        assert exc.errors
    else:
        assert result.rows >= 0 and len(result.content_hash) == 64


_number = st.integers(min_value=0, max_value=999_999).map(lambda i: f"0612{i:06d}")


@settings(max_examples=50, deadline=None)
@given(st.lists(_number, min_size=1, max_size=30), st.sampled_from(["\n", "\r\n"]),
       st.booleans(), st.booleans())
def test_csv_written_by_csv_module_round_trips(numbers: list[str], eol: str, bom: bool,
                                               registered_first: bool) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=eol, quoting=csv.QUOTE_ALL)
    header = ["registered_at", "number"] if registered_first else ["number", "registered_at"]
    writer.writerow(header)
    for n in numbers:
        row = {"number": n, "registered_at": "2026-01-01T00:00:00+01:00"}
        writer.writerow([row[h] for h in header])
    data = (("\ufeff" if bom else "") + buf.getvalue()).encode()
    result = validate(SPECS[ImportKind.OPPOSITION], data)
    assert result.rows == len(numbers)
    assert result.duplicates == len(numbers) - len(set(numbers))


def test_progress_line_draws_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    line = ProgressLine(tty, label="bloctel.csv: ")
    line("validating", 10_000)
    line("done", 20_000)
    text = tty.getvalue()
    assert text.startswith("\rbloctel.csv: validating")
    assert "20,000 rows" in text and "rows/s" in text and text.endswith("\n")
    plain = io.StringIO()
    quiet = ProgressLine(plain)
    quiet("done", 5)
    quiet.close()
    assert plain.getvalue() == "" and not quiet.enabled


async def test_contracts_kind_inquiry_and_address_region(store: Store) -> None:
    """`kind` (purchase | inquiry: the US EBR's 3 months) and `address_region` (French
    département of the address, Alsace-Moselle's holidays) on contracts and consents."""
    data = lines(
        "contract_ref,number,professional,product_category,started_at,kind,address_region",
        "Q-1,+12125550123,acme,telecom,2026-10-01T10:00:00-04:00,Inquiry,",
        "P-1,0612345678,acme,telecom,2026-01-01T00:00:00+01:00,,FR-67",
    )
    await import_file(store, "contracts", data, now=NOW)
    (inquiry,) = (await facts(store, "+12125550123")).contracts
    assert (inquiry.kind, inquiry.inquiry, inquiry.address_region) == ("inquiry", True, None)
    (purchase,) = (await facts(store, "+33612345678")).contracts
    assert (purchase.kind, purchase.address_region) == ("purchase", "67")
    await import_file(store, "consents", lines(CONSENT_HEADER + ",address_region",
                                               CONSENT_ROW + ",2a"), now=NOW)
    assert (await facts(store, "+33612345678")).consents[0].address_region == "2A"


@pytest.mark.parametrize(("header", "row", "column", "problem"), [
    ("kind", "rental", "kind", "one of inquiry, purchase"),
    ("address_region", "Bavaria", "address_region", "not a French département code"),
    ("address_region", "96", "address_region", "not a French département code"),
    ("kind,ends_at", "inquiry,2026-12-01T00:00:00Z", "ends_at", "an inquiry is made at"),
])
async def test_bad_contract_kind_or_address_region_changes_nothing(
    store: Store, header: str, row: str, column: str, problem: str
) -> None:
    data = lines("contract_ref,number,professional,product_category,started_at," + header,
                 "K-1,0612345678,acme,telecom,2026-01-01T00:00:00Z," + row)
    with pytest.raises(ImportFileError) as info:
        await import_file(store, "contracts", data, now=NOW)
    first = info.value.errors[0]
    assert (first.line, first.column) == (2, column)
    assert problem in first.problem
    assert (await facts(store, "+33612345678")).contracts == ()


def test_progress_line_shows_percent_and_eta_once_the_size_is_known() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    line = ProgressLine(tty, label="bloctel.txt: ")
    line("validating", 10_000)  # size not known yet: no percentage
    assert "%" not in tty.getvalue() and "ETA" not in tty.getvalue()
    line.fraction("validating", 0.25)
    text = line.line("validating", 20_000, time.monotonic() + 1.0)
    assert " 25.0%" in text and "ETA 0:00:0" in text and "20,000 rows" in text
    line.fraction("importing", 0.5)
    assert " 50.0%" in line.line("importing", 500, time.monotonic())
    assert "%" not in line.line("done", 1_000_000, time.monotonic())


async def test_plain_list_reports_the_share_done(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bloctel.txt"
    path.write_text("".join(f"+336{i:08d}\n" for i in range(120_000)))  # > one chunk
    shares: list[tuple[str, float]] = []
    report = await import_file(store, "opposition", path, now=NOW, list_source="bloctel",
                               progress_fraction=lambda phase, f: shares.append((phase, f)))
    assert report.size == 120_000 and report.format == "plain"
    validating = [f for phase, f in shares if phase == "validating"]
    importing = [f for phase, f in shares if phase == "importing"]
    assert validating and 0 < validating[0] < 1
    assert importing and importing[-1] == 1.0 and importing == sorted(importing)
