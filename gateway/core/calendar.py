"""Calling windows, public holidays and time zones (the callee's clock).

An instant is *legal in a zone* when, in that zone's local time, the day is not a
public holiday of the territories using the zone and the time of day falls in one of
the pack's windows for that weekday (half-open ``[start, end)``). With several candidate
zones, an instant is legal only if it is legal in every one (intersection).

Holiday tables come from the ``holidays`` data library and are cached per
(country, subdivision, year) and per (pack settings, zone, year): ``decide`` never
builds a ``holidays`` object on the hot path after the first call of a year.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple
from zoneinfo import ZoneInfo

import holidays

from gateway.core.pack import HolidaySettings, Pack, WindowSettings

__all__ = [
    "NEXT_LEGAL_HORIZON_DAYS",
    "ZoneCheck",
    "check_zone",
    "holidays_for",
    "is_legal",
    "next_legal_instant",
    "require_aware",
    "zone_info",
]

#: How far ahead ``next_legal_instant`` looks by default.
NEXT_LEGAL_HORIZON_DAYS = 15
#: Answers of ``next_legal_instant`` kept (per zones, pack windows and holidays, second).
NEXT_LEGAL_CACHE_SIZE = 4096
METROPOLITAN = "metropolitan"


def require_aware(value: datetime, name: str = "now") -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got a naive one")


@lru_cache(maxsize=1024)
def zone_info(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=1024)
def _library_table(country: str, subdivision: str | None, year: int) -> Mapping[date, str]:
    table = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return MappingProxyType(dict(table.items()))


@lru_cache(maxsize=4096)
def holidays_for(
    settings: HolidaySettings, zone: str, year: int, alsace: bool = True
) -> Mapping[date, str]:
    """Public holidays (date -> name) blocking calls to a callee in ``zone`` in ``year``.

    National holidays of the pack's country, plus, for the territories mapped to the
    zone, their local holidays (``overseas_local_holidays``), Alsace-Moselle's for
    metropolitan zones (``alsace_moselle_for_metropolitan``) and, with them, the
    subdivision's ``extra_dates`` and ``extra_days``.
    An unmapped zone gets the national holidays only. With ``subdivision`` (a US state
    layer), every zone gets that subdivision's table, its ``extra_dates`` and its
    ``extra_days``.
    """
    if not settings.block:
        return MappingProxyType({})
    extras = dict(settings.extra_dates)
    days = dict(settings.extra_days)
    if settings.subdivision is not None:  # a state layer: that state's days, every zone
        merged = dict(_library_table(settings.country, settings.subdivision, year))
        _merge_extras(merged, settings.subdivision, year, extras, days, "state legal holiday")
        return MappingProxyType(merged)
    merged = dict(_library_table(settings.country, None, year))
    for subdivision in settings.subdivisions_for(zone) or ():
        if subdivision == METROPOLITAN:
            # ``alsace``: the callee can be in Alsace-Moselle (not a geographic number of
            # another metropolitan area)
            if not (settings.alsace_moselle_for_metropolitan and alsace):
                continue
            local = _library_table(settings.country, settings.alsace_moselle_subdivision, year)
            _merge(merged, local.items(), "Alsace-Moselle")
        elif settings.overseas_local_holidays:
            if subdivision not in settings.law_dates_only:
                local = _library_table(settings.country, subdivision, year)
                _merge(merged, local.items(), subdivision)
        else:
            continue
        # extra dates follow the setting of the local holidays they complete
        _merge_extras(merged, subdivision, year, extras, days, "local public holiday")
    return MappingProxyType(merged)


def _merge_extras(
    into: dict[date, str], subdivision: str, year: int,
    extras: Mapping[str, tuple[tuple[int, int], ...]],
    days: Mapping[str, tuple[date, ...]], name: str,
) -> None:
    """A subdivision's ``extra_dates`` (every year) and ``extra_days`` (of ``year``)."""
    _merge(into, [(date(year, m, d), name) for m, d in extras.get(subdivision, ())],
           subdivision)
    _merge(into, [(d, name) for d in days.get(subdivision, ()) if d.year == year],
           subdivision)


def _merge(into: dict[date, str], items: Iterable[tuple[date, str]], where: str) -> None:
    for day, name in items:
        if day not in into:
            into[day] = f"{name} ({where})"


class ZoneCheck(NamedTuple):
    """One zone's clock at an instant against a pack's windows and holidays (a named
    tuple: one or more per decision, built cheaply)."""

    zone: str
    local: datetime
    holiday: str | None  # name of the public holiday of the local date, if any
    in_window: bool  # local time of day inside a window of the local weekday

    @property
    def legal(self) -> bool:
        return self.holiday is None and self.in_window


def check_zone(pack: Pack, zone: str, at: datetime, alsace: bool = True) -> ZoneCheck:
    return _check(pack.windows, pack.holidays, zone, at, alsace)


def _check(windows: WindowSettings, settings: HolidaySettings, zone: str, at: datetime,
           alsace: bool) -> ZoneCheck:
    local = at.astimezone(zone_info(zone))
    holiday = holidays_for(settings, zone, local.year, alsace).get(local.date())
    return ZoneCheck(zone, local, holiday, _in_window(windows, local))


def _in_window(windows: WindowSettings, local: datetime) -> bool:
    second = local.hour * 3600 + local.minute * 60 + local.second
    return any(start <= second < end for start, end in windows.weekly[local.weekday()])


def is_legal(zones: Iterable[str], pack: Pack, at: datetime, alsace: bool = True) -> bool:
    return all(check_zone(pack, zone, at, alsace).legal for zone in zones)


def next_legal_instant(
    zones: Iterable[str], pack: Pack, start: datetime,
    horizon_days: int = NEXT_LEGAL_HORIZON_DAYS, alsace: bool = True,
) -> datetime | None:
    """Earliest instant >= ``start`` legal in every zone, or None within the horizon.

    Legality of one zone only changes at a window boundary, at local midnight or at a
    UTC-offset transition, so the answer is ``start`` itself or a window start / offset
    transition of some zone: those candidates are checked in order. Returned in UTC,
    to the second (rounded up).
    """
    require_aware(start, "start")
    zone_list = tuple(zones)
    if not zone_list:
        return None
    return _next_legal(zone_list, pack.windows, pack.holidays,
                       _ceil_second(start.astimezone(UTC)), horizon_days, alsace)


@lru_cache(maxsize=NEXT_LEGAL_CACHE_SIZE)
def _next_legal(zones: tuple[str, ...], windows: WindowSettings, settings: HolidaySettings,
                start_utc: datetime, horizon_days: int, alsace: bool) -> datetime | None:
    """:func:`next_legal_instant` from a whole UTC second: a pure function of its arguments,
    cached (the calls of one second, or a scrub's leads at one instant, ask the same)."""
    end_utc = start_utc + timedelta(days=horizon_days)
    if _legal(zones, windows, settings, start_utc, alsace):
        return start_utc
    # lazily merged per-zone streams (each in chronological order): stop at the first hit
    streams = [_zone_candidates(windows, z, start_utc, end_utc) for z in zones]
    previous = None
    for instant in heapq.merge(*streams):
        if instant > end_utc:
            return None
        if instant <= start_utc or instant == previous:
            continue
        previous = instant
        if _legal(zones, windows, settings, instant, alsace):
            return instant
    return None


def _legal(zones: tuple[str, ...], windows: WindowSettings, settings: HolidaySettings,
           at: datetime, alsace: bool) -> bool:
    return all(_check(windows, settings, zone, at, alsace).legal for zone in zones)


def _zone_candidates(
    windows: WindowSettings, zone: str, start_utc: datetime, end_utc: datetime
) -> Iterator[datetime]:
    tz = zone_info(zone)
    first = start_utc.astimezone(tz).date() - timedelta(days=1)
    last = end_utc.astimezone(tz).date() + timedelta(days=1)
    day = first
    while day <= last:
        found: set[datetime] = set()
        midnight = datetime.combine(day, time(), tz).astimezone(UTC)
        next_midnight = datetime.combine(day + timedelta(days=1), time(), tz).astimezone(UTC)
        if midnight.astimezone(tz).utcoffset() != next_midnight.astimezone(tz).utcoffset():
            found.add(_transition(tz, midnight, next_midnight))
        for begin, _end in windows.weekly[day.weekday()]:
            local = datetime.combine(day, time(), tz) + timedelta(seconds=begin)
            found.add(local.astimezone(UTC))
            found.add(local.replace(fold=1).astimezone(UTC))
        yield from sorted(found)
        day += timedelta(days=1)


def _transition(tz: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """First UTC second at which the offset differs from the one at ``low``."""
    before = low.astimezone(tz).utcoffset()
    lo, hi = int(low.timestamp()), int(high.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def _ceil_second(value: datetime) -> datetime:
    if value.microsecond:
        return value.replace(microsecond=0) + timedelta(seconds=1)
    return value
