"""Redis-only properties of prescreen tokens: one round trip, expiry, hash tags."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from redis.cluster import key_slot

from gateway.store.factory import open_store
from gateway.store.redis import RedisStore
from tests.store.test_redis import SendCounter

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
A = "+33612345678"
DAY = 86400


def _redis(url: str, prefix: str) -> RedisStore:
    store = open_store(url, key_prefix=prefix, socket_timeout_s=2.0)
    assert isinstance(store, RedisStore)
    return store


async def _reserve(store: RedisStore, attempt_id: str) -> None:
    r = await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring", now=NOW,
                                    window_s=30 * DAY, limit=4, attempt_id=attempt_id,
                                    prescreen_ttl_s=120)
    assert r.ok


async def test_the_token_read_is_in_the_one_load_facts_round_trip(
        redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _redis(redis_url, key_prefix)
    await _reserve(store, "proxy-1")
    await store.ping()
    with redis.Redis.from_url(redis_url) as admin:
        # the token expires on its own in Redis too (PX = the TTL)
        assert 0 < admin.pttl(store.keys.prescreen(A, "proxy-1")) <= 120_000
        admin.config_resetstat()
        counter = SendCounter(monkeypatch)
        facts = await store.load_facts(e164=A, professional="acme", campaign_id="spring",
                                       now=NOW, attempt_window_s=30 * DAY, abandon_window_s=DAY,
                                       prescreen_id="proxy-1")
        stats = admin.info("commandstats")
        assert admin.exists(store.keys.prescreen(A, "proxy-1")) == 0
    assert counter.sends == 1
    assert facts.prescreen is not None and facts.attempts == ()
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
    assert calls == {"hgetall": 2, "zrangebyscore": 1, "zcount": 3, "getdel": 1, "zscore": 1,
                     "hmget": 1, "config|resetstat": 1}
    await store.close()


@pytest.mark.cluster
async def test_the_token_shares_the_numbers_slot_on_a_cluster(
        redis_cluster_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _redis(redis_cluster_url, key_prefix)
    k = store.keys
    # written by the reservation script with the attempts key: one slot
    assert key_slot(k.prescreen(A, "proxy-1").encode()) == key_slot(
        k.attempts(A, "acme").encode()) == key_slot(k.number(A).encode())
    await _reserve(store, "proxy-1")
    await _reserve(store, "proxy-2")

    async def load(prescreen_id: str) -> Any:
        return await store.load_facts(e164=A, professional="acme", campaign_id="spring",
                                      now=NOW, attempt_window_s=30 * DAY, abandon_window_s=DAY,
                                      prescreen_id=prescreen_id)

    await load("proxy-1")  # discovers the slots and opens the connections
    counter = SendCounter(monkeypatch)
    facts = await load("proxy-2")
    client: Any = store.conn.client
    seen = store.consents.seen  # the generation this process reads
    bucket = store.consents.locate(A, 0 if seen is None else seen[0])
    assert bucket is not None
    nodes = {client.get_node_from_key(key).name
             for key in (k.number(A), k.paced("spring"), k.lists(), bucket[0])}
    assert counter.sends == len(nodes) <= 3
    assert facts.prescreen is not None and len(facts.attempts) == 1
    await store.close()
