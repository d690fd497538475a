"""Attacks on the grouped reads and reservations (hostile review of the cpu12 change),
against a real redis-server.

- One number whose stored consent cannot be decoded failed every call read in the same
  batch: on a fail-open campaign, a number on the opposition list was dialled unscreened.
  Now that number's call fails alone; its neighbours are decided on their own facts.
- A reservation batch waiting for a connection slot sent the reservation of a caller
  that had given up (answered BLOCK timeout): an attempt counted for a call never placed,
  and with a cap of 1 the next real call was refused. Now it is not sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from gateway.core.model import Attempt, FailMode, Reason, Verdict
from gateway.core.policy import Policy
from gateway.packs import builtin_packs
from gateway.service import Service
from gateway.store.base import OPERATION_DEADLINE, ImportMode, OppositionRow
from gateway.store.factory import open_store
from gateway.store.redis_consents import chunk_fields
from tests.fixtures.redis_servers import RedisServerFactory
from tests.test_service import CAMPAIGN, LEGAL_NOW, consent

GOOD = [f"+336123456{i:02d}" for i in range(6)]
ON_LIST = "+33612345699"
POISON = "+33612345698"  # its consent record cannot be decoded
NUMBER = "+33612345678"


async def test_one_undecodable_number_does_not_fail_the_calls_read_beside_it(
        redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory.start()
    store = open_store(server.url, key_prefix="poison")
    try:
        await store.import_consents([consent(n) for n in [*GOOD, POISON]],
                                    mode=ImportMode.REPLACE, now=LEGAL_NOW)
        await store.import_opposition("bloctel", [OppositionRow(ON_LIST)],
                                      mode=ImportMode.REPLACE, now=LEGAL_NOW - timedelta(days=1))
        await store.warm_up()
        seen = store.consents.seen  # type: ignore[attr-defined]
        place = store.consents.locate(POISON, seen[0])  # type: ignore[attr-defined]
        assert place is not None
        key, member = place
        with server.admin() as admin:  # e.g. written by a newer version, or half-written
            admin.hset(key, chunk_fields(member, 0, 1)[0], "\xff garbage")
        campaign = dataclasses.replace(CAMPAIGN, fail_mode=FailMode.OPEN)
        service = Service(policy=Policy(packs=builtin_packs(), campaigns={campaign.id: campaign}),
                          store=store, audit=None, clock=lambda: LEGAL_NOW)
        numbers = [GOOD[0], POISON, ON_LIST, *GOOD[1:]]  # the first reads alone, then a batch
        results = await asyncio.gather(*(service.screen(Attempt(n, campaign.id))
                                          for n in numbers))
    finally:
        await store.close()
    by_number = {n: (r.verdict, r.reason) for n, r in zip(numbers, results, strict=True)}
    assert by_number[ON_LIST] == (Verdict.BLOCK, Reason.OPPOSITION)  # never fail-open
    assert by_number[POISON] == (Verdict.ALLOW, Reason.STORE_UNAVAILABLE)  # its own fail mode
    assert all(by_number[n] == (Verdict.ALLOW, Reason.OK) for n in GOOD)


async def _reserve(store: object, name: str, budget_s: float) -> bool | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_s
    token = OPERATION_DEADLINE.set(deadline)
    try:
        async with asyncio.timeout_at(deadline):  # as Service.screen bounds it
            r = await store.reserve_attempt(  # type: ignore[attr-defined]
                e164=NUMBER, professional="acme", campaign_id="spring", now=LEGAL_NOW,
                window_s=3600, limit=1, attempt_id=name)
            return bool(r.ok)
    except TimeoutError:
        return None  # answered BLOCK timeout: nothing will give an attempt back
    finally:
        OPERATION_DEADLINE.reset(token)


async def test_a_reservation_whose_caller_gave_up_is_not_sent(
        redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory.start()
    store = open_store(server.url, key_prefix="late", max_connections=2)
    try:
        await store.warm_up()
        slots = store.conn._slots  # type: ignore[attr-defined]
        for _ in range(2):  # every connection busy with other calls' operations
            await slots.acquire()
        first = asyncio.create_task(_reserve(store, "A", 0.1))  # holds the lone path
        await asyncio.sleep(0)
        late = asyncio.create_task(_reserve(store, "B", 0.15))  # queued, then gives up
        await asyncio.sleep(0)
        kept = asyncio.create_task(_reserve(store, "C", 5.0))  # queued with B
        assert await first is None and await late is None  # both ran out of budget
        for _ in range(2):
            slots.release()
        assert await kept is True
        with server.admin() as admin:
            counted = admin.zrange(store.keys.attempts(NUMBER, "acme"), 0, -1)  # type: ignore[attr-defined]
    finally:
        await store.close()
    assert counted == ["C"]
