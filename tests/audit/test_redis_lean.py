"""The audit sink's group commits on the lean RESP connection (gateway.store.resp), under
faults: a refused XADD is never reported written, a reply lost is never written twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

from gateway.audit import AuditTrail, AuditUnavailable, open_audit_trail
from gateway.core.model import Reason, Verdict
from tests.audit.helpers import make_record
from tests.audit.test_redis import settings
from tests.fixtures.redis_servers import RedisServerFactory
from tests.store.test_resp_faults import Proxy, hiredis_reader


def _lines(admin: redis.Redis, key: str) -> list[dict[str, Any]]:
    return [json.loads(fields.get(b"r") or fields["r"]) for _, fields in admin.xrange(key)]


async def test_an_append_the_server_refuses_is_not_reported_written(
        redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory.start()
    trail = open_audit_trail(settings(server.url, "dg:audit", write_timeout_s=1.0))
    assert trail._redis is not None and trail._redis._lean is not None  # on the lean path
    await trail.append(make_record(0))
    with server.admin() as admin:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")  # every write refused: -OOM
        with pytest.raises(AuditUnavailable, match="OOM"):
            await trail.append(make_record(1))
        assert [r["seq"] for r in _lines(admin, "dg:audit")] == [0]
        admin.config_set("maxmemory", "0")
    # the next record chains after the last one written, nothing skipped
    await trail.append(make_record(2))
    report = await trail.verify()
    await trail.close()
    assert report.ok, report.problems
    with server.admin() as admin:
        lines = _lines(admin, "dg:audit")
    assert [r["seq"] for r in lines] == list(range(len(lines)))
    assert "d-gw-a-1" not in [r["id"] for r in lines if not r.get("supersedes")]


async def _superseding_reply_lost(
        redis_url: str, key: str,
        meanwhile: Callable[[AuditTrail], Awaitable[None]] | None = None,
) -> list[dict[str, Any]]:
    """Record 0 appended, record 1 overruled: its superseding record's script runs on the
    server, then the connection is cut before the reply reaches the gateway. After
    ``meanwhile`` (what happens while the flusher backs off), the flusher's retry writes
    the backlog; the chain must verify. The stream's records, in order."""
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = Proxy(port)
    await proxy.start()
    trail = open_audit_trail(settings(f"redis://127.0.0.1:{proxy.port}/0", key,
                                      write_timeout_s=1.0))
    sink = trail._redis
    assert sink is not None and sink._lean is not None
    try:
        await trail.append(make_record(0))
        links = list(proxy.links)
        proxy.hold = True
        trail.overrule(make_record(1), verdict=Verdict.BLOCK.value, reason=Reason.OK.value)
        # the script runs on the server; its reply is held by the proxy
        link = await _link_with_a_reply(proxy, links)
        proxy.hold = False
        link.client.close()  # then the connection is cut: the reply is lost
        if meanwhile is not None:
            await meanwhile(trail)
        assert sink._flusher is not None
        await sink._flusher  # it retries (backoff) until the backlog is written
        report = await trail.verify()
    finally:
        await trail.close()
        await proxy.close()
    assert report.ok, report.problems
    with redis.Redis.from_url(redis_url) as admin:
        lines = _lines(admin, key)
        admin.delete(key, f"{key}:heads")
    return lines


async def _link_with_a_reply(proxy: Proxy, links: list[Any]) -> Any:
    """The proxied connection that holds one whole reply (the script's)."""
    while True:
        for link in links:
            if link.held:
                reader = hiredis_reader()
                reader.feed(bytes(link.held))
                if reader.gets() is not False:
                    return link
        waits = [asyncio.ensure_future(link.arrived.wait()) for link in links]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        for link in links:
            link.arrived.clear()


async def test_a_superseding_record_whose_reply_was_lost_is_written_once(
        redis_url: str) -> None:
    """The flusher's retry after a reply lost on the wire (the script ran): the same batch,
    sealed on the same head, is recognised as landed, not sealed again after itself."""
    lines = await _superseding_reply_lost(redis_url, "test:audit:lean-lost-reply")
    superseding = [r for r in lines if r.get("supersedes")]
    assert [r["supersedes"] for r in superseding] == ["d-gw-a-1"], lines


async def test_a_lost_superseding_batch_is_not_written_again_after_a_later_record(
        redis_url: str) -> None:
    """The same, with a record of a live call appended while the flusher backs off: that
    record chains after the superseding one (which landed), and the flusher's retry then
    knows it landed; it does not write it a second time after that record."""

    async def live_call(trail: AuditTrail) -> None:
        await trail.append(make_record(2))

    lines = await _superseding_reply_lost(redis_url, "test:audit:lean-lost-reply-then-append",
                                          live_call)
    assert [(r["id"], bool(r.get("supersedes"))) for r in lines] == [
        ("d-gw-a-0", False), ("d-gw-a-1", True), ("d-gw-a-2", False)], lines


async def test_a_lost_superseding_batch_retried_with_a_newer_one_is_written_once(
        redis_url: str) -> None:
    """The retry's batch holds the lost one and one queued since: only the newer is
    written (the lost one landed), each once."""

    async def another_overrule(trail: AuditTrail) -> None:
        trail.overrule(make_record(2), verdict=Verdict.BLOCK.value, reason=Reason.OK.value)

    lines = await _superseding_reply_lost(redis_url, "test:audit:lean-lost-reply-then-more",
                                          another_overrule)
    assert [(r["id"], bool(r.get("supersedes"))) for r in lines] == [
        ("d-gw-a-0", False), ("d-gw-a-1", True), ("d-gw-a-2", True)], lines
