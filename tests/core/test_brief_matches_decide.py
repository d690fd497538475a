"""``decide_brief`` (the scrub's decision, no trace, stopping at the first endless block)
gives ``decide``'s verdict, reason, next legal instant, zones and allowing record for
everything a scrub can meet: numbers of metropolitan France (Alsace-Moselle or not), the
overseas départements, the UK and US states (one layer, or all 41 for a toll-free number),
campaigns of the three jurisdictions with house rules, instants across windows, holidays
and DST changes, consents, contracts, inquiries, oppositions, list ages, attempts against
the caps, suppressions and campaign counters."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.brief import decide_brief, plan_many
from gateway.core.engine import Plan, decide, plan
from gateway.core.house import parse_house_rules
from gateway.core.model import (
    Attempt,
    Campaign,
    CampaignStats,
    ConsentRecord,
    ContractRecord,
    Decision,
    Facts,
    ListInfo,
    OppositionEntry,
    Reason,
    Suppression,
    Verdict,
)
from gateway.core.policy import Policy
from gateway.packs import builtin_packs

#: What a scrubbed row shows (gateway/scrub/core.py, ``Scrubber.columns``) and what
#: names the pack: the brief decision must give each exactly as ``decide`` does.
COLUMNS = ("verdict", "reason", "e164", "retry_after_s", "zones", "consent_id",
           "contract_id", "pack_id", "pack_hash")

NUMBERS = [
    "06 12 34 56 78", "07 81 23 45 67", "01 44 55 66 77", "03 88 12 34 56",  # 03: Alsace?
    "05 61 00 00 00", "09 70 00 00 00",
    "+262 262 16 12 34", "+262 692 12 34 56", "+262 269 60 12 34",  # Réunion, RE/YT, Mayotte
    "+590 590 20 12 34", "+596 596 30 12 34", "0594 10 12 34", "+508 41 12 34",
    "+687 28 12 34",
    "+44 20 7946 0018", "+44 7911 123456",
    "+1 305 555 0100", "+1 207 555 0100", "+1 512 555 0100", "+1 410 555 0100",  # FL ME TX MD
    "+1 503 555 0100", "+1 303 555 0100", "+1 212 555 0100", "+1 602 555 0100",  # OR CO NY AZ
    "+1 808 555 0100", "+1 800 555 0100",  # Hawaii; toll-free: every state's layer
    "06 12 34", "hello",
]
ZONES = [None, None, None, "Europe/Paris", "Indian/Reunion", "America/Guadeloupe",
         "America/New_York", "America/Los_Angeles", "Europe/London", "Not/AZone"]
REGIONS = [None, None, "67", "57", "75", "971"]
SOURCES = ["internal", "bloctel", "tps", "ndnc", "fl_dnc", "co_dnc", "tx_dnc", "wy_tps"]
LISTS = ["opposition:bloctel", "opposition:tps", "opposition:ndnc", "opposition:co_dnc",
         "opposition:fl_dnc", "opposition:tx_dnc"]
PROFESSIONALS = ["acme", "acme", "acme", "globex"]
CATEGORIES = ["telecom", "telecom", "energy", "insurance"]
#: Days where the rules change: holidays (FR, Alsace-Moselle, overseas, UK, US) and DST.
SPECIAL_DAYS = [date(2026, 1, 1), date(2026, 3, 8), date(2026, 3, 29), date(2026, 4, 3),
                date(2026, 4, 6), date(2026, 5, 1), date(2026, 5, 22), date(2026, 5, 27),
                date(2026, 7, 4), date(2026, 7, 14), date(2026, 8, 31), date(2026, 10, 25),
                date(2026, 11, 1), date(2026, 11, 11), date(2026, 11, 26), date(2026, 12, 20),
                date(2026, 12, 25), date(2026, 12, 26), date(2026, 12, 28), date(2027, 3, 26)]

instants = st.datetimes(min_value=datetime(2025, 6, 1), max_value=datetime(2027, 12, 31),
                        timezones=st.just(UTC))
special = st.builds(lambda d, s: datetime.combine(d, time(), UTC) + timedelta(seconds=s),
                    st.sampled_from(SPECIAL_DAYS), st.integers(0, 2 * 86400))
when = st.one_of(instants, special)
maybe_when = st.none() | when


@st.composite
def consents(draw: st.DrawFn, e164: str) -> ConsentRecord:
    collected = draw(when)
    slot = draw(maybe_when)
    return ConsentRecord(
        id=f"c{draw(st.integers(0, 99))}", e164=e164,
        professional=draw(st.sampled_from(PROFESSIONALS)),
        product_category=draw(st.sampled_from(CATEGORIES)), collected_at=collected,
        expires_at=draw(st.none() | st.integers(1, 900).map(lambda d: collected + timedelta(d))),
        channel="web", proof_ref="p", withdrawn_at=draw(maybe_when),
        timezone=draw(st.sampled_from(ZONES)), agreed_slot_start=slot,
        agreed_slot_end=None if slot is None else slot + timedelta(hours=draw(st.integers(1, 9))),
        address_region=draw(st.sampled_from(REGIONS)),
    )


@st.composite
def contracts(draw: st.DrawFn, e164: str) -> ContractRecord:
    started = draw(when)
    return ContractRecord(
        id=f"k{draw(st.integers(0, 99))}", e164=e164,
        professional=draw(st.sampled_from(PROFESSIONALS)),
        product_category=draw(st.sampled_from(CATEGORIES)), started_at=started,
        ends_at=draw(st.none() | st.integers(1, 900).map(lambda d: started + timedelta(d))),
        timezone=draw(st.sampled_from(ZONES)),
        kind=draw(st.sampled_from(["purchase", "purchase", "inquiry"])),
        address_region=draw(st.sampled_from(REGIONS)),
    )


@st.composite
def all_facts(draw: st.DrawFn, e164: str, now: datetime) -> Facts:
    # half the time a consent in force and fresh lists: the later rules are reached
    permissive = draw(st.booleans())
    in_force = (ConsentRecord("c-ok", e164, "acme", "telecom", now - timedelta(days=30),
                              now + timedelta(days=300), "web", "p"),) if permissive else ()
    fresh = tuple(ListInfo(name, 1, now - timedelta(days=1), 10)
                  for name in LISTS) if permissive else ()
    facts = Facts(
        consents=in_force + tuple(draw(st.lists(consents(e164), max_size=3))),
        contracts=tuple(draw(st.lists(contracts(e164), max_size=2))),
        oppositions=tuple(OppositionEntry(s) for s in draw(
            st.lists(st.sampled_from(SOURCES), max_size=2, unique=True))),
        lists=tuple(ListInfo(name, draw(st.integers(1, 9)),
                             now - timedelta(hours=draw(st.integers(-48, 24 * 70))), 10)
                    for name in draw(st.lists(st.sampled_from(LISTS), max_size=4,
                                              unique=True))),
        attempts=tuple(now - timedelta(minutes=m) for m in draw(
            st.lists(st.integers(-600, 60 * 24 * 35), max_size=7))),
        suppressions=tuple(
            Suppression(draw(st.sampled_from(PROFESSIONALS)),
                        now - timedelta(hours=draw(st.integers(-24, 24 * 400))),
                        draw(st.none() | when),
                        draw(st.sampled_from(["refused", "revoked", "abandoned",
                                              "answering_machine", "wrong_number"])))
            for _ in range(draw(st.integers(0, 2)))),
        campaign=CampaignStats(answered=draw(st.integers(0, 80)),
                               abandoned=draw(st.integers(0, 4)),
                               attempts_last_minute=draw(st.integers(0, 15))),
    )
    return replace(facts, lists=fresh + facts.lists) if permissive else facts


HOUSE = st.fixed_dictionaries({}, optional={
    "windows": st.sampled_from([
        {d: ["10:00-12:00", "14:00-17:30"] for d in ("mon", "tue", "wed", "thu", "fri")},
        {d: ["09:00-20:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat")},
    ]),
    "abandon_limit": st.sampled_from([0.01, 0.02]),
    "schedule": st.sampled_from([
        {"zone": "Europe/Paris", **{d: ["08:00-21:00"] for d in ("mon", "tue", "wed", "thu",
                                                                 "fri")}},
        {"zone": "Indian/Mauritius", **{d: ["06:00-23:00"] for d in ("mon", "tue", "wed",
                                                                     "thu", "fri", "sat")}},
    ]),
    "max_attempts_per_day": st.integers(1, 3),
})


@st.composite
def campaigns(draw: st.DrawFn) -> Campaign:
    house = draw(HOUSE)
    return Campaign(
        id="promo", professional="acme", product_category="telecom",
        jurisdiction=draw(st.sampled_from(["FR", "FR", "UK", "US", "US"])),
        sector=draw(st.sampled_from(["general", "telecom", "energy_renovation"])),
        automated=draw(st.booleans()),
        caller_id=draw(st.sampled_from([None, "+33162000001", "+33947800001", "0612345678",
                                        "+442079460000", "+12125550199", "anonymous"])),
        press=draw(st.booleans()),
        max_attempts_per_minute=draw(st.none() | st.integers(5, 15)),
        live_agent_guaranteed=draw(st.booleans()),
        related_categories=draw(st.sampled_from([(), ("energy",)])),
        house=parse_house_rules(house, "campaigns.promo") if house else None,
    )


def columns(d: Decision) -> tuple[object, ...]:
    return tuple(getattr(d, name) for name in COLUMNS)


def both(number: str, facts: Facts, campaign: Campaign, now: datetime,
         caller_id: str | None = None) -> tuple[Decision, Decision]:
    pol = Policy(builtin_packs(), {campaign.id: campaign})
    attempt = Attempt(number=number, campaign_id=campaign.id, caller_id=caller_id,
                      source="scrub")
    planned = plan(attempt, pol, now)
    brief = decide_brief(attempt, facts, pol, now, planned if isinstance(planned, Plan) else None)
    return decide(attempt, facts, pol, now), brief


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(NUMBERS), campaigns(), when, st.data())
def test_brief_gives_the_columns_of_decide(number: str, campaign: Campaign, now: datetime,
                                           data: st.DataObject) -> None:
    pol = Policy(builtin_packs(), {campaign.id: campaign})
    planned = plan(Attempt(number=number, campaign_id=campaign.id), pol, now)
    e164 = planned.e164 or "+33612345678"
    facts = data.draw(all_facts(e164, now))
    caller = data.draw(st.sampled_from([None, None, "+33162000002", "withheld"]))
    full, brief = both(number, facts, campaign, now, caller)
    assert columns(brief) == columns(full)
    if full.trace and isinstance(planned, Plan):
        assert brief.trace == ()  # the brief one builds no explanation


def sweep_facts(e164: str, now: datetime, kind: int, step: int) -> Facts:
    """A few fixed fact sets: nothing; a valid consent; consent + attempts at the cap;
    a campaign at its pace or abandon limit; an opposition and a refusal; a contract
    ending and an inquiry, with stale lists."""
    lists = tuple(ListInfo(n, 3, now - timedelta(days=2), 10) for n in LISTS)
    consent = ConsentRecord("c1", e164, "acme", "telecom", now - timedelta(days=40),
                            now + timedelta(days=300), "web", "p", address_region="67")
    if kind == 0:
        return Facts()
    if kind == 1:
        return Facts(consents=(consent,), lists=lists)
    if kind == 2:
        return Facts(consents=(consent,), lists=lists,
                     attempts=tuple(now - timedelta(hours=h) for h in (2, 20, 50, 200)))
    if kind == 3:  # the campaign's pace and abandon ratio: the last rules, endless
        return Facts(consents=(consent,), lists=lists,
                     campaign=CampaignStats(answered=30, abandoned=step % 3,
                                            attempts_last_minute=8 + step % 5))
    if kind == 4:
        return Facts(consents=(consent,), lists=lists, oppositions=(OppositionEntry("ndnc"),),
                     suppressions=(Suppression("acme", now - timedelta(hours=30), None,
                                               "abandoned"),))
    return Facts(contracts=(
        ContractRecord("k1", e164, "acme", "telecom", now - timedelta(days=400),
                       now - timedelta(days=30)),
        ContractRecord("k2", e164, "acme", "telecom", now - timedelta(days=20),
                       kind="inquiry")),
        lists=tuple(replace(i, imported_at=now - timedelta(days=45)) for i in lists))


def test_brief_matches_decide_every_half_hour_of_a_holiday_fortnight() -> None:
    """Every 30 minutes from 19 December 2026 to 3 January 2027 (Christmas, 26 December
    in Alsace-Moselle, the UK's substitute holiday, New Year): the windows' edges, nights,
    Sundays and holidays, for each number, jurisdiction and fact set."""
    seen: Counter[tuple[str, str, bool]] = Counter()
    start = datetime(2026, 12, 19, tzinfo=UTC)
    house = parse_house_rules({"max_attempts_per_day": 2}, "campaigns.promo")
    for jurisdiction in ("FR", "UK", "US"):
        campaign = Campaign(id="promo", professional="acme", product_category="telecom",
                            jurisdiction=jurisdiction, caller_id="+33162000001",
                            max_attempts_per_minute=10,
                            house=house if jurisdiction == "US" else None)
        for number in NUMBERS[::2]:
            for step in range(0, 16 * 48, 7):
                now = start + timedelta(minutes=30 * step)
                e164 = getattr(plan(Attempt(number, "promo"),
                                    Policy(builtin_packs(), {"promo": campaign}), now),
                               "e164", None) or "+33612345678"
                for kind in range(6):
                    full, brief = both(number, sweep_facts(e164, now, kind, step), campaign,
                                       now)
                    assert columns(brief) == columns(full), (jurisdiction, number, now, kind)
                    seen[(full.verdict.value, full.reason.value,
                          full.retry_after_s is not None)] += 1
    # the sweep reaches the branches the brief path treats apart
    assert seen[(Verdict.ALLOW.value, Reason.OK.value, False)]
    for reason in (Reason.OUTSIDE_HOURS, Reason.HOLIDAY, Reason.FREQUENCY_CAP):
        assert seen[(Verdict.BLOCK.value, reason.value, True)], reason  # a next legal instant
    for reason in (Reason.NO_CONSENT, Reason.OPPOSITION, Reason.LIST_STALE, Reason.PACING,
                   Reason.ABANDON_RATE):
        assert seen[(Verdict.BLOCK.value, reason.value, False)], reason  # endless: stopped early
    assert seen[(Verdict.BLOCK.value, Reason.INVALID_NUMBER.value, False)]


def test_brief_stops_at_an_endless_block_yet_names_the_first_rule() -> None:
    """At night with no consent (FR 2026: opt-in): the windows rule would block too,
    but no consent has no knowable end: no next instant, and the reason stays the first
    blocking rule's (legal basis comes before the windows)."""
    now = datetime(2026, 12, 1, 23, 0, tzinfo=ZoneInfo("Europe/Paris"))
    campaign = Campaign(id="promo", professional="acme", product_category="telecom",
                        caller_id="+33162000001")
    full, brief = both("06 12 34 56 78", Facts(), campaign, now)
    assert (brief.reason, brief.retry_after_s) == (Reason.NO_CONSENT, None)
    assert columns(brief) == columns(full)
    assert any(line.startswith("windows:") for line in full.trace)


def test_brief_tells_alsace_moselle_from_paris_at_the_same_instant() -> None:
    """Good Friday 2027, 11:00 in Paris: a holiday in Alsace-Moselle only. Leads of one
    zone at one instant share their clock checks in the brief path: a Paris number, a
    Strasbourg number and a mobile whose customer lives in Paris or in Moselle, in turn,
    each get decide's verdict."""
    now = datetime(2027, 3, 26, 11, 0, tzinfo=ZoneInfo("Europe/Paris"))
    campaign = Campaign(id="promo", professional="acme", product_category="telecom",
                        caller_id="+33162000001")
    leads = [("01 44 55 66 77", None), ("03 88 12 34 56", None), ("06 12 34 56 78", "75"),
             ("06 12 34 56 78", "57")] * 2
    verdicts = []
    for number, region in leads:
        e164 = "+33" + number.replace(" ", "")[1:]
        facts = Facts(consents=(ConsentRecord(
            "c1", e164, "acme", "telecom", now - timedelta(days=30), now + timedelta(days=300),
            "web", "p", address_region=region),))
        full, brief = both(number, facts, campaign, now)
        assert columns(brief) == columns(full), (number, region)
        verdicts.append((full.verdict, full.reason))
    allow, holiday = (Verdict.ALLOW, Reason.OK), (Verdict.BLOCK, Reason.HOLIDAY)
    assert verdicts == [allow, holiday, allow, holiday] * 2


@settings(max_examples=300, deadline=None)
@given(st.lists(campaigns(), min_size=1, max_size=3), st.data(),
       st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2028, 12, 31),
                    timezones=st.just(UTC)))
def test_plan_many_is_plan_for_each(camps: list[Campaign], data: st.DataObject,
                                    now: datetime) -> None:
    """A batch of leads of several campaigns (paused, with house rules, a centre's
    schedule, of the three jurisdictions), some of an unknown campaign, numbers valid and
    not, at instants with and without a pack in force: ``plan_many`` gives what ``plan``
    gives each one."""
    by_id = {f"k{i}": replace(c, id=f"k{i}", paused=data.draw(st.booleans()) and i == 1)
             for i, c in enumerate(camps)}
    pol = Policy(builtin_packs(), by_id)
    attempts = [Attempt(number=data.draw(st.sampled_from(NUMBERS)),
                        campaign_id=data.draw(st.sampled_from([*by_id, "nope"])))
                for _ in range(data.draw(st.integers(1, 12)))]
    assert plan_many(attempts, pol, now) == [plan(a, pol, now) for a in attempts]


def test_brief_of_numbers_sharing_one_facts_object() -> None:
    """A scrub's store read gives every number of a batch with no record of its own the
    same ``Facts`` object, which the brief path reuses a verdict for: each number, in
    turn, of every region (Paris and Alsace-Moselle share a zone, New York and Florida
    too, not their layers), for three such objects (lists, attempts, a suppression, an
    opposition, the campaign's counters) at instants across a week, gets decide's answer."""
    campaign_fr = Campaign(id="promo", professional="acme", product_category="telecom",
                           caller_id="+33162000001", max_attempts_per_minute=10)
    seen: Counter[tuple[str, str, bool]] = Counter()
    for step in range(0, 7 * 24, 5):
        # the week of Good Friday 2026 under FR-2023 (opt-out: no consent needed, the
        # windows are reached): a holiday in Alsace-Moselle, not in Paris
        now = datetime(2026, 3, 30, 6, 0, tzinfo=UTC) + timedelta(hours=step)
        lists = tuple(ListInfo(n, 3, now - timedelta(days=2), 10) for n in LISTS)
        shared = [Facts(lists=lists),
                  Facts(lists=lists, attempts=(now - timedelta(hours=3),) * 3,
                        campaign=CampaignStats(answered=30, attempts_last_minute=step % 12)),
                  Facts(lists=lists[:1], oppositions=(OppositionEntry("fl_dnc"),),
                        suppressions=(Suppression("acme", now - timedelta(hours=20), None,
                                                  "answering_machine"),))]
        for jurisdiction, automated in (("FR", False), ("FR", True), ("UK", False),
                                        ("US", False)):
            # automated: the caller id must suit the callee's region (metropolitan or not)
            campaign = replace(campaign_fr, jurisdiction=jurisdiction, automated=automated)
            for facts in shared:
                for number in NUMBERS:
                    full, brief = both(number, facts, campaign, now)
                    assert columns(brief) == columns(full), (jurisdiction, number, now, facts)
                    seen[(full.verdict.value, full.reason.value,
                          full.retry_after_s is not None)] += 1
    assert seen[(Verdict.ALLOW.value, Reason.OK.value, False)]
    for reason in (Reason.OUTSIDE_HOURS, Reason.HOLIDAY, Reason.FREQUENCY_CAP):
        assert seen[(Verdict.BLOCK.value, reason.value, True)], reason
    assert seen[(Verdict.BLOCK.value, Reason.CALLER_ID_FORBIDDEN.value, False)]
