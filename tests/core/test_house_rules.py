"""House rules (core/house.py): stricter than the pack, never looser, named in the trace."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.config import ConfigError, load_config
from gateway.core.engine import decide
from gateway.core.house import HouseRules, intersect, parse_house_rules
from gateway.core.model import CampaignStats, Reason, Verdict
from gateway.core.pack import PolicyError, WindowSettings
from gateway.store.base import ImportMode
from gateway.wiring import build_policy
from tests.core.support import UTC, attempt, facts, paris, policy

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def house(**table: object) -> HouseRules:
    return parse_house_rules(table, "campaigns.promo")


def every_weekday(*ranges: str) -> dict[str, list[str]]:
    return {d: list(ranges) for d in WEEKDAYS}


def test_intersection_keeps_only_what_both_allow() -> None:
    a = WindowSettings(weekly=(((36000, 46800), (50400, 72000)),) + ((),) * 6)
    b = WindowSettings(weekly=(((39600, 66600),),) + ((),) * 6)
    assert intersect(a, b).weekly[0] == ((39600, 46800), (50400, 66600))
    assert intersect(a, b).weekly[1] == ()


@pytest.mark.parametrize("when, verdict, retry", [
    # Monday before the DST change (CEST, UTC+2): 08:30 UTC is 10:30 local, inside 10-11
    ((2026, 10, 19, 8, 30), Verdict.ALLOW, None),
    # Monday after it (CET, UTC+1): the same UTC time is 09:30 local, before the window;
    # the next legal instant is 10:00 local = 09:00 UTC, 30 min later
    ((2026, 10, 26, 8, 30), Verdict.BLOCK, 1800),
    # 11:00 local sharp: the house window is half-open [10:00, 11:00)
    ((2026, 10, 26, 10, 0), Verdict.BLOCK, None),
])
def test_house_windows_in_callee_time_across_dst(when: tuple[int, ...], verdict: Verdict,
                                                 retry: int | None) -> None:
    from datetime import datetime

    now = datetime(*when, tzinfo=UTC)  # type: ignore[misc]
    p = policy(house=house(windows=every_weekday("10:00-11:00")))
    d = decide(attempt(), facts(now), p, now)
    assert d.verdict is verdict
    named = [line for line in d.trace if line.startswith("house rule windows:")]
    if verdict is Verdict.BLOCK:
        assert d.reason is Reason.OUTSIDE_HOURS
        if retry is not None:  # 09:30 local: the pack is closed too, no house rule named
            assert d.retry_after_s == retry and named == []
        else:  # 11:00 Monday: the pack allows it, the house does not; next: Tue 10:00
            assert d.retry_after_s == 23 * 3600
            assert named == ["house rule windows: the campaign's mon windows (10:00-11:00) "
                             "are closed; the pack FR-2026 allows 10:00-13:00, 14:00-20:00"]
            assert d.house_rule == "windows"
    if not named:
        assert d.house_rule is None


def test_pack_windows_still_apply_under_house_windows() -> None:
    # the house allows 19:00-21:00 on paper? refused at load (below); here a house window
    # inside the pack's: at 21:30 both are closed and no house rule is named
    now = paris(2026, 12, 1, 21, 30)
    d = decide(attempt(), facts(now), policy(house=house(windows=every_weekday(
        "10:00-13:00", "14:00-18:30"))), now)
    assert d.reason is Reason.OUTSIDE_HOURS
    assert not any(line.startswith("house rule") for line in d.trace)


@pytest.mark.parametrize("hour_paris, reason", [
    (9, Reason.CAMPAIGN_PAUSED),   # 12:00 in Mauritius: the centre is at lunch
    (11, Reason.OK),               # 14:00 in Mauritius: open, and Paris is in its window
    (15, Reason.CAMPAIGN_PAUSED),  # 18:00 in Mauritius: closed, though Paris still allows
])
def test_schedule_in_the_centres_own_zone(hour_paris: int, reason: Reason) -> None:
    sched = {"zone": "Indian/Mauritius", **every_weekday("08:00-12:00", "13:00-18:00")}
    now = paris(2026, 12, 1, hour_paris, 30)
    d = decide(attempt(), facts(now), policy(house=house(schedule=sched)), now)
    assert d.reason is reason
    if reason is Reason.CAMPAIGN_PAUSED:
        assert d.trace[-1].startswith("house rule schedule: centre Indian/Mauritius tue")
        assert "closed" in d.trace[-1] and d.house_rule == "schedule"


def test_abandon_limit_below_the_pack() -> None:
    now = paris(2026, 12, 1, 10, 30)
    stats = CampaignStats(answered=1000, abandoned=25)  # 2.5 %: under 3 %, over 2 %
    lax = decide(attempt(), facts(now, campaign=stats), policy(), now)
    assert lax.verdict is Verdict.ALLOW
    strict = decide(attempt(), facts(now, campaign=stats),
                    policy(house=house(abandon_limit=0.02)), now)
    assert strict.reason is Reason.ABANDON_RATE
    assert "house rule abandon_limit: 2.00% (the pack FR-2026's limit is 3.00%)" in strict.trace
    assert strict.house_rule == "abandon_limit" and lax.house_rule is None


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text('[campaigns.promo]\nprofessional = "acme"\nproduct_category = "telecom"\n'
                    + body, encoding="utf-8")
    return path


@pytest.mark.parametrize("body, problem", [
    ('[campaigns.promo.windows]\nmon = ["19:00-21:00"]\n',
     "campaigns.promo.windows.mon: 19:00-21:00 is not inside the pack FR-2026's mon windows "
     "(10:00-13:00, 14:00-20:00)"),
    ("abandon_limit = 0.03\n", "campaigns.promo.abandon_limit: 3.00% is not below the pack "
                               "FR-2026's limit 3.00%"),
])
def test_looser_values_are_refused_naming_key_and_pack_limit(tmp_path: Path, body: str,
                                                             problem: str) -> None:
    config = load_config(write(tmp_path, body), env={})
    with pytest.raises(PolicyError) as exc:
        build_policy(config)
    assert problem in str(exc.value)


@pytest.mark.parametrize("body, problem", [
    ('[campaigns.promo.windows]\nmon = ["10-11"]\n', "windows.mon: expected"),
    ('[campaigns.promo.windows]\nmonday = ["10:00-11:00"]\n', "windows.monday: unknown key"),
    ('[campaigns.promo.windows]\nmon = ["11:00-10:00"]\n', "empty"),
    ('[campaigns.promo.windows]\nmon = ["10:00-12:00", "11:00-13:00"]\n', "overlap"),
    ('[campaigns.promo.schedule]\nmon = ["08:00-18:00"]\n', "schedule.zone: required"),
    ('[campaigns.promo.schedule]\nzone = "Mars/Base"\n', "unknown zone"),
    ("abandon_limit = 1.5\n", "abandon_limit: expected a ratio"),
])
def test_malformed_house_rules(tmp_path: Path, body: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_config(write(tmp_path, body), env={})


def test_config_check_and_scrub_follow_house_rules(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    cfg = tmp_path / "gw.toml"  # the demo data (consent demo-c1 of demo-pro)
    cfg.write_text('[campaigns.promo]\nprofessional = "demo-pro"\nproduct_category = "telecom"\n'
                   'caller_id = "+33162000001"\n'
                   'abandon_limit = 0.02\n[campaigns.promo.windows]\n'
                   + "".join(f'{d} = ["10:00-11:00"]\n' for d in WEEKDAYS), encoding="utf-8")
    assert main(["--config", str(cfg), "config", "check"]) == 0
    assert '"abandon_limit": 0.02' in capsys.readouterr().out
    leads = tmp_path / "leads.csv"
    leads.write_text("number\n06 12 34 56 78\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["--config", str(cfg), "scrub", str(leads), "--campaign", "promo",
                 "--at", "2026-12-01T12:00:00+01:00", "--out", str(out)]) == 0
    row = out.read_text(encoding="utf-8").splitlines()[1].split(",")
    # 12:00 Tuesday: the pack allows it, the house (10:00-11:00) does not: next Wed 10:00
    assert row[1:3] == ["BLOCK", "outside_hours"]
    assert row[4:6] == ["2026-12-02T09:00:00+00:00", "2026-12-02T10:00:00+01:00"]


async def test_metrics_count_blocks_by_house_rule() -> None:
    from gateway.core.model import Attempt
    from gateway.metrics import Metrics
    from gateway.service import Service
    from gateway.store.memory import MemoryStore

    now = paris(2026, 12, 1, 12, 0)  # inside the pack's windows, outside the house's
    p = policy(house=house(windows=every_weekday("10:00-11:00")))
    metrics = Metrics(["promo"])
    store = MemoryStore()
    await store.import_consents(facts(now).consents, mode=ImportMode.REPLACE, now=now)
    svc = Service(policy=p, store=store, audit=None, observer=metrics, clock=lambda: now)
    result = await svc.screen(Attempt(number="06 12 34 56 78", campaign_id="promo"))
    assert (result.reason, result.decision.house_rule) == (Reason.OUTSIDE_HOURS, "windows")
    text = metrics.render().decode()
    assert 'dialer_gateway_house_rule_blocks_total{campaign="promo",rule="windows"} 1.0' in text


@pytest.mark.parametrize("number, e164, earlier_utc, verdict", [
    # Paris (UTC+1): 23:30 local yesterday does not count, 00:30 local today does
    ("06 12 34 56 78", "+33612345678", (2026, 11, 30, 22, 30), Verdict.ALLOW),
    ("06 12 34 56 78", "+33612345678", (2026, 11, 30, 23, 30), Verdict.BLOCK),
    # Réunion (UTC+4): the same two UTC instants are 02:30 and 03:30 today: both count;
    # 19:30 UTC the day before is 23:30 Réunion time yesterday: it does not
    ("0262 20 12 34", "+262262201234", (2026, 11, 30, 22, 30), Verdict.BLOCK),
    ("0262 20 12 34", "+262262201234", (2026, 11, 30, 19, 30), Verdict.ALLOW),
])
def test_max_attempts_per_day_in_the_callees_day(number: str, e164: str,
                                                 earlier_utc: tuple[int, ...],
                                                 verdict: Verdict) -> None:
    from datetime import datetime

    now = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # 10:30 Paris
    if e164.startswith("+262"):
        now = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # 10:30 Réunion
    earlier = datetime(*earlier_utc, tzinfo=UTC)  # type: ignore[misc]
    p = policy(house=house(max_attempts_per_day=1))
    d = decide(attempt(number), facts(now, e164=e164, attempts=(earlier,)), p, now)
    assert d.verdict is verdict, d.trace
    assert d.day_limit == 1 and d.day_since is not None
    if verdict is Verdict.BLOCK:
        assert d.reason is Reason.FREQUENCY_CAP and d.house_rule == "max_attempts_per_day"
        # retry: the next local day's first window (10:00 local time in both)
        local_next = (now + timedelta(seconds=d.retry_after_s or 0)).astimezone(
            ZoneInfo("Europe/Paris" if e164.startswith("+33") else "Indian/Reunion"))
        assert local_next.date().isoformat() == "2026-12-02"
        assert (local_next.hour, local_next.minute) == (10, 0)
    else:
        assert d.house_rule is None


def test_max_attempts_per_day_must_be_below_the_pack_cap(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"campaigns.promo.max_attempts_per_day: 4 is not "
                                          r"below the pack FR-2026's cap of 4 attempts in 30 days"):
        build_policy(load_config(write(tmp_path, "max_attempts_per_day = 4\n"), env={}))
    build_policy(load_config(write(tmp_path, "max_attempts_per_day = 2\n"), env={}))
