"""Redis-only properties: round trips, scripts, purge of old versions, faults."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from redis.asyncio.connection import AbstractConnection
from redis.cluster import key_slot

from gateway.core.model import ConsentRecord
from gateway.store import codec, resp
from gateway.store.base import ImportMode, OppositionRow, StoreUnavailable
from gateway.store.factory import open_store
from gateway.store.redis import RedisStore
from tests.fixtures.redis_servers import RedisServerFactory

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
A = "+33612345678"
B = "+33698765432"
FAULT_DEADLINE_S = 5.0  # a dead Redis must be reported well within this


def _redis(url: str, prefix: str, **kw: Any) -> RedisStore:
    store = open_store(url, key_prefix=prefix, **kw)
    assert isinstance(store, RedisStore)
    return store


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
async def rstore(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[RedisStore]:
    url = request.getfixturevalue("redis_url" if request.param == "redis"
                                  else "redis_cluster_url")
    store = _redis(url, key_prefix, socket_timeout_s=2.0, import_batch_size=10)
    yield store
    await store.close()


class SendCounter:
    """Counts socket writes of redis.asyncio connections and of the hot path's lean
    connection (gateway.store.resp): one per round trip."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sends = 0
        original = AbstractConnection.send_packed_command

        async def counting(conn: AbstractConnection, command: Any, check_health: bool = True
                           ) -> None:
            self.sends += 1
            await original(conn, command, check_health)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
        lean_send = resp._Connection.send

        def lean_counting(conn: resp._Connection, data: bytes, n: int) -> Any:
            self.sends += 1
            return lean_send(conn, data, n)

        monkeypatch.setattr(resp._Connection, "send", lean_counting)


def _consent(e164: str, cid: str = "c1", **kw: Any) -> ConsentRecord:
    base: dict[str, Any] = dict(
        id=cid, e164=e164, professional="acme", product_category="telecom",
        collected_at=NOW - timedelta(days=10), expires_at=NOW + timedelta(days=300),
        channel="web", proof_ref=f"proof-{cid}")
    base.update(kw)
    return ConsentRecord(**base)


async def _load(store: RedisStore, e164: str = A) -> Any:
    return await store.load_facts(e164=e164, professional="acme", campaign_id="spring",
                                  now=NOW, attempt_window_s=86400, abandon_window_s=86400)


async def test_load_facts_is_one_round_trip_on_plain_redis(
        redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _redis(redis_url, key_prefix)
    await store.import_opposition("bloctel", [OppositionRow(A)], mode=ImportMode.REPLACE,
                                  now=NOW)
    await store.import_consents([_consent(A)], mode=ImportMode.REPLACE, now=NOW)
    await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring", now=NOW,
                                window_s=86400, limit=None, attempt_id="a1")
    await store.ping()  # the pool holds a connected connection: no handshake below
    with redis.Redis.from_url(redis_url) as admin:
        admin.config_resetstat()
        counter = SendCounter(monkeypatch)
        facts = await _load(store)
        stats = admin.info("commandstats")
    assert counter.sends == 1
    assert facts.oppositions and facts.attempts and facts.lists and facts.consents
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
    # six reads, the consent bucket's fields and the opposition bucket (intset and bitmap
    # forms) in that one request; the INFO itself is the only other command
    assert calls == {"hgetall": 2, "zrangebyscore": 1, "zcount": 3, "hmget": 1,
                     "sismember": 1, "getbit": 1, "config|resetstat": 1}
    await store.close()


async def test_a_placed_attempt_is_reserved_and_paced_in_one_round_trip_on_plain_redis(
        redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _redis(redis_url, key_prefix)
    await store.warm_up()  # connected, scripts loaded: no handshake nor NOSCRIPT below
    old = NOW - timedelta(seconds=61)  # left in the pacing set by an earlier call
    await store.conn.client.zadd(store.keys.paced("spring"), {"old": codec.to_ms(old)})
    counter = SendCounter(monkeypatch)
    placed = await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                         now=NOW, window_s=86400, limit=1, attempt_id="a1")
    assert counter.sends == 1 and placed.ok
    refused = await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                          now=NOW, window_s=86400, limit=1, attempt_id="a2")
    assert counter.sends == 2 and not refused.ok
    paced = store.keys.paced("spring")
    # the placed attempt only, the minute-old one trimmed, the key expiring with the window
    assert await store.conn.client.zrange(paced, 0, -1, withscores=True) == [
        ("a1", float(codec.to_ms(NOW)))]
    assert 0 < await store.conn.client.pttl(paced) <= 60_000
    await store.close()


@pytest.mark.cluster
async def test_load_facts_touches_at_most_three_nodes_on_a_cluster(
        redis_cluster_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _redis(redis_cluster_url, key_prefix)
    await store.import_consents([_consent(A)], mode=ImportMode.REPLACE, now=NOW)
    await store.ping()
    await _load(store)  # discovers the slots and opens the connections
    counter = SendCounter(monkeypatch)
    assert (await _load(store)).consents == (_consent(A),)
    k = store.keys
    seen = store.consents.seen  # the generation this process reads
    bucket = store.consents.locate(A, 0 if seen is None else seen[0])
    assert bucket is not None
    slots = {key_slot(k.number(A).encode()), key_slot(k.paced("spring").encode()),
             key_slot(k.lists().encode()), key_slot(bucket[0].encode())}
    client: Any = store.conn.client
    nodes = {client.get_node_from_key(key).name
             for key in (k.number(A), k.paced("spring"), k.lists(), bucket[0])}
    assert len(slots) == 4
    assert counter.sends == len(nodes) <= 3
    await store.close()


async def test_scripts_survive_a_script_flush(rstore: RedisStore) -> None:
    await rstore.import_opposition("x", [OppositionRow(A)], mode=ImportMode.MERGE, now=NOW)
    await rstore.conn.client.script_flush()
    r = await rstore.reserve_attempt(e164=A, professional="acme", campaign_id="s", now=NOW,
                                     window_s=60, limit=1, attempt_id="a")
    assert r.ok
    await rstore.conn.client.script_flush()
    info = await rstore.import_opposition("x", [OppositionRow("+33600000001")],
                                          mode=ImportMode.MERGE, now=NOW)
    assert info.size == 2


def _rows(n: int, start: int = 0) -> Iterator[OppositionRow]:
    for i in range(start, start + n):
        yield OppositionRow(f"+3361{i:07d}")


async def _fields(store: RedisStore, e164: str) -> list[str]:
    fields: list[str] = await store.conn.client.hkeys(store.keys.number(e164))
    return sorted(fields)


async def _list_keys(store: RedisStore) -> list[str]:
    keys = [k async for k in store.conn.client.scan_iter(match=f"{store.keys.prefix}:o*")]
    return sorted(k.decode() if isinstance(k, bytes) else k for k in keys)


async def test_replace_unlinks_the_superseded_generation(rstore: RedisStore) -> None:
    v1 = await rstore.import_opposition("bloctel", _rows(30), mode=ImportMode.REPLACE, now=NOW)
    old = await _list_keys(rstore)
    assert any(k.endswith(f":{v1.version}") for k in old)
    v2 = await rstore.import_opposition("bloctel", _rows(30, start=15),
                                        mode=ImportMode.REPLACE, now=NOW)
    new = await _list_keys(rstore)
    assert new and not set(old) & set(new)  # every key of version 1 is gone, no SCAN
    assert all(k.endswith((f":{v2.version}", f":{v2.version}b")) for k in new)
    assert await _fields(rstore, "+33610000020") == []  # no per-number hash for a snapshot
    assert len((await _load(rstore, "+33610000020")).oppositions) == 1
    assert (await _load(rstore, "+33610000000")).oppositions == ()


async def test_aborted_and_crashed_imports_leave_no_keys(rstore: RedisStore) -> None:
    class Boom(Exception):
        pass

    def failing() -> Iterator[OppositionRow]:
        yield from _rows(25)
        raise Boom

    await rstore.import_opposition("tps", _rows(5), mode=ImportMode.REPLACE, now=NOW)
    served = await _list_keys(rstore)
    with pytest.raises(Boom):
        await rstore.import_opposition("tps", failing(), mode=ImportMode.REPLACE, now=NOW)
    assert await _list_keys(rstore) == served
    # a writer that died after writing its index and a bucket: invisible, then deleted
    meta = await rstore.conn.meta("begin", "opposition:tps", int(NOW.timestamp() * 1000))
    from gateway.store.redis_opposition import bucket_keys, index_key
    s_key, _ = bucket_keys(rstore.conn, "tps", 3361000, meta.seq)
    await rstore.conn.client.sadd(index_key(rstore.conn, "tps", meta.seq), 3361000)
    await rstore.conn.client.sadd(s_key, 9)
    assert (await _load(rstore, "+33610000009")).oppositions == ()
    await rstore.purge_superseded(now=NOW)
    assert s_key in await _list_keys(rstore)  # not stale yet: maybe still being written
    await rstore.purge_superseded(now=NOW + timedelta(days=2))
    assert await _list_keys(rstore) == served


async def test_merges_add_generations_and_a_replace_collapses_them(rstore: RedisStore) -> None:
    await rstore.import_opposition("internal", [OppositionRow(A)], mode=ImportMode.REPLACE,
                                   now=NOW)
    v2 = await rstore.import_opposition("internal", [OppositionRow(A), OppositionRow(B)],
                                        mode=ImportMode.MERGE, now=NOW)
    assert v2.size == 2  # A counted once across generations
    metas = await rstore.conn.metas()
    assert len(metas["opposition:internal"].gens) == 2
    assert len((await _load(rstore, B)).oppositions) == 1
    v3 = await rstore.import_opposition("internal", [OppositionRow(B)],
                                        mode=ImportMode.REPLACE, now=NOW)
    assert (await rstore.conn.metas())["opposition:internal"].gens == (v3.version,)
    assert (await _load(rstore, A)).oppositions == ()
    assert all(k.endswith((f":{v3.version}", f":{v3.version}b"))
               for k in await _list_keys(rstore))


# --- faults ---------------------------------------------------------------------------


async def _all_fail(store: RedisStore) -> None:
    async with asyncio.timeout(FAULT_DEADLINE_S):
        with pytest.raises(StoreUnavailable, match="load_facts"):
            await _load(store)
        with pytest.raises(StoreUnavailable, match="reserve_attempt"):
            await store.reserve_attempt(e164=A, professional="acme", campaign_id="s", now=NOW,
                                        window_s=60, limit=1, attempt_id="f")
        with pytest.raises(StoreUnavailable, match="import"):
            await store.import_opposition("x", [OppositionRow(A)], mode=ImportMode.REPLACE,
                                          now=NOW)
        with pytest.raises(StoreUnavailable):
            await store.ping()


async def test_killed_redis_is_unavailable_then_recovers(
        redis_server_factory: RedisServerFactory, key_prefix: str) -> None:
    server = redis_server_factory.start()
    store = _redis(server.url, key_prefix, socket_timeout_s=0.2, connect_timeout_s=0.2)
    await store.import_opposition("x", [OppositionRow(A)], mode=ImportMode.REPLACE, now=NOW)
    server.kill()
    await _all_fail(store)
    server.start()  # same port, empty (no persistence in tests)
    async with asyncio.timeout(FAULT_DEADLINE_S):
        assert (await _load(store)).oppositions == ()
        r = await store.reserve_attempt(e164=A, professional="acme", campaign_id="s", now=NOW,
                                        window_s=60, limit=1, attempt_id="after")
    assert r.ok
    await store.close()


async def test_frozen_redis_times_out_instead_of_hanging(
        redis_server_factory: RedisServerFactory, key_prefix: str) -> None:
    server = redis_server_factory.start()
    store = _redis(server.url, key_prefix, socket_timeout_s=0.2, connect_timeout_s=0.2)
    await store.ping()
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)
    try:
        await _all_fail(store)
    finally:
        server.proc.send_signal(signal.SIGCONT)
    async with asyncio.timeout(FAULT_DEADLINE_S):
        await store.ping()
        assert (await _load(store)).oppositions == ()
    await store.close()


async def test_unreachable_redis_at_start_is_unavailable(key_prefix: str) -> None:
    from tests.fixtures.redis_servers import free_port

    store = _redis(f"redis://127.0.0.1:{free_port()}/0", key_prefix, connect_timeout_s=0.2)
    await _all_fail(store)
    await store.close()
