"""``dialer-gateway scrub``: the engine's dry-run decision for every lead of a CSV file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load_config
from gateway.core.calendar import next_legal_instant
from gateway.core.model import Attempt
from gateway.core.policy import Policy
from gateway.demo import seed
from gateway.scrub.progress import ScrubProgress
from gateway.service import Service
from gateway.store.memory import MemoryStore
from gateway.wiring import build_policy

AT = "2026-12-01T10:30:00+01:00"  # a Tuesday, inside the French windows
NIGHT = "2026-12-01T22:30:00+01:00"
NUMBERS = [
    "06 12 34 56 78",  # demo-c1: consent -> ALLOW
    "0262 20 12 34",  # Réunion, consent
    "06 12 34 56 79",  # withdrawn consent
    "06 12 34 56 80",  # expired consent
    "06 12 34 56 81",  # internal opposition
    "06 12 34 56 82",  # bloctel
    "01 99 00 00 01",  # contract in progress
    "06 00 00 00 00",  # no consent
    "hello",  # invalid number
]


pytestmark = pytest.mark.usefixtures("clean_cli_env")  # tests/fixtures/cli_env.py


def write_leads(path: Path, rows: list[list[str]], header: list[str], delimiter: str = ",",
                bom: bool = False) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(("\ufeff" if bom else "") + buf.getvalue(), encoding="utf-8")
    return path


def read_out(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


async def expected(policy: Policy, number: str, at: datetime) -> tuple[str, str, str | None]:
    store = MemoryStore()
    await seed(store, at)
    service = Service(policy=policy, store=store, audit=None)
    d = await service.evaluate(Attempt(number=number, campaign_id="demo", source="cli"), at)
    return d.verdict.value, d.reason.value, d.e164


def test_every_row_gets_the_engines_decision(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    leads = write_leads(tmp_path / "leads.csv",
                        [[str(i), f"Lead {i}", n, "x;y"] for i, n in enumerate(NUMBERS)],
                        ["id", "Name", "Telephone", "note"], delimiter=";", bom=True)
    out = tmp_path / "out.csv"
    code = main(["scrub", str(leads), "--campaign", "demo", "--at", AT, "--out", str(out),
                 "--json", "--batch", "4"])
    stdout, _ = capsys.readouterr()
    assert code == 0
    rows = read_out(out, ";")
    assert [r["id"] for r in rows] == [str(i) for i in range(len(NUMBERS))]
    assert all(r["note"] == "x;y" and r["Name"].startswith("Lead") for r in rows)
    policy = build_policy(load_config(None, env={}))
    at = datetime.fromisoformat(AT)
    for row, number in zip(rows, NUMBERS, strict=True):
        verdict, reason, e164 = asyncio.run(expected(policy, number, at))
        assert (row["verdict"], row["reason"], row["e164"]) == (verdict, reason, e164 or "")
    by_number = {r["Telephone"]: r for r in rows}
    assert by_number["06 12 34 56 78"]["consent_id"] == "demo-c1"
    assert by_number["06 12 34 56 78"]["next_legal_at"] == "2026-12-01T09:30:00+00:00"
    assert by_number["01 99 00 00 01"]["contract_id"] == "DEMO-CTR-0001"
    assert by_number["06 12 34 56 82"]["reason"] == "opposition"
    assert by_number["hello"]["reason"] == "invalid_number" and by_number["hello"]["error"]
    summary = json.loads(stdout)
    assert summary["rows"] == len(NUMBERS)
    assert summary["allow"] == sum(r["verdict"] == "ALLOW" for r in rows) >= 2
    assert sum(summary["by_reason"].values()) == len(NUMBERS)
    assert summary["by_reason"]["opposition"] == 2


def test_night_gives_next_legal_instant_in_utc_and_local(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    leads = write_leads(tmp_path / "leads.csv", [["06 12 34 56 78"], ["0262 20 12 34"]],
                        ["phone"])
    out = tmp_path / "out.csv"
    cfg = tmp_path / "gw.toml"  # the demo data, a manual campaign (no ARCEP range needed)
    cfg.write_text('[campaigns.promo]\nprofessional = "demo-pro"\n'
                   'product_category = "telecom"\ncaller_id = "+33170000000"\n',
                   encoding="utf-8")
    assert main(["--config", str(cfg), "scrub", str(leads), "--campaign", "promo",
                 "--at", NIGHT, "--out", str(out)]) == 0
    paris, reunion = read_out(out)
    policy = build_policy(load_config(None, env={}))
    pack = policy.pack_for("FR", datetime.fromisoformat(NIGHT))
    assert pack is not None
    for row, zone in ((paris, "Europe/Paris"), (reunion, "Indian/Reunion")):
        assert (row["verdict"], row["reason"]) == ("BLOCK", "outside_hours")
        want = next_legal_instant([zone], pack, datetime.fromisoformat(NIGHT))
        assert want is not None
        assert row["next_legal_at"] == want.astimezone(UTC).isoformat()
        local = datetime.fromisoformat(row["next_legal_local"])
        assert local == want and local.utcoffset() == want.astimezone(
            datetime.fromisoformat(row["next_legal_local"]).tzinfo).utcoffset()
        assert row["zones"] == zone
    # Paris opens first at 10:00 (+01:00) on Wednesday, Réunion (+04:00) earlier in UTC
    assert paris["next_legal_local"] == "2026-12-02T10:00:00+01:00"
    assert datetime.fromisoformat(reunion["next_legal_at"]) < datetime.fromisoformat(
        paris["next_legal_at"])


def test_invalid_rows_are_reported_not_fatal(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "leads.csv"
    path.write_text('number,name\n0612345678,ok\n,empty\n0612345678,too,many\n'
                    '"0612345678,broken\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["scrub", str(path), "--campaign", "demo", "--at", AT, "--out", str(out),
                 "--json"]) == 0
    stdout, stderr = capsys.readouterr()
    rows = read_out(out)
    assert rows[0]["verdict"] == "ALLOW"
    assert [r["verdict"] for r in rows[1:3]] == ["INVALID", "INVALID"]
    assert rows[1]["error"] == "empty number"
    assert rows[2]["error"] == "3 fields where the header has 2" and rows[2]["name"] == "too|many"
    summary = json.loads(stdout)
    assert summary["invalid"] >= 2 and summary["by_reason"]["invalid_row"] >= 2
    assert "invalid row 2: empty number" in stderr


@pytest.mark.parametrize("header, option, code", [
    (["id", "Phone"], None, 0),
    (["id", "NUMBER"], None, 0),
    (["id", "mobile"], "--number-column=Mobile", 0),
    (["id", "mobile"], None, 2),
    (["phone", "number"], None, 2),
    (["id", "phone"], "--number-column=nope", 2),
])
def test_number_column(tmp_path: Path, capsys: pytest.CaptureFixture[str], header: list[str],
                       option: str | None, code: int) -> None:
    leads = write_leads(tmp_path / "leads.csv", [["1", "0612345678"]], header)
    out = tmp_path / "out.csv"
    argv = ["scrub", str(leads), "--campaign", "demo", "--at", AT, "--out", str(out)]
    assert main(argv + ([option] if option else [])) == code
    _, stderr = capsys.readouterr()
    if code:
        assert "column" in stderr and not out.exists()
    else:
        assert read_out(out)[0]["verdict"] == "ALLOW"


def test_added_columns_never_overwrite_the_leads_own(tmp_path: Path) -> None:
    leads = write_leads(tmp_path / "leads.csv", [["0612345678", "hot"]], ["number", "reason"])
    out = tmp_path / "out.csv"
    assert main(["scrub", str(leads), "--campaign", "demo", "--at", AT, "--out", str(out)]) == 0
    row = read_out(out)[0]
    assert row["reason"] == "hot" and row["gw_reason"] == "ok" and row["gw_verdict"] == "ALLOW"


def test_unknown_campaign_and_bad_at_are_usage_errors(tmp_path: Path) -> None:
    leads = write_leads(tmp_path / "leads.csv", [["0612345678"]], ["number"])
    out = str(tmp_path / "out.csv")
    assert main(["scrub", str(leads), "--campaign", "nope", "--out", out]) == 2
    assert main(["scrub", str(leads), "--campaign", "demo", "--at", "tomorrow",
                 "--out", out]) == 2
    assert main(["scrub", str(tmp_path / "missing.csv"), "--campaign", "demo",
                 "--out", out]) == 2
    assert not Path(out).exists()


def test_dry_run_reserves_nothing_and_audits_nothing(tmp_path: Path, redis_url: str,
                                                     key_prefix: str) -> None:
    """On Redis: scrubbing twice gives the same answers (no attempt counted), no audit."""
    cfg = tmp_path / "gw.toml"
    audit = tmp_path / "audit.jsonl"
    cfg.write_text(f'[store]\nurl = "{redis_url}"\nkey_prefix = "{key_prefix}"\n'
                   f'[audit]\nsink = "jsonl"\npath = "{audit}"\n'
                   '[campaigns.promo]\nprofessional = "acme"\nproduct_category = "telecom"\n'
                   'jurisdiction = "FR"\ncaller_id = "+33170000000"\n', encoding="utf-8")
    consents = tmp_path / "consents.csv"
    consents.write_text(
        "consent_id,number,professional,product_category,collected_at,expires_at,channel,"
        "proof_ref\nc1,0612345678,acme,telecom,2026-11-01T00:00:00Z,2027-11-01T00:00:00Z,"
        "web,p1\n", encoding="utf-8")
    assert main(["--config", str(cfg), "consent", "import", str(consents)]) == 0
    leads = write_leads(tmp_path / "leads.csv", [["0612345678"]] * 6 + [["0612345679"]],
                        ["number"])
    outs = []
    for i in range(2):
        out = tmp_path / f"out{i}.csv"
        assert main(["--config", str(cfg), "scrub", str(leads), "--campaign", "promo",
                     "--at", AT, "--out", str(out), "--batch", "3"]) == 0
        outs.append(read_out(out))
    assert outs[0] == outs[1]
    # six ALLOW for one number: a cap of 4 attempts would have bitten if anything counted
    assert [r["verdict"] for r in outs[0]] == ["ALLOW"] * 6 + ["BLOCK"]
    assert outs[0][0]["consent_id"] == "c1" and outs[0][6]["reason"] == "no_consent"
    assert not audit.exists()


def test_progress_shows_percentage_and_eta() -> None:
    stream = io.StringIO()
    progress = ScrubProgress(1000, label="leads.csv: ", stream=stream, force=True)
    line = progress.line(250, 5000, progress._start + 1.0)
    assert "25.0%" in line and "5,000 rows" in line and "ETA 0:00:03" in line
    progress.update(1000, 20000, final=True)
    assert stream.getvalue().startswith("\r") and stream.getvalue().endswith("\n")
    quiet = io.StringIO()  # not a terminal: nothing drawn
    ScrubProgress(1000, stream=quiet).update(1000, 1, final=True)
    assert quiet.getvalue() == ""
