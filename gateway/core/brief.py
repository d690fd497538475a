"""The verdict without the explanation: ``decide_brief`` for bulk scrubbing.

A scrubbed lead shows the verdict, the reason, the next legal instant, the zones and
the consent or contract that allows the call; never the trace. ``decide_brief`` gives
exactly :func:`gateway.core.engine.decide`'s ``verdict``, ``reason``, ``e164``,
``retry_after_s``, ``zones``, ``consent_id``, ``contract_id``, ``pack_id`` and
``pack_hash`` (tests/core/test_brief_matches_decide.py), with the same rules in the same
order, but:

- it assembles no trace (``trace`` is empty) and leaves the reservation fields
  (attempts, caps, list versions, house rule, local times) at their defaults: a scrub
  reserves nothing and audits nothing;
- it stops at the first blocking rule whose obstacle has no knowable end (``UNKNOWN``:
  no consent, opposition, a stale list, a refusal for good...): the reason is already
  the first blocking rule's, and :func:`gateway.core.engine._retry_after` would give
  ``None`` whatever the later rules say;
- it reads the calling windows (``check_zone``) only when it reaches the windows rule,
  and reuses them for every lead of the same zones at the same instant (a scrub's);
- the rules leave out the lines that cost work (``Context.explain=False``);
- a number without consent or contract records shares the verdict of the numbers with
  the same ``Facts`` object (a scrub's batch gives them one), zones, region and layers.

``plan_many`` is ``plan`` for a batch: the campaign's part (the campaign, its pack in
force, its house rules) is resolved once per campaign instead of once per number.

Calls (FastAGI, AMI, ``check``, ``GET /v1/check``) keep ``decide`` and its full trace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from gateway.core.calendar import ZoneCheck, check_zone, require_aware
from gateway.core.engine import (
    Plan,
    _alsace_moselle,
    _record_zones,
    _records,
    _retry_after,
    _subdivisions,
    plan,
)
from gateway.core.house import day_cap, schedule_open, tighten
from gateway.core.model import (
    Attempt,
    Campaign,
    Decision,
    Facts,
    Reason,
    Verdict,
)
from gateway.core.numbers import InvalidNumber, parse_number
from gateway.core.pack import Pack
from gateway.core.policy import Policy
from gateway.core.rules import (
    AT_WINDOW,
    LAYER_RULES,
    RULES,
    Context,
    Outcome,
    rule_windows,
)

__all__ = ["decide_brief", "plan_many"]


def plan_many(attempts: Sequence[Attempt], policy: Policy, now: datetime
              ) -> list[Plan | Decision]:
    """``[plan(a, policy, now) for a in attempts]``, the campaign's part resolved once per
    campaign. Whatever ``plan`` decides early (an invalid number, an unknown or paused
    campaign, no pack in force, the centre closed) is left to ``plan`` itself."""
    require_aware(now)
    heads: dict[str, tuple[Campaign, Pack] | None] = {}
    out: list[Plan | Decision] = []
    for attempt in attempts:
        if attempt.campaign_id in heads:
            head = heads[attempt.campaign_id]
        else:
            head = heads[attempt.campaign_id] = _campaign_part(attempt.campaign_id, policy, now)
        if head is None:
            out.append(plan(attempt, policy, now))
            continue
        campaign, pack = head
        try:
            parsed = parse_number(attempt.number, policy.default_region)
        except InvalidNumber:
            out.append(plan(attempt, policy, now))
            continue
        layers = policy.layers_for(campaign.jurisdiction,
                                   _subdivisions(campaign.jurisdiction, parsed.e164), now)
        out.append(Plan(parsed.e164, parsed.zones, campaign, pack, parsed.region, layers))
    return out


def _campaign_part(campaign_id: str, policy: Policy, now: datetime
                   ) -> tuple[Campaign, Pack] | None:
    """The campaign and the pack ``plan`` gives its valid numbers at ``now``; None when
    ``plan`` decides early for every number of the campaign."""
    campaign = policy.campaigns.get(campaign_id)
    if campaign is None or campaign.paused:
        return None
    pack = policy.pack_for(campaign.jurisdiction, now)
    if pack is None:
        return None
    if campaign.house:
        if not schedule_open(campaign.house, now)[0]:
            return None
        pack = tighten(pack, campaign.house)
    return campaign, pack


def decide_brief(
    attempt: Attempt, facts: Facts, policy: Policy, now: datetime, planned: Plan | None = None
) -> Decision:
    """:func:`~gateway.core.engine.decide`'s verdict, reason, next legal instant, zones and
    allowing record, without a trace (module docstring)."""
    if planned is None:
        early = plan(attempt, policy, now)
        if isinstance(early, Decision):
            return early
        planned = early
    pack, campaign = planned.pack, planned.campaign
    e164 = planned.e164
    presented = attempt.caller_id if attempt.caller_id is not None else campaign.caller_id

    if not facts.consents and not facts.contracts:  # no record of the customer: most leads
        alsace = _alsace_moselle(e164, (), ())[0]
        verdict, reason, retry = _bare(facts, planned, presented, alsace, policy, now)
        return Decision(verdict=verdict, reason=reason, e164=e164, retry_after_s=retry,
                        trace=(), pack_id=pack.id, pack_hash=pack.content_hash,
                        zones=planned.zones)

    matching, valid, contracts, in_progress = _records(facts, planned, now)
    zones = _record_zones(matching, contracts) or planned.zones
    alsace, _ = _alsace_moselle(e164, matching, contracts)

    ctx = Context(now=now, campaign=campaign, pack=pack, facts=facts, caller_id=presented,
                  region=planned.region, zones=zones, checks=(),
                  default_region=policy.default_region, matching_consents=matching,
                  valid_consents=valid, contracts=in_progress, recent_contracts=contracts,
                  explain=False)
    verdict, reason, retry = _verdict(ctx, planned.layers, alsace)
    return Decision(
        verdict=verdict,
        reason=reason,
        e164=e164,
        retry_after_s=retry,
        trace=(),
        pack_id=pack.id,
        pack_hash=pack.content_hash,
        zones=zones,
        consent_id=valid[0].id if valid else None,
        contract_id=in_progress[0].id if in_progress else None,
    )


_Verdict = tuple[Verdict, Reason, int | None]  # verdict, reason, retry_after_s

#: Most verdicts kept for leads without records (:func:`_bare`); dropped all at once.
MAX_BARE = 4096
# (ids of the facts, campaign, pack and layers, zones, region, Alsace-Moselle, caller id,
# instant, default region) -> (the objects, the verdict): the objects are kept with the
# verdict so that their ids cannot be reused by others while the entry lives
_bare_seen: dict[tuple[object, ...], tuple[object, _Verdict]] = {}


def _bare(facts: Facts, planned: Plan, presented: str | None, alsace: bool, policy: Policy,
          now: datetime) -> _Verdict:
    """The verdict for a number without consent or contract records: it reads of the
    number only its plan's zones, region and layers and whether it can be in
    Alsace-Moselle. A scrub's store read gives every such number of a batch the same
    ``Facts`` (gateway/store): their verdict is reused for each lead of the same zones."""
    key = (id(facts), id(planned.campaign), id(planned.pack), tuple(map(id, planned.layers)),
           planned.zones, planned.region, alsace, presented, now, policy.default_region)
    seen = _bare_seen.get(key)
    if seen is not None:
        return seen[1]
    ctx = Context(now=now, campaign=planned.campaign, pack=planned.pack, facts=facts,
                  caller_id=presented, region=planned.region, zones=planned.zones, checks=(),
                  default_region=policy.default_region, matching_consents=(),
                  valid_consents=(), contracts=(), recent_contracts=(), explain=False)
    verdict = _verdict(ctx, planned.layers, alsace)
    if len(_bare_seen) >= MAX_BARE:
        _bare_seen.clear()
    _bare_seen[key] = ((facts, planned.campaign, planned.pack, planned.layers), verdict)
    return verdict


def _verdict(ctx: Context, layers: tuple[Pack, ...], alsace: bool) -> _Verdict:
    """The rules of ``ctx.pack`` then of each layer, in decide's order: the first blocking
    rule's reason and, unless one has no knowable end, the next legal instant."""
    blocking: list[Outcome] = []
    endless = _first_blocking(RULES, ctx, alsace, blocking)
    house = ctx.campaign.house
    if not endless and house and house.max_attempts_per_day is not None:
        capped, clears, _line = day_cap(house, ctx.facts.attempts, ctx.zones, ctx.now)
        if capped:
            blocking.append(Outcome("max_attempts_per_day", Reason.FREQUENCY_CAP, (), clears))
            endless = not _knowable(clears)
    for layer in () if endless else layers:
        endless = _first_blocking(LAYER_RULES, ctx._replace(pack=layer), alsace, blocking)
        if endless:
            break
    if not blocking:
        return Verdict.ALLOW, Reason.OK, None
    reason = blocking[0].reason or Reason.OK  # (a blocking outcome has a reason)
    retry = None if endless else _retry_after(blocking, ctx.zones, (ctx.pack, *layers),
                                              ctx.now, alsace)
    return Verdict.BLOCK, reason, retry


def _first_blocking(rules: tuple[Callable[[Context], Outcome], ...], ctx: Context,
                    alsace: bool, blocking: list[Outcome]) -> bool:
    """Apply ``rules`` in order, appending the blocking outcomes to ``blocking``; True
    (and stop) at the first whose obstacle has no knowable end."""
    for rule in rules:
        if rule is rule_windows:  # the only rule reading the clocks: read them now
            ctx = ctx._replace(checks=_checks(ctx.pack, ctx.zones, ctx.now, alsace))
        outcome = rule(ctx)
        if outcome.reason is not None:
            blocking.append(outcome)
            if not _knowable(outcome.clears_at):
                return True
    return False


#: Most zone checks kept (:func:`_checks`); the oldest are dropped all at once.
MAX_CHECKS = 256
# (id of the windows, id of the holidays, zones, instant, Alsace-Moselle) -> (the windows,
# the holidays, the checks): the objects are kept with their checks so that their ids
# cannot be reused by others while the entry lives
_checks_seen: dict[tuple[int, int, tuple[str, ...], datetime, bool],
                   tuple[object, object, tuple[ZoneCheck, ...]]] = {}


def _checks(pack: Pack, zones: tuple[str, ...], now: datetime, alsace: bool
            ) -> tuple[ZoneCheck, ...]:
    """``check_zone`` for each zone, reused for the same windows, holidays, zones and
    instant (every lead of a scrub in one zone: immutable values, shared)."""
    windows, holidays = pack.windows, pack.holidays
    key = (id(windows), id(holidays), zones, now, alsace)
    seen = _checks_seen.get(key)
    if seen is not None and seen[0] is windows and seen[1] is holidays:
        return seen[2]
    checks = tuple(check_zone(pack, z, now, alsace) for z in zones)
    if len(_checks_seen) >= MAX_CHECKS:
        _checks_seen.clear()
    _checks_seen[key] = (windows, holidays, checks)
    return checks


def _knowable(clears: object) -> bool:
    """Whether ``_retry_after`` can use this end (else it returns None for the call)."""
    return clears is AT_WINDOW or isinstance(clears, datetime)
