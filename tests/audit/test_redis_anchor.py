"""The Redis sink's anchor file: written off the event loop with the latest head, at most
once per ``anchor_file_interval_s`` (not once per record), with the last head at
``anchor_settled()`` and at close. Real redis-server, real anchor file: the writes are
counted by the file's writer (``AnchorFile.writes``)."""

from __future__ import annotations

import asyncio
import itertools
import threading
from pathlib import Path

import pytest

from gateway.audit import AuditSettings, AuditTrail, ChainHead, open_audit_trail
from gateway.audit.anchor import AnchorFile, encode_heads, read_anchor_file
from gateway.audit.errors import AuditConfigError
from gateway.config import load_config
from tests.audit.helpers import make_record

LONG_INTERVAL_S = 60.0  # no timed write falls inside a test: only the first and the forced
_keys = itertools.count()


def settings(url: str, anchor: Path, **kw: object) -> AuditSettings:
    base: dict[str, object] = {"sink": "redis", "redis_url": url,
                               "stream_key": f"test:anchor:{next(_keys)}",
                               "instance_id": "gw-a", "write_timeout_s": 5.0,
                               "anchor_path": str(anchor)}
    base.update(kw)
    return AuditSettings(**base)  # type: ignore[arg-type]


def anchor_file(trail: AuditTrail) -> AnchorFile:
    sink = trail._redis
    assert sink is not None and sink._anchor is not None
    return sink._anchor


async def append(trail: AuditTrail, n: int, start: int = 0) -> ChainHead:
    digest = ""
    for i in range(start, start + n):
        digest = await trail.append(make_record(i))
    return ChainHead(start + n - 1, digest)


async def test_sequential_appends_write_the_anchor_once_per_interval_not_per_record(
        redis_url: str, tmp_path: Path) -> None:
    """Was: one hand-off to the anchor thread and one file rewrite per record (~30 futex
    calls and ~240 µs of CPU per lone call)."""
    anchor = tmp_path / "anchor" / "audit.anchor"
    trail = open_audit_trail(settings(redis_url, anchor,
                                      anchor_file_interval_s=LONG_INTERVAL_S))
    try:
        last = await append(trail, 100)
        assert trail._redis is not None
        await trail._redis.anchor_settled()
        writes = anchor_file(trail).writes
        kept = read_anchor_file(str(anchor))
    finally:
        await trail.close()
    assert 1 <= writes <= 2  # the first record's (at once), then the forced last one
    assert kept == {"gw-a": last}


async def test_anchor_settled_writes_the_last_head_now_not_at_the_end_of_the_interval(
        redis_url: str, tmp_path: Path) -> None:
    anchor = tmp_path / "anchor" / "audit.anchor"
    trail = open_audit_trail(settings(redis_url, anchor,
                                      anchor_file_interval_s=LONG_INTERVAL_S))
    assert trail._redis is not None
    try:
        first = await append(trail, 20)
        await trail._redis.anchor_settled()
        after_first = read_anchor_file(str(anchor))
        second = await append(trail, 15, start=20)
        await trail._redis.anchor_settled()
        after_second = read_anchor_file(str(anchor))
        report = await trail.verify()  # waits the same way: exact, no sleep
    finally:
        await trail.close()
    assert after_first == {"gw-a": first}
    assert after_second == {"gw-a": second}
    assert report.ok and report.records == 35, report.problems


async def test_close_writes_the_last_head_whatever_the_interval(
        redis_url: str, tmp_path: Path) -> None:
    anchor = tmp_path / "anchor" / "audit.anchor"
    s = settings(redis_url, anchor, anchor_file_interval_s=LONG_INTERVAL_S)
    trail = open_audit_trail(s)
    last = await append(trail, 40)
    await trail.close()
    assert read_anchor_file(str(anchor)) == {"gw-a": last}
    again = open_audit_trail(s)
    report = await again.verify()
    await again.close()
    assert report.ok and report.records == 40, report.problems


async def test_a_hung_anchor_write_stalls_no_append_and_keeps_one_write_queued(
        redis_url: str, tmp_path: Path) -> None:
    """A file system that does not answer holds the anchor thread: appends go on, and
    what waits behind it is one write of the latest head, not one per record."""
    anchor = tmp_path / "anchor" / "audit.anchor"
    trail = open_audit_trail(settings(redis_url, anchor, anchor_file_interval_s=0))
    assert trail._redis is not None
    gate = threading.Event()
    trail._redis._anchor_executor.submit(gate.wait)  # the anchor thread hangs
    try:
        async with asyncio.timeout(5.0):
            last = await append(trail, 30)  # every record acknowledged meanwhile
        assert anchor_file(trail).writes == 0
    finally:
        gate.set()
    await trail._redis.anchor_settled()
    writes = anchor_file(trail).writes
    await trail.close()
    assert writes == 2  # the first record after the start (checked on its own), then
    # the latest head, once
    assert read_anchor_file(str(anchor)) == {"gw-a": last}


async def test_timed_writes_after_a_freeze_keep_the_anchor_and_report_each_failure(
        redis_url: str, tmp_path: Path) -> None:
    """The anchor is ahead of the chain (its records were removed): the first write
    freezes it, and the later timed writes (the loop timer, no anchor_settled) fail
    without moving it; verify reports the cut."""
    anchor = tmp_path / "anchor" / "audit.anchor"
    ahead = ChainHead(500, "f" * 64)
    anchor.parent.mkdir()
    anchor.write_bytes(encode_heads({"gw-a": ahead}))
    trail = open_audit_trail(settings(redis_url, anchor, anchor_file_interval_s=0.01))
    loop = asyncio.get_running_loop()
    failures: asyncio.Queue[str] = asyncio.Queue()
    trail.hooks.event = lambda name: loop.call_soon_threadsafe(failures.put_nowait, name)
    try:
        await append(trail, 1)
        async with asyncio.timeout(5.0):
            assert await failures.get() == "anchor_failed"  # froze it
        await append(trail, 10, start=1)  # the timer hands the newest head on
        async with asyncio.timeout(5.0):
            assert await failures.get() == "anchor_failed"  # frozen: not moved
        report = await trail.verify()
    finally:
        await trail.close()
    assert read_anchor_file(str(anchor)) == {"gw-a": ahead, "!gw-a": ahead}
    kinds = {p.kind for p in report.problems}
    assert {"anchor_diverged", "truncated_tail"} <= kinds, report.problems


async def test_without_an_anchor_file_nothing_is_timed(redis_url: str, tmp_path: Path) -> None:
    trail = open_audit_trail(settings(redis_url, tmp_path / "unused", anchor_path=""))
    try:
        await append(trail, 3)
        assert trail._redis is not None and trail._redis._anchor_timer is None
    finally:
        await trail.close()
    assert not (tmp_path / "unused").exists()


def test_the_interval_is_a_setting_config_check_accepts(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('[audit]\nanchor_file_interval_s = 0.2\n')
    assert load_config(cfg, env={}).audit.anchor_file_interval_s == 0.2
    assert AuditSettings().anchor_file_interval_s == 0.05
    for bad in (-0.1, 61.0, float("nan")):
        with pytest.raises(AuditConfigError):
            AuditSettings(anchor_file_interval_s=bad)


async def _cut_to(trail: AuditTrail, keep: ChainHead) -> None:
    """Cut the chain's tail together with its head, as someone with Redis access could:
    the entries after ``keep`` removed, the head set back to ``keep``."""
    from redis.asyncio import Redis

    sink = trail._redis
    assert sink is not None
    client = Redis.from_url(trail.settings.redis_url or "")
    try:
        entries = await client.xrange(sink.stream_key)
        doomed = [entry_id for entry_id, _ in entries[keep.seq + 1:]]
        assert doomed
        await client.xdel(sink.stream_key, *doomed)
        await client.hset(sink.heads_key, "gw-a", keep.encode())
    finally:
        await client.aclose()


async def test_a_chain_cut_under_a_running_gateway_freezes_the_anchor_whatever_the_interval(
        redis_url: str, tmp_path: Path) -> None:
    """The tail and the head cut below the anchor while the gateway runs: its next record
    is sealed after the cut (seq 5, the anchor says 9). Was: that head waited for the
    interval's timer with the later ones, and the anchor file got only the latest (seq 14,
    past the anchor): no freeze, and the cut records, anchored before, vanished unseen."""
    anchor = tmp_path / "anchor" / "audit.anchor"
    trail = open_audit_trail(settings(redis_url, anchor,
                                      anchor_file_interval_s=LONG_INTERVAL_S))
    assert trail._redis is not None
    try:
        await append(trail, 5)
        kept = ChainHead(4, trail._redis._head.partition(":")[2])
        anchored = await append(trail, 5, start=5)
        await trail._redis.anchor_settled()
        assert read_anchor_file(str(anchor)) == {"gw-a": anchored}
        await _cut_to(trail, kept)
        await append(trail, 10, start=10)  # sequential: seq 5..14 on the cut chain
    finally:
        await trail.close()
    assert read_anchor_file(str(anchor)) == {"gw-a": anchored, "!gw-a": anchored}


async def test_a_burst_at_restart_on_a_cut_chain_freezes_the_anchor(
        redis_url: str, tmp_path: Path) -> None:
    """docs/audit.md: "a restart on a cut chain is still caught at its first record". A
    burst at restart is one batch (seq 5..14 after a cut at 4, the anchor at 9): was only
    its last head written, past the anchor, and nothing froze."""
    anchor = tmp_path / "anchor" / "audit.anchor"
    s = settings(redis_url, anchor, anchor_file_interval_s=LONG_INTERVAL_S)
    trail = open_audit_trail(s)
    assert trail._redis is not None
    await append(trail, 5)
    kept = ChainHead(4, trail._redis._head.partition(":")[2])
    anchored = await append(trail, 5, start=5)
    await trail.close()
    assert read_anchor_file(str(anchor)) == {"gw-a": anchored}
    await _cut_to(trail, kept)
    again = open_audit_trail(s)
    try:
        await asyncio.gather(*(again.append(make_record(i)) for i in range(10, 20)))
    finally:
        await again.close()
    assert read_anchor_file(str(anchor)) == {"gw-a": anchored, "!gw-a": anchored}


async def test_restarts_and_conflicts_on_an_intact_chain_never_freeze_the_anchor(
        redis_url: str, tmp_path: Path) -> None:
    """The first record after a start or a head conflict is checked against the anchor on
    its own: on an intact chain that never freezes it (single records and bursts)."""
    anchor = tmp_path / "anchor" / "audit.anchor"
    s = settings(redis_url, anchor, anchor_file_interval_s=LONG_INTERVAL_S)
    n = 0
    for burst in (1, 7, 1, 3):
        trail = open_audit_trail(s)
        try:
            await asyncio.gather(*(trail.append(make_record(n + i)) for i in range(burst)))
            n += burst
            await append(trail, 2, start=n)
            n += 2
        finally:
            await trail.close()
    kept = read_anchor_file(str(anchor))
    assert kept is not None and set(kept) == {"gw-a"} and kept["gw-a"].seq == n - 1
    again = open_audit_trail(s)
    report = await again.verify()
    await again.close()
    assert report.ok and report.records == n, report.problems
