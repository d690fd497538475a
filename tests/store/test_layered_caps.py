"""Layered caps: a US state's cap (Fla. Stat. § 501.059(8)(b): 3 calls / 24 h) and a cap of
the pack it is layered over are reserved together, atomically, on every backend."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

from gateway.core.model import Attempt, Campaign, Reason, Verdict
from gateway.core.policy import Policy
from gateway.packs import builtin_packs
from gateway.service import Service
from gateway.store.base import ImportMode, OppositionRow, Store
from tests.store.test_contract import DAY, NOW, A, facts

MIAMI = "+13055550123"
LEGAL_NOW = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # Tuesday 12:00 in Miami
CAMPAIGN = Campaign(id="spring", professional="acme", product_category="telecom",
                    jurisdiction="US", caller_id="+12125550100")


async def reserve(store: Store, aid: str, at: timedelta) -> bool:
    r = await store.reserve_attempt(
        e164=A, professional="acme", campaign_id="spring", now=NOW + at, window_s=30 * DAY,
        limit=4, attempt_id=aid, caps=((DAY, 3),))
    return r.ok


async def test_reservation_honours_every_cap_given(store: Store) -> None:
    """4 per 30 days with 3 per 24 h: the fourth call of the day is refused by the short
    cap, the fourth of the month goes through the next day, the fifth is refused."""
    for i in range(3):
        assert await reserve(store, f"d1-{i}", timedelta(minutes=i))
    assert not await reserve(store, "d1-3", timedelta(minutes=3))
    assert await reserve(store, "d2-0", timedelta(hours=25))
    assert not await reserve(store, "d3-0", timedelta(hours=50))
    assert len((await facts(store, now=NOW + timedelta(hours=50))).attempts) == 4
    assert await reserve(store, "d1-0", timedelta(minutes=0))  # idempotent per attempt id


def _policy(federal_cap: int) -> Policy:
    """An operator's stricter US-FEDERAL pack (a cap of its own) under the Florida layer."""
    packs = tuple(
        dataclasses.replace(p, frequency=dataclasses.replace(p.frequency,
                                                             max_attempts=federal_cap))
        if p.id == "US-FEDERAL" else p for p in builtin_packs())
    return Policy(packs, {CAMPAIGN.id: CAMPAIGN})


async def _service(store: Store, federal_cap: int) -> Service:
    for source in ("ndnc", "fl_dnc"):
        await store.import_opposition(source, [OppositionRow("+13055550999")],
                                      mode=ImportMode.REPLACE, now=LEGAL_NOW - DAY_DELTA)
    # atomicity, not speed: a budget no load can exhaust
    return Service(policy=_policy(federal_cap), store=store, audit=None,
                   clock=lambda: LEGAL_NOW, budget_s=30.0)


DAY_DELTA = timedelta(days=1)


async def _race(svc: Service, n: int = 40) -> list[Verdict]:
    results = await asyncio.gather(*(svc.screen(Attempt(MIAMI, "spring")) for _ in range(n)))
    assert {r.reason for r in results if r.verdict is Verdict.BLOCK} <= {Reason.FREQUENCY_CAP}
    return [r.verdict for r in results]


async def test_fla_stat_501_059_8_b_and_the_federal_cap_are_reserved_together(
    store: Store,
) -> None:
    """Three earlier calls this month, none in the last 24 h: Florida's 3 / 24 h allows
    three more, the (operator's) federal 4 / 30 days only one: exactly one is placed, and
    the reservation keeps the month's history (it does not trim to the state's 24 h)."""
    svc = await _service(store, federal_cap=4)
    for day in (2, 3, 4):
        await store.reserve_attempt(e164=MIAMI, professional="acme", campaign_id="spring",
                                    now=LEGAL_NOW - timedelta(days=day), window_s=30 * DAY,
                                    limit=None, attempt_id=f"earlier-{day}")
    assert (await _race(svc)).count(Verdict.ALLOW) == 1
    d = await svc.evaluate(Attempt(MIAMI, "spring"), LEGAL_NOW)
    assert (d.attempts_seen, d.attempts_limit, d.attempt_window_s) == (4, 4, 30 * DAY)
    assert d.other_caps == ((DAY, 3),)


async def test_fla_stat_501_059_8_b_binds_inside_a_longer_federal_cap(store: Store) -> None:
    """No earlier call: the federal 10 / 30 days would allow ten, Florida's 3 / 24 h three:
    concurrent screens place exactly three."""
    svc = await _service(store, federal_cap=10)
    assert (await _race(svc)).count(Verdict.ALLOW) == 3
    d = await svc.evaluate(Attempt(MIAMI, "spring"), LEGAL_NOW)
    assert d.reason is Reason.FREQUENCY_CAP
    assert any(line.startswith("[US-FL] frequency: 3 earlier") for line in d.trace)
