"""Overseas public holidays: what the law gives each territory, no more."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from gateway.core.calendar import holidays_for
from gateway.core.engine import decide
from gateway.core.model import Decision, Reason
from gateway.packs import builtin_packs
from tests.core.support import attempt, consent, contract, facts, paris, policy

FR = next(p for p in builtin_packs() if p.id == "FR-2026").holidays


@pytest.mark.parametrize("zone", ["America/Guadeloupe", "America/Martinique",
                                  "America/Marigot"])
@pytest.mark.parametrize("day", [date(2027, 3, 4), date(2027, 3, 26), date(2027, 7, 21)])
def test_l3422_2_no_mi_careme_good_friday_or_21_july_beyond_the_law(zone: str,
                                                                     day: date) -> None:
    """Code du travail L.3422-2 gives Guadeloupe, Martinique and Saint-Martin their
    abolition day; Mi-Carême (4 Mar 2027), Good Friday (26 Mar) and 21 July are not
    public holidays there under the law, so calls are not blocked on them."""
    assert day not in holidays_for(FR, zone, 2027)


def test_saint_martin_abolition_day_is_28_may() -> None:
    table = holidays_for(FR, "America/Marigot", 2027)
    assert date(2027, 5, 28) in table
    assert date(2027, 5, 27) not in table


def test_abolition_days_stay_blocked() -> None:
    assert date(2027, 5, 27) in holidays_for(FR, "America/Guadeloupe", 2027)
    assert date(2027, 5, 22) in holidays_for(FR, "America/Martinique", 2027)


def test_alsace_moselle_days_only_where_the_callee_can_be_in_alsace_moselle() -> None:
    """Good Friday and 26 December are public holidays in Alsace-Moselle only (Code du
    travail L.3134-13): a Paris-area fixed number (01) is called on Good Friday; a 03
    (north-east) number or a mobile, which can be in Alsace-Moselle, is not."""
    good_friday = paris(2027, 3, 26, 10, 30)
    paris_fixed, north_east, mobile = "+33140000000", "+33388000000", "+33612345678"
    assert decide(attempt(paris_fixed), facts(good_friday, paris_fixed), policy(),
                  good_friday).reason is Reason.OK
    for number in (north_east, mobile):
        assert decide(attempt(number), facts(good_friday, number), policy(),
                      good_friday).reason is Reason.HOLIDAY


def test_l3134_13_the_consumers_address_decides_alsace_moselle() -> None:
    """Code du travail L.3134-13 (Good Friday, 26 December in Moselle, Bas-Rhin, Haut-Rhin):
    the customer's address (`address_region` of the consent or contract record) wins over
    the number: a mobile living in Lyon (69) is called on Good Friday, a Paris-area number
    living in Strasbourg (67) is not; the trace says why."""
    good_friday = paris(2027, 3, 26, 10, 30)
    mobile, paris_fixed = "+33612345678", "+33140000000"

    def judged(e164: str, region: str) -> Decision:
        record = replace(consent(e164), address_region=region)
        return decide(attempt(e164), facts(good_friday, e164, consents=(record,)), policy(),
                      good_friday)

    lyon = judged(mobile, "69")
    assert lyon.reason is Reason.OK
    assert any("département 69" in line and "outside Alsace-Moselle" in line
               for line in lyon.trace)
    for region in ("67", "68", "57", "6AE"):
        assert judged(paris_fixed, region).reason is Reason.HOLIDAY
    # a withdrawn consent still says where the customer lives (withdrawing never unblocks)
    withdrawn = replace(consent(mobile), address_region="67",
                        withdrawn_at=paris(2027, 1, 5, 9, 0))
    d = decide(attempt(mobile), facts(good_friday, mobile, consents=(withdrawn,)), policy(),
               good_friday)
    assert d.reason is not Reason.OK
    assert any("département 67" in line for line in d.trace)
    # a contract record gives the address as well
    k = replace(contract(paris_fixed), address_region="67")
    on_contract = decide(attempt(paris_fixed), facts(good_friday, paris_fixed, contracts=(k,)),
                         policy(), good_friday)
    assert on_contract.reason is Reason.HOLIDAY
