"""Hypothesis properties of decide: oppositions and withdrawals never turn BLOCK into
ALLOW, determinism and fact order, ALLOW only inside a window (and a few more)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.engine import Plan, decide, plan
from gateway.core.model import (
    CampaignStats,
    ConsentRecord,
    ContractRecord,
    Facts,
    ListInfo,
    OppositionEntry,
    Reason,
    Suppression,
    Verdict,
)
from tests.core.support import attempt, policy

NUMBERS = {  # raw -> e164
    "06 12 34 56 78": "+33612345678",
    "+262 262 16 12 34": "+262262161234",
    "+262 692 12 34 56": "+262692123456",
    "+590 590 20 12 34": "+590590201234",
    "0594 10 12 34": "+594594101234",
}
ZONES = [None, None, "Europe/Paris", "Indian/Reunion", "America/Guadeloupe"]
# 2026-2027: both French packs, DST changes, holidays
instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                        timezones=st.just(UTC))
professionals = st.sampled_from(["acme", "acme", "globex"])
categories = st.sampled_from(["telecom", "telecom", "energy"])
maybe_instant = st.none() | instants


@st.composite
def consents(draw: st.DrawFn, e164: str) -> ConsentRecord:
    collected = draw(instants)
    slot_start = draw(maybe_instant)
    return ConsentRecord(
        id=f"c{draw(st.integers(0, 999))}", e164=e164, professional=draw(professionals),
        product_category=draw(categories), collected_at=collected,
        expires_at=draw(st.none() | st.integers(1, 800).map(lambda d: collected + timedelta(d))),
        channel="web", proof_ref="p", withdrawn_at=draw(maybe_instant),
        timezone=draw(st.sampled_from(ZONES)),
        agreed_slot_start=slot_start,
        agreed_slot_end=None if slot_start is None else slot_start + timedelta(hours=2),
    )


@st.composite
def contracts(draw: st.DrawFn, e164: str) -> ContractRecord:
    started = draw(instants)
    return ContractRecord(
        id=f"k{draw(st.integers(0, 999))}", e164=e164, professional=draw(professionals),
        product_category=draw(categories), started_at=started,
        ends_at=draw(st.none() | st.integers(1, 800).map(lambda d: started + timedelta(d))),
        timezone=draw(st.sampled_from(ZONES)),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, Facts, datetime, dict[str, object]]:
    raw = draw(st.sampled_from(sorted(NUMBERS)))
    e164 = NUMBERS[raw]
    now = draw(instants)
    facts = Facts(
        consents=tuple(draw(st.lists(consents(e164), max_size=3))),
        contracts=tuple(draw(st.lists(contracts(e164), max_size=2))),
        oppositions=tuple(OppositionEntry(s) for s in draw(
            st.lists(st.sampled_from(["internal", "bloctel"]), max_size=1, unique=True))),
        lists=tuple(ListInfo("opposition:bloctel", 1, now - timedelta(days=age), 10)
                    for age in draw(st.lists(st.integers(0, 40), max_size=1))),
        attempts=tuple(now - timedelta(hours=h) for h in draw(
            st.lists(st.integers(0, 24 * 35), max_size=6))),
        suppressions=tuple(
            Suppression(draw(professionals), now - timedelta(days=d), None,
                        draw(st.sampled_from(["refused", "revoked", "abandoned"])))
            for d in draw(st.lists(st.integers(0, 120), max_size=1))),
        campaign=CampaignStats(answered=draw(st.integers(0, 60)),
                               abandoned=draw(st.integers(0, 3)),
                               attempts_last_minute=draw(st.integers(0, 12))),
    )
    campaign = draw(st.fixed_dictionaries({}, optional={
        "sector": st.sampled_from(["telecom", "energy_renovation"]),
        "automated": st.booleans(),
        "caller_id": st.sampled_from(["+33162000001", "+33947800001", "0612345678"]),
        "press": st.booleans(),
        "max_attempts_per_minute": st.integers(5, 15),
    }))
    return raw, facts, now, campaign


def run(raw: str, facts: Facts, now: datetime, campaign: dict[str, object]) -> Verdict:
    return decide(attempt(raw), facts, policy(**campaign), now).verdict


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.sampled_from(["internal", "bloctel", "tps"]))
def test_adding_an_opposition_never_turns_block_into_allow(scenario, source: str) -> None:  # type: ignore[no-untyped-def]
    raw, facts, now, campaign = scenario
    before = run(raw, facts, now, campaign)
    more = replace(facts, oppositions=(*facts.oppositions, OppositionEntry(source)))
    after = run(raw, more, now, campaign)
    assert not (before is Verdict.BLOCK and after is Verdict.ALLOW)
    if source == "internal":  # the others may be lifted by a consent or contract (pack texts)
        assert after is Verdict.BLOCK


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.data())
def test_withdrawing_a_consent_never_turns_block_into_allow(scenario, data) -> None:  # type: ignore[no-untyped-def]
    raw, facts, now, campaign = scenario
    if not facts.consents:
        return
    index = data.draw(st.integers(0, len(facts.consents) - 1))
    when = data.draw(instants)
    withdrawn = list(facts.consents)
    withdrawn[index] = replace(withdrawn[index], withdrawn_at=when)
    before = run(raw, facts, now, campaign)
    after = run(raw, replace(facts, consents=tuple(withdrawn)), now, campaign)
    assert not (before is Verdict.BLOCK and after is Verdict.ALLOW)


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_decide_is_deterministic_and_ignores_fact_order(scenario, rnd: random.Random) -> None:  # type: ignore[no-untyped-def]
    raw, facts, now, campaign = scenario
    pol = policy(**campaign)
    first = decide(attempt(raw), facts, pol, now)
    assert decide(attempt(raw), facts, pol, now) == first
    shuffled = replace(facts, **{name: tuple(rnd.sample(list(getattr(facts, name)),
                                                        len(getattr(facts, name))))
                                 for name in ("consents", "contracts", "attempts",
                                              "oppositions", "suppressions")})
    other = decide(attempt(raw), shuffled, pol, now)
    assert (other.verdict, other.reason, other.retry_after_s, other.consent_id,
            other.contract_id) == (first.verdict, first.reason, first.retry_after_s,
                                   first.consent_id, first.contract_id)
    # the same instant written in another offset is the same instant
    shifted = now.astimezone(ZoneInfo("Pacific/Auckland"))
    assert decide(attempt(raw), facts, pol, shifted).verdict is first.verdict


def _legal_by_hand(zone: str, at: datetime) -> bool:
    local = at.astimezone(ZoneInfo(zone))
    sub = {"Europe/Paris": "57", "Indian/Reunion": "974", "America/Cayenne": "973"}.get(zone)
    days = set(holidays.France(subdiv=sub, years=local.year))
    if zone == "America/Guadeloupe":  # BL's library days + the GP and MF abolition days
        days |= set(holidays.France(subdiv="BL", years=local.year))
        days |= {date(local.year, 5, 27), date(local.year, 5, 28)}
    if local.date() in days or local.weekday() >= 5:
        return False
    minute = local.hour * 60 + local.minute
    return 600 <= minute < 780 or 840 <= minute < 1200


@settings(max_examples=500, deadline=None)
@given(instants, st.sampled_from(["06 12 34 56 78", "+262 262 16 12 34", "+590 590 20 12 34",
                                  "0594 10 12 34"]))
def test_allow_means_inside_a_window_on_a_working_day_in_the_callee_zone(
    now: datetime, raw: str
) -> None:
    """Across DST changes: with every other rule satisfied, ALLOW <=> legal local time."""
    e164 = NUMBERS[raw]
    consent = ConsentRecord(id="c", e164=e164, professional="acme", product_category="telecom",
                            collected_at=now - timedelta(days=30), expires_at=None,
                            channel="web", proof_ref="p")
    facts = Facts(consents=(consent,),
                  lists=(ListInfo("opposition:bloctel", 1, now - timedelta(days=1), 1),))
    decision = decide(attempt(raw), facts, policy(), now)
    zone = {"+33612345678": "Europe/Paris", "+262262161234": "Indian/Reunion",
            "+590590201234": "America/Guadeloupe", "+594594101234": "America/Cayenne"}[e164]
    assert decision.zones == (zone,)
    assert (decision.verdict is Verdict.ALLOW) is _legal_by_hand(zone, now)
    if decision.verdict is Verdict.BLOCK:
        assert decision.reason in (Reason.OUTSIDE_HOURS, Reason.HOLIDAY)
        assert decision.retry_after_s is not None and decision.retry_after_s > 0
        later = now + timedelta(seconds=decision.retry_after_s)
        assert _legal_by_hand(zone, later)
        assert decide(attempt(raw), facts, policy(), later).verdict is Verdict.ALLOW


@given(scenarios())
def test_decide_with_the_callers_plan_is_decide_alone(scenario) -> None:  # type: ignore[no-untyped-def]
    """The service plans before reading the store and hands its plan to ``decide``: the
    decision, trace included, is the one ``decide`` reaches by planning itself."""
    raw, facts, now, campaign = scenario
    pol = policy(**campaign)
    planned = plan(attempt(raw), pol, now)
    assert isinstance(planned, Plan)
    assert decide(attempt(raw), facts, pol, now, planned) == decide(attempt(raw), facts, pol, now)
