"""Calling windows, holidays, DST and next_legal_instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.calendar import check_zone, holidays_for, is_legal, next_legal_instant
from gateway.core.pack import Pack
from gateway.core.policy import load_pack_bytes
from gateway.packs import builtin_packs
from tests.core.support import PARIS, paris
from tests.core.test_policy import fr2026_text


def pack(pack_id: str = "FR-2026") -> Pack:
    return next(p for p in builtin_packs() if p.id == pack_id)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        ("Europe/Paris", date(2027, 5, 17), "Pentecost Monday"),  # Whit Monday
        ("Europe/Paris", date(2026, 7, 14), "National Day"),
        ("Europe/Paris", date(2027, 3, 26), "Good Friday (Alsace-Moselle)"),  # setting ON
        ("Europe/Paris", date(2026, 12, 26), "Saint Stephen's Day (Alsace-Moselle)"),
        ("America/Guadeloupe", date(2027, 5, 27), "local public holiday (971)"),
        ("America/Guadeloupe", date(2027, 10, 9), "Abolition of Slavery (BL)"),  # union
        ("America/Martinique", date(2027, 5, 22), "local public holiday (972)"),
        ("America/Cayenne", date(2027, 6, 10), "Abolition of Slavery (973)"),
        ("Indian/Reunion", date(2026, 12, 20), "Abolition of Slavery (974)"),
        ("Indian/Mayotte", date(2027, 4, 27), "Abolition of Slavery (976)"),
        ("America/Marigot", date(2027, 5, 28), "local public holiday (MF)"),
    ],
)
def test_holidays(zone: str, day: date, expected: str) -> None:
    assert holidays_for(pack().holidays, zone, day.year).get(day) == expected


def test_local_holidays_stay_local() -> None:
    fr = pack().holidays
    assert date(2027, 5, 27) not in holidays_for(fr, "Europe/Paris", 2027)
    assert date(2026, 12, 20) not in holidays_for(fr, "Indian/Mayotte", 2026)
    assert date(2027, 4, 27) not in holidays_for(fr, "Indian/Reunion", 2027)
    # an unmapped zone (a foreign callee under a French campaign) gets national holidays
    assert holidays_for(fr, "Europe/Brussels", 2026).get(date(2026, 7, 14)) == "National Day"


def test_settings_turn_off_the_unsettled_days() -> None:
    text = fr2026_text().replace("alsace_moselle_for_metropolitan = true",
                                 "alsace_moselle_for_metropolitan = false").replace(
        "overseas_local_holidays = true", "overseas_local_holidays = false")
    relaxed = load_pack_bytes(text.encode(), "relaxed.toml").holidays
    assert date(2027, 3, 26) not in holidays_for(relaxed, "Europe/Paris", 2027)
    assert date(2027, 5, 27) not in holidays_for(relaxed, "America/Guadeloupe", 2027)
    assert date(2027, 5, 17) in holidays_for(relaxed, "Europe/Paris", 2027)  # national stays


def test_no_holidays_when_the_pack_does_not_block_them() -> None:
    uk = pack("UK-PECR")
    assert dict(holidays_for(uk.holidays, "Europe/London", 2026)) == {}
    assert is_legal(["Europe/London"], uk, utc(2026, 12, 25, 12, 0))


@pytest.mark.parametrize(
    ("instant", "legal"),
    [
        # Friday 27 March 2026, CET (UTC+1): 10:00 local = 09:00Z
        (utc(2026, 3, 27, 8, 59, 59), False),
        (utc(2026, 3, 27, 9, 0), True),
        (utc(2026, 3, 27, 18, 59, 59), True),
        (utc(2026, 3, 27, 19, 0), False),
        # Monday 30 March 2026, CEST (UTC+2) after the Sunday change: 10:00 local = 08:00Z
        (utc(2026, 3, 30, 7, 59, 59), False),
        (utc(2026, 3, 30, 8, 0), True),
        (utc(2026, 3, 30, 11, 0), False),  # 13:00 local: lunch break
        (utc(2026, 3, 30, 12, 0), True),
        (utc(2026, 3, 30, 17, 59, 59), True),
        (utc(2026, 3, 30, 18, 0), False),
        # Friday 23 October 2026 (CEST) and Monday 26 October 2026 (CET)
        (utc(2026, 10, 23, 8, 0), True),
        (utc(2026, 10, 23, 17, 59, 59), True),
        (utc(2026, 10, 23, 18, 0), False),
        (utc(2026, 10, 26, 8, 30), False),  # 09:30 CET
        (utc(2026, 10, 26, 9, 0), True),
        (utc(2026, 10, 26, 18, 59, 59), True),
        (utc(2026, 10, 26, 19, 0), False),
    ],
)
def test_windows_around_dst_changes(instant: datetime, legal: bool) -> None:
    assert is_legal(["Europe/Paris"], pack(), instant) is legal


def test_zone_check_reports_local_time_and_holiday() -> None:
    check = check_zone(pack(), "Indian/Reunion", paris(2026, 12, 1, 10, 30))
    assert check.local.isoformat() == "2026-12-01T13:30:00+04:00"
    assert (check.holiday, check.in_window, check.legal) == (None, False, False)
    whit = check_zone(pack(), "Europe/Paris", paris(2027, 5, 17, 11, 0))
    assert whit.in_window and whit.holiday == "Pentecost Monday" and not whit.legal


@pytest.mark.parametrize(
    ("zones", "start", "expected"),
    [
        (["Europe/Paris"], paris(2026, 12, 1, 11, 0), paris(2026, 12, 1, 11, 0)),  # now
        (["Europe/Paris"], paris(2026, 12, 1, 13, 0), paris(2026, 12, 1, 14, 0)),
        (["Europe/Paris"], paris(2026, 12, 4, 20, 0), paris(2026, 12, 7, 10, 0)),  # Fri -> Mon
        (["Europe/Paris"], paris(2027, 5, 14, 21, 0), paris(2027, 5, 18, 10, 0)),  # Whit Mon
        (["Indian/Reunion"], paris(2026, 12, 1, 10, 30), paris(2026, 12, 1, 11, 0)),
        (["Indian/Mayotte", "Indian/Reunion"], paris(2026, 12, 1, 10, 30),
         paris(2026, 12, 1, 12, 0)),
        # Friday 27 -> Monday 30 March across the spring change: 10:00 CEST
        (["Europe/Paris"], paris(2026, 3, 27, 20, 0), paris(2026, 3, 30, 10, 0)),
        (["Europe/Paris"], paris(2026, 10, 23, 20, 0), paris(2026, 10, 26, 10, 0)),
    ],
)
def test_next_legal_instant(zones: list[str], start: datetime, expected: datetime) -> None:
    assert next_legal_instant(zones, pack(), start) == expected


def test_next_legal_instant_horizon_and_errors() -> None:
    assert next_legal_instant(["Europe/Paris"], pack(), paris(2026, 12, 4, 20, 0),
                              horizon_days=1) is None
    assert next_legal_instant([], pack(), paris(2026, 12, 4, 20, 0)) is None
    # Paris and Auckland share no window on a weekday: nothing within two weeks
    assert next_legal_instant(["Europe/Paris", "Pacific/Auckland"], pack(),
                              paris(2026, 12, 1, 10, 0)) is None
    with pytest.raises(ValueError, match="aware"):
        next_legal_instant(["Europe/Paris"], pack(), datetime(2026, 12, 1, 10, 0))


def test_next_legal_instant_inside_a_dst_gap() -> None:
    """A window starting in the spring gap opens at the transition itself (03:00 CEST)."""
    text = fr2026_text().replace('mon = ["10:00-13:00", "14:00-20:00"]',
                                 'mon = ["10:00-13:00", "14:00-20:00"]\nsun = ["02:30-04:00"]')
    night = load_pack_bytes(text.encode(), "night.toml")
    start = utc(2026, 3, 29, 0, 0)  # 01:00 CET, Sunday 29 March 2026
    found = next_legal_instant(["Europe/Paris"], night, start)
    assert found == utc(2026, 3, 29, 1, 0)  # 03:00 CEST
    assert found is not None and found.astimezone(PARIS).hour == 3


# --- properties ------------------------------------------------------------------------

ZONES = ["Europe/Paris", "Indian/Reunion", "Indian/Mayotte", "America/Guadeloupe",
         "America/Cayenne", "America/New_York", "Pacific/Tahiti"]
instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                        timezones=st.just(UTC))


def oracle_legal(zone: str, at: datetime) -> bool:
    """Independent re-statement of D.223-9 for one zone (national + local holidays)."""
    local = at.astimezone(ZoneInfo(zone))
    subdivisions = {"Europe/Paris": "57", "Indian/Reunion": "974", "Indian/Mayotte": "976",
                    "America/Cayenne": "973", "Pacific/Tahiti": "PF"}
    if zone == "America/Guadeloupe":
        # national + Saint-Barthélemy's library days + the abolition days the law gives
        # Guadeloupe (27 May) and Saint-Martin (28 May); no Mi-Carême, Good Friday, 21 July
        days = set(holidays.France(subdiv="BL", years=local.year))
        days |= {date(local.year, 5, 27), date(local.year, 5, 28)}
    else:
        days = set(holidays.France(subdiv=subdivisions.get(zone), years=local.year))
    if local.date() in days or local.weekday() >= 5:
        return False
    minutes = local.hour * 60 + local.minute
    return 600 <= minutes < 780 or 840 <= minutes < 1200


@settings(max_examples=400, deadline=None)
@given(instants, st.sampled_from(ZONES))
def test_is_legal_matches_an_independent_oracle(at: datetime, zone: str) -> None:
    assert is_legal([zone], pack(), at) is oracle_legal(zone, at)


@settings(max_examples=60, deadline=None)
@given(instants, st.lists(st.sampled_from(ZONES[:4]), min_size=1, max_size=2, unique=True))
def test_next_legal_instant_is_legal_and_earliest(start: datetime, zones: list[str]) -> None:
    found = next_legal_instant(zones, pack(), start)
    if found is None:
        probe = start
        while probe < start + timedelta(days=15):
            assert not is_legal(zones, pack(), probe)
            probe += timedelta(minutes=30)
        return
    assert found >= start - timedelta(seconds=1)
    assert is_legal(zones, pack(), found)
    probe = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while probe < found:
        assert not is_legal(zones, pack(), probe), probe
        probe += timedelta(minutes=1)
