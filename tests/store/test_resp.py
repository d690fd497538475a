"""The hot path's lean RESP client (gateway.store.resp) against a real redis-server.

Replies are matched to callers in order, whatever a caller does meanwhile; a connection
that fails fails every caller in flight (never a hang, never another caller's reply);
NOSCRIPT is recovered from; a wrong password says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from redis.exceptions import AuthenticationError, MaxConnectionsError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.store import redis_scripts as lua
from gateway.store import resp
from gateway.store.base import StoreBusy, StoreUnavailable
from gateway.store.factory import open_store
from gateway.store.redis import RedisStore
from gateway.store.redis_hot import from_redis_client
from gateway.store.resp import LeanClient, script_sha
from tests.fixtures.redis_servers import (
    PORT_ATTEMPTS,
    PortTaken,
    RedisProcess,
    RedisServerFactory,
    free_port,
)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
A = "+33612345678"
YIELDS = 1000  # loop turns a test waits for a state it caused, before failing


async def _until(predicate: Callable[[], bool], what: str) -> None:
    """Yield to the event loop until ``predicate`` holds (no timed sleep)."""
    for _ in range(YIELDS):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never: {what}")


async def _server_until(admin: redis.Redis, predicate: Callable[[redis.Redis], bool],
                        what: str) -> None:
    """Poll the server (each probe is a round trip) until ``predicate`` holds."""
    for _ in range(YIELDS):
        if await asyncio.to_thread(predicate, admin):
            return
    raise AssertionError(f"never: {what}")


def _lean(url: str, **kw: object) -> LeanClient:
    client = redis.asyncio.Redis.from_url(url)
    lean = from_redis_client(client, **kw)  # type: ignore[arg-type]
    assert lean is not None
    return lean


@pytest.fixture
async def lean(redis_url: str) -> AsyncIterator[LeanClient]:
    # a long stall limit: the tests below hold replies back on purpose
    client = _lean(redis_url, stall_timeout_s=30.0)
    yield client
    await client.close()


def _blocked(admin: redis.Redis) -> bool:
    return int(admin.info("clients")["blocked_clients"]) == 1


async def test_a_late_reply_to_a_caller_that_gave_up_is_consumed_in_order(
        lean: LeanClient, redis_url: str, key_prefix: str) -> None:
    queue, key = f"{key_prefix}:q", f"{key_prefix}:k"
    await lean.execute((("SET", key, "mine"),))
    with redis.Redis.from_url(redis_url) as admin:
        # a caller whose reply the server holds back (a blocking pop on an empty list)
        first = asyncio.create_task(lean.execute((("BLPOP", queue, 0),)))
        await _server_until(admin, _blocked, "the pop blocks on the server")
        # the next caller's request is pipelined behind it on the same connection
        second = asyncio.create_task(lean.execute((("GET", key),)))
        await _until(lambda: lean.in_flight == 2, "both requests written")
        first.cancel()  # the first caller gives up (its decision budget ran out)
        with pytest.raises(asyncio.CancelledError):
            await first
        admin.rpush(queue, "late")  # now its reply arrives, before the second's
        assert await second == [b"mine"]  # its own reply, not the late one
    assert lean.in_flight == 0
    # and the connection stays in step for the next caller
    assert await lean.execute((("ECHO", "next"), ("LLEN", queue))) == [b"next", 0]


async def test_a_connection_lost_mid_pipeline_fails_every_call_in_flight(
        redis_server_factory: RedisServerFactory, key_prefix: str) -> None:
    server = redis_server_factory.start()
    store = open_store(server.url, key_prefix=key_prefix, socket_timeout_s=30.0)
    assert isinstance(store, RedisStore)
    await store.warm_up()
    lean = store.conn.lean
    assert lean is not None
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)  # no reply any more, the socket stays open
    try:
        calls = [asyncio.create_task(store.load_facts(
                     e164=A, professional="acme", campaign_id="spring", now=NOW,
                     attempt_window_s=86400, abandon_window_s=86400)),
                 asyncio.create_task(store.reserve_attempt(
                     e164=A, professional="acme", campaign_id="spring", now=NOW,
                     window_s=86400, limit=None, attempt_id="a1")),
                 asyncio.create_task(store.load_facts(
                     e164=A, professional="acme", campaign_id="autumn", now=NOW,
                     attempt_window_s=86400, abandon_window_s=86400))]
        # the lone read and the lone reservation are on the wire; the third queues
        await _until(lambda: lean.in_flight == 2, "two requests in flight")
    finally:
        server.kill()  # the kernel closes its sockets: the connection is lost
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert [type(o) for o in outcomes] == [StoreUnavailable] * 3, outcomes
    assert "connection lost" in str(outcomes[0])
    assert lean.in_flight == 0
    await store.close()


async def test_a_connection_silent_past_the_stall_limit_fails_its_calls(
        redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory.start()
    lean = _lean(server.url, stall_timeout_s=0.2)
    await lean.execute((("PING",),))
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)
    try:
        calls = [asyncio.create_task(lean.execute((("PING",),))) for _ in range(3)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        server.proc.send_signal(signal.SIGCONT)
    assert [type(o) for o in outcomes] == [RedisTimeoutError] * 3
    # the next call connects again, and gets its own reply
    assert await lean.execute((("ECHO", "after"),)) == [b"after"]
    assert lean.connects == 2
    await lean.close()


async def test_a_script_flushed_from_the_server_is_loaded_again(
        lean: LeanClient, redis_url: str, key_prefix: str) -> None:
    script = "return {KEYS[1], ARGV[1]}"
    assert await lean.evalsha(script, [f"{key_prefix}:k"], ["one"]) == [
        f"{key_prefix}:k".encode(), b"one"]
    with redis.Redis.from_url(redis_url) as admin:
        admin.script_flush()
        assert await lean.evalsha(script, [f"{key_prefix}:k"], ["two"]) == [
            f"{key_prefix}:k".encode(), b"two"]
        assert admin.script_exists(lean_sha(script)) == [True]


async def test_a_reservation_after_a_script_flush_is_counted(
        redis_url: str, key_prefix: str) -> None:
    store = open_store(redis_url, key_prefix=key_prefix)
    assert isinstance(store, RedisStore)
    await store.warm_up()
    with redis.Redis.from_url(redis_url) as admin:
        admin.script_flush()
    placed = await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                         now=NOW, window_s=86400, limit=1, attempt_id="a1")
    assert placed.ok and placed.count == 1
    with redis.Redis.from_url(redis_url) as admin:
        assert admin.script_exists(lean_sha(lua.RESERVE_PACED)) == [True]
    await store.close()


def lean_sha(script: str) -> str:
    return script_sha(script)


async def test_a_wrong_password_is_an_authentication_error_that_says_so(
        redis_server_factory: RedisServerFactory, key_prefix: str) -> None:
    server = redis_server_factory.start()
    with server.admin() as admin:
        admin.config_set("requirepass", "right-secret")
    url = f"redis://:wrong-secret@127.0.0.1:{server.port}/0"
    lean = _lean(url)
    with pytest.raises(AuthenticationError, match="authentication failed"):
        await lean.execute((("PING",),))
    await lean.close()
    store = open_store(url, key_prefix=key_prefix)
    with pytest.raises(StoreUnavailable, match="authentication failed") as caught:
        await store.load_facts(e164=A, professional="acme", campaign_id="spring", now=NOW,
                               attempt_window_s=86400, abandon_window_s=86400)
    assert "wrong-secret" not in str(caught.value)
    await store.close()
    good = _lean(f"redis://:right-secret@127.0.0.1:{server.port}/3")
    assert await good.execute((("SET", "k", "v"),)) == [b"OK"]
    with redis.Redis(port=server.port, password="right-secret", db=3) as admin:
        assert admin.get("k") == b"v"  # and the database of the URL was selected
    await good.close()


async def test_a_demoted_master_is_never_answered_as_data(
        redis_server_factory: RedisServerFactory, key_prefix: str) -> None:
    primary, replica = redis_server_factory.start(), redis_server_factory.start()
    with replica.admin() as admin:
        admin.replicaof("127.0.0.1", primary.port)
    lean = _lean(replica.url)
    # a write on a replica: READONLY fails the request as a connection error, not a reply
    with pytest.raises(RedisConnectionError, match="READONLY"):
        await lean.execute((("ECHO", "before"), ("SET", f"{key_prefix}:k", "v")))
    assert lean.in_flight == 0
    await lean.close()

    async def replica_as_master() -> tuple[str, int]:
        return "127.0.0.1", replica.port

    checked = LeanClient(replica_as_master, check_master=True)
    with pytest.raises(RedisConnectionError, match="not the master"):
        await checked.execute((("PING",),))
    await checked.close()


async def test_requests_beyond_the_in_flight_cap_are_refused_as_busy(
        redis_url: str, key_prefix: str) -> None:
    lean = _lean(redis_url, max_in_flight=1, stall_timeout_s=30.0)
    await lean.execute((("PING",),))
    with redis.Redis.from_url(redis_url) as admin:
        held = asyncio.create_task(lean.execute((("BLPOP", f"{key_prefix}:q", 0),)))
        await _server_until(admin, _blocked, "the pop blocks on the server")
        with pytest.raises(MaxConnectionsError):
            await lean.execute((("PING",),))
        admin.rpush(f"{key_prefix}:q", "x")
        assert await held == [[f"{key_prefix}:q".encode(), b"x"]]
    await lean.close()



async def _until_server(probe: Callable[[], bool], what: str) -> None:
    """Probe the servers (each probe a round trip, off the loop) until ``probe`` holds."""
    for _ in range(YIELDS):
        if await asyncio.to_thread(probe):
            return
        await asyncio.sleep(0.05)  # a failover takes Sentinel a moment: not a sync point
    raise AssertionError(f"never: {what}")


def _role(server: RedisProcess) -> str:
    with server.admin() as admin:
        return str(admin.execute_command("ROLE")[0])


def _linked(replica: RedisProcess) -> bool:
    with replica.admin() as admin:
        return bool(admin.info("replication")["master_link_status"] == "up")


@contextlib.asynccontextmanager
async def replicated_sentinel(tmp_path: Path
                              ) -> AsyncIterator[tuple[RedisProcess, RedisProcess, RedisProcess]]:
    """(primary, replica, sentinel): the replica in sync, the sentinel monitoring the
    primary as ``mymaster`` and knowing the replica; all three stopped at the end."""
    primary, replica = RedisProcess(tmp_path / "p"), RedisProcess(tmp_path / "r")
    primary.start()
    replica.start()
    sentinel = RedisProcess(tmp_path / "s", sentinel_conf=(
        f"sentinel monitor mymaster 127.0.0.1 {primary.port} 1\n"
        "sentinel down-after-milliseconds mymaster 5000\n"
        "sentinel failover-timeout mymaster 5000\n"))
    try:
        with replica.admin() as admin:
            admin.replicaof("127.0.0.1", primary.port)
        await _until_server(lambda: _linked(replica), "the replica in sync")
        sentinel.start()

        def knows_replica() -> bool:
            with sentinel.admin() as admin:
                return bool(admin.execute_command("SENTINEL", "REPLICAS", "mymaster"))

        await _until_server(knows_replica, "the sentinel knowing the replica")
        yield primary, replica, sentinel
    finally:
        sentinel.stop()
        replica.stop()
        primary.stop()


async def fail_over(primary: RedisProcess, replica: RedisProcess,
                    sentinel: RedisProcess) -> None:
    """Sentinel moves ``mymaster`` to the replica; returns once the two roles swapped."""

    def failover() -> bool:  # refused (NOGOODSLAVE) until the sentinel has probed it
        with sentinel.admin() as admin:
            try:
                return bool(admin.execute_command("SENTINEL", "FAILOVER", "mymaster"))
            except redis.ResponseError as exc:
                if "NOGOODSLAVE" not in str(exc):
                    raise
                return False

    await _until_server(failover, "a failover accepted by the sentinel")
    await _until_server(lambda: _role(replica) == "master" and _role(primary) == "slave",
                        "the replica promoted, the former master demoted")


async def test_after_a_sentinel_failover_the_hot_path_finds_the_new_master(
        tmp_path: Path, key_prefix: str) -> None:
    async with replicated_sentinel(tmp_path) as (primary, replica, sentinel):
        store = open_store(f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster/0",
                           key_prefix=key_prefix, socket_timeout_s=2.0)
        try:
            assert isinstance(store, RedisStore) and store.conn.lean is not None

            async def reserve(attempt: str) -> bool:
                assert isinstance(store, RedisStore)
                r = await store.reserve_attempt(e164=A, professional="acme",
                                                campaign_id="spring", now=NOW, window_s=86400,
                                                limit=None, attempt_id=attempt)
                return r.ok

            assert await reserve("before")
            await fail_over(primary, replica, sentinel)
            outcomes: list[bool | str] = []
            for i in range(3):  # the first may fail closed (the old master said READONLY)
                try:
                    outcomes.append(await reserve(f"after-{i}"))
                    break
                except StoreUnavailable as exc:
                    outcomes.append(str(exc))
            assert outcomes[-1] is True, outcomes
            assert all("READONLY" in o or "connection" in o for o in outcomes[:-1]
                       if isinstance(o, str)), outcomes
            with replica.admin() as admin:  # on the new master, not answered by the old
                assert admin.zscore(store.keys.attempts(A, "acme"),
                                    f"after-{len(outcomes) - 1}") is not None
            assert store.conn.lean.connects == 2
        finally:
            await store.close()


def test_the_python_packer_encodes_as_hiredis_does() -> None:
    """The packer used with a hiredis older than 2.1 (no ``pack_command``)."""
    import hiredis

    for command in [("SET", "k", b"\x00\r\n\xff"), ("EVALSHA", "ab", 2, "k1", "k2", -3, 1.5),
                    ("PING",), ("HSET", "é", "")]:
        assert resp._pack_py(command) == hiredis.pack_command(command)  # type: ignore[arg-type]


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself (its own CA), and its key."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl to make a certificate")
async def test_a_rediss_url_puts_the_hot_path_on_tls_with_its_ca(
        tmp_path: Path, key_prefix: str) -> None:
    cert, key = _self_signed(tmp_path, "server")
    other, _ = _self_signed(tmp_path, "other")
    for attempt in range(1, PORT_ATTEMPTS + 1):  # the TLS port too may be taken meanwhile
        tls_port = free_port()
        server = RedisProcess(tmp_path / f"tls{attempt}", extra=[
            "--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file",
            str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"])
        try:
            server.start()
            break
        except PortTaken:
            if attempt == PORT_ATTEMPTS:
                raise
    try:
        url = f"rediss://127.0.0.1:{tls_port}/0?ssl_cert_reqs=required&ssl_ca_certs={cert}"
        store = open_store(url, key_prefix=key_prefix)
        assert isinstance(store, RedisStore) and store.conn.lean is not None
        placed = await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                             now=NOW, window_s=86400, limit=1,
                                             attempt_id="a1")
        assert placed.ok and store.conn.lean.connects == 1
        await store.close()
        with server.admin() as admin:  # the attempt is on that server
            assert admin.zscore(store.keys.attempts(A, "acme"), "a1") is not None
        # a server whose certificate the URL's CA did not sign: refused, never spoken to
        wrong = open_store(url.replace(str(cert), str(other)), key_prefix=key_prefix)
        with pytest.raises(StoreUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await wrong.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                        now=NOW, window_s=86400, limit=1, attempt_id="a2")
        await wrong.close()
    finally:
        server.stop()


async def test_a_full_hot_path_connection_answers_store_busy_not_unavailable(
        redis_url: str, key_prefix: str) -> None:
    """Its in-flight cap reached, the hot path's connection refuses at once, and the store
    reports saturation (the call is answered ``timeout``), not an outage."""
    store = open_store(redis_url, key_prefix=key_prefix)
    assert isinstance(store, RedisStore) and store.conn.lean is not None
    await store.conn.lean.close()
    store.conn.lean = full = _lean(redis_url, max_in_flight=1, stall_timeout_s=30.0)
    with redis.Redis.from_url(redis_url) as admin:
        held = asyncio.create_task(full.execute((("BLPOP", f"{key_prefix}:q", 0),)))
        await _server_until(admin, _blocked, "the pop blocks on the server")
        with pytest.raises(StoreBusy, match="No connection available"):
            await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                        now=NOW, window_s=86400, limit=1, attempt_id="a1")
        admin.rpush(f"{key_prefix}:q", "x")
        await held
    placed = await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                         now=NOW, window_s=86400, limit=1, attempt_id="a1")
    assert placed.ok  # nothing was counted for the refused call
    await store.close()


def test_the_lean_client_runs_on_uvloop(redis_url: str, key_prefix: str) -> None:
    """``serve`` runs on uvloop when the extra is installed, and uvloop's transports
    subclass none of asyncio's: the client's ``isinstance(transport, asyncio.Transport)``
    failed every connection there, so a gateway on a Redis store never became ready."""
    import uvloop  # the optional extra: the test environment installs it (pyproject dev)

    async def round_trip() -> list[object]:
        lean = _lean(redis_url)
        async with asyncio.timeout(10):  # it hung there: a connection never made is never lost
            try:
                return await lean.execute((("SET", f"{key_prefix}:uv", "on uvloop"),
                                           ("GET", f"{key_prefix}:uv")))
            finally:
                await lean.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(round_trip()) == [b"OK", b"on uvloop"]
