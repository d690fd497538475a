"""House rules: per-campaign limits stricter than the policy pack, never looser.

``[campaigns.<id>]`` may set (docs/policy.md, "House rules"):

- ``windows``: ``mon`` … ``sun`` arrays of ``"HH:MM-HH:MM"`` in the callee's local time,
  **intersected** with the pack's windows (a range outside the pack's is refused);
- ``abandon_limit``: a ratio below the pack's ``abandon.max_ratio``;
- ``schedule``: the centre's opening hours in the centre's own zone (``zone`` plus
  ``mon`` … ``sun``): outside them every call of the campaign is ``campaign_paused``;
- ``max_attempts_per_day``: attempts by the professional to one number per calendar day
  in the callee's zone, below the pack's cap (``frequency_cap``; the service reserves it
  atomically with the pack's cap).

Pure: no I/O, no clock. The engine applies them through :func:`tighten` (a pack with
the narrower windows and the lower abandon limit, so that every rule, ``retry_after``
and the next legal instant follow them) and :func:`schedule_open`; :func:`explain`
names the house rule that blocked a call and the pack limit it tightens.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from gateway.core.calendar import check_zone, zone_info
from gateway.core.pack import Pack, PolicyError, WindowSettings

__all__ = ["HouseRules", "check_stricter", "day_bounds", "day_cap", "explain", "intersect",
           "parse_house_rules", "schedule_open", "tighten"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KEYS = frozenset({"windows", "abandon_limit", "schedule", "max_attempts_per_day"})
_RANGE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)")


@dataclass(frozen=True, slots=True)
class HouseRules:
    windows: WindowSettings | None = None  # callee's local time
    abandon_limit: float | None = None
    schedule: WindowSettings | None = None  # the centre's local time
    schedule_zone: str | None = None
    max_attempts_per_day: int | None = None  # per calendar day in the callee's zone

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.windows, self.abandon_limit, self.schedule,
                                           self.max_attempts_per_day))


def _text(windows: WindowSettings, weekday: int) -> str:
    return ", ".join(f"{s // 3600:02d}:{s % 3600 // 60:02d}-{e // 3600:02d}:{e % 3600 // 60:02d}"
                     for s, e in windows.weekly[weekday]) or "none"


def _week(table: Any, where: str, *, extra: frozenset[str] = frozenset()) -> WindowSettings:
    if not isinstance(table, Mapping):
        raise PolicyError(f"{where}: expected a table of mon … sun arrays")
    unknown = set(table) - set(DAYS) - extra
    if unknown:
        raise PolicyError(f"{where}.{sorted(unknown)[0]}: unknown key (known: "
                          f"{', '.join(DAYS)}{', ' + ', '.join(sorted(extra)) if extra else ''})")
    weekly = []
    for day in DAYS:
        ranges = []
        for item in table.get(day, []) if isinstance(table.get(day, []), list) else [None]:
            m = _RANGE.fullmatch(item) if isinstance(item, str) else None
            if m is None:
                raise PolicyError(f"{where}.{day}: expected \"HH:MM-HH:MM\" strings, "
                                  f"got {item!r}")
            start = int(m[1]) * 3600 + int(m[2]) * 60
            end = int(m[3]) * 3600 + int(m[4]) * 60
            if end <= start or end > 86400:
                raise PolicyError(f"{where}.{day}: {item!r} is empty or past midnight")
            ranges.append((start, end))
        ranges.sort()
        for (_, end), (start, _) in itertools.pairwise(ranges):
            if start < end:
                raise PolicyError(f"{where}.{day}: ranges overlap")
        weekly.append(tuple(ranges))
    return WindowSettings(weekly=tuple(weekly))


def parse_house_rules(table: Mapping[str, Any], where: str) -> HouseRules:
    """The house-rule keys of one ``[campaigns.<id>]`` table (``where`` names it)."""
    windows = schedule = zone = limit = None
    if "windows" in table:
        windows = _week(table["windows"], f"{where}.windows")
    if "abandon_limit" in table:
        value = table["abandon_limit"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            raise PolicyError(f"{where}.abandon_limit: expected a ratio in [0, 1), "
                              f"got {value!r}")
        limit = float(value)
    if "schedule" in table:
        sched = table["schedule"]
        if not isinstance(sched, Mapping) or not isinstance(sched.get("zone"), str):
            raise PolicyError(f"{where}.schedule.zone: required (the centre's IANA zone, "
                              "e.g. \"Indian/Mauritius\")")
        try:
            zone_info(sched["zone"])
        except (KeyError, ValueError, OSError):
            raise PolicyError(f"{where}.schedule.zone: unknown zone {sched['zone']!r}") from None
        zone = sched["zone"]
        schedule = _week(sched, f"{where}.schedule", extra=frozenset({"zone"}))
    per_day = None
    if "max_attempts_per_day" in table:
        per_day = table["max_attempts_per_day"]
        if isinstance(per_day, bool) or not isinstance(per_day, int) or per_day < 1:
            raise PolicyError(f"{where}.max_attempts_per_day: expected an integer >= 1, "
                              f"got {per_day!r}")
    return HouseRules(windows, limit, schedule, zone, per_day)


def intersect(a: WindowSettings, b: WindowSettings) -> WindowSettings:
    weekly = []
    for day_a, day_b in zip(a.weekly, b.weekly, strict=True):
        out = []
        for s1, e1 in day_a:
            for s2, e2 in day_b:
                s, e = max(s1, s2), min(e1, e2)
                if s < e:
                    out.append((s, e))
        weekly.append(tuple(sorted(out)))
    return WindowSettings(weekly=tuple(weekly))


def check_stricter(campaign_id: str, house: HouseRules, pack: Pack) -> list[str]:
    """Each house value looser than ``pack``'s, as a message naming key and pack limit."""
    problems = []
    where = f"campaigns.{campaign_id}"
    if house.windows is not None:
        for i, day in enumerate(DAYS):
            for s, e in house.windows.weekly[i]:
                if not any(ps <= s and e <= pe for ps, pe in pack.windows.weekly[i]):
                    one = WindowSettings(weekly=tuple(((s, e),) if j == i else ()
                                                      for j in range(7)))
                    problems.append(
                        f"{where}.windows.{day}: {_text(one, i)} is not inside the pack "
                        f"{pack.id}'s {day} windows ({_text(pack.windows, i)}): house rules "
                        "may only narrow them")
    cap = pack.frequency.max_attempts
    if house.max_attempts_per_day is not None and cap is not None and \
            house.max_attempts_per_day >= cap:
        problems.append(f"{where}.max_attempts_per_day: {house.max_attempts_per_day} is not "
                        f"below the pack {pack.id}'s cap of {cap} attempts in "
                        f"{pack.frequency.window_s // 86400} days")
    if house.abandon_limit is not None and house.abandon_limit >= pack.abandon.max_ratio:
        problems.append(f"{where}.abandon_limit: {house.abandon_limit:.2%} is not below the "
                        f"pack {pack.id}'s limit {pack.abandon.max_ratio:.2%}")
    return problems


@lru_cache(maxsize=256)
def tighten(pack: Pack, house: HouseRules) -> Pack:
    """``pack`` with the house windows intersected and the lower abandon limit (same id,
    version and hash: the law in force is still that pack)."""
    changes: dict[str, Any] = {}
    if house.windows is not None:
        changes["windows"] = intersect(pack.windows, house.windows)
    if house.abandon_limit is not None and house.abandon_limit < pack.abandon.max_ratio:
        changes["abandon"] = dataclasses.replace(pack.abandon, max_ratio=house.abandon_limit)
    return dataclasses.replace(pack, **changes) if changes else pack


def schedule_open(house: HouseRules, now: datetime) -> tuple[bool, str]:
    """Whether the centre is open at ``now`` in its own zone, and the trace line."""
    if house.schedule is None or house.schedule_zone is None:
        return True, ""
    local = now.astimezone(zone_info(house.schedule_zone))
    second = local.hour * 3600 + local.minute * 60 + local.second
    day = local.weekday()
    is_open = any(s <= second < e for s, e in house.schedule.weekly[day])
    line = (f"house rule schedule: centre {house.schedule_zone} {DAYS[day]} "
            f"{local:%Y-%m-%d %H:%M:%S} local: {'open' if is_open else 'closed'} "
            f"({_text(house.schedule, day)})")
    return is_open, line


def explain(house: HouseRules, law: Pack | None, zones: tuple[str, ...], now: datetime,
            reason: str, abandon_ratio: float | None = None) -> tuple[str | None, tuple[str, ...]]:
    """The house rule behind a block (None: the pack alone blocks) and the trace line
    naming it with the pack limit it tightens."""
    if law is None:
        return None, ()
    if reason == "outside_hours" and house.windows is not None and zones and all(
            check_zone(law, z, now).legal for z in zones):
        local = now.astimezone(zone_info(zones[0]))
        day = local.weekday()
        return "windows", (f"house rule windows: the campaign's {DAYS[day]} windows "
                            f"({_text(intersect(law.windows, house.windows), day)}) are closed; "
                            f"the pack {law.id} allows {_text(law.windows, day)}",)
    if reason == "abandon_rate" and house.abandon_limit is not None and (
            abandon_ratio is None or abandon_ratio <= law.abandon.max_ratio):
        return "abandon_limit", (f"house rule abandon_limit: {house.abandon_limit:.2%} (the "
                                  f"pack {law.id}'s limit is {law.abandon.max_ratio:.2%})",)
    return None, ()


def day_bounds(zones: tuple[str, ...], now: datetime) -> tuple[datetime, datetime]:
    """(start, end) of the callee's calendar day at ``now``, in UTC. With several
    candidate zones, the earliest start and the latest end: the strictest day."""
    starts, ends = [], []
    for zone in zones or ("UTC",):
        local = now.astimezone(zone_info(zone))
        midnight = datetime.combine(local.date(), time(), local.tzinfo)
        starts.append(midnight.astimezone(UTC))
        ends.append(datetime.combine(local.date() + timedelta(days=1), time(),
                                     local.tzinfo).astimezone(UTC))
    return min(starts), max(ends)


def day_cap(house: HouseRules, attempts: tuple[datetime, ...], zones: tuple[str, ...],
            now: datetime) -> tuple[bool, datetime, str]:
    """(blocked, when it clears, trace line) of ``max_attempts_per_day``."""
    limit = house.max_attempts_per_day or 0
    start, end = day_bounds(zones, now)
    today = sum(1 for t in attempts if start <= t <= now)
    blocked = today >= limit
    line = (f"house rule max_attempts_per_day: {today} attempt(s) since the callee's "
            f"midnight ({start.isoformat()}), limit {limit}"
            + (": blocked until the next local day" if blocked else ""))
    return blocked, end, line
