"""The batched facts read on plain Redis: the numbers' reads as a few READ_FACTS calls
(redis_reads.py), one round trip, the same facts as one ``load_facts`` per number."""

from __future__ import annotations

import math
from typing import Any

import pytest
import redis

from gateway.store.base import FactsQuery
from gateway.store.factory import open_store
from gateway.store.redis import RedisStore
from gateway.store.redis_reads import NUMBERS_PER_CALL, usable
from tests.store.test_contract import DAY, NOW, A, B, C, facts
from tests.store.test_facts_many import _seed
from tests.store.test_redis import SendCounter

UNKNOWN = [f"+3361{i:07d}" for i in range(300)]


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
    await store.warm_up()  # loads READ_FACTS with the other scripts: no NOSCRIPT below
    with redis.Redis.from_url(redis_url) as admin:
        admin.config_resetstat()
        counter = SendCounter(monkeypatch)
        many = await store.load_facts_many(queries, now=NOW)
        stats = admin.info("commandstats")
    assert many == one
    assert many[0].consents and many[0].attempts and many[1].oppositions
    assert counter.sends == 1
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
    # the numbers in script calls; the campaign's three counters, the list metadata
    assert calls["evalsha"] == math.ceil(len(queries) / NUMBERS_PER_CALL) > 1
    assert calls["hgetall"] == len(queries) + 1  # each number's hash, the metadata
    assert calls["zcount"] == 3
    await store.close()


async def test_a_batch_survives_a_script_flush(redis_url: str, key_prefix: str) -> None:
    store = _store(redis_url, key_prefix)
    await _seed(store)
    queries = _queries()
    first = await store.load_facts_many(queries, now=NOW)
    await store.conn.client.script_flush()  # a restarted server forgot READ_FACTS
    assert await store.load_facts_many(queries, now=NOW) == first
    assert first[0].consents and first[1].oppositions
    await store.close()


async def test_read_facts_refuses_a_malformed_line(redis_url: str, key_prefix: str) -> None:
    store = _store(redis_url, key_prefix)
    client: Any = store.conn.client
    head = ["n:{", "}", "a:{", "}:", "k:{k", "}:0", 4, 0]
    with pytest.raises(redis.ResponseError, match="five fields"):
        await client.eval(store.conn.read_facts.script, 0, *head, "+33612345678\tacme")
    reply = await client.eval(store.conn.read_facts.script, 0, *head,
                              "+33612345678\tacme\t(0\t3361\t2345")
    assert reply == [0]  # nothing stored for that number
    await store.close()


def test_only_e164_numbers_and_plain_professionals_go_as_lines() -> None:
    query = FactsQuery(A, "acme", "spring", 30 * DAY, DAY)
    assert usable([query], [(3361, 2345)])
    assert not usable([query], [None])  # not E.164: its keys may need tag escaping
    for bad in ("ac\tme", "ac\nme"):  # would split a line: the plain pipeline reads it
        assert not usable([FactsQuery(A, bad, "spring", 30 * DAY, DAY)], [(3361, 2345)])


async def test_a_professional_with_a_tab_reads_the_same(redis_url: str, key_prefix: str
                                                        ) -> None:
    store = _store(redis_url, key_prefix)
    queries = [FactsQuery(e, "ac\tme", "spring", 30 * DAY, DAY) for e in (A, B, *UNKNOWN[:3])]
    await store.reserve_attempt(e164=A, professional="ac\tme", campaign_id="spring", now=NOW,
                                window_s=30 * DAY, limit=None, attempt_id="t1")
    many = await store.load_facts_many(queries, now=NOW)
    assert many[0].attempts and not many[1].attempts
    assert many == [(await store.load_facts_many([q], now=NOW))[0] for q in queries]
    await store.close()
