"""The decision engine: ``plan`` (before the store) and ``decide`` (with the facts).

Pure and deterministic: no I/O, no clock; ``now`` is an argument and must be aware.
Rule order and semantics: docs/policy.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from gateway.core.calendar import (
    NEXT_LEGAL_HORIZON_DAYS,
    check_zone,
    next_legal_instant,
    require_aware,
    zone_info,
)
from gateway.core.house import day_bounds, day_cap, explain, schedule_open, tighten
from gateway.core.model import (
    Attempt,
    Campaign,
    ConsentRecord,
    ContractRecord,
    Decision,
    Facts,
    Reason,
    Verdict,
)
from gateway.core.numbers import InvalidNumber, parse_number
from gateway.core.pack import Pack
from gateway.core.policy import Policy
from gateway.core.rules import AT_WINDOW, RULES, UNKNOWN, Context, Outcome, consent_state

__all__ = ["NEXT_LEGAL_HORIZON_DAYS", "Plan", "decide", "next_legal_instant", "plan"]


@dataclass(frozen=True, slots=True)
class Plan:
    """What the service needs before reading the store."""

    e164: str
    zones: tuple[str, ...]  # candidate zones from the number (records may override them)
    campaign: Campaign
    pack: Pack
    region: str | None = None


def plan(attempt: Attempt, policy: Policy, now: datetime) -> Plan | Decision:
    """Number -> campaign -> pack; a Decision is an early BLOCK."""
    require_aware(now)
    try:
        parsed = parse_number(attempt.number, policy.default_region)
    except InvalidNumber as exc:
        return _early(Reason.INVALID_NUMBER, None, f"number: invalid ({exc})")
    trace = f"number: valid, region {parsed.region}, zones {', '.join(parsed.zones)}"
    campaign = policy.campaigns.get(attempt.campaign_id)
    if campaign is None:
        return _early(Reason.CAMPAIGN_UNKNOWN, parsed.e164, trace,
                      f"campaign: {attempt.campaign_id!r} is not configured")
    if campaign.paused:
        return _early(Reason.CAMPAIGN_PAUSED, parsed.e164, trace,
                      f"campaign: {campaign.id!r} is paused")
    pack = policy.pack_for(campaign.jurisdiction, now)
    if pack is None:
        return _early(Reason.NO_POLICY, parsed.e164, trace,
                      f"pack: no {campaign.jurisdiction} pack in force at {now.isoformat()}")
    if campaign.house:  # house rules: the centre's schedule, then a stricter pack
        is_open, line = schedule_open(campaign.house, now)
        if not is_open:
            paused = _early(Reason.CAMPAIGN_PAUSED, parsed.e164, trace, line)
            return replace(paused, house_rule="schedule")
        pack = tighten(pack, campaign.house)
    return Plan(parsed.e164, parsed.zones, campaign, pack, parsed.region)


def _early(reason: Reason, e164: str | None, *trace: str) -> Decision:
    return Decision(verdict=Verdict.BLOCK, reason=reason, e164=e164, retry_after_s=None,
                    trace=trace)


def decide(attempt: Attempt, facts: Facts, policy: Policy, now: datetime) -> Decision:
    """The verdict for one attempt, given the store's facts at ``now``."""
    planned = plan(attempt, policy, now)
    if isinstance(planned, Decision):
        return planned
    pack, campaign = planned.pack, planned.campaign
    e164 = planned.e164

    matching = tuple(c for c in facts.consents if c.e164 == e164
                     and c.professional == campaign.professional
                     and c.product_category == campaign.product_category)
    valid = tuple(sorted((c for c in matching if consent_state(c, pack, now) == "valid"),
                         key=lambda c: (c.collected_at, c.id), reverse=True))
    contracts = tuple(sorted(
        (k for k in facts.contracts if k.e164 == e164
         and k.professional == campaign.professional
         and k.product_category == campaign.product_category),
        key=lambda k: (k.started_at, k.id), reverse=True))
    in_progress = tuple(k for k in contracts
                        if k.started_at <= now and (k.ends_at is None or now < k.ends_at))

    trace = [f"number: valid, region {planned.region}, zones {', '.join(planned.zones)}",
             f"campaign: {campaign.id} ({campaign.professional}/{campaign.product_category}, "
             f"sector {campaign.sector}{', automated' if campaign.automated else ''})",
             f"pack: {pack.id} v{pack.version} ({pack.content_hash[:12]}) in force at "
             f"{now.isoformat()}"]
    record_zones = _record_zones(matching, contracts)
    if record_zones:
        zones = record_zones
        trace.append(f"zones: {', '.join(zones)} from the customer's consent/contract record")
    else:
        zones = planned.zones
    checks = tuple(check_zone(pack, z, now) for z in zones)
    presented = attempt.caller_id if attempt.caller_id is not None else campaign.caller_id

    ctx = Context(now=now, campaign=campaign, pack=pack, facts=facts, caller_id=presented,
                  region=planned.region, zones=zones, checks=checks,
                  default_region=policy.default_region, matching_consents=matching,
                  valid_consents=valid, contracts=in_progress)
    outcomes = [rule(ctx) for rule in RULES]
    house = campaign.house
    if house and house.max_attempts_per_day is not None:
        capped, clears, line = day_cap(house, facts.attempts, zones, now)
        outcomes.append(Outcome("max_attempts_per_day", Reason.FREQUENCY_CAP if capped else None,
                                (line,), clears if capped else None))
    blocking = [o for o in outcomes if o.reason is not None]
    for outcome in outcomes:
        trace.extend(outcome.lines)

    window_s = pack.frequency.window_s
    recent = sum(1 for t in facts.attempts if t > now - timedelta(seconds=window_s))
    first = blocking[0].reason if blocking else None
    house_rule: str | None = None
    if first is not None:
        reason = first
        retry = _retry_after(blocking, zones, pack, now)
        verdict = Verdict.BLOCK
        if blocking[0].rule == "max_attempts_per_day":
            house_rule = "max_attempts_per_day"
        elif campaign.house:
            stats = facts.campaign
            house_rule, lines = explain(
                campaign.house, policy.pack_for(campaign.jurisdiction, now), zones, now,
                reason.value, stats.abandoned / stats.answered if stats.answered else None)
            trace.extend(lines)
        trace.append(f"verdict: BLOCK ({reason}, first of {len(blocking)} blocking rule(s))"
                     + (f", retry in {retry} s" if retry is not None else ""))
    else:
        reason, retry, verdict = Reason.OK, None, Verdict.ALLOW
        trace.append("verdict: ALLOW")

    return Decision(
        verdict=verdict,
        reason=reason,
        e164=e164,
        retry_after_s=retry,
        trace=tuple(trace),
        pack_id=pack.id,
        pack_hash=pack.content_hash,
        zones=zones,
        local_times=tuple(c.local.isoformat() for c in checks),
        consent_id=valid[0].id if valid else None,
        contract_id=in_progress[0].id if in_progress else None,
        list_versions=tuple(
            (info.name, info.version, int((now - info.imported_at).total_seconds()))
            for info in sorted(facts.lists, key=lambda i: i.name)
        ),
        attempts_seen=recent,
        attempts_limit=pack.frequency.max_attempts,
        attempt_window_s=window_s,
        house_rule=house_rule,
        day_since=day_bounds(zones, now)[0] if house and house.max_attempts_per_day else None,
        day_limit=house.max_attempts_per_day if house else None,
    )


def _record_zones(
    consents: tuple[ConsentRecord, ...], contracts: tuple[ContractRecord, ...]
) -> tuple[str, ...]:
    """Zones given on the customer's matching consent/contract records, whatever their state.

    Taken regardless of validity so that withdrawing or expiring a record never moves
    the callee's clock (and so never turns a BLOCK into an ALLOW).
    """
    named = {r.timezone for r in consents if r.timezone} | {
        r.timezone for r in contracts if r.timezone}
    return tuple(sorted(z for z in named if _known_zone(z)))


def _known_zone(zone: str) -> bool:
    try:
        zone_info(zone)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return False
    return True


def _retry_after(
    blocking: list[Outcome], zones: tuple[str, ...], pack: Pack, now: datetime
) -> int | None:
    """Seconds until every blocking obstacle is gone and a window is open, when knowable."""
    earliest = now
    for outcome in blocking:
        clears = outcome.clears_at
        if clears is UNKNOWN or clears is None:
            return None
        if isinstance(clears, datetime) and clears > earliest:
            earliest = clears
        elif clears is not AT_WINDOW and not isinstance(clears, datetime):
            return None
    instant = next_legal_instant(zones, pack, earliest)
    if instant is None:
        return None
    return max(1, math.ceil((instant - now).total_seconds()))
