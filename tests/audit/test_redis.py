"""Redis Stream sink against a real redis-server: chains, trimming, concurrency, failures."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from gateway.audit import AuditSettings, AuditTrail, AuditUnavailable, open_audit_trail
from gateway.audit.record import NumberPrivacy
from gateway.audit.redis_sink import RedisStreamSink, heads_key
from tests.audit.helpers import make_record
from tests.fixtures.redis_servers import RedisServerFactory

OUTER_DEADLINE_S = 5.0
_keys = itertools.count()


def settings(url: str, stream_key: str, **kw: object) -> AuditSettings:
    base: dict[str, object] = {"sink": "redis", "redis_url": url, "stream_key": stream_key,
                               "instance_id": "gw-a", "write_timeout_s": 1.0,
                               "read_page_size": 3, "anchor_path": ""}
    base.update(kw)
    return AuditSettings(**base)  # type: ignore[arg-type]


@pytest.fixture
def stream_key() -> str:
    return f"test:audit:{next(_keys)}"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    c = Redis.from_url(redis_url, socket_timeout=2.0)
    yield c
    await c.aclose()


async def fill(trail: AuditTrail, n: int, instance: str = "gw-a") -> list[str]:
    return [await trail.append(make_record(i, instance=instance)) for i in range(n)]


async def test_append_verify_roundtrip(redis_url: str, stream_key: str,
                                       client: Redis) -> None:
    trail = open_audit_trail(settings(redis_url, stream_key))
    hashes = await fill(trail, 7)  # more than two XRANGE pages of 3
    report = await trail.verify()
    heads = await client.hgetall(heads_key(stream_key))
    await trail.close()
    assert report.ok, report.problems
    assert report.records == 7
    assert heads == {b"gw-a": f"6:{hashes[-1]}".encode()}


async def test_verify_in_process_waits_for_the_anchor_of_the_last_acknowledged_record(
        redis_url: str, stream_key: str, tmp_path: Path) -> None:
    """The anchor file is written off the event loop after the record: a verify in the
    same process must not read it before that write (it reported the first record's
    anchor file as missing, now and then, under load)."""
    anchor = tmp_path / "anchor" / "audit.anchor"
    trail = open_audit_trail(settings(redis_url, stream_key, anchor_path=str(anchor)))
    gate = threading.Event()
    assert trail._redis is not None
    trail._redis._anchor_executor.submit(gate.wait)  # the anchor thread is busy
    try:
        await trail.append(make_record(0))
        verifying = asyncio.ensure_future(trail.verify())
        await asyncio.wait({verifying}, timeout=1.0)
        assert not verifying.done()  # it waits for the anchor write, not reads without it
    finally:
        gate.set()
    report = await verifying
    await trail.close()
    assert report.ok and report.records == 1, report.problems
    assert anchor.exists()


async def test_deleted_middle_and_tail_entries_are_detected(
        redis_url: str, stream_key: str, client: Redis) -> None:
    trail = open_audit_trail(settings(redis_url, stream_key))
    await fill(trail, 5)
    ids = [eid for eid, _ in await client.xrange(stream_key)]
    await client.xdel(stream_key, ids[2], ids[4])
    report = await trail.verify()
    await trail.close()
    assert [p.kind for p in report.problems] == ["gap", "truncated_tail"]


async def test_modified_entry_is_detected(redis_url: str, stream_key: str,
                                          client: Redis) -> None:
    trail = open_audit_trail(settings(redis_url, stream_key))
    await fill(trail, 3)
    entries = await client.xrange(stream_key)
    forged = entries[1][1][b"r"].replace(b'"verdict":"ALLOW"', b'"verdict":"BLOCK"')
    await client.delete(stream_key)
    for i, (_, fields) in enumerate(entries):
        await client.xadd(stream_key, {"r": forged if i == 1 else fields[b"r"]})
    report = await trail.verify()
    await trail.close()
    assert [(p.kind, p.seq) for p in report.problems] == [("hash_mismatch", 1)]


async def test_trimmed_stream_verifies_from_the_first_kept_record(
        redis_url: str, stream_key: str, client: Redis) -> None:
    trail = open_audit_trail(settings(redis_url, stream_key, maxlen=10))
    await fill(trail, 30)
    kept = await client.xlen(stream_key)
    report = await trail.verify()
    strict = await trail.verify(allow_trimmed_prefix=False)
    await trail.close()
    assert kept < 30  # MAXLEN ~ trimmed whole nodes
    assert report.ok, report.problems
    assert not report.chains["gw-a"].from_genesis
    assert report.chains["gw-a"].last_seq == 29
    assert [p.kind for p in strict.problems] == ["missing_prefix"]


async def test_minid_retention_trims_old_entries(redis_url: str, stream_key: str,
                                                 client: Redis) -> None:
    old = open_audit_trail(settings(redis_url, stream_key))
    await fill(old, 3)
    await old.close()
    # retention 0: every entry older than the server's "now" goes (MINID ~ trims whole
    # macro nodes only, so use one-entry nodes for the test)
    await client.config_set("stream-node-max-entries", 1)
    try:
        trail = open_audit_trail(settings(redis_url, stream_key, retention_s=0))
        await trail.append(make_record(3))
        report = await trail.verify()
        await trail.close()
    finally:
        await client.config_set("stream-node-max-entries", 100)
    assert await client.xlen(stream_key) == 1
    assert report.ok, report.problems
    assert (report.chains["gw-a"].first_seq, report.records) == (3, 1)


async def test_two_instances_appending_concurrently_make_verifiable_chains(
        redis_url: str, stream_key: str) -> None:
    a = open_audit_trail(settings(redis_url, stream_key, instance_id="gw-a"))
    b = open_audit_trail(settings(redis_url, stream_key, instance_id="gw-b"))
    await asyncio.gather(
        *(a.append(make_record(i, instance="gw-a")) for i in range(40)),
        *(b.append(make_record(i, instance="gw-b")) for i in range(40)),
    )
    report = await a.verify()
    await a.close()
    await b.close()
    assert report.ok, report.problems
    assert {i: c.count for i, c in report.chains.items()} == {"gw-a": 40, "gw-b": 40}


async def test_two_writers_with_the_same_instance_id_stay_linear(
        redis_url: str, stream_key: str) -> None:
    a = open_audit_trail(settings(redis_url, stream_key))
    b = open_audit_trail(settings(redis_url, stream_key))
    for i in range(6):
        await (a if i % 2 else b).append(make_record(i))
    report = await a.verify()
    await a.close()
    await b.close()
    assert report.ok, report.problems
    assert report.chains["gw-a"].count == 6


async def test_killed_redis_raises_audit_unavailable(
        redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory.start()
    trail = open_audit_trail(settings(server.url, "dg:audit", write_timeout_s=0.5))
    await trail.append(make_record(0))
    server.kill()
    async with asyncio.timeout(OUTER_DEADLINE_S):
        with pytest.raises(AuditUnavailable):
            await trail.append(make_record(1))
    await trail.close()


async def test_silent_redis_raises_within_the_deadline() -> None:
    accepted = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        accepted.set()  # and never answer

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    trail = open_audit_trail(settings(f"redis://127.0.0.1:{port}/0", "dg:audit",
                                      write_timeout_s=0.2))
    try:
        async with asyncio.timeout(OUTER_DEADLINE_S):
            with pytest.raises(AuditUnavailable, match="exceeded"):
                await trail.append(make_record(0))
        assert accepted.is_set()
    finally:
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()
        await trail.close()


async def test_injected_client_is_not_closed_and_may_decode_responses(
        redis_url: str, stream_key: str) -> None:
    client = Redis.from_url(redis_url, socket_timeout=2.0, decode_responses=True)
    trail = open_audit_trail(settings(redis_url, stream_key), redis_client=client)
    await fill(trail, 4)
    report = await trail.verify()
    await trail.close()
    assert await client.ping()
    await client.aclose()
    assert report.ok, report.problems
    assert report.records == 4


@pytest.mark.cluster
async def test_cluster_with_a_hash_tagged_stream_key(redis_cluster_url: str) -> None:
    nodes = [ClusterNode(h, int(p)) for h, p in (
        x.rsplit(":", 1) for x in redis_cluster_url.partition("://")[2].split(","))]
    client = RedisCluster(startup_nodes=nodes, socket_timeout=2.0)
    stream_key = "{dg:audit}"  # the heads key "{dg:audit}:heads" lands in the same slot
    a = open_audit_trail(settings("redis://unused", stream_key, instance_id="gw-a"),
                         redis_client=client)
    b = open_audit_trail(settings("redis://unused", stream_key, instance_id="gw-b"),
                         redis_client=client)
    await asyncio.gather(*(a.append(make_record(i)) for i in range(10)),
                         *(b.append(make_record(i, instance="gw-b")) for i in range(10)))
    report = await a.verify()
    await client.aclose()
    assert report.ok, report.problems
    assert {i: c.count for i, c in report.chains.items()} == {"gw-a": 10, "gw-b": 10}


def sink_on(url: str, stream_key: str, *, write_timeout_s: float) -> RedisStreamSink:
    return RedisStreamSink(client=Redis.from_url(url), owns_client=True, stream_key=stream_key,
                           instance="gw-a", maxlen=None, retention_s=None,
                           write_timeout_s=write_timeout_s, max_pending=16)


async def next_turn() -> None:
    """One turn of the loop: the tasks scheduled before this call have run their step."""
    turn = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(turn.set_result, None)
    await turn


async def test_a_caller_cancelled_from_outside_still_has_its_record_written(
        redis_url: str, stream_key: str, client: Redis) -> None:
    sink = sink_on(redis_url, stream_key, write_timeout_s=OUTER_DEADLINE_S)
    body = {**make_record(0).to_body(NumberPrivacy()), "instance": "gw-a"}
    try:
        async with sink._lock:  # the writer waits here with the record taken
            caller = asyncio.create_task(sink.append(body))
            await next_turn()  # the caller queued it and waits on its future
            caller.cancel()
            with pytest.raises(asyncio.CancelledError):
                await caller
        async with asyncio.timeout(OUTER_DEADLINE_S):
            assert sink._writer is not None
            await sink._writer
    finally:
        await sink.close()
    assert await client.xlen(stream_key) == 1  # as with the shield it replaced


async def test_a_record_past_its_deadline_is_never_written_after_it(
        redis_url: str, stream_key: str, client: Redis) -> None:
    sink = sink_on(redis_url, stream_key, write_timeout_s=0.05)
    body = {**make_record(0).to_body(NumberPrivacy()), "instance": "gw-a"}
    try:
        async with sink._lock:  # the writer took the record and waits for the chain
            async with asyncio.timeout(OUTER_DEADLINE_S):
                with pytest.raises(AuditUnavailable, match="exceeded"):
                    await sink.append(body)
        async with asyncio.timeout(OUTER_DEADLINE_S):
            assert sink._writer is not None
            await sink._writer
    finally:
        await sink.close()
    # the caller answered BLOCK: the writer leaves the record out (the trail's
    # superseding record says what was enforced)
    assert await client.xlen(stream_key) == 0
