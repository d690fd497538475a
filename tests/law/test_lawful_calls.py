"""Lawful calls the gateway must not block (each test names the text that allows it)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from gateway.core.engine import decide
from gateway.core.model import ContractRecord, Decision, ListInfo, OppositionEntry, Reason
from tests.core.support import attempt, consent, contract, facts, paris, policy

TUE_2025 = paris(2025, 12, 2, 10, 30)  # FR-2023 in force
BLOCTEL = (OppositionEntry("bloctel"),)


def test_old_l223_1_bloctel_does_not_forbid_calls_within_a_contract_in_progress() -> None:
    """Old L.223-1 C. consom.: Bloctel does not apply to a contract in progress; no fresh
    Bloctel file is needed for such a call."""
    f = facts(TUE_2025, consents=(), contracts=(contract(),), oppositions=BLOCTEL, lists=())
    d = decide(attempt(), f, policy(), TUE_2025)
    assert d.reason is Reason.OK, d.trace
    assert any("contract k1" in line for line in d.trace)
    assert decide(attempt(), facts(TUE_2025, oppositions=BLOCTEL), policy(),
                  TUE_2025).reason is Reason.OPPOSITION


def test_old_l223_5_bloctel_does_not_forbid_press_subscription_calls() -> None:
    f = facts(TUE_2025, consents=(), oppositions=BLOCTEL, lists=())
    assert decide(attempt(), f, policy(press=True), TUE_2025).reason is Reason.OK
    internal = facts(TUE_2025, oppositions=(OppositionEntry("internal"),))
    assert decide(attempt(), internal, policy(press=True), TUE_2025).reason is Reason.OPPOSITION


def test_d223_9_al_2_express_prior_consent_lifts_the_hours_fr_2023() -> None:
    """D.223-9 al. 2: a call outside the days and hours with the consumer's express prior
    consent (an agreed slot on the consent record) is lawful."""
    evening = paris(2025, 12, 2, 21, 0)
    slot = consent(collected_at=paris(2025, 11, 1, 12, 0),
                   slot=(paris(2025, 12, 2, 20, 30), paris(2025, 12, 2, 21, 30)))
    assert decide(attempt(), facts(evening, consents=(slot,)), policy(),
                  evening).reason is Reason.OK
    assert decide(attempt(), facts(evening), policy(), evening).reason is Reason.OUTSIDE_HOURS


def test_l223_1_2026_bloctel_entry_no_longer_blocks_a_consumer_who_consented() -> None:
    now = paris(2026, 12, 1, 10, 30)
    assert decide(attempt(), facts(now, oppositions=BLOCTEL), policy(), now).reason is Reason.OK


def test_pecr_reg_21_4_consent_lifts_tps() -> None:
    """PECR reg. 21(4): a subscriber on the TPS who notified the caller of consent may be
    called; without a consent TPS blocks."""
    now = datetime.fromisoformat("2026-12-01T11:00:00+00:00")
    uk, e164 = policy(jurisdiction="UK", caller_id="+442079460001"), "+442079460000"
    tps = (OppositionEntry("tps"),)
    ok = decide(attempt(e164), facts(now, e164, oppositions=tps), uk, now)
    assert ok.reason is Reason.OK
    no = decide(attempt(e164), facts(now, e164, consents=(), oppositions=tps), uk, now)
    assert no.reason is Reason.OPPOSITION


def test_tsr_310_4_b_1_iii_b_written_consent_or_ebr_lifts_the_national_dnc() -> None:
    """16 CFR 310.4(b)(1)(iii)(B)(1)-(2), 47 CFR 64.1200(f)(5): a signed written agreement
    or an established business relationship (18 months after the last purchase)."""
    now = datetime.fromisoformat("2026-12-01T16:00:00+00:00")
    us, e164 = policy(jurisdiction="US", caller_id="+12125550100"), "+12125550123"
    dnc = (OppositionEntry("ndnc"),)
    assert decide(attempt(e164), facts(now, e164, oppositions=dnc), us, now).reason is Reason.OK
    bought = contract(e164, started_at=now - timedelta(days=400),
                      ends_at=now - timedelta(days=365))
    ebr = facts(now, e164, consents=(), contracts=(bought,), oppositions=dnc,
                lists=(ListInfo("opposition:ndnc", 1, now, 1),))
    assert decide(attempt(e164), ebr, us, now).reason is Reason.OK
    old = contract(e164, started_at=now - timedelta(days=800), ends_at=now - timedelta(days=600))
    expired = facts(now, e164, consents=(), contracts=(old,), oppositions=dnc)
    assert decide(attempt(e164), expired, us, now).reason is Reason.OPPOSITION


US_NOW = datetime.fromisoformat("2026-12-01T16:00:00+00:00")  # 11:00 in New York
US_E164 = "+12125550123"


def _ndnc(*records: ContractRecord, now: datetime = US_NOW) -> Decision:
    us = policy(jurisdiction="US", caller_id="+12125550100")
    f = facts(now, US_E164, consents=(), contracts=records, oppositions=(OppositionEntry("ndnc"),),
              lists=(ListInfo("opposition:ndnc", 1, now, 1),))
    return decide(attempt(US_E164), f, us, now)


def test_47_cfr_64_1200_f_5_ebr_three_months_after_an_inquiry_lifts_the_national_dnc() -> None:
    """47 CFR 64.1200(f)(5), 16 CFR 310.2: an inquiry or application lifts the National DNC
    for the 3 months after it (calendar months: 1 September -> 1 December); an inquiry is
    no purchase and no contract in progress."""
    asked = datetime.fromisoformat("2026-09-01T16:00:01+00:00")
    inquiry = replace(contract(US_E164, started_at=asked), kind="inquiry")
    d = _ndnc(inquiry)
    assert d.reason is Reason.OK and d.contract_id is None
    assert any("inquiry k1 of 2026-09-01, less than 3 month(s) ago" in line for line in d.trace)
    assert _ndnc(inquiry, now=asked + timedelta(days=91)).reason is Reason.OPPOSITION
    # a French campaign: an inquiry is not the contract in progress of L.223-1
    fr_now = paris(2026, 12, 1, 10, 30)
    mine = replace(contract(started_at=fr_now - timedelta(days=3)), kind="inquiry")
    fr = decide(attempt(), facts(fr_now, consents=(), contracts=(mine,)), policy(), fr_now)
    assert fr.reason is Reason.NO_CONSENT


def test_47_cfr_64_1200_f_5_ebr_eighteen_calendar_months_after_the_purchase() -> None:
    """47 CFR 64.1200(f)(5): 18 months after the last purchase or transaction, counted in
    calendar months: a contract ended on 31 August 2025 lifts the National DNC until 28
    February 2027 (31 February does not exist: the earlier day), not for 548 days."""
    ended = datetime.fromisoformat("2025-08-31T15:00:00+00:00")
    bought = contract(US_E164, started_at=ended - timedelta(days=30), ends_at=ended)
    last_day = datetime.fromisoformat("2027-02-27T16:00:00+00:00")
    ok = _ndnc(bought, now=last_day)
    assert ok.reason is Reason.OK
    assert any("ends 2027-02-28T15:00:00+00:00" in line for line in ok.trace)
    after = datetime.fromisoformat("2027-03-01T16:00:00+00:00")  # day 547 < 548
    assert _ndnc(bought, now=after).reason is Reason.OPPOSITION


def test_decret_2026_662_consent_lasts_one_calendar_year_not_365_days() -> None:
    """[U] décret 2026-662: a consent lasts at most one year: collected 1 March 2027, it
    still holds on 29 February 2028 (365 days later) and ends on 1 March 2028."""
    record = consent(collected_at=paris(2027, 3, 1, 9, 0),
                     expires_at=paris(2030, 1, 1, 0, 0))
    leap_day = paris(2028, 2, 29, 10, 30)
    assert decide(attempt(), facts(leap_day, consents=(record,)), policy(),
                  leap_day).reason is Reason.OK
    after = paris(2028, 3, 1, 10, 30)
    assert decide(attempt(), facts(after, consents=(record,)), policy(),
                  after).reason is Reason.CONSENT_EXPIRED


def test_consent_collected_on_29_february_ends_on_28_february() -> None:
    record = consent(collected_at=paris(2028, 2, 29, 9, 0), expires_at=paris(2031, 1, 1, 0, 0))
    day = paris(2029, 2, 28, 10, 30)  # a Wednesday, after 09:00
    assert decide(attempt(), facts(day, consents=(record,)), policy(),
                  day).reason is Reason.CONSENT_EXPIRED


def test_l223_1_contract_exception_covers_related_or_complementary_offers() -> None:
    """L.223-1 (loi 2025-594): the contract exception covers offers related or
    complementary to the contract's object; the campaign declares the categories."""
    now = paris(2026, 12, 1, 10, 30)
    energy_contract = contract(category="energy_supply")
    f = facts(now, consents=(), contracts=(energy_contract,))
    assert decide(attempt(), f, policy(), now).reason is Reason.NO_CONSENT
    related = policy(related_categories=("energy_supply",))
    d = decide(attempt(), f, related, now)
    assert d.reason is Reason.OK and d.contract_id == "k1"
