"""Every scrubbed row (the brief decision, gateway/core/brief.py) is what ``check`` (the
full decision of a call) says for that number at that instant: a varied sample (written in
every accepted way, overseas, Alsace-Moselle, foreign, US states, invalid, repeated) at five
instants (inside the windows, at night, on a Sunday, Christmas, Good Friday) for French,
house-ruled and US campaigns, both through the real CLI."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.cli import main
from gateway.config import load_config
from gateway.core.model import Attempt
from gateway.demo import seed
from gateway.service import Service
from gateway.store.memory import MemoryStore
from gateway.wiring import build_policy

INSTANTS = ["2026-12-01T10:30:00+01:00",  # Tuesday, inside the French windows
            "2026-12-01T22:30:00+01:00",  # night: next legal instant tomorrow
            "2026-12-06T11:00:00+01:00",  # Sunday: no calls until Monday
            "2026-12-25T16:00:00+01:00",  # Christmas; 10:00 in New York
            "2027-03-26T16:00:00+01:00"]  # Good Friday: a holiday in Alsace-Moselle only
DEMO = ["06 12 34 56 78", "0262 20 12 34", "06 12 34 56 79", "06 12 34 56 80",
        "06 12 34 56 81", "06 12 34 56 82", "01 99 00 00 01", "+33 6 12 34 56 78"]
OTHERS = ["0596 30 12 34", "0690 12 34 56", "+44 20 7946 0018", "+1 212 555 0100",
          "+49 30 1234567", "0033 1 44 55 66 77", "05.61.00.00.00", "04-91-00-00-00",
          "06 12 34", "06 12 34 56 78 90", "hello", "+33 (0)6 12 34 56 78", "0800 00 00 00",
          "+262 692 12 34 56", "09 70 00 00 00", "03 88 12 34 56", "03 87 12 34 56",
          "+1 305 555 0100", "+1 207 555 0100", "+1 512 555 0100", "+1 303 555 0100",
          "+1 800 555 0100", "+1 808 555 0100"]


def sample() -> list[str]:
    rnd = random.Random(13)
    mobiles = [f"0{rnd.choice('67')} {rnd.randrange(10**8):08d}" for _ in range(10)]
    fixed = [f"+33 {rnd.randrange(1, 6)} {rnd.randrange(10**8):08d}" for _ in range(6)]
    numbers = DEMO + OTHERS + mobiles + fixed
    return numbers + rnd.sample(numbers, 5)  # repeats: decided again, the same


pytestmark = pytest.mark.usefixtures("clean_cli_env")  # tests/fixtures/cli_env.py


def iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


@pytest.mark.parametrize("at", INSTANTS)
@pytest.mark.parametrize("campaign", ["demo", "promo", "house", "usa"])
def test_every_row_is_what_check_says(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      at: str, campaign: str) -> None:
    # the embedded default (demo data, demo campaign); promo: a manual campaign with a
    # caller id, on the demo data; house: the same with house rules; usa: a US campaign
    cfg = tmp_path / "gw.toml"
    cfg.write_text('[campaigns.promo]\nprofessional = "demo-pro"\n'
                   'product_category = "telecom"\ncaller_id = "+33170000000"\n'
                   '[campaigns.house]\nprofessional = "demo-pro"\n'
                   'product_category = "telecom"\ncaller_id = "+33170000000"\n'
                   'max_attempts_per_day = 1\n[campaigns.house.windows]\n'
                   'mon = ["14:00-17:00"]\ntue = ["14:00-17:00"]\nwed = ["14:00-17:00"]\n'
                   'thu = ["14:00-17:00"]\nfri = ["14:00-17:00"]\n'
                   '[campaigns.usa]\nprofessional = "demo-pro"\n'
                   'product_category = "telecom"\njurisdiction = "US"\n'
                   'caller_id = "+12125550199"\n', encoding="utf-8")
    config = [] if campaign == "demo" else ["--config", str(cfg)]
    numbers = sample()
    leads = tmp_path / "leads.csv"
    with leads.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ref", "phone"])
        w.writerows([f"r{i}", n] for i, n in enumerate(numbers))
    out = tmp_path / "out.csv"
    assert main([*config, "scrub", str(leads), "--campaign", campaign,
                 "--at", at, "--out", str(out), "--batch", "7"]) == 0
    capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["ref"] for r in rows] == [f"r{i}" for i in range(len(numbers))]
    instant = datetime.fromisoformat(at)
    seen = set()
    for row, number in zip(rows, numbers, strict=True):
        assert main([*config, "check", number, "--campaign", campaign,
                     "--at", at]) == 0
        d = json.loads(capsys.readouterr().out)
        assert (row["verdict"], row["reason"], row["e164"]) == (
            d["verdict"], d["reason"], d["e164"] or ""), number
        assert row["zones"] == " ".join(d["zones"]), number
        assert (row["consent_id"], row["contract_id"]) == (
            d["consent_id"] or "", d["contract_id"] or ""), number
        if d["verdict"] == "ALLOW":
            nxt: datetime | None = instant
        elif d["retry_after_s"] is not None:
            nxt = instant + timedelta(seconds=d["retry_after_s"])
        else:
            nxt = None
        assert row["next_legal_at"] == (iso(nxt.astimezone(UTC)) if nxt else ""), number
        if nxt is not None and d["zones"]:
            local = datetime.fromisoformat(row["next_legal_local"])
            zone = ZoneInfo(d["zones"][0])
            assert local == nxt and local.utcoffset() == nxt.astimezone(zone).utcoffset(), number
        seen.add((d["verdict"], d["reason"]))
    # the sample does reach the branches it is meant to
    assert ("BLOCK", "invalid_number") in seen
    if at == INSTANTS[0] and campaign == "promo":
        assert ("ALLOW", "ok") in seen and ("BLOCK", "opposition") in seen
    if at != INSTANTS[0] and campaign != "usa":
        assert any(r["next_legal_at"] and r["verdict"] == "BLOCK" for r in rows)
    if campaign == "usa":  # the demo data has no National DNC list: stale, no next instant
        assert ("BLOCK", "list_stale") in seen
        assert all(r["next_legal_at"] == "" for r in rows if r["reason"] == "list_stale")


@pytest.mark.parametrize("at", INSTANTS)
async def test_evaluate_many_brief_gives_the_full_columns(at: str) -> None:
    """``Service.evaluate_many(explain=False)`` (the scrub's: ``plan_many`` and
    ``decide_brief``) against ``explain=True`` (``plan`` and ``decide`` of each lead, as a
    call) and against ``evaluate`` one lead at a time, on the demo store, for the sample
    and the demo campaign: the same columns; the full ones have their trace."""
    instant = datetime.fromisoformat(at)
    store = MemoryStore()
    await seed(store, instant)
    service = Service(policy=build_policy(load_config(None, env={})), store=store, audit=None)
    attempts = [Attempt(number=n, campaign_id="demo", source="scrub") for n in sample()]
    brief = await service.evaluate_many(attempts, instant, explain=False)
    full = await service.evaluate_many(attempts, instant)
    one_by_one = [await service.evaluate(a, instant) for a in attempts]
    assert full == one_by_one

    def columns(d: object) -> tuple[object, ...]:
        return tuple(getattr(d, name) for name in (
            "verdict", "reason", "e164", "retry_after_s", "zones", "consent_id", "contract_id"))

    assert [columns(d) for d in brief] == [columns(d) for d in full]
    assert all(d.trace and d.trace[-1].startswith(("verdict:", "number: invalid"))
               for d in full)
