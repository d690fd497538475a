"""Overseas public holidays: what the law gives each territory, no more."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.core.calendar import holidays_for
from gateway.core.policy import builtin_packs

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
