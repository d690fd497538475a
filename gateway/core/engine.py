"""The decision engine: ``plan`` (before the store) and ``decide`` (with the facts).

Pure and deterministic: no I/O, no clock; ``now`` is an argument and must be aware.
Rule order and semantics: docs/policy.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache

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
    ListInfo,
    Reason,
    Verdict,
)
from gateway.core.nanp import us_states
from gateway.core.numbers import InvalidNumber, ParsedNumber, parse_number
from gateway.core.pack import Pack
from gateway.core.policy import Policy
from gateway.core.rules import (
    AT_WINDOW,
    LAYER_RULES,
    RULES,
    UNKNOWN,
    Context,
    Outcome,
    consent_state,
)

__all__ = ["NEXT_LEGAL_HORIZON_DAYS", "Plan", "decide", "next_legal_instant", "plan"]


@dataclass(frozen=True, slots=True)
class Plan:
    """What the service needs before reading the store."""

    e164: str
    zones: tuple[str, ...]  # candidate zones from the number (records may override them)
    campaign: Campaign
    pack: Pack
    region: str | None = None
    layers: tuple[Pack, ...] = ()  # overlay packs (US states) applying with ``pack``

    @property
    def attempt_window_s(self) -> int:
        """The longest frequency window of the pack and its layers (facts to load)."""
        return max(p.frequency.window_s for p in (self.pack, *self.layers))


def _subdivisions(jurisdiction: str, e164: str) -> tuple[str, ...]:
    """Subdivisions of the callee that select overlay packs (US: the NANP state)."""
    if jurisdiction == "US":
        return us_states(e164)
    return ()


def plan(attempt: Attempt, policy: Policy, now: datetime) -> Plan | Decision:
    """Number -> campaign -> pack; a Decision is an early BLOCK."""
    require_aware(now)
    try:
        parsed = parse_number(attempt.number, policy.default_region)
    except InvalidNumber as exc:
        return _early(Reason.INVALID_NUMBER, None, f"number: invalid ({exc})")
    campaign = policy.campaigns.get(attempt.campaign_id)
    if campaign is None:
        return _early(Reason.CAMPAIGN_UNKNOWN, parsed.e164, _number_line(parsed),
                      f"campaign: {attempt.campaign_id!r} is not configured")
    if campaign.paused:
        return _early(Reason.CAMPAIGN_PAUSED, parsed.e164, _number_line(parsed),
                      f"campaign: {campaign.id!r} is paused")
    pack = policy.pack_for(campaign.jurisdiction, now)
    if pack is None:
        return _early(Reason.NO_POLICY, parsed.e164, _number_line(parsed),
                      f"pack: no {campaign.jurisdiction} pack in force at {now.isoformat()}")
    if campaign.house:  # house rules: the centre's schedule, then a stricter pack
        is_open, line = schedule_open(campaign.house, now)
        if not is_open:
            paused = _early(Reason.CAMPAIGN_PAUSED, parsed.e164, _number_line(parsed), line)
            return replace(paused, house_rule="schedule")
        pack = tighten(pack, campaign.house)
    layers = policy.layers_for(campaign.jurisdiction,
                               _subdivisions(campaign.jurisdiction, parsed.e164), now)
    return Plan(parsed.e164, parsed.zones, campaign, pack, parsed.region, layers)


def _number_line(parsed: Plan | ParsedNumber) -> str:
    return f"number: valid, region {parsed.region}, zones {', '.join(parsed.zones)}"


def _early(reason: Reason, e164: str | None, *trace: str) -> Decision:
    return Decision(verdict=Verdict.BLOCK, reason=reason, e164=e164, retry_after_s=None,
                    trace=trace)


def decide(
    attempt: Attempt, facts: Facts, policy: Policy, now: datetime, planned: Plan | None = None
) -> Decision:
    """The verdict for one attempt, given the store's facts at ``now``.

    ``planned``: what ``plan(attempt, policy, now)`` returned, when the caller has it
    (the service plans before reading the store); without it, ``decide`` plans itself.
    """
    if planned is None:
        early = plan(attempt, policy, now)
        if isinstance(early, Decision):
            return early
        planned = early
    pack, campaign = planned.pack, planned.campaign
    e164 = planned.e164

    matching, valid, contracts, in_progress = _records(facts, planned, now)

    trace = [_number_line(planned), _campaign_line(campaign),
             _pack_line(pack.id, pack.version, pack.content_hash, now, now.utcoffset())]
    record_zones = _record_zones(matching, contracts)
    if record_zones:
        zones = record_zones
        trace.append(f"zones: {', '.join(zones)} from the customer's consent/contract record")
    else:
        zones = planned.zones
    alsace, alsace_line = _alsace_moselle(e164, matching, contracts)
    if pack.holidays.alsace_moselle_for_metropolitan and alsace_line:
        trace.append(alsace_line)
    checks = tuple(check_zone(pack, z, now, alsace) for z in zones)
    presented = attempt.caller_id if attempt.caller_id is not None else campaign.caller_id

    ctx = Context(now=now, campaign=campaign, pack=pack, facts=facts, caller_id=presented,
                  region=planned.region, zones=zones, checks=checks,
                  default_region=policy.default_region, matching_consents=matching,
                  valid_consents=valid, contracts=in_progress, recent_contracts=contracts)
    outcomes = [rule(ctx) for rule in RULES]
    house = campaign.house
    if house and house.max_attempts_per_day is not None:
        capped, clears, line = day_cap(house, facts.attempts, zones, now)
        outcomes.append(Outcome("max_attempts_per_day", Reason.FREQUENCY_CAP if capped else None,
                                (line,), clears if capped else None))
    for outcome in outcomes:
        trace.extend(outcome.lines)
    # overlay packs (US states): each judged alone, every one must allow (stricter wins)
    layer_outcomes: list[Outcome] = []
    for layer in planned.layers:
        trace.append(f"layer: {layer.id} v{layer.version} ({layer.description}) applies to "
                     f"callees in {', '.join(layer.subdivisions)}")
        lctx = ctx._replace(pack=layer,
                            checks=tuple(check_zone(layer, z, now, alsace) for z in zones))
        for outcome in (rule(lctx) for rule in LAYER_RULES):
            layer_outcomes.append(outcome)
            trace.extend(f"[{layer.id}] {line}" for line in outcome.lines)
    blocking = [o for o in (*outcomes, *layer_outcomes) if o.reason is not None]
    packs = (pack, *planned.layers)

    window_s, limit, other_caps = _caps(packs)
    since = now - timedelta(seconds=window_s)
    recent = sum(1 for t in facts.attempts if since < t <= now)
    first = blocking[0].reason if blocking else None
    house_rule: str | None = None
    if first is not None:
        reason = first
        retry = _retry_after(blocking, zones, packs, now, alsace)
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
        list_versions=_list_versions(facts.lists, now) if facts.lists else (),
        attempts_seen=recent,
        attempts_limit=limit,
        attempt_window_s=window_s,
        other_caps=other_caps,
        house_rule=house_rule,
        day_since=day_bounds(zones, now)[0] if house and house.max_attempts_per_day else None,
        day_limit=house.max_attempts_per_day if house else None,
    )


# The trace lines and list ages below are the same for every call of a campaign at one
# instant (every lead of a scrub): each is cached on what it reads (immutable values).


@lru_cache(maxsize=256)
def _campaign_line(campaign: Campaign) -> str:
    return (f"campaign: {campaign.id} ({campaign.professional}/{campaign.product_category}, "
            f"sector {campaign.sector}{', automated' if campaign.automated else ''})")


@lru_cache(maxsize=256)
def _pack_line(pack_id: str, version: str, content_hash: str, now: datetime,
               offset: timedelta | None) -> str:
    # ``offset``: equal instants of two offsets are equal keys, but not the same text
    return f"pack: {pack_id} v{version} ({content_hash[:12]}) in force at {now.isoformat()}"


@lru_cache(maxsize=256)
def _list_versions(lists: tuple[ListInfo, ...], now: datetime
                   ) -> tuple[tuple[str, int, int], ...]:
    return tuple((info.name, info.version, int((now - info.imported_at).total_seconds()))
                 for info in sorted(lists, key=lambda i: i.name))


def _records(facts: Facts, planned: Plan, now: datetime) -> tuple[
        tuple[ConsentRecord, ...], tuple[ConsentRecord, ...],
        tuple[ContractRecord, ...], tuple[ContractRecord, ...]]:
    """The customer's records the campaign may rely on: (consents of the campaign's
    professional and product category, those of them valid at ``now`` newest first,
    contracts of the professional in a related category newest first, those in progress).
    Shared by ``decide`` and the scrub's ``decide_brief``."""
    e164, campaign, pack = planned.e164, planned.campaign, planned.pack
    # (each "if ... else ()": most numbers have no record at all, and skip the work)
    matching = tuple(c for c in facts.consents if c.e164 == e164
                     and c.professional == campaign.professional
                     and c.product_category == campaign.product_category
                     ) if facts.consents else ()
    valid: tuple[ConsentRecord, ...]
    if len(matching) == 1:  # a consented lead: one record, nothing to sort
        valid = matching if consent_state(matching[0], pack, now) == "valid" else ()
    else:
        valid = tuple(sorted((c for c in matching if consent_state(c, pack, now) == "valid"),
                             key=lambda c: (c.collected_at, c.id), reverse=True)
                      ) if matching else ()
    contracts = tuple(sorted(
        (k for k in facts.contracts if k.e164 == e164
         and k.professional == campaign.professional
         and k.product_category in {campaign.product_category, *campaign.related_categories}),
        key=lambda k: (k.started_at, k.id), reverse=True)) if facts.contracts else ()
    in_progress = tuple(k for k in contracts if not k.inquiry  # an inquiry is no contract
                        and k.started_at <= now and (k.ends_at is None or now < k.ends_at))
    return matching, valid, contracts, in_progress


def _record_zones(
    consents: tuple[ConsentRecord, ...], contracts: tuple[ContractRecord, ...]
) -> tuple[str, ...]:
    """Zones given on the customer's matching consent/contract records, whatever their state.

    Taken regardless of validity so that withdrawing or expiring a record never moves
    the callee's clock (and so never turns a BLOCK into an ALLOW).
    """
    if not consents and not contracts:
        return ()
    named = {r.timezone for r in consents if r.timezone} | {
        r.timezone for r in contracts if r.timezone}
    return tuple(sorted(z for z in named if _known_zone(z)))


def _known_zone(zone: str) -> bool:
    try:
        zone_info(zone)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return False
    return True


def _caps(packs: tuple[Pack, ...]) -> tuple[int, int | None, tuple[tuple[int, int], ...]]:
    """The caps the service reserves atomically: (window, limit) of the pack and of each
    layer. The longest window comes first (the store keeps that much history); every other
    cap is returned as (window_s, limit). Without any cap: the pack's window, no limit."""
    if len(packs) == 1:  # no layer (most calls): the pack's own cap, nothing else
        return packs[0].frequency.window_s, packs[0].frequency.max_attempts, ()
    capped = sorted({(p.frequency.window_s, n) for p in packs
                     if (n := p.frequency.max_attempts) is not None},
                    key=lambda c: (-c[0], c[1]))
    if not capped:
        return packs[0].frequency.window_s, None, ()
    (window, limit), rest = capped[0], capped[1:]
    # a shorter window with a limit no smaller adds nothing: it can never bind first
    others = tuple((w, n) for w, n in rest if n < limit)
    return window, limit, _tightest(others)


def _tightest(caps: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """One limit per window (the smallest): two layers with the same window never both count."""
    best: dict[int, int] = {}
    for window, limit in caps:
        best[window] = min(limit, best.get(window, limit))
    return tuple(sorted(best.items(), key=lambda c: -c[0]))


#: Metropolitan geographic prefixes of areas without Alsace-Moselle (01 Paris region, 02
#: north-west, 04 south-east, 05 south-west); 03 (north-east), mobiles and 09 may be there.
_NOT_ALSACE_MOSELLE = ("+331", "+332", "+334", "+335")


#: Départements of Alsace-Moselle (local law: Good Friday, 26 December): Moselle, Bas-Rhin,
#: Haut-Rhin, and the Collectivité européenne d'Alsace's ISO 3166-2 code.
ALSACE_MOSELLE = frozenset({"57", "67", "68", "6AE"})


def _alsace_moselle(
    e164: str, consents: tuple[ConsentRecord, ...], contracts: tuple[ContractRecord, ...]
) -> tuple[bool, str | None]:
    """Whether the callee can be in Alsace-Moselle, and the trace line saying why.

    The customer's address (``address_region`` of a matching consent or contract record,
    whatever its state, like the time zone) wins over the number; without one, every
    number can be there except a geographic number of another metropolitan area.
    """
    regions = sorted({c.address_region for c in consents if c.address_region}
                     | {k.address_region for k in contracts if k.address_region}
                     ) if consents or contracts else []
    if regions:
        there = any(r in ALSACE_MOSELLE for r in regions)
        verdict = ("is in Alsace-Moselle: Good Friday and 26 December apply" if there else
                   "is outside Alsace-Moselle: its Good Friday and 26 December do not apply")
        return there, (f"holidays: the customer's address (département {', '.join(regions)}, "
                       f"from the consent/contract record) {verdict}")
    if e164.startswith(_NOT_ALSACE_MOSELLE):
        return False, ("holidays: a geographic number outside the north-east area: "
                       "Alsace-Moselle's Good Friday and 26 December do not apply")
    return True, None


def _retry_after(
    blocking: list[Outcome], zones: tuple[str, ...], packs: tuple[Pack, ...], now: datetime,
    alsace: bool = True,
) -> int | None:
    """Seconds until every blocking obstacle is gone and a window is open in every pack
    (the pack and its layers), when knowable."""
    earliest = now
    for outcome in blocking:
        clears = outcome.clears_at
        if clears is UNKNOWN or clears is None:
            return None
        if isinstance(clears, datetime) and clears > earliest:
            earliest = clears
        elif clears is not AT_WINDOW and not isinstance(clears, datetime):
            return None
    instant: datetime | None = earliest
    for _ in range(8):  # each pass moves to the latest next window; converges quickly
        if instant is None:
            return None
        found = [next_legal_instant(zones, p, instant, alsace=alsace) for p in packs]
        if any(f is None for f in found):
            return None
        latest = max(f for f in found if f is not None)
        if all(f == latest for f in found):
            return max(1, math.ceil((latest - now).total_seconds()))
        instant = latest
    return None
