"""The compliance report's figures, computed in one streaming pass over the trail.

:class:`ReportBuilder` is pure: ``feed(record)`` for every stored record (oldest
first), then ``result()``. Memory is bounded whatever the trail's size: counters per
day of the period, per reason, per campaign, per list (each capped, the rest folded
into "other"), a 24-bin hour histogram, and a HyperLogLog for distinct numbers.
Attempts per number come from each record's own counters (the attempts the store
saw in the window when the call was decided), so no per-number table is kept.
Each decision is counted once, by its last record, when the builder is given the
:class:`~gateway.report.supersede.Supersessions` of a first pass over the trail.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.report.hll import HyperLogLog
from gateway.report.supersede import Supersessions

MAX_KEYS = 200  # distinct reasons / campaigns / lists kept before folding into "other"
MAX_DAYS = 3700  # longest period a report covers (about ten years)
NIGHT_REASONS = frozenset({"outside_hours", "holiday"})
CONSENT_REASONS = ("no_consent", "consent_expired", "consent_revoked")
# the engine's abandon trace line (core/rules.py rule_abandon), in both of its wordings:
# "abandon: A abandoned / N answered over …" and "abandon: A/N answered calls, fewer than …"
_ABANDON = re.compile(r"^abandon: (\d+)(?:/| abandoned / )(\d+)")
OTHER = "other"


class _Capped(Counter[str]):
    def bump(self, key: str, n: int = 1) -> None:
        if key not in self and len(self) >= MAX_KEYS:
            key = OTHER
        self[key] += n


@dataclass(slots=True)
class CampaignFigures:
    decisions: int = 0
    allow: int = 0
    block: int = 0
    shadow: int = 0
    shadow_would_block: int = 0
    fail_open: int = 0
    abandon_blocks: int = 0
    abandoned: int | None = None  # from the last record's abandon trace line
    answered: int | None = None
    abandon_max_ratio: float | None = None  # highest ratio seen in the period


@dataclass(slots=True)
class ListFigures:
    last_version: int = 0
    max_age_s: int = 0
    last_age_s: int = 0
    last_seen: str = ""


@dataclass(slots=True)
class Endpoint:
    id: str
    ts: str
    instance: str
    seq: int


@dataclass(slots=True)
class ReportData:
    start: date
    end: date
    zone: str
    campaign: str | None
    records_in_period: int = 0
    records_total: int = 0
    per_day: dict[date, Counter[str]] = field(default_factory=dict)  # verdict -> count
    reasons: _Capped = field(default_factory=_Capped)  # block reasons (enforced)
    engine_reasons: _Capped = field(default_factory=_Capped)
    night_stopped: int = 0
    night_placed: int = 0  # placed although outside the hours (shadow / fail-open)
    night_per_day: dict[date, int] = field(default_factory=dict)
    hours_allowed: list[int] = field(default_factory=lambda: [0] * 24)  # callee local hour
    hours_stopped: list[int] = field(default_factory=lambda: [0] * 24)
    attempt_ordinals: Counter[int] = field(default_factory=Counter)  # placed call's rank
    attempts_limit: int | None = None
    over_cap_placed: int = 0
    frequency_blocks: int = 0
    numbers: HyperLogLog = field(default_factory=HyperLogLog)
    campaigns: dict[str, CampaignFigures] = field(default_factory=dict)
    lists: dict[str, ListFigures] = field(default_factory=dict)
    basis: Counter[str] = field(default_factory=Counter)  # consent | contract | none
    consent_blocks: Counter[str] = field(default_factory=Counter)
    list_stale: int = 0
    shadow: int = 0
    shadow_would_block: int = 0
    fail_open: int = 0
    unreadable: int = 0
    superseded: int = 0  # records replaced by a later record of their decision: not counted
    superseding: int = 0  # decisions counted by a superseding record (what was enforced)
    unresolved: int = 0  # superseding records beyond the bound: their decision may count twice
    first: Endpoint | None = None
    last: Endpoint | None = None


class ReportBuilder:
    def __init__(self, *, start: date, end: date, zone: str = "Europe/Paris",
                 campaign: str | None = None,
                 supersessions: Supersessions | None = None) -> None:
        if end < start:
            raise ValueError("--to is before --from")
        if (end - start).days >= MAX_DAYS:
            raise ValueError(f"a report covers at most {MAX_DAYS} days")
        self.tz = ZoneInfo(zone)
        self.data = ReportData(start=start, end=end, zone=zone, campaign=campaign)
        self.supersessions = supersessions
        if supersessions is not None:
            self.data.unresolved = supersessions.unresolved
        for i in range((end - start).days + 1):  # no day after ``end``: 9999-12-31 has none
            self.data.per_day[start + timedelta(days=i)] = Counter()

    def feed(self, rec: dict[str, Any] | None) -> None:
        d = self.data
        d.records_total += 1
        if rec is None:
            d.unreadable += 1
            return
        point = Endpoint(str(rec.get("id")), str(rec.get("ts")), str(rec.get("instance")),
                         int(rec.get("seq", -1)))
        if d.first is None:
            d.first = point
        d.last = point
        last = self.supersessions is None or self.supersessions.keep(rec)
        try:
            at = datetime.fromisoformat(str(rec["ts"]).replace("Z", "+00:00"))
            day = at.astimezone(self.tz).date()  # year 9999 or 1: out of the calendar
        except (KeyError, ValueError, OverflowError):
            d.unreadable += 1
            return
        if at.tzinfo is None or not _well_typed(rec):  # not what the gateway writes
            d.unreadable += 1
            return
        if day < d.start or day > d.end:
            return
        campaign = str(rec.get("campaign", ""))
        if d.campaign is not None and campaign != d.campaign:
            return
        if not last:
            d.superseded += 1
            return
        if rec.get("supersedes") is not None:
            d.superseding += 1
        self._count(rec, day, campaign)

    def _count(self, rec: dict[str, Any], day: date, campaign: str) -> None:
        d = self.data
        d.records_in_period += 1
        verdict, reason = str(rec.get("verdict")), str(rec.get("reason"))
        engine = rec.get("engine") or {}
        engine_verdict = str(engine.get("verdict", verdict))
        engine_reason = str(engine.get("reason", reason))
        shadow, fail_open = rec.get("shadow") is True, rec.get("fail_open") is True
        d.per_day[day][verdict] += 1
        d.engine_reasons.bump(engine_reason)
        if verdict == "BLOCK":
            d.reasons.bump(reason)
        if rec.get("number"):
            d.numbers.add(str(rec["number"]))
        hour = _local_hour(rec)
        night = engine_reason in NIGHT_REASONS
        if night and verdict == "BLOCK":
            d.night_stopped += 1
            d.night_per_day[day] = d.night_per_day.get(day, 0) + 1
            if hour is not None:
                d.hours_stopped[hour] += 1
        elif verdict == "ALLOW" and hour is not None:
            d.hours_allowed[hour] += 1
        if night and verdict == "ALLOW":
            d.night_placed += 1
        counters = rec.get("counters") or {}
        seen, limit = counters.get("attempts_seen"), counters.get("attempts_limit")
        if verdict == "ALLOW" and isinstance(seen, int):
            d.attempt_ordinals[min(seen + 1, 99)] += 1
            if isinstance(limit, int) and seen >= limit:
                d.over_cap_placed += 1
        if isinstance(limit, int):
            d.attempts_limit = limit
        if verdict == "BLOCK" and engine_reason == "frequency_cap":
            d.frequency_blocks += 1
        if verdict == "ALLOW":
            d.basis["consent" if rec.get("consent_id") else
                    "contract" if rec.get("contract_id") else "none"] += 1
        if engine_reason in CONSENT_REASONS:
            d.consent_blocks[engine_reason] += 1
        if engine_reason == "list_stale":
            d.list_stale += 1
        self._campaign(rec, campaign, verdict, engine_verdict, engine_reason, shadow, fail_open)
        self._lists(rec)

    def _campaign(self, rec: dict[str, Any], campaign: str, verdict: str, engine_verdict: str,
                  engine_reason: str, shadow: bool, fail_open: bool) -> None:
        d = self.data
        if campaign not in d.campaigns and len(d.campaigns) >= MAX_KEYS:
            campaign = OTHER
        c = d.campaigns.setdefault(campaign, CampaignFigures())
        c.decisions += 1
        c.allow += verdict == "ALLOW"
        c.block += verdict == "BLOCK"
        if shadow:
            c.shadow += 1
            d.shadow += 1
            if engine_verdict == "BLOCK":
                c.shadow_would_block += 1
                d.shadow_would_block += 1
        if fail_open:
            c.fail_open += 1
            d.fail_open += 1
        if engine_reason == "abandon_rate":
            c.abandon_blocks += 1
        for line in rec.get("trace") or ():
            m = _ABANDON.match(str(line))
            if m:
                abandoned, answered = int(m[1]), int(m[2])
                c.abandoned, c.answered = abandoned, answered
                if answered:
                    ratio = abandoned / answered
                    if c.abandon_max_ratio is None or ratio > c.abandon_max_ratio:
                        c.abandon_max_ratio = ratio
                break

    def _lists(self, rec: dict[str, Any]) -> None:
        d = self.data
        for item in rec.get("lists") or ():
            if not isinstance(item, dict):
                continue
            name = str(item.get("name"))
            if name not in d.lists and len(d.lists) >= MAX_KEYS:
                continue
            f = d.lists.setdefault(name, ListFigures())
            age, version = item.get("age_s"), item.get("version")
            if isinstance(age, int):
                f.max_age_s = max(f.max_age_s, age)
                f.last_age_s = age
            if isinstance(version, int):
                f.last_version = version
            f.last_seen = str(rec.get("ts"))

    def result(self) -> ReportData:
        return self.data


#: The containers of a record the figures read into, with their types. A record
#: altered by hand may hold anything there: it is counted unreadable, not read.
_CONTAINERS = (("engine", dict), ("counters", dict), ("local_times", dict), ("lists", list),
               ("trace", list))


def _well_typed(rec: dict[str, Any]) -> bool:
    return all(rec.get(key) is None or isinstance(rec[key], kind) for key, kind in _CONTAINERS)


def _local_hour(rec: dict[str, Any]) -> int | None:
    local = rec.get("local_times")
    if not isinstance(local, dict) or not local:
        return None
    first = next(iter(local.values()))
    try:
        return datetime.fromisoformat(str(first)).hour
    except ValueError:
        return None
