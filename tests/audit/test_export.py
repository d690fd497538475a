"""Export for an inspector: filters by day, number (full and keyed-hash), campaign; CSV."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.audit import AuditSettings, NumberPrivacy, open_audit_trail
from gateway.audit.chain import ChainHead, next_link, seal
from gateway.audit.export import CSV_COLUMNS, export
from gateway.core.model import Reason, Verdict
from tests.audit.helpers import CAMPAIGN, T0, make_record

PARIS = ZoneInfo("Europe/Paris")
KEY = "inspector-key-0123456789abcdef"
DAY_START = datetime(2026, 9, 14, tzinfo=PARIS)
DAY_END = DAY_START + timedelta(days=1)


def lines(privacy: NumberPrivacy) -> list[str]:
    """Three days of calls to two numbers, on two campaigns."""
    out: list[str] = []
    head: ChainHead | None = None
    other = replace(CAMPAIGN, id="autumn")
    specs = [
        (T0 - timedelta(days=1), "0612345678", "+33612345678", CAMPAIGN),
        (T0, "06 12 34 56 78", "+33612345678", CAMPAIGN),  # the day, the number
        (T0 + timedelta(hours=2), "0699999999", "+33699999999", CAMPAIGN),
        (T0 + timedelta(hours=3), "+33 6 12 34 56 78", "+33612345678", other),
        (T0 + timedelta(days=1), "0612345678", "+33612345678", CAMPAIGN),
    ]
    for i, (at, raw, e164, campaign) in enumerate(specs):
        seq, prev = next_link(head)
        rec = make_record(i, number=raw, e164=e164, at=at, campaign=campaign)
        line, digest = seal(rec.to_body(privacy), seq=seq, prev=prev)
        out.append(line)
        head = ChainHead(seq, digest)
    return out


def ids(text: str) -> list[str]:
    return [json.loads(x)["id"] for x in text.splitlines()]


def test_day_and_number_filter_in_full_mode() -> None:
    out = io.StringIO()
    stats = export(lines(NumberPrivacy("full")), out, since=DAY_START, until=DAY_END,
                   number="06.12.34.56.78")
    assert ids(out.getvalue()) == ["d-gw-a-1", "d-gw-a-3"]
    assert (stats.scanned, stats.exported) == (5, 2)


def test_campaign_filter() -> None:
    out = io.StringIO()
    export(lines(NumberPrivacy("full")), out, since=DAY_START, until=DAY_END,
           number="+33612345678", campaign="autumn")
    assert ids(out.getvalue()) == ["d-gw-a-3"]


def test_number_filter_in_hash_mode_uses_the_same_key() -> None:
    hashed = lines(NumberPrivacy("hash", KEY))
    out = io.StringIO()
    export(hashed, out, since=DAY_START, until=DAY_END, number="0612345678", hash_key=KEY)
    assert ids(out.getvalue()) == ["d-gw-a-1", "d-gw-a-3"]
    assert "0612345678" not in out.getvalue()
    wrong = io.StringIO()
    stats = export(hashed, wrong, number="0612345678", hash_key="another-key")
    assert wrong.getvalue() == ""
    assert stats.other_key == 5


def test_jsonl_export_keeps_the_stored_lines_byte_for_byte() -> None:
    stored = lines(NumberPrivacy("full"))
    out = io.StringIO()
    export(stored, out, since=DAY_START, until=DAY_END)
    assert out.getvalue().splitlines() == stored[1:4]


def test_csv_header_escaping_and_formula_neutralisation() -> None:
    rec = make_record(0, context={"channel": 'PJSIP/x@trunk,"quoted"\nnext',
                                  "note": "=HYPERLINK(\"http://evil\")"})
    rec = replace(rec, campaign="@SUM(A1)", verdict=Verdict.BLOCK,
                  reason=Reason.OPPOSITION)
    line, _ = seal(rec.to_body(NumberPrivacy("full")), seq=0, prev="0" * 64)
    out = io.StringIO()
    export([line, "not json"], out, fmt="csv")
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == list(CSV_COLUMNS)
    assert len(rows) == 2
    row = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert row["campaign"] == "'@SUM(A1)"
    assert row["number"] == "+33612345678"  # a plain number is left as it is
    assert json.loads(row["context"])["channel"] == 'PJSIP/x@trunk,"quoted"\nnext'
    assert (row["verdict"], row["reason"], row["shadow"]) == ("BLOCK", "opposition", "false")
    assert row["local_times"] == "Europe/Paris=2026-09-14T10:30:00+02:00"
    assert row["lists"] == "opposition:bloctel@v7/86400s consents@v3/3600s"


async def test_trail_export_reads_its_own_sink(tmp_path: Path) -> None:
    trail = open_audit_trail(AuditSettings(sink="jsonl", path=str(tmp_path / "a.jsonl"),
                                           instance_id="gw-a", number_mode="hash",
                                           hash_key=KEY))
    await trail.append(make_record(0))
    await trail.append(make_record(1, number="0699999999", e164="+33699999999"))
    out = io.StringIO()
    stats = await trail.export(out, number="+33 6 12 34 56 78", fmt="csv")
    await trail.close()
    assert stats.exported == 1
    assert [r["id"] for r in csv.DictReader(io.StringIO(out.getvalue()))] == ["d-gw-a-0"]


def test_line_nested_past_the_parser_depth_is_counted_unreadable() -> None:
    """json.loads raises RecursionError (not ValueError) on such a line: it stopped the export."""
    records = lines(NumberPrivacy("full"))
    records.insert(2, '{"ts": ' + "[" * 100_000 + "]" * 100_000 + "}")
    out = io.StringIO()
    stats = export(records, out, since=DAY_START, until=DAY_END)
    assert ids(out.getvalue()) == ["d-gw-a-1", "d-gw-a-2", "d-gw-a-3"]
    assert (stats.scanned, stats.unreadable) == (6, 1)


async def test_hash_mode_finds_a_number_without_digits_by_its_text(tmp_path: Path) -> None:
    """A dial string with no digit (here bytes that are not UTF-8, kept by the AMI codec
    as lone surrogates) is hashed by its text in hash mode (``hash_number``,
    ``surrogatepass``): ``--number`` with that text (a command line decodes such bytes
    the same way) must find it. The filter hashed only the E.164 form and the digits,
    so such a record could be written but never looked up."""
    trail = open_audit_trail(AuditSettings(sink="jsonl", path=str(tmp_path / "a.jsonl"),
                                           instance_id="gw-a", number_mode="hash",
                                           hash_key=KEY, anchor_path=""))
    dial = b"\xff\xfe".decode("utf-8", "surrogateescape")
    await trail.append(make_record(0))
    await trail.append(make_record(1, number=dial, e164=None))
    await trail.append(make_record(2, number="anonymous", e164=None))
    found = {}
    for typed in (os.fsdecode(b"\xff\xfe"), " anonymous "):
        out = io.StringIO()
        stats = await trail.export(out, number=typed)
        found[typed.strip()] = (stats.exported, ids(out.getvalue()))
    await trail.close()
    assert found == {dial: (1, ["d-gw-a-1"]), "anonymous": (1, ["d-gw-a-2"])}


async def test_csv_export_of_a_context_with_a_lone_surrogate(tmp_path: Path) -> None:
    """The AMI proxy puts the Originate's Exten/Context/Application into the record's
    context as its codec decoded them (``surrogateescape``: bytes that are not UTF-8 are
    lone surrogates). The trail stores them escaped; the CSV export wrote them to its
    UTF-8 output as they were: UnicodeEncodeError, a traceback and a partial file."""
    trail = open_audit_trail(AuditSettings(sink="jsonl", path=str(tmp_path / "a.jsonl"),
                                           instance_id="gw-a", anchor_path=""))
    exten = b"06\xff".decode("utf-8", "surrogateescape")
    await trail.append(make_record(0, context={"exten": exten, "peer": "dialer-1"}))
    await trail.append(make_record(1, context={"exten": "0612345678"}))
    path = tmp_path / "out.csv"
    with path.open("w", encoding="utf-8", newline="") as out:  # as audit export --output
        stats = await trail.export(out, fmt="csv")
    await trail.close()
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert stats.exported == 2 and [r["id"] for r in rows] == ["d-gw-a-0", "d-gw-a-1"]
    # the character that has no UTF-8 form is shown as its escape, the rest as it was
    assert rows[0]["context"] == '{"exten": "06\\udcff", "peer": "dialer-1"}'
