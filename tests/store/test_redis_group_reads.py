"""Group reads (gateway/store/redis_group.py): concurrent calls' facts read together.

Against a real redis-server: the facts of calls read together are the facts each would
have read alone, at its own instant, in two round trips for twenty calls. The grouping
itself (who waits, who is skipped, which deadline, which error) with a reader held at a
gate, so that the order of events is fixed without timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.core.model import ConsentRecord, Facts
from gateway.store.base import (
    OPERATION_DEADLINE,
    FactsQuery,
    ImportMode,
    OppositionRow,
    StoreUnavailable,
)
from gateway.store.factory import open_store
from gateway.store.redis import RedisStore
from gateway.store.redis_group import Group
from tests.store.test_redis import SendCounter

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
HOUR = 3600
NUMBERS = [f"+336100000{i:02d}" for i in range(20)]


def _consent(e164: str) -> ConsentRecord:
    return ConsentRecord(id="c1", e164=e164, professional="acme", product_category="telecom",
                         collected_at=NOW - timedelta(days=10),
                         expires_at=NOW + timedelta(days=300), channel="web",
                         proof_ref="proof")


async def _load(store: RedisStore, e164: str, at: datetime) -> Facts:
    return await store.load_facts(e164=e164, professional="acme", campaign_id="spring", now=at,
                                  attempt_window_s=HOUR, abandon_window_s=24 * HOUR)


async def test_calls_read_together_get_the_facts_each_reads_alone(
        redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(redis_url, key_prefix=key_prefix)
    assert isinstance(store, RedisStore)
    await store.import_consents([_consent(n) for n in NUMBERS[::2]], mode=ImportMode.REPLACE,
                                now=NOW)
    await store.import_opposition("bloctel", [OppositionRow(n) for n in NUMBERS[::3]],
                                  mode=ImportMode.REPLACE, now=NOW)
    for n in NUMBERS[:5]:  # an attempt 30 min before NOW: in the window of the first calls
        await store.reserve_attempt(e164=n, professional="acme", campaign_id="spring",
                                    now=NOW - timedelta(minutes=30), window_s=HOUR, limit=None,
                                    attempt_id=f"a-{n}")
    await store.record_answer(campaign_id="spring", call_id="x", at=NOW + timedelta(minutes=15),
                              abandoned=True)
    # each call its own instant, 10 minutes apart: the windows' bounds differ per call
    instants = [NOW + timedelta(minutes=10 * i) for i in range(len(NUMBERS))]
    alone = [await _load(store, n, t) for n, t in zip(NUMBERS, instants, strict=True)]
    assert alone[0].attempts and not alone[4].attempts  # the windows did move
    assert not alone[0].campaign.abandoned and alone[2].campaign.abandoned
    assert alone[0].consents and not alone[1].consents and alone[0].oppositions

    await store.warm_up()  # the scripts loaded, as `serve` does: no NOSCRIPT round trip
    counter = SendCounter(monkeypatch)
    together = await asyncio.gather(*(_load(store, n, t)
                                      for n, t in zip(NUMBERS, instants, strict=True)))
    assert together == alone
    assert counter.sends == 2  # the first call alone, the 19 queued meanwhile in one batch
    await store.close()


async def test_reservations_sent_together_each_hold_the_cap_atomically(
        redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(redis_url, key_prefix=key_prefix)
    assert isinstance(store, RedisStore)
    await store.warm_up()
    counter = SendCounter(monkeypatch)
    # ten numbers, three contenders each for a cap of two: two of each three placed
    results = await asyncio.gather(*(
        store.reserve_attempt(e164=n, professional="acme", campaign_id="spring", now=NOW,
                              window_s=HOUR, limit=2, attempt_id=f"{n}-{i}")
        for n in NUMBERS[:10] for i in range(3)))
    assert counter.sends == 2  # the first call alone, the 29 queued meanwhile in one batch
    for j in range(10):
        assert [r.ok for r in results[3 * j:3 * j + 3]] == [True, True, False]
        assert [r.count for r in results[3 * j:3 * j + 3]] == [1, 2, 2]
    stats = await store.campaign_stats(campaign_id="spring", now=NOW, abandon_window_s=HOUR)
    assert stats.attempts_last_minute == 20  # the placed ones only
    await store.close()


class Gate:
    """A read_many held until the test opens it; records what each read was given."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.reads: list[list[str]] = []
        self.deadlines: list[float | None] = []
        self.error: Exception | None = None

    async def __call__(self, items: Sequence[tuple[FactsQuery, datetime]]) -> list[Facts]:
        self.reads.append([q.e164 for q, _ in items])
        self.deadlines.append(OPERATION_DEADLINE.get())
        await self.open.wait()
        if self.error is not None:
            raise self.error
        return [Facts(attempts=(t,)) for _, t in items]


def _query(e164: str) -> FactsQuery:
    return FactsQuery(e164, "acme", "spring", HOUR, HOUR)


Reads = Group[tuple[FactsQuery, datetime], Facts]


async def _started(group: Reads, e164: str, deadline: float | None = None
                   ) -> asyncio.Task[Facts]:
    async def call() -> Facts:
        token = OPERATION_DEADLINE.set(deadline)
        try:
            return await group.run((_query(e164), NOW))
        finally:
            OPERATION_DEADLINE.reset(token)

    task = asyncio.get_running_loop().create_task(call())
    await asyncio.sleep(0)  # one turn: the task runs up to its read (lone, or queued)
    return task


async def test_a_caller_that_gave_up_is_left_out_and_the_latest_deadline_is_used() -> None:
    gate = Gate()
    group = Group(gate)
    first = await _started(group, "+33600000001", deadline=1.0)
    gave_up = await _started(group, "+33600000002", deadline=9.0)
    late = await _started(group, "+33600000003", deadline=5.0)
    later = await _started(group, "+33600000004", deadline=3.0)
    gave_up.cancel()
    gate.open.set()
    results: list[Any] = await asyncio.gather(first, late, later)
    assert [r.attempts for r in results] == [(NOW,)] * 3
    assert gate.reads == [["+33600000001"], ["+33600000003", "+33600000004"]]
    # the lone read keeps its caller's context; the group read waits until the latest
    assert gate.deadlines == [1.0, 5.0]


async def test_a_failed_group_read_fails_each_of_its_calls() -> None:
    gate = Gate()
    group = Group(gate)
    first = await _started(group, "+33600000001")
    queued = [await _started(group, f"+3360000001{i}") for i in range(3)]
    gate.error = StoreUnavailable("redis store: load_facts failed")
    gate.open.set()
    for task in (first, *queued):
        with pytest.raises(StoreUnavailable):
            await task
    assert len(gate.reads) == 2  # one lone read, one group read: not one per call
    gate.error = None  # the store is back: the next call reads at once
    assert (await group.run((_query("+33600000001"), NOW))).attempts == (NOW,)


async def test_close_fails_the_calls_still_queued_as_store_unavailable() -> None:
    """Not cancelled: a cancelled store call made the edge re-raise without answering;
    StoreUnavailable is answered by the campaign's fail mode."""
    gate = Gate()
    group = Group(gate)
    first = await _started(group, "+33600000001")
    queued = await _started(group, "+33600000002")
    group.close()  # the store closing: nobody will read the queued call
    gate.open.set()
    assert (await first).attempts == (NOW,)  # the read in flight ends as it would
    with pytest.raises(StoreUnavailable, match="store closing"):
        await queued
    assert gate.reads == [["+33600000001"]]
