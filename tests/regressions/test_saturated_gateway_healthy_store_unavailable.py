"""Incident: a CPU-saturated gateway answered ``BLOCK store_unavailable`` for a healthy
Redis (bench/field.py on an overloaded host: 52 of 500 calls at 50 in flight).

On a saturated gateway one turn of the event loop outlasts the Redis socket timeout
(0.2 s) and the audit write deadline (0.2 s): Redis answered in a millisecond, the loop
read the reply too late, and the timeout was reported as an unreachable store. Now a
timeout while the loop ran late (``gateway.loop_lag``) or while the store kept answering
is saturation: ``BLOCK timeout``, counted; a store that is really down (killed: connection
refused) is still ``store_unavailable``, lagging loop or not.

The lag is real CPU work on the loop (tests/regressions/cpu_lag.py); Redis is a real
redis-server. The decision budget is long here so that only the socket and audit
deadlines can fire: the classification must not depend on which deadline is shorter.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import redis as redis_sync

from gateway.audit import AuditSettings, open_audit_trail
from gateway.core.model import Attempt, Reason, Verdict
from gateway.service import Service
from gateway.service_api import ScreenResult
from gateway.store.factory import open_store
from gateway.store.memory import MemoryStore
from tests.fixtures.redis_servers import RedisServerFactory
from tests.regressions.cpu_lag import lagging_loop
from tests.test_service import LEGAL_NOW, policy, with_consent

CALLS = 12
NUMBERS = [f"+3361299{i:04d}" for i in range(CALLS)]
CHUNK_S = 0.5  # each loop turn burns this long: over the 0.2 s socket / write deadlines
BUDGET_S = 30.0  # only the socket and audit deadlines can fire (see the docstring)
DEADLINE_S = 120.0  # generous: the loop is slow on purpose


class Counting:
    """A ServiceObserver that keeps what the hot path counted."""

    def __init__(self) -> None:
        self.store_errors: Counter[str] = Counter()
        self.audit_errors = 0

    def decision(self, result: ScreenResult, *, source: str, latency_s: float) -> None:
        return None

    def store_error(self, kind: str) -> None:
        self.store_errors[kind] += 1

    def audit_error(self) -> None:
        self.audit_errors += 1


async def screen_all_lagging(svc: Service) -> list[ScreenResult]:
    async with asyncio.timeout(DEADLINE_S), lagging_loop(CHUNK_S):
        return list(await asyncio.gather(*(
            svc.screen(Attempt(number=n, campaign_id="spring", source="agi"))
            for n in NUMBERS)))


def tally(results: list[ScreenResult]) -> Counter[tuple[Verdict, Reason]]:
    return Counter((r.verdict, r.reason) for r in results)


async def test_store_timeouts_on_a_lagging_loop_answer_timeout(
        redis_url: str, key_prefix: str) -> None:
    seeder = await with_consent(open_store(redis_url, key_prefix=key_prefix), *NUMBERS)
    await seeder.close()
    # a store that has not answered this process yet: the first timeouts are classified
    # by the loop's lag alone (not by "the store answered a moment ago")
    store = open_store(redis_url, key_prefix=key_prefix)
    counting = Counting()
    svc = Service(policy=policy(), store=store, audit=None, clock=lambda: LEGAL_NOW,
                  budget_s=BUDGET_S, observer=counting)
    try:
        outcomes = tally(await screen_all_lagging(svc))
    finally:
        await store.close()
    assert (Verdict.BLOCK, Reason.STORE_UNAVAILABLE) not in outcomes, outcomes
    assert set(outcomes) <= {(Verdict.ALLOW, Reason.OK), (Verdict.BLOCK, Reason.TIMEOUT)}
    # the loop did lag past the socket timeout: saturation was real, and counted
    assert outcomes[(Verdict.BLOCK, Reason.TIMEOUT)] > 0, outcomes
    assert counting.store_errors == {"timeout": outcomes[(Verdict.BLOCK, Reason.TIMEOUT)]}


async def test_a_killed_redis_is_still_unavailable_on_a_lagging_loop(
        redis_server_factory: RedisServerFactory, key_prefix: str) -> None:
    server = redis_server_factory.start()
    store = await with_consent(open_store(server.url, key_prefix=key_prefix), *NUMBERS)
    counting = Counting()
    svc = Service(policy=policy(), store=store, audit=None, clock=lambda: LEGAL_NOW,
                  budget_s=BUDGET_S, observer=counting)
    server.kill()  # connection refused from now on; the pooled connection is dead
    try:
        outcomes = tally(await screen_all_lagging(svc))
    finally:
        await store.close()
    assert outcomes == {(Verdict.BLOCK, Reason.STORE_UNAVAILABLE): CALLS}
    assert counting.store_errors == {"unavailable": CALLS}


def stream_records(url: str, key: str) -> list[dict[str, Any]]:
    admin = redis_sync.Redis.from_url(url)
    try:
        return [json.loads(fields[b"r"]) for _id, fields in admin.xrange(key)]
    finally:
        admin.close()


async def test_audit_stream_writes_late_on_a_lagging_loop_answer_timeout(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    """The decisions are ALLOW (memory store); their records reach a healthy Redis stream
    late: the calls are blocked ``timeout`` (no proof, no call) and the records that
    land say so (a superseding record per late write)."""
    stream = f"{key_prefix}:audit"
    settings = AuditSettings(sink="redis", redis_url=redis_url, stream_key=stream,
                             instance_id="gw-a", write_timeout_s=0.2,
                             anchor_path=str(tmp_path / "anchor" / "a.anchor"))
    trail = open_audit_trail(settings)
    store = await with_consent(MemoryStore(), *NUMBERS)
    counting = Counting()
    svc = Service(policy=policy(), store=store, audit=trail, clock=lambda: LEGAL_NOW,
                  budget_s=BUDGET_S, observer=counting)
    try:
        results = await screen_all_lagging(svc)
    finally:
        await trail.close()  # flushes the superseding records still queued
    outcomes = tally(results)
    assert (Verdict.BLOCK, Reason.STORE_UNAVAILABLE) not in outcomes, outcomes
    assert set(outcomes) <= {(Verdict.ALLOW, Reason.OK), (Verdict.BLOCK, Reason.TIMEOUT)}
    assert outcomes[(Verdict.BLOCK, Reason.TIMEOUT)] > 0, outcomes
    # a sink that was up is not an audit failure: counted as a budget overrun
    assert counting.audit_errors == 0
    assert counting.store_errors == {"timeout": outcomes[(Verdict.BLOCK, Reason.TIMEOUT)]}
    enforced: dict[str, tuple[str, str]] = {}
    for rec in stream_records(redis_url, stream):  # the last record of an id stands
        enforced[rec["id"]] = (rec["verdict"], rec["reason"])
    assert enforced == {r.decision_id: (r.verdict.value, r.reason.value) for r in results}
