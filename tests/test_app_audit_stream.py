"""Which Redis stream the wired audit trail writes: ``audit.stream_key``, else
``<store.key_prefix>:audit``, and an earlier version's ``dg:audit`` keeps being used."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import structlog
from redis.asyncio import Redis

from gateway.audit import AuditSettings, AuditTrail, AuditUnavailable, open_audit_trail
from gateway.config import Config, load_config
from gateway.store.keys import audit_heads_key
from gateway.wiring import open_audit_trail_for
from tests.audit.helpers import make_record
from tests.fixtures.redis_servers import RedisServerFactory


def config(tmp_path: Path, url: str, prefix: str, **audit: object) -> Config:
    return load_config(None, env={}, overrides={
        "store": {"url": url, "key_prefix": prefix},
        "audit": {"sink": "redis", "path": str(tmp_path / "audit.jsonl"), **audit},
    })


async def write_one(cfg: Config) -> AuditTrail:
    trail, closers = await open_audit_trail_for(cfg, "gw1")
    try:
        await trail.append(make_record(1, instance="gw1"))
    finally:
        await trail.close()
        for close in closers:
            await close()
    return trail


async def keys(url: str) -> set[bytes]:
    client = Redis.from_url(url)
    try:
        return set(await client.keys("*"))
    finally:
        await client.aclose()


async def test_a_configured_stream_key_wins(tmp_path: Path, redis_url: str) -> None:
    trail = await write_one(config(tmp_path, redis_url, "gwa", stream_key="mine"))
    assert trail.settings.stream_key == "mine"
    assert await keys(redis_url) == {b"mine", b"mine:heads"}


async def test_a_new_deployment_streams_under_its_prefix(tmp_path: Path, redis_url: str) -> None:
    trail = await write_one(config(tmp_path, redis_url, "gwb"))
    assert trail.settings.stream_key == "gwb:audit"
    assert await keys(redis_url) == {b"gwb:audit", audit_heads_key("gwb:audit").encode()}


async def test_the_default_prefix_keeps_dg_audit(tmp_path: Path, redis_url: str) -> None:
    trail = await write_one(config(tmp_path, redis_url, "dg"))
    assert trail.settings.stream_key == "dg:audit"


async def test_an_earlier_versions_stream_keeps_being_used(
        tmp_path: Path, redis_url: str) -> None:
    """The trail an earlier version wrote to dg:audit (its default whatever the prefix)
    goes on there, and its chain continues."""
    earlier = open_audit_trail(AuditSettings(
        sink="redis", redis_url=redis_url, instance_id="gw1", anchor_path=""))
    assert earlier.settings.resolved_stream_key == "dg:audit"
    await earlier.append(make_record(0, instance="gw1"))
    await earlier.close()
    cfg = config(tmp_path, redis_url, "gwc", anchor_path="")
    with structlog.testing.capture_logs() as logs:
        trail = await write_one(cfg)
    assert trail.settings.stream_key == "dg:audit"
    assert [e["hint"] for e in logs if e["event"] == "audit.legacy_stream_key"] == [
        'set [audit] stream_key = "dg:audit" to keep this stream']
    assert await keys(redis_url) == {b"dg:audit", b"dg:audit:heads"}
    again = open_audit_trail(dataclasses.replace(trail.settings, redis_url=redis_url))
    try:
        report = await again.verify()
    finally:
        await again.close()
    assert report.ok and report.records == 2, report


async def test_once_the_prefixed_stream_exists_it_wins(tmp_path: Path, redis_url: str) -> None:
    await write_one(config(tmp_path, redis_url, "gwd"))  # a new deployment's stream ...
    await write_one(config(tmp_path, redis_url, "dg"))  # ... and another's dg:audit
    trail = await write_one(config(tmp_path, redis_url, "gwd"))
    assert trail.settings.stream_key == "gwd:audit"


async def test_in_doubt_the_stream_is_chosen_when_redis_answers_not_guessed(
        tmp_path: Path, redis_server_factory: RedisServerFactory) -> None:
    """Redis unreachable at start: no stream is guessed (a guess once sent a whole run to
    ``dg:audit`` while export, report and verify read ``<prefix>:audit``). Until Redis
    answers, every append fails (the call is blocked: fail closed); then the stream is
    chosen as every process chooses it, and the records land where the CLI reads."""
    server = redis_server_factory.start()
    await write_one(config(tmp_path, server.url, "gwe"))  # this deployment's stream
    server.stop()
    cfg = config(tmp_path, server.url, "gwe")
    with structlog.testing.capture_logs() as logs:
        trail, closers = await open_audit_trail_for(cfg, "gw1")
    try:
        with pytest.raises(AuditUnavailable):
            await trail.append(make_record(2, instance="gw1"))
        server.start()  # same port, empty: the stream is gone too (no persistence)
        await write_one(config(tmp_path, server.url, "gwe"))  # the CLI's choice: gwe:audit
        await trail.append(make_record(3, instance="gw1"))
    finally:
        await trail.close()
        for close in closers:
            await close()
    assert trail.settings.stream_key == "gwe:audit"
    assert await keys(server.url) == {b"gwe:audit", audit_heads_key("gwe:audit").encode()}
    assert [e["prefixed"] for e in logs if e["event"] == "audit.stream_key_unresolved"] == [
        "gwe:audit"]


async def test_in_doubt_an_earlier_deployment_keeps_dg_audit_once_redis_answers(
        tmp_path: Path, redis_server_factory: RedisServerFactory) -> None:
    """The deferred choice keeps an earlier version's trail: only ``dg:audit`` exists."""
    server = redis_server_factory.start()
    port_url = server.url
    server.stop()
    cfg = config(tmp_path, port_url, "gwf")
    trail, closers = await open_audit_trail_for(cfg, "gw1")
    try:
        with pytest.raises(AuditUnavailable):
            await trail.heads()
        server.start()
        await write_one(config(tmp_path, port_url, "dg"))  # the earlier version's record
        await trail.append(make_record(2, instance="gw1"))
        report = await trail.verify()
    finally:
        await trail.close()
        for close in closers:
            await close()
    assert trail.settings.stream_key == "dg:audit"
    assert report.ok and report.records == 2, report
    assert await keys(port_url) == {b"dg:audit", audit_heads_key("dg:audit").encode()}
