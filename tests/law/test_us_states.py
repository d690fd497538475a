"""US state packs layered over US-FEDERAL by the callee's area code (stricter wins)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gateway.core.engine import decide, plan
from gateway.core.model import ListInfo, Reason
from gateway.core.nanp import ANY_STATE, us_states
from tests.core.support import attempt, facts, policy

US = policy(jurisdiction="US", caller_id="+12125550100")
MIAMI, TULSA, BALTIMORE, NYC = "+13055550123", "+19185550123", "+14105550123", "+12125550123"


def at_local(hour: int, minute: int = 0, second: int = 0, offset: int = -5) -> datetime:
    return datetime.fromisoformat(f"2026-12-01T{hour:02d}:{minute:02d}:{second:02d}"
                                  f"{offset:+03d}:00")


def _us_facts(now: datetime, e164: str, **kw: object) -> object:
    lists = (*(ListInfo(n, 1, now - timedelta(days=1), 10)
               for n in ("opposition:ndnc", "opposition:fl_dnc")),)
    return facts(now, e164, lists=lists, **kw)


def _reason(e164: str, now: datetime, **kw: object) -> Reason:
    return decide(attempt(e164), _us_facts(now, e164, **kw), US, now).reason  # type: ignore[arg-type]


def test_nanp_area_code_selects_the_state() -> None:
    assert us_states(MIAMI) == ("FL",)
    assert us_states(TULSA) == ("OK",)
    assert us_states(BALTIMORE) == ("MD",)
    assert us_states("+14165550100") == ()  # Toronto: not a US state
    planned = plan(attempt(MIAMI), US, at_local(12))
    assert not isinstance(planned, type(None))
    assert [p.id for p in planned.layers] == ["US-FL"]  # type: ignore[union-attr]


@pytest.mark.parametrize(("e164", "statute"), [
    (MIAMI, "501.059(8)(a)"), (TULSA, "775C"), (BALTIMORE, "14-4501")])
def test_mini_tcpa_states_no_call_after_8_pm(e164: str, statute: str) -> None:
    """Fla. Stat. § 501.059(8)(a), Okla. Stat. tit. 15 § 775C, Md. Com. Law § 14-4501 et
    seq.: not before 8 a.m. nor after 8 p.m. in the callee's time (federal: 9 p.m.)."""
    offset = -6 if e164 == TULSA else -5
    assert _reason(e164, at_local(20, 0, 0, offset)) is Reason.OK  # 8 p.m. itself
    late = at_local(20, 0, 1, offset)
    d = decide(attempt(e164), _us_facts(late, e164), US, late)  # type: ignore[arg-type]
    assert d.reason is Reason.OUTSIDE_HOURS
    assert any(line.startswith("[US-") and "outside" in line for line in d.trace)
    assert _reason(NYC, at_local(20, 30)) is Reason.OK  # New York: federal rule only


def test_fla_stat_501_059_8_b_at_most_three_calls_in_24_hours() -> None:
    now = at_local(12)
    three = tuple(now - timedelta(hours=h) for h in (1, 2, 3))
    d = decide(attempt(MIAMI), _us_facts(now, MIAMI, attempts=three), US, now)  # type: ignore[arg-type]
    assert d.reason is Reason.FREQUENCY_CAP
    assert (d.attempts_limit, d.attempt_window_s) == (3, 86400)
    assert _reason(NYC, now, attempts=three) is Reason.OK


def test_fla_stat_501_059_florida_do_not_call_list_must_be_fresh() -> None:
    now = at_local(12)
    only_ndnc = facts(now, MIAMI, lists=(ListInfo("opposition:ndnc", 1, now, 1),))
    assert decide(attempt(MIAMI), only_ndnc, US, now).reason is Reason.LIST_STALE


def test_state_packs_are_effective_dated() -> None:
    """Maryland's Stop the Spam Calls Act applies from 2024-01-01."""
    before = datetime.fromisoformat("2023-12-01T20:30:00-05:00")
    assert _reason(BALTIMORE, before) is Reason.OK
    after = datetime.fromisoformat("2024-12-03T20:30:00-05:00")
    assert _reason(BALTIMORE, after) is Reason.OUTSIDE_HOURS


def test_unknown_state_takes_every_state_pack() -> None:
    """A US number whose state cannot be told: the intersection of every state's rules."""
    pol = US
    layers = pol.layers_for("US", (ANY_STATE,), at_local(12))
    assert {p.id for p in layers} == {"US-FL", "US-OK", "US-MD"}


def test_47_cfr_64_1200_c_1_nine_pm_exactly_is_still_allowed() -> None:
    """47 CFR 64.1200(c)(1): no call "before 8 a.m. or after 9 p.m." — 21:00:00 is not after."""
    assert _reason(NYC, at_local(21, 0, 0)) is Reason.OK
    assert _reason(NYC, at_local(21, 0, 1)) is Reason.OUTSIDE_HOURS
    assert _reason(NYC, at_local(7, 59, 59)) is Reason.OUTSIDE_HOURS
