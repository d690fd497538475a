"""The lean RESP client (gateway.store.resp) under faults a real server cannot produce on
demand: a TCP proxy in this file holds, injects or cuts the server's bytes.

Every caller gets its own replies or an error, never another caller's reply, never a
hang; the decisions' facts read through it equal those read through redis-py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.store import resp
from gateway.store.base import FactsQuery, StoreUnavailable
from gateway.store.factory import open_store
from gateway.store.redis import RedisStore
from gateway.store.redis_hot import HotPipeline, from_redis_client
from gateway.store.resp import LeanClient
from tests.fixtures.redis_servers import RedisServerFactory
from tests.store.test_contract import DAY, NOW, A, B, C
from tests.store.test_facts_many import _seed

YIELDS = 1000


async def _until(predicate: Any, what: str) -> None:
    for _ in range(YIELDS):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never: {what}")


class _Link:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client, self.upstream = client, upstream
        self.held = bytearray()
        self.arrived = asyncio.Event()  # server bytes held since the last wait


class Proxy:
    """127.0.0.1 TCP proxy to a redis-server: forwards both ways, or holds the server's
    bytes (``hold``), lets a test write its own bytes to the client (``inject``)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.hold = False
        self.links: list[_Link] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        link = _Link(writer, up_w)
        self.links.append(link)
        for coro in (self._pump(reader, up_w, None), self._pump(up_r, writer, link)):
            task = asyncio.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    link: _Link | None) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                if link is not None and self.hold:
                    link.held += data
                    link.arrived.set()
                    continue
                dst.write(data)
        with contextlib.suppress(OSError):
            dst.close()

    async def held(self, link: _Link, n: int) -> bytes:
        """Wait (no sleep: on the proxy's reads) until ``n`` bytes are held."""
        while len(link.held) < n:
            link.arrived.clear()
            await link.arrived.wait()
        return bytes(link.held)

    def inject(self, link: _Link, data: bytes) -> None:
        link.client.write(data)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for link in self.links:
            for w in (link.client, link.upstream):
                with contextlib.suppress(OSError):
                    w.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


@pytest.fixture
async def proxied(redis_url: str) -> AsyncIterator[Proxy]:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = Proxy(port)
    await proxy.start()
    yield proxy
    await proxy.close()


def _to(port: int, *, stall: float = 30.0, **kw: Any) -> LeanClient:
    client = redis.asyncio.Redis(host="127.0.0.1", port=port, **kw)
    lean = from_redis_client(client, stall_timeout_s=stall)
    assert lean is not None
    return lean


# --- replies matched in order, whatever the segments ------------------------------------

class _Sink(asyncio.Transport):
    """The client side of a connection whose bytes a test feeds (the reply bytes are a
    real server's, captured through the proxy)."""

    def __init__(self) -> None:
        super().__init__()
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True


REPLY_MIX: list[tuple[Any, ...]] = [
    ("HGETALL", "{p}:h"), ("ZRANGEBYSCORE", "{p}:z", "-inf", "+inf", "WITHSCORES"),
    ("ZCOUNT", "{p}:z", "-inf", "+inf"), ("GET", "{p}:missing"), ("HGETALL", "{p}:s"),
    ("EVAL", "return {1, {KEYS[1], {}}, false, 'x'}", 1, "{p}:k"),
    ("HMGET", "{p}:h", "f1", "nope"), ("ZSCORE", "{p}:z", "m2"), ("GET", "{p}:bin"),
]


async def test_a_reply_split_at_every_byte_is_matched_as_a_whole(
        proxied: Proxy, redis_url: str, key_prefix: str) -> None:
    p = key_prefix
    with redis.Redis.from_url(redis_url) as admin:
        admin.hset(f"{p}:h", mapping={"f1": "v1", "f2": b"\x00\r\n\xff"})
        admin.zadd(f"{p}:z", {"m1": 1.5, "m2": 1e16})
        admin.set(f"{p}:s", "a string")  # HGETALL on it: WRONGTYPE, in its place
        admin.set(f"{p}:bin", b"\r\n$3\r\n*1\r\n")
    first = [tuple(a.replace("{p}", p) if isinstance(a, str) else a for a in c)
             for c in REPLY_MIX]
    second = [("ECHO", "second"), ("INCR", f"{p}:n")]
    lean = _to(proxied.port)
    await lean.execute((("PING",),))
    proxied.hold = True
    a = asyncio.create_task(lean.execute(first))
    b = asyncio.create_task(lean.execute(second))
    link = proxied.links[0]
    # the server's whole answer to both, as it sent it
    await _until(lambda: lean.in_flight == 2, "both requests written")
    wire = await proxied.held(link, 1)
    while True:  # until both are complete (hiredis says so on a scratch reader)
        reader = hiredis_reader()
        reader.feed(wire)
        if _count(reader) == len(first) + len(second):
            break
        wire = await proxied.held(link, len(wire) + 1)
    proxied.inject(link, wire)  # the live callers get it whole
    whole_a, whole_b = await a, await b
    assert whole_b == [b"second", 1]
    assert isinstance(whole_a[4], ResponseError) and "WRONGTYPE" in str(whole_a[4])
    assert whole_a[5] == [1, [f"{p}:k".encode(), []], None, b"x"]
    assert whole_a[8] == b"\r\n$3\r\n*1\r\n"
    loop = asyncio.get_running_loop()
    # each byte boundary as a segment boundary, and every byte a segment of its own
    splits = [(k,) for k in range(1, len(wire))] + [tuple(range(1, len(wire)))]
    for cut in splits:
        conn = resp._Connection(loop, stall_timeout_s=30.0, max_in_flight=8)
        conn.connection_made(_Sink())
        fa = conn.send(b"", len(first))
        fb = conn.send(b"", len(second))
        for lo, hi in itertools.pairwise((0, *cut, len(wire))):
            conn.data_received(wire[lo:hi])
        got_a, got_b = fa.result(), fb.result()
        assert got_b == whole_b, cut[:3]
        assert [type(r) if isinstance(r, Exception) else r for r in got_a] == [
            type(r) if isinstance(r, Exception) else r for r in whole_a], cut[:3]
        conn.fail(RedisConnectionError("done"))
    await lean.close()


def hiredis_reader() -> Any:
    import hiredis

    return hiredis.Reader()


def _count(reader: Any) -> int:
    n = 0
    while reader.gets() is not False:
        n += 1
    return n


async def test_an_error_reply_mid_pipeline_is_its_callers_only(
        redis_url: str, key_prefix: str) -> None:
    p = key_prefix
    with redis.Redis.from_url(redis_url) as admin:
        admin.set(f"{p}:s", "v")
        admin.hset(f"{p}:h", "f", "1")
    lean = _to(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    calls = [lean.execute((("HGET", f"{p}:h", "f"),)),
             lean.execute((("ECHO", "x"), ("HGETALL", f"{p}:s"), ("ECHO", "y"))),
             lean.evalsha("return redis.error_reply('boom')", [], []),
             lean.evalsha("return nil + 1", [], []),  # a script's runtime error
             lean.execute((("GET", f"{p}:s"),))]
    out = await asyncio.gather(*calls, return_exceptions=True)
    assert out[0] == [b"1"]
    assert out[1][0] == b"x" and out[1][2] == b"y"
    assert isinstance(out[1][1], ResponseError) and "WRONGTYPE" in str(out[1][1])
    assert isinstance(out[2], ResponseError) and "boom" in str(out[2])
    assert isinstance(out[3], ResponseError) and "script" in str(out[3]).lower()
    assert out[4] == [b"v"]
    assert lean.connects == 1 and lean.in_flight == 0  # the connection stays in step
    await lean.close()


async def test_a_huge_reply_then_the_next_callers_own(redis_url: str, key_prefix: str
                                                      ) -> None:
    big = bytes(range(256)) * (32 * 4096)  # 32 MiB
    with redis.Redis.from_url(redis_url) as admin:
        admin.set(f"{key_prefix}:big", big)
    lean = _to(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    got = await asyncio.gather(lean.execute((("GET", f"{key_prefix}:big"),)),
                               lean.execute((("ECHO", "after"),)))
    assert got[0] == [big] and got[1] == [b"after"]
    await lean.close()


# --- the server says something no caller asked for ---------------------------------------

@pytest.mark.parametrize("injected", [
    b"\x00not resp\r\n",  # garbage: a protocol error
    b"-LOADING Redis is loading the dataset in memory\r\n",
    b"-MASTERDOWN Link with MASTER is down\r\n",
    b"-READONLY You can't write against a read only replica.\r\n",
])
async def test_garbage_or_a_cannot_serve_reply_fails_every_caller_in_flight(
        proxied: Proxy, key_prefix: str, injected: bytes) -> None:
    lean = _to(proxied.port)
    await lean.execute((("SET", f"{key_prefix}:k", "mine"),))
    proxied.hold = True
    calls = [asyncio.create_task(lean.execute((("GET", f"{key_prefix}:k"),)))
             for _ in range(3)]
    await _until(lambda: lean.in_flight == 3, "three requests written")
    link = proxied.links[0]
    await proxied.held(link, 3 * len(b"$4\r\nmine\r\n"))  # the true replies are held
    proxied.inject(link, injected)
    out = await asyncio.gather(*calls, return_exceptions=True)
    assert [type(o) for o in out] == [RedisConnectionError] * 3, out
    # the true replies, let through late, reach a connection that is gone
    proxied.hold = False
    proxied.inject(link, bytes(link.held))
    assert await lean.execute((("GET", f"{key_prefix}:k"), ("ECHO", "own"))) == [
        b"mine", b"own"]
    assert lean.connects == 2
    await lean.close()


async def test_a_half_open_connection_fails_its_callers_and_the_next_connects(
        proxied: Proxy, redis_url: str, key_prefix: str) -> None:
    store = open_store(f"redis://127.0.0.1:{proxied.port}/0", key_prefix=key_prefix,
                       socket_timeout_s=0.2)
    assert isinstance(store, RedisStore) and store.conn.lean is not None
    await store.warm_up()
    proxied.hold = True  # the server's answers never come; the socket stays open
    calls = [asyncio.create_task(store.reserve_attempt(
                e164=A, professional="acme", campaign_id="spring", now=NOW, window_s=DAY,
                limit=None, attempt_id=f"a{i}")) for i in range(3)]
    out = await asyncio.gather(*calls, return_exceptions=True)
    # StoreBusy (a StoreUnavailable) when the store had just answered: fail closed alike
    assert all(isinstance(o, StoreUnavailable) and "sent nothing" in str(o) for o in out), out
    proxied.hold = False
    placed = await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                         now=NOW, window_s=DAY, limit=None, attempt_id="b")
    # its own count: the three held reservations ran on the server (4 attempts), and the
    # answer is this caller's, read on a new connection
    assert placed.ok and placed.count == 4
    assert store.conn.lean.connects >= 2  # a batch queued behind may stall a second one
    await store.close()


# --- callers that give up, and close ------------------------------------------------------

async def test_a_caller_cancelled_while_connecting_never_writes_and_others_get_theirs(
        redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory.start()
    with server.admin() as admin:
        admin.config_set("requirepass", "s3cret")
    proxy = Proxy(server.port)
    await proxy.start()
    try:
        lean = _to(proxy.port, password="s3cret")
        proxy.hold = True  # the handshake's AUTH reply is held: the connect is under way
        gives_up = asyncio.create_task(lean.execute((("ECHO", "gave up"),)))
        waits = asyncio.create_task(lean.execute((("ECHO", "mine"),)))
        await _until(lambda: bool(proxy.links), "the connection accepted")
        link = proxy.links[0]
        await proxy.held(link, len(b"+OK\r\n"))
        gives_up.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gives_up
        proxy.hold = False
        proxy.inject(link, bytes(link.held))
        assert await waits == [b"mine"]
        assert lean.in_flight == 0 and lean.connects == 1
        await lean.close()
    finally:
        await proxy.close()


async def test_close_during_a_connect_fails_its_callers_with_a_redis_error(
        proxied: Proxy) -> None:
    """close() stops a connection attempt: the callers that waited on it get a connection
    error (the store's StoreUnavailable), not a CancelledError they never asked for."""
    lean = _to(proxied.port, password="any")
    proxied.hold = True
    caller = asyncio.create_task(lean.execute((("PING",),)))
    await _until(lambda: bool(proxied.links), "the connection accepted")
    await proxied.held(proxied.links[0], 1)  # the AUTH reply, held: still connecting
    await lean.close()
    with pytest.raises(RedisConnectionError, match="closed"):
        await caller
    assert not caller.cancelled()


async def test_close_during_traffic_leaves_no_caller_pending(
        proxied: Proxy, key_prefix: str) -> None:
    lean = _to(proxied.port)
    await lean.execute((("PING",),))
    proxied.hold = True
    calls = [asyncio.create_task(lean.execute((("INCR", f"{key_prefix}:n"),)))
             for _ in range(5)]
    await _until(lambda: lean.in_flight == 5, "five requests written")
    await lean.close()
    out = await asyncio.gather(*calls, return_exceptions=True)
    assert [type(o) for o in out] == [RedisConnectionError] * 5
    with pytest.raises(RedisConnectionError, match="closed"):
        await lean.execute((("PING",),))


# --- the same facts as redis-py's -----------------------------------------------------------

async def test_the_hot_paths_facts_equal_redis_pys(redis_url: str, key_prefix: str) -> None:
    lean_store = open_store(redis_url, key_prefix=key_prefix, socket_timeout_s=2.0)
    py_store = open_store(redis_url, key_prefix=key_prefix, socket_timeout_s=2.0)
    assert isinstance(lean_store, RedisStore) and isinstance(py_store, RedisStore)
    assert py_store.conn.lean is not None
    await py_store.conn.lean.close()
    py_store.conn.lean = None  # redis-py's path, as before the lean client
    await _seed(lean_store)
    await lean_store.reserve_attempt(e164=B, professional="acme", campaign_id="spring",
                                     now=NOW - timedelta(minutes=1), window_s=30 * DAY,
                                     limit=None, attempt_id="tok", prescreen_ttl_s=600)
    unknown = "+33611111111"
    for e164 in (A, B, C, unknown):
        for campaign in ("spring", "autumn"):
            kw: dict[str, Any] = dict(e164=e164, professional="acme", campaign_id=campaign,
                                      now=NOW, attempt_window_s=30 * DAY,
                                      abandon_window_s=DAY)
            assert await lean_store.load_facts(**kw) == await py_store.load_facts(**kw)
    # grouped reads (concurrent calls read by the batch script) on both
    queries = [FactsQuery(e, "acme", "spring", 30 * DAY, DAY) for e in (A, B, C, unknown)]
    lean_many = await asyncio.gather(*(lean_store.load_facts(
        e164=q.e164, professional="acme", campaign_id="spring", now=NOW,
        attempt_window_s=30 * DAY, abandon_window_s=DAY) for q in queries))
    assert lean_many == await py_store.load_facts_many(queries, now=NOW)
    assert lean_many[0].suppressions and lean_many[0].attempts and lean_many[1].oppositions
    # the prescreen token, consumed by one of them only
    kw = dict(e164=B, professional="acme", campaign_id="spring", now=NOW,
              attempt_window_s=30 * DAY, abandon_window_s=DAY, prescreen_id="tok")
    with_token = await lean_store.load_facts(**kw)
    assert with_token.prescreen is not None
    await lean_store.close()
    await py_store.close()


async def test_hot_pipeline_replies_equal_redis_pys_command_by_command(
        redis_url: str, key_prefix: str) -> None:
    p = key_prefix
    with redis.Redis.from_url(redis_url) as admin:
        admin.hset(f"{p}:h", mapping={"a": "1", "é": "ü"})
        admin.zadd(f"{p}:z", {"m": 1700000000123, "n": 0.5})
        admin.sadd(f"{p}:s", "x")
        admin.setbit(f"{p}:b", 7, 1)
        admin.set(f"{p}:g", "token")
    store = open_store(redis_url, key_prefix=key_prefix)
    assert isinstance(store, RedisStore) and store.conn.lean is not None
    for key in (f"{p}:h", f"{p}:none"):  # the store's client decodes: compared as bytes
        hot, py = HotPipeline(store.conn.lean), store.conn.pipeline()
        for pipe in (hot, py):
            pipe.hgetall(key)
            pipe.zrangebyscore(f"{p}:z", "-inf", "+inf", withscores=True)
            pipe.zrangebyscore(f"{p}:z", "(0.5", "+inf")
            pipe.zcount(f"{p}:z", "-inf", "+inf")
            pipe.zscore(f"{p}:z", "m")
            pipe.zscore(f"{p}:z", "missing")
            pipe.sismember(f"{p}:s", "x")
            pipe.sismember(f"{p}:s", "y")
            pipe.getbit(f"{p}:b", 7)
            pipe.getdel(f"{p}:none")
            pipe.execute_command("HMGET", f"{p}:h", "a", "zz", NEVER_DECODE=[])
        got_hot, got_py = await hot.execute(), await py.execute()
        assert _bytes(got_hot) == _bytes(got_py)
        assert [bool(x) for x in got_hot[6:8]] == [True, False]
    await store.close()


def _bytes(value: Any) -> Any:
    """A reply with text as bytes (redis-py's client decodes it; the lean one never)."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict):
        return {_bytes(k): _bytes(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_bytes(v) for v in value)
    if isinstance(value, bool):
        return int(value)
    return value


async def test_a_stall_fails_requests_and_the_store_says_unavailable(
        proxied: Proxy) -> None:
    lean = _to(proxied.port, stall=0.2)
    await lean.execute((("PING",),))
    proxied.hold = True
    with pytest.raises(RedisTimeoutError):
        await lean.execute((("PING",),))
    await lean.close()


# --- connecting: a hang, a refused SELECT, a user without the right --------------------------

async def test_a_connect_that_hangs_ends_at_its_timeout_and_backs_off(proxied: Proxy) -> None:
    lean = _to(proxied.port, password="any", socket_connect_timeout=0.2)
    proxied.hold = True  # the handshake's reply never comes
    waiting = [asyncio.create_task(lean.execute((("PING",),))) for _ in range(3)]
    out = await asyncio.gather(*waiting, return_exceptions=True)
    assert [type(o) for o in out] == [RedisTimeoutError] * 3, out
    assert len(proxied.links) == 1  # one attempt for the three callers
    # backing off: the next caller fails at once, without another attempt
    with pytest.raises(RedisConnectionError, match="reconnecting"):
        await lean.execute((("PING",),))
    assert len(proxied.links) == 1 and lean.connects == 0
    await lean.close()


async def test_a_refused_select_or_command_is_an_error_never_data(
        redis_server_factory: RedisServerFactory, key_prefix: str) -> None:
    server = redis_server_factory.start()
    with server.admin() as admin:
        admin.set(f"{key_prefix}:k", "secret")
        admin.execute_command("ACL", "SETUSER", "pinger", "on", ">pw", "~*", "-@all", "+ping")
    out_of_range = _to(server.port, db=99)
    with pytest.raises(RedisConnectionError, match="SELECT"):
        await out_of_range.execute((("GET", f"{key_prefix}:k"),))
    await out_of_range.close()
    limited = _to(server.port, username="pinger", password="pw")
    (reply,) = await limited.execute((("GET", f"{key_prefix}:k"),))
    assert isinstance(reply, ResponseError) and "NOPERM" in str(reply)
    with pytest.raises(ResponseError, match="NOPERM"):
        await _hgetall(limited, f"{key_prefix}:k")
    await limited.close()


async def _hgetall(lean: LeanClient, key: str) -> list[Any]:
    pipe = HotPipeline(lean)
    pipe.hgetall(key)
    return await pipe.execute()


# --- a Sentinel failover while calls are in flight -----------------------------------------

async def test_a_failover_during_traffic_never_answers_a_caller_anothers_facts(
        tmp_path: Path, key_prefix: str) -> None:
    """Callers read their own number's facts (each number its own count of attempts) and
    reserve, concurrently, while Sentinel moves the master: every answer is the caller's
    own facts or StoreUnavailable; then the new master answers them all."""
    from tests.store.test_resp import fail_over, replicated_sentinel

    numbers = [f"+3361234{i:04d}" for i in range(6)]
    async with replicated_sentinel(tmp_path) as (primary, replica, sentinel):
        store = open_store(f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster/0",
                           key_prefix=key_prefix, socket_timeout_s=2.0)
        try:
            assert isinstance(store, RedisStore) and store.conn.lean is not None
            for i, e164 in enumerate(numbers):  # number i: i attempts
                for j in range(i):
                    await store.reserve_attempt(e164=e164, professional="acme",
                                                campaign_id="seed", now=NOW - timedelta(hours=1),
                                                window_s=DAY, limit=None, attempt_id=f"s{j}")
            with primary.admin() as admin:
                assert admin.execute_command("WAIT", 1, 5000) == 1  # on the replica too
            moved = asyncio.Event()
            wrong: list[str] = []
            after: dict[str, int] = {}

            async def caller(i: int) -> None:
                e164, n = numbers[i], 0
                while n < 3:  # until three answers after the failover
                    try:
                        facts = await store.load_facts(
                            e164=e164, professional="acme", campaign_id="spring", now=NOW,
                            attempt_window_s=DAY, abandon_window_s=DAY)
                        if len(facts.attempts) != i:
                            wrong.append(f"{e164}: {len(facts.attempts)} attempts, not {i}")
                        await store.reserve_attempt(e164=f"+4477009{i:05d}", professional="acme",
                                                    campaign_id="spring", now=NOW, window_s=DAY,
                                                    limit=None, attempt_id=f"t{n}-{moved.is_set()}")
                    except StoreUnavailable:
                        await asyncio.sleep(0.01)  # paces the retries while it moves: no sync
                    else:
                        if moved.is_set():
                            n += 1
                    await asyncio.sleep(0)
                after[e164] = n

            callers = [asyncio.create_task(caller(i)) for i in range(len(numbers))]

            await fail_over(primary, replica, sentinel)
            moved.set()
            async with asyncio.timeout(60):
                await asyncio.gather(*callers)
            assert not wrong, wrong
            assert len(after) == len(numbers)
            assert store.conn.lean.connects >= 2
            with replica.admin() as admin:  # the new master has the calls made after the move
                assert admin.zscore(store.keys.attempts("+447700900000", "acme"),
                                    "t2-True") is not None
        finally:
            await store.close()


async def test_a_sentinel_master_check_works_for_an_acl_user_without_role(
        redis_server_factory: RedisServerFactory, key_prefix: str) -> None:
    """A least-privilege ACL user (``+@all -@dangerous``: no ``ROLE``, an @admin command)
    still connects to the master on Sentinel (HELLO says the role), and a replica is
    still refused."""
    primary, replica = redis_server_factory.start(), redis_server_factory.start()
    for server in (primary, replica):
        with server.admin() as admin:
            admin.execute_command("ACL", "SETUSER", "gw", "on", ">pw", "~*", "&*", "+@all",
                                  "-@dangerous")
    with replica.admin() as admin:
        admin.replicaof("127.0.0.1", primary.port)

    def at(port: int) -> LeanClient:
        async def endpoint() -> tuple[str, int]:
            return "127.0.0.1", port

        return LeanClient(endpoint, username="gw", password="pw", check_master=True)

    master = at(primary.port)
    assert await master.execute((("SET", f"{key_prefix}:k", "v"), ("GET", f"{key_prefix}:k"))
                                ) == [b"OK", b"v"]
    await master.close()
    demoted = at(replica.port)
    with pytest.raises(RedisConnectionError, match="not the master"):
        await demoted.execute((("GET", f"{key_prefix}:k"),))
    await demoted.close()
