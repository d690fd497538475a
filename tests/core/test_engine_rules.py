"""Table-driven cases per rule (docs/policy.md has the same examples in prose)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.core.engine import Plan, decide, plan
from gateway.core.model import (
    CampaignStats,
    Decision,
    Facts,
    ListInfo,
    OppositionEntry,
    Reason,
    Suppression,
    Verdict,
)
from tests.core.support import (
    DAY,
    GUADELOUPE_FIXED,
    MAYOTTE_FIXED,
    METRO_CLI,
    METRO_E164,
    METRO_MOBILE,
    PARIS,
    RE_YT_MOBILE,
    REUNION_FIXED,
    attempt,
    consent,
    contract,
    facts,
    fresh_lists,
    paris,
    policy,
)

TUE = paris(2026, 12, 1, 10, 30)  # a winter Tuesday, FR-2026 in force
H = 3600


@dataclass(frozen=True)
class Case:
    name: str
    reason: Reason
    now: datetime = TUE
    number: str = METRO_MOBILE
    e164: str = METRO_E164
    facts: dict[str, Any] = field(default_factory=dict)  # replaces fields of support.facts
    campaign: dict[str, Any] = field(default_factory=dict)
    caller_id: str | None = None
    retry_after_s: int | None = None
    pack_id: str | None = None


CASES = [
    Case("plain allowed call", Reason.OK),
    # --- windows, zones, holidays -----------------------------------------------------
    Case("Réunion at 10:30 Paris (13:30 local) waits for 14:00 local",
         Reason.OUTSIDE_HOURS, number=REUNION_FIXED, e164="+262262161234",
         retry_after_s=30 * 60),
    Case("+262 69x: Réunion 13:30 and Mayotte 12:30 must both be open -> 15:00 Réunion",
         Reason.OUTSIDE_HOURS, number=RE_YT_MOBILE, e164="+262692123456",
         retry_after_s=90 * 60),
    Case("+262 69x at 11:30 Paris: Réunion 14:30 open, Mayotte 13:30 at lunch",
         Reason.OUTSIDE_HOURS, number=RE_YT_MOBILE, e164="+262692123456",
         now=paris(2026, 12, 1, 11, 30), retry_after_s=30 * 60),
    Case("+262 69x at 12:00 Paris: both open", Reason.OK, number=RE_YT_MOBILE,
         e164="+262692123456", now=paris(2026, 12, 1, 12, 0)),
    Case("Mayotte at 10:30 Paris is 12:30 local", Reason.OK, number=MAYOTTE_FIXED,
         e164="+262269601234"),
    Case("Whit Monday: wait for Tuesday 10:00", Reason.HOLIDAY,
         now=paris(2027, 5, 17, 10, 30), retry_after_s=23 * H + 30 * 60),
    # 28 May (Saint-Martin, same zone and numbering as Guadeloupe) and the weekend follow
    Case("27 May in Guadeloupe (10:00 local)", Reason.HOLIDAY, number=GUADELOUPE_FIXED,
         e164="+590590201234", now=paris(2027, 5, 27, 16, 0), retry_after_s=4 * 24 * H),
    Case("27 May is an ordinary Thursday in Paris", Reason.OK, now=paris(2027, 5, 27, 16, 0)),
    Case("23:00 in an offshore centre (UTC+4) is 20:00 in Paris: closed",
         Reason.OUTSIDE_HOURS, now=datetime.fromisoformat("2026-12-01T23:00:00+04:00"),
         retry_after_s=14 * H),
    Case("... and 15:00 in Guadeloupe: open", Reason.OK, number=GUADELOUPE_FIXED,
         e164="+590590201234", now=datetime.fromisoformat("2026-12-01T23:00:00+04:00")),
    Case("Saturday", Reason.OUTSIDE_HOURS, now=paris(2026, 12, 5, 11, 0),
         retry_after_s=2 * 24 * H - H),
    Case("13:00 sharp is the lunch break", Reason.OUTSIDE_HOURS, now=paris(2026, 12, 1, 13, 0),
         retry_after_s=H),
    Case("agreed slot on the consent opens a Saturday", Reason.OK, now=paris(2026, 12, 5, 11, 0),
         facts={"consents": (consent(slot=(paris(2026, 12, 5, 10, 0),
                                            paris(2026, 12, 5, 12, 0))),)}),
    Case("the consent's zone wins over the number", Reason.OUTSIDE_HOURS,
         facts={"consents": (consent(timezone="Indian/Reunion"),)}, retry_after_s=30 * 60),
    Case("the contract's zone wins over the number", Reason.OUTSIDE_HOURS,
         facts={"consents": (), "contracts": (contract(timezone="Indian/Reunion"),)},
         retry_after_s=30 * 60),
    # --- frequency --------------------------------------------------------------------
    Case("fourth attempt in 30 days is fine", Reason.OK,
         facts={"attempts": tuple(TUE - k * DAY for k in (1, 2, 3))}),
    Case("fifth attempt in 30 days: wait until the oldest leaves the window",
         Reason.FREQUENCY_CAP, facts={"attempts": (
             paris(2026, 11, 1, 10, 45), TUE - 3 * DAY, TUE - 2 * DAY, TUE - DAY)},
         retry_after_s=15 * 60),
    Case("the slot frees at night: clipped to the next window", Reason.FREQUENCY_CAP,
         facts={"attempts": (paris(2026, 11, 1, 22, 0), TUE - 3 * DAY, TUE - 2 * DAY,
                             TUE - DAY)}, retry_after_s=23 * H + 30 * 60),
    Case("an attempt exactly 30 days ago no longer counts", Reason.OK,
         facts={"attempts": (TUE - 30 * DAY, TUE - 3 * DAY, TUE - 2 * DAY, TUE - DAY)}),
    # --- legal basis (FR-2026) --------------------------------------------------------
    Case("no consent at all", Reason.NO_CONSENT, facts={"consents": ()}),
    Case("a consent for another professional", Reason.NO_CONSENT,
         facts={"consents": (consent(professional="globex"),)}),
    Case("a consent for another product category", Reason.NO_CONSENT,
         facts={"consents": (consent(category="energy"),)}),
    Case("an expired consent", Reason.CONSENT_EXPIRED,
         facts={"consents": (consent(collected_at=paris(2026, 1, 5, 12, 0),
                                     expires_at=paris(2026, 11, 1, 0, 0)),)}),
    Case("a consent older than one year, whatever its expires_at", Reason.CONSENT_EXPIRED,
         facts={"consents": (consent(collected_at=paris(2025, 11, 1, 12, 0),
                                     expires_at=paris(2028, 1, 1, 0, 0)),)}),
    Case("a withdrawn consent", Reason.CONSENT_REVOKED,
         facts={"consents": (consent(withdrawn_at=paris(2026, 11, 20, 9, 0)),)}),
    Case("a consent withdrawn in the future is still in force", Reason.OK,
         facts={"consents": (consent(withdrawn_at=paris(2026, 12, 20, 9, 0)),)}),
    Case("a contract in progress instead of a consent", Reason.OK,
         facts={"consents": (), "contracts": (contract(),)}),
    Case("a finished contract is not in progress", Reason.NO_CONSENT,
         facts={"consents": (), "contracts": (contract(ends_at=paris(2026, 11, 1, 0, 0)),)}),
    Case("a contract for another category", Reason.NO_CONSENT,
         facts={"consents": (), "contracts": (contract(category="energy"),)}),
    Case("press subscriptions need no consent", Reason.OK, facts={"consents": ()},
         campaign={"press": True}),
    Case("... but still respect the windows", Reason.OUTSIDE_HOURS, facts={"consents": ()},
         campaign={"press": True}, now=paris(2026, 12, 1, 21, 0), retry_after_s=13 * H),
    # --- sectors ----------------------------------------------------------------------
    Case("energy renovation with consent", Reason.SECTOR_BANNED,
         campaign={"sector": "energy_renovation"}),
    Case("energy renovation with a contract in progress", Reason.OK,
         campaign={"sector": "energy_renovation"}, facts={"contracts": (contract(),)}),
    Case("CPF training", Reason.SECTOR_BANNED, campaign={"sector": "cpf_training"}),
    Case("home adaptation", Reason.SECTOR_BANNED, campaign={"sector": "home_adaptation"}),
    # --- caller id --------------------------------------------------------------------
    Case("automated dialer presenting a mobile (06)", Reason.CALLER_ID_FORBIDDEN,
         campaign={"automated": True, "caller_id": "06 11 22 33 44"}),
    Case("automated dialer presenting a reserved range", Reason.OK,
         campaign={"automated": True, "caller_id": METRO_CLI}),
    Case("the attempt's caller id overrides the campaign's", Reason.CALLER_ID_FORBIDDEN,
         campaign={"automated": True, "caller_id": METRO_CLI}, caller_id="0712345678"),
    Case("automated dialer with a withheld number", Reason.CALLER_ID_FORBIDDEN,
         campaign={"automated": True, "caller_id": None}),
    Case("automated dialer, ordinary landline", Reason.CALLER_ID_FORBIDDEN,
         campaign={"automated": True, "caller_id": "01 23 45 67 89"}),
    Case("overseas callee needs the overseas range", Reason.CALLER_ID_FORBIDDEN,
         number=REUNION_FIXED, e164="+262262161234", now=paris(2026, 12, 1, 11, 0),
         campaign={"automated": True, "caller_id": METRO_CLI}),
    Case("Réunion callee, Réunion range", Reason.OK, number=REUNION_FIXED,
         e164="+262262161234", now=paris(2026, 12, 1, 11, 0),
         campaign={"automated": True, "caller_id": "+33947800001"}),
    Case("manual campaigns are not bound by the ARCEP ranges", Reason.OK,
         campaign={"caller_id": "06 11 22 33 44"}),
    # --- opposition and lists -----------------------------------------------------------
    Case("on the internal opposition list", Reason.OPPOSITION,
         facts={"oppositions": (OppositionEntry("internal"),)}),
    Case("the internal list still blocks under FR-2026, consent or not", Reason.OPPOSITION,
         facts={"oppositions": (OppositionEntry("internal"),)}),
    Case("FR-2026: a Bloctel entry no longer blocks a consumer who gave consent", Reason.OK,
         facts={"oppositions": (OppositionEntry("bloctel"),)}),
    Case("FR-2023: a stale Bloctel file", Reason.LIST_STALE, now=paris(2026, 3, 3, 11, 0),
         facts={"lists": (ListInfo("opposition:bloctel", 3, paris(2026, 1, 5, 9, 0), 10),)},
         pack_id="FR-2023"),
    Case("FR-2023: no Bloctel file at all", Reason.LIST_STALE, now=paris(2026, 3, 3, 11, 0),
         facts={"lists": ()}, pack_id="FR-2023"),
    Case("FR-2023: opt-out, no consent needed", Reason.OK, now=paris(2026, 3, 3, 11, 0),
         facts={"consents": ()}, pack_id="FR-2023"),
    # --- suppressions -------------------------------------------------------------------
    Case("FR-2023: refused 10 days ago, 60-day cooldown with a known end",
         Reason.REFUSAL_COOLDOWN, now=paris(2026, 3, 3, 11, 0), pack_id="FR-2023",
         facts={"suppressions": (Suppression("acme", paris(2026, 2, 21, 11, 0), None),)},
         retry_after_s=51 * 24 * H - 2 * H),  # 60 full days: free 23 Apr 00:00, window 10:00 CEST
    Case("FR-2023: refused 61 days ago", Reason.OK, now=paris(2026, 3, 3, 11, 0),
         pack_id="FR-2023",
         facts={"suppressions": (Suppression("acme", paris(2025, 12, 31, 11, 0), None),)}),
    Case("FR-2026: refused 90 days ago, no consent since", Reason.REFUSAL_COOLDOWN,
         facts={"suppressions": (Suppression("acme", TUE - 90 * DAY, None),)}),
    Case("FR-2026: refused 90 days ago, new consent since", Reason.OK,
         facts={"suppressions": (Suppression("acme", TUE - 90 * DAY, None),),
                "consents": (consent(collected_at=TUE - 10 * DAY),)}),
    Case("FR-2026: refused 20 days ago, new consent since: 60 days still apply",
         Reason.REFUSAL_COOLDOWN,
         facts={"suppressions": (Suppression("acme", TUE - 20 * DAY, None),),
                "consents": (consent(collected_at=TUE - 10 * DAY),)},
         retry_after_s=40 * 24 * H + 23 * H + 30 * 60),  # day 60 is a Sunday: Monday 10:00
    Case("another professional's refusal does not count", Reason.OK,
         facts={"suppressions": (Suppression("globex", TUE - 5 * DAY, None),)}),
    Case("FR: an abandoned-call suppression has no cooldown", Reason.OK,
         facts={"suppressions": (
             Suppression("acme", TUE - timedelta(hours=1), None, "abandoned"),)}),
    # --- campaign counters --------------------------------------------------------------
    Case("abandon ratio 1/20 = 5 %", Reason.ABANDON_RATE,
         facts={"campaign": CampaignStats(answered=20, abandoned=1)}),
    Case("abandon ratio 3/100 = 3 % is at the limit, not above", Reason.OK,
         facts={"campaign": CampaignStats(answered=100, abandoned=3)}),
    Case("abandon ratio 5/10: few answered calls still count (floor of 20)", Reason.ABANDON_RATE,
         facts={"campaign": CampaignStats(answered=10, abandoned=5)}),
    Case("pacing: 30 attempts in the last minute, limit 30", Reason.PACING,
         campaign={"max_attempts_per_minute": 30},
         facts={"campaign": CampaignStats(attempts_last_minute=30)}),
    Case("pacing: 29 attempts in the last minute, limit 30", Reason.OK,
         campaign={"max_attempts_per_minute": 30},
         facts={"campaign": CampaignStats(attempts_last_minute=29)}),
]


def run(case: Case) -> Decision:
    pol = policy(**case.campaign)
    base = facts(case.now, case.e164)
    changes = dict(case.facts)
    if "consents" not in changes:
        changes["consents"] = tuple(replace(c, e164=case.e164) for c in base.consents)
    return decide(attempt(case.number, case.caller_id), replace(base, **changes), pol, case.now)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case) -> None:
    decision = run(case)
    assert decision.reason is case.reason, decision.trace
    assert decision.verdict is (Verdict.ALLOW if case.reason is Reason.OK else Verdict.BLOCK)
    assert decision.e164 == case.e164
    assert decision.retry_after_s == case.retry_after_s, decision.trace
    assert decision.pack_id == (case.pack_id or "FR-2026")
    assert decision.trace[-1].startswith(f"verdict: {decision.verdict}")
    assert not any(case.e164 in line for line in decision.trace)  # no personal data in trace


def test_switch_between_packs_at_midnight_11_august_2026() -> None:
    """A Guadeloupe callee, no consent: 17:59:59 / 18:00 local, Monday 10 August."""
    before = datetime(2026, 8, 10, 23, 59, 59, tzinfo=PARIS)
    after = paris(2026, 8, 11, 0, 0)
    gp = "+590590201234"
    pol = policy()
    old = decide(attempt(GUADELOUPE_FIXED), facts(before, gp, consents=()), pol, before)
    new = decide(attempt(GUADELOUPE_FIXED), facts(after, gp, consents=()), pol, after)
    assert (old.pack_id, old.verdict, old.reason) == ("FR-2023", Verdict.ALLOW, Reason.OK)
    assert (new.pack_id, new.verdict, new.reason) == ("FR-2026", Verdict.BLOCK, Reason.NO_CONSENT)
    assert old.pack_hash != new.pack_hash
    assert old.local_times == ("2026-08-10T17:59:59-04:00",)
    # in Paris both instants are at night, whichever pack applies
    early = (consent(collected_at=paris(2026, 8, 1, 12, 0)),)
    for now, pack_id in ((before, "FR-2023"), (after, "FR-2026")):
        metro = decide(attempt(), facts(now, consents=early), pol, now)
        assert (metro.pack_id, metro.reason) == (pack_id, Reason.OUTSIDE_HOURS)


def test_rule_order_picks_the_first_reason_and_traces_every_rule() -> None:
    now = paris(2026, 12, 5, 11, 0)  # Saturday
    f = facts(now, consents=(), oppositions=(OppositionEntry("internal"),),
              campaign=CampaignStats(answered=20, abandoned=5))
    d = decide(attempt(), f, policy(sector="energy_renovation"), now)
    assert d.reason is Reason.SECTOR_BANNED and d.retry_after_s is None
    rules = [line.split(":")[0] for line in d.trace]
    for name in ("number", "campaign", "pack", "sector", "caller id", "opposition", "lists",
                 "legal basis", "suppression", "windows", "frequency", "abandon", "pacing",
                 "verdict"):
        assert name in rules
    assert "first of 5 blocking rule(s)" in d.trace[-1]


def test_retry_waits_for_every_temporal_obstacle() -> None:
    """Outside hours and capped: retry when the slot frees AND a window is open."""
    now = paris(2026, 12, 1, 21, 0)
    oldest = paris(2026, 11, 3, 15, 0)  # frees Thursday 3 Dec 15:00
    f = facts(now, attempts=(oldest, now - 3 * DAY, now - 2 * DAY, now - DAY))
    d = decide(attempt(), f, policy(), now)
    assert d.reason is Reason.OUTSIDE_HOURS
    assert d.retry_after_s == int((paris(2026, 12, 3, 15, 0) - now).total_seconds())
    assert (d.attempts_seen, d.attempts_limit, d.attempt_window_s) == (4, 4, 30 * 86400)


def test_retry_is_unknown_when_any_obstacle_has_no_end() -> None:
    now = paris(2026, 12, 1, 21, 0)
    d = decide(attempt(), facts(now, consents=()), policy(), now)
    assert d.reason is Reason.NO_CONSENT and d.retry_after_s is None


def test_decision_records_the_proof() -> None:
    now = TUE
    lists = fresh_lists(now, "opposition:bloctel", "opposition:internal")
    d = decide(attempt(), facts(now, lists=lists, contracts=(contract(),)), policy(), now)
    assert d.allowed and d.consent_id == "c1" and d.contract_id == "k1"
    assert d.zones == ("Europe/Paris",)
    assert d.local_times == ("2026-12-01T10:30:00+01:00",)
    assert d.list_versions == (("opposition:bloctel", 7, 2 * 86400),
                               ("opposition:internal", 7, 2 * 86400))
    assert len(d.pack_hash) == 64


@pytest.mark.parametrize(
    ("number", "campaign_id", "changes", "now", "reason"),
    [
        ("06 12", "promo", {}, TUE, Reason.INVALID_NUMBER),
        (METRO_MOBILE, "nope", {}, TUE, Reason.CAMPAIGN_UNKNOWN),
        (METRO_MOBILE, "promo", {"paused": True}, TUE, Reason.CAMPAIGN_PAUSED),
        (METRO_MOBILE, "promo", {"jurisdiction": "DE"}, TUE, Reason.NO_POLICY),
        (METRO_MOBILE, "promo", {}, paris(2020, 1, 7, 11, 0), Reason.NO_POLICY),
    ],
)
def test_early_blocks(number: str, campaign_id: str, changes: dict[str, Any], now: datetime,
                      reason: Reason) -> None:
    a = replace(attempt(number), campaign_id=campaign_id)
    early = plan(a, policy(**changes), now)
    assert isinstance(early, Decision)
    assert (early.verdict, early.reason, early.retry_after_s) == (Verdict.BLOCK, reason, None)
    assert decide(a, Facts(), policy(**changes), now) == early


def test_plan_tells_the_service_what_to_load() -> None:
    p = plan(attempt(RE_YT_MOBILE), policy(), TUE)
    assert isinstance(p, Plan)
    assert (p.e164, p.zones, p.region) == ("+262692123456",
                                           ("Indian/Mayotte", "Indian/Reunion"), "RE")
    assert p.pack.id == "FR-2026" and p.campaign.professional == "acme"
    assert p.pack.frequency.window_s == 30 * 86400 and p.pack.abandon.window_s == 86400


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide(attempt(), Facts(), policy(), datetime(2026, 12, 1, 10, 30))
    with pytest.raises(ValueError, match="aware"):
        plan(attempt(), policy(), datetime(2026, 12, 1, 10, 30))


# --- other jurisdictions ------------------------------------------------------------------


def test_uk_pack() -> None:
    now = datetime.fromisoformat("2026-12-05T20:30:00+00:00")  # Saturday, 20:30 London
    pol = policy(jurisdiction="UK", caller_id="+442079460001")
    uk = "+442079460000"
    ok = decide(attempt("+44 20 7946 0000"), facts(now, uk, consents=()), pol, now)
    assert (ok.pack_id, ok.reason) == ("UK-PECR", Reason.OK)
    late = now + timedelta(hours=1)
    assert decide(attempt("+44 20 7946 0000"), facts(late, uk), pol, late).reason is (
        Reason.OUTSIDE_HOURS)
    stale = facts(now, uk, consents=(), lists=(ListInfo("opposition:tps", 1, now - 29 * DAY, 5),))
    assert decide(attempt("+44 20 7946 0000"), stale, pol, now).reason is Reason.LIST_STALE
    noon = now - timedelta(hours=8, minutes=30)
    abandoned = facts(noon, uk, suppressions=(
        Suppression("acme", noon - timedelta(hours=71), None, "abandoned"),))
    d = decide(attempt("+44 20 7946 0000"), abandoned, pol, noon)
    assert d.reason is Reason.REFUSAL_COOLDOWN and d.retry_after_s == H  # 72 h after
    withheld = decide(attempt("+44 20 7946 0000"), facts(now, uk),
                      policy(jurisdiction="UK", caller_id=None), now)
    assert withheld.reason is Reason.CALLER_ID_FORBIDDEN  # CLI required on every call


def test_us_pack_uses_the_callee_zone() -> None:
    now = datetime.fromisoformat("2026-12-02T02:30:00+00:00")  # 21:30 New York, 18:30 LA
    pol = policy(jurisdiction="US", caller_id="+12125550100")
    ny = decide(attempt("+1 212 555 0123"), facts(now, "+12125550123"), pol, now)
    la = decide(attempt("+1 213 555 0123"), facts(now, "+12135550123"), pol, now)
    assert (ny.pack_id, ny.reason, ny.retry_after_s) == ("US-FEDERAL", Reason.OUTSIDE_HOURS,
                                                         int(10.5 * H))
    assert la.reason is Reason.OK


def test_withdrawing_a_consent_does_not_move_the_callee_clock() -> None:
    """FR-2023 (opt-out): the consent's address zone keeps applying once it is withdrawn."""
    now = paris(2026, 3, 3, 10, 30)  # 13:30 in Réunion
    record = consent(collected_at=paris(2026, 1, 5, 12, 0), timezone="Indian/Reunion")
    before = decide(attempt(), facts(now, consents=(record,)), policy(), now)
    gone = replace(record, withdrawn_at=paris(2026, 2, 1, 12, 0))
    after = decide(attempt(), facts(now, consents=(gone,)), policy(), now)
    assert (before.pack_id, before.reason) == ("FR-2023", Reason.OUTSIDE_HOURS)
    assert (after.reason, after.zones) == (Reason.OUTSIDE_HOURS, ("Indian/Reunion",))
