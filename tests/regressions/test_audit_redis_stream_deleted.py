"""Attack: ``DEL`` of the Redis audit stream and its heads key passed ``audit verify``
(ok, 0 records).

The writer also keeps its head in an anchor file on disk (outside Redis) and in the
``audit.anchor`` log line; verify compares the stream with them. Real redis-server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
import structlog

from gateway.audit import AuditSettings, ChainHead, VerifyReport, open_audit_trail
from gateway.cli import main
from tests.audit.helpers import make_record

RECORDS = 37


def settings(tmp_path: Path, url: str, key: str, **kw: object) -> AuditSettings:
    base: dict[str, object] = {"sink": "redis", "redis_url": url, "stream_key": key,
                               "instance_id": "gw-a", "write_timeout_s": 5.0,
                               "anchor_path": str(tmp_path / "anchor" / "audit.anchor")}
    base.update(kw)
    return AuditSettings(**base)  # type: ignore[arg-type]


async def write(s: AuditSettings, n: int, start: int = 0) -> None:
    trail = open_audit_trail(s)
    try:
        for i in range(start, start + n):
            await trail.append(make_record(i))
    finally:
        await trail.close()  # also waits for the anchor thread


def delete_stream(url: str, key: str) -> None:
    with redis.Redis.from_url(url) as r:
        assert r.delete(key, key + ":heads") == 2


async def verify(s: AuditSettings, **kw: object) -> VerifyReport:
    trail = open_audit_trail(s)
    try:
        return await trail.verify(**kw)  # type: ignore[arg-type]
    finally:
        await trail.close()


def kinds(report: object) -> list[tuple[str, str | None]]:
    return [(p.kind, p.anchor) for p in report.problems]  # type: ignore[attr-defined]


async def test_deleted_stream_and_heads_fail_verify(tmp_path: Path, redis_url: str,
                                                    key_prefix: str) -> None:
    s = settings(tmp_path, redis_url, f"{key_prefix}:audit")
    await write(s, RECORDS)
    assert (await verify(s)).ok
    delete_stream(redis_url, s.stream_key)
    trail = open_audit_trail(s)
    report = await trail.verify()
    await trail.close()
    anchor = f"anchor file {s.anchor_path}"
    assert report.records == 0 and not report.ok
    assert kinds(report) == [("chain_missing", anchor), ("head_missing", anchor)]
    assert f"seq {RECORDS - 1}" in report.problems[0].detail


async def test_a_writer_restarting_on_the_emptied_stream_freezes_the_anchor(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    s = settings(tmp_path, redis_url, f"{key_prefix}:audit")
    await write(s, RECORDS)
    delete_stream(redis_url, s.stream_key)
    await write(s, 50, start=100)  # a new chain from seq 0, past the old head's seq
    trail = open_audit_trail(s)
    report = await trail.verify()
    await trail.close()
    anchor = f"anchor file {s.anchor_path}"
    assert not report.ok
    assert ("head_mismatch", anchor) in kinds(report)
    assert ("anchor_diverged", anchor) in kinds(report)


async def test_log_anchor_catches_it_without_any_file(tmp_path: Path, redis_url: str,
                                                      key_prefix: str) -> None:
    s = settings(tmp_path, redis_url, f"{key_prefix}:audit", anchor_path="")
    with structlog.testing.capture_logs() as logs:
        await write(s, RECORDS)
    last = [e for e in logs if e["event"] == "audit.anchor"][-1]
    assert last["seq"] == RECORDS - 1
    delete_stream(redis_url, s.stream_key)
    trail = open_audit_trail(s)
    report = await trail.verify(expected={"gw-a": ChainHead(last["seq"], last["hash"])})
    await trail.close()
    given = "expected head (given to verify)"
    assert kinds(report) == [("chain_missing", given), ("head_missing", given)]


def test_cli_verify_reports_the_deleted_stream(tmp_path: Path, redis_url: str,
                                               key_prefix: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    s = settings(tmp_path, redis_url, f"{key_prefix}:audit")
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[service]\ninstance_id = "gw-a"\n[audit]\nsink = "redis"\n'
                   f'redis_url = "{redis_url}"\nstream_key = "{s.stream_key}"\n'
                   f'anchor_path = "{s.anchor_path}"\n')
    asyncio.run(write(s, RECORDS))
    delete_stream(redis_url, s.stream_key)
    capsys.readouterr()
    code = main(["audit", "verify", "--config", str(cfg)])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["records"] == 0
    assert [p["kind"] for p in out["problems"]] == ["chain_missing", "head_missing"]
