"""Abandoned-call ratio with few calls (Ofcom 2016: 3 % / 24 h; TSR 310.4(b)(4)(i): 3 % / 30 d)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from gateway.core.engine import decide
from gateway.core.model import CampaignStats, Reason
from gateway.core.policy import Policy
from gateway.packs import builtin_packs
from tests.core.support import BASE, attempt, facts, paris, policy

TUE = paris(2026, 12, 1, 10, 30)


def _reason(answered: int, abandoned: int, pol: Policy | None = None,
            now: datetime = TUE) -> Reason:
    f = facts(now, campaign=CampaignStats(answered=answered, abandoned=abandoned))
    return decide(attempt(), f, pol or policy(), now).reason


def test_ofcom_2016_ten_abandons_of_nineteen_answered_calls_block() -> None:
    """Ofcom's 3 % knows no minimum sample: 10 abandons out of 19 answered must block."""
    assert _reason(19, 10) is Reason.ABANDON_RATE


@pytest.mark.parametrize(("answered", "abandoned", "reason"), [
    (1, 0, Reason.OK),
    (1, 1, Reason.ABANDON_RATE),      # counted from the first answered call
    (33, 1, Reason.ABANDON_RATE),     # 1 / max(33, 20) = 3.03 %
    (34, 1, Reason.OK),               # 1 / 34 = 2.94 %
    (100, 3, Reason.OK),              # at the limit, not above
    (100, 4, Reason.ABANDON_RATE),
])
def test_ofcom_2016_three_percent_counted_from_the_first_answered_call(
    answered: int, abandoned: int, reason: Reason
) -> None:
    assert _reason(answered, abandoned) is reason


def test_tsr_310_4_b_4_i_us_ratio_has_no_minimum_sample_either() -> None:
    now = datetime.fromisoformat("2026-12-01T16:00:00+00:00")
    pol = policy(jurisdiction="US", caller_id="+12125550100")
    f = facts(now, "+12125550123", campaign=CampaignStats(answered=19, abandoned=10))
    d = decide(attempt("+1 212 555 0123"), f, pol, now)
    assert d.reason is Reason.ABANDON_RATE
    assert any("denominator floored at 20" in line for line in d.trace)


def test_small_sample_skip_is_the_operators_knowing_choice() -> None:
    packs = tuple(
        dataclasses.replace(p, abandon=dataclasses.replace(p.abandon, small_sample="skip"))
        for p in builtin_packs())
    pol = Policy(packs, {BASE.id: BASE})
    assert _reason(19, 10, pol) is Reason.OK
    f = facts(TUE, campaign=CampaignStats(answered=19, abandoned=10))
    assert any("small_sample = skip" in line for line in decide(attempt(), f, pol, TUE).trace)
