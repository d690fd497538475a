"""The batched facts read on plain Redis: the pipeline's reads as a few READ_MANY calls
(redis_reads.py), one round trip, the same facts as one ``load_facts`` per number."""

from __future__ import annotations

import math
from typing import Any

import pytest
import redis

from gateway.store.base import FactsQuery
from gateway.store.factory import open_store
from gateway.store.redis import RedisStore
from gateway.store.redis_reads import COMMANDS_PER_CALL, ScriptedReads
from tests.store.test_contract import DAY, NOW, A, B, C, facts
from tests.store.test_facts_many import _seed
from tests.store.test_redis import SendCounter

UNKNOWN = [f"+3361{i:07d}" for i in range(300)]
# per number: its hash, its attempts, its consent fields, the opposition bucket (set, bitmap)
COMMANDS_PER_NUMBER = 5


def _store(url: str, prefix: str) -> RedisStore:
    store = open_store(url, key_prefix=prefix, socket_timeout_s=2.0)
    assert isinstance(store, RedisStore)
    return store


def _queries() -> list[FactsQuery]:
    return [FactsQuery(e, "acme", "spring", 30 * DAY, DAY) for e in (A, B, C, *UNKNOWN)]


async def test_a_batch_is_one_round_trip_of_script_calls(
        redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(redis_url, key_prefix)
    await _seed(store)
    queries = _queries()
    one = [await facts(store, q.e164, campaign=q.campaign_id) for q in queries]
    await store.warm_up()  # loads READ_MANY with the other scripts: no NOSCRIPT below
    with redis.Redis.from_url(redis_url) as admin:
        admin.config_resetstat()
        counter = SendCounter(monkeypatch)
        many = await store.load_facts_many(queries, now=NOW)
        stats = admin.info("commandstats")
    assert many == one
    assert many[0].consents and many[0].attempts and many[1].oppositions
    assert counter.sends == 1
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
    # the numbers' reads, the campaign's three counters and the list metadata
    commands = COMMANDS_PER_NUMBER * len(queries) + 3 + 1
    assert calls["evalsha"] == math.ceil(commands / COMMANDS_PER_CALL) > 1
    assert calls["hgetall"] == len(queries) + 1
    await store.close()


async def test_a_batch_survives_a_script_flush(redis_url: str, key_prefix: str) -> None:
    store = _store(redis_url, key_prefix)
    await _seed(store)
    queries = _queries()
    first = await store.load_facts_many(queries, now=NOW)
    await store.conn.client.script_flush()  # a restarted server forgot READ_MANY
    assert await store.load_facts_many(queries, now=NOW) == first
    assert first[0].consents and first[1].oppositions
    await store.close()


async def test_read_many_runs_reads_only(redis_url: str, key_prefix: str) -> None:
    store = _store(redis_url, key_prefix)
    client: Any = store.conn.client
    await client.set(f"{key_prefix}:victim", "1")
    with pytest.raises(ValueError, match="not one of its reads"):
        ScriptedReads(store.conn).execute_command("DEL", f"{key_prefix}:victim")
    with pytest.raises(ValueError, match="not one of its reads"):  # no smuggled command
        ScriptedReads(store.conn).execute_command("HMGET", "k", "1\nDEL")
    with pytest.raises(redis.ResponseError, match="not a read"):
        await client.eval(store.conn.read_many.script, 0, f"DEL\t{key_prefix}:victim")
    with pytest.raises(ValueError, match="tab or a newline"):  # a key never splits a line
        ScriptedReads(store.conn).hgetall(f"{key_prefix}:x\tDEL")
    assert await client.get(f"{key_prefix}:victim") == "1"
    await store.close()
