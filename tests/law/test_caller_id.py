"""Caller id: the texts each assertion enforces are named in the test names."""

from __future__ import annotations

from datetime import datetime

from gateway.core.engine import decide
from gateway.core.model import Reason
from tests.core.support import attempt, facts, paris, policy

TUE = paris(2026, 12, 1, 10, 30)  # FR-2026 in force
TUE_2025 = paris(2025, 12, 2, 10, 30)  # FR-2023 in force


def test_l221_17_no_masked_number_on_a_manual_campaign_fr_2026() -> None:
    """Art. L.221-17 C. consom.: no masked number on any telephone prospecting call."""
    for withheld in (None, "", "anonymous", "Withheld", "private"):
        manual = policy(automated=False, caller_id=None)
        d = decide(attempt(caller_id=withheld), facts(TUE), manual, TUE)
        assert d.reason is Reason.CALLER_ID_FORBIDDEN, withheld
        assert any("L.221-17" in line for line in d.trace)


def test_l221_17_no_masked_number_on_a_manual_campaign_fr_2023() -> None:
    d = decide(attempt(), facts(TUE_2025), policy(automated=False, caller_id=None), TUE_2025)
    assert d.reason is Reason.CALLER_ID_FORBIDDEN


def test_arcep_2022_1583_ranges_stay_automated_only() -> None:
    """A manual campaign may present a geographic number outside the ARCEP ranges."""
    d = decide(attempt(caller_id="+33140000000"), facts(TUE), policy(automated=False), TUE)
    assert d.reason is Reason.OK
    auto = decide(attempt(caller_id="+33140000000"), facts(TUE), policy(automated=True), TUE)
    assert auto.reason is Reason.CALLER_ID_FORBIDDEN


def test_uk_caller_id_written_nationally_is_read_as_a_uk_number() -> None:
    """PECR reg. 21B / Ofcom: a valid UK CLI written as 020... is a UK number, not French."""
    now = datetime.fromisoformat("2026-12-01T11:00:00+00:00")
    pol = policy(jurisdiction="UK", caller_id="020 7946 0001", automated=True)
    d = decide(attempt("+44 20 7946 0000"), facts(now, "+442079460000"), pol, now)
    assert d.reason is Reason.OK
    assert any("+442079460001" in line for line in d.trace)


def test_us_caller_id_written_nationally_is_read_as_a_us_number() -> None:
    """47 CFR 64.1601(e): caller id transmitted; (212) 555-0100 is a US number."""
    now = datetime.fromisoformat("2026-12-01T16:00:00+00:00")
    pol = policy(jurisdiction="US", caller_id="(212) 555-0100", automated=True)
    d = decide(attempt("+1 212 555 0123"), facts(now, "+12125550123"), pol, now)
    assert d.reason is Reason.OK
    assert any("+12125550100" in line for line in d.trace)
