"""``reserve_attempt(day_since=, day_limit=)``: the per-local-day house cap is reserved
atomically with the pack's cap, on every backend."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from gateway.store.base import Store
from tests.store.test_contract import DAY, NOW, A, facts


async def reserve(store: Store, aid: str, *, at: timedelta = timedelta(0), day_limit: int = 2,
                  limit: int | None = 4) -> bool:
    r = await store.reserve_attempt(
        e164=A, professional="acme", campaign_id="spring", now=NOW + at, window_s=30 * DAY,
        limit=limit, attempt_id=aid, day_since=NOW - timedelta(hours=10), day_limit=day_limit)
    return r.ok


async def test_day_limit_counts_only_since_the_day_start(store: Store) -> None:
    # an attempt yesterday (before day_since) does not count against today's cap of 2
    assert await reserve(store, "y", at=-timedelta(hours=11))
    assert await reserve(store, "a")
    assert await reserve(store, "b", at=timedelta(minutes=1))
    assert not await reserve(store, "c", at=timedelta(minutes=2))
    assert len((await facts(store, now=NOW + timedelta(minutes=3))).attempts) == 3
    # the pack's cap still applies on its own: 4 in the window
    assert await reserve(store, "d", at=timedelta(minutes=3), day_limit=10)
    assert not await reserve(store, "e", at=timedelta(minutes=4), day_limit=10)
    assert await reserve(store, "a")  # idempotent per attempt id


async def test_concurrent_day_reservations_allow_exactly_the_cap(store: Store) -> None:
    assert await reserve(store, "first")  # one before the race, as in test_contract
    results = await asyncio.gather(*(reserve(store, f"r{i}") for i in range(30)))
    assert results.count(True) == 1
    assert len((await facts(store)).attempts) == 2
