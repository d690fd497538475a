"""The embedded default works as shipped, and /readyz tells the truth about the audit sink
and the store's contents (issue: `make run` blocked every call while /readyz said ready)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.app import App
from gateway.config import load_config
from gateway.health import AuditSinkError
from gateway.importer import ImportKind, import_file
from gateway.store.base import ImportMode
from tests.agi_client import agi_screen, http_get
from tests.fixtures.redis_servers import RedisProcess

LEGAL_NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # Tuesday 10:30 in Paris
DEADLINE_S = 10.0
LISTEN = {"agi": {"listen": "127.0.0.1:0"}, "http": {"listen": "127.0.0.1:0"}}


@pytest.fixture
async def default_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[App]:
    """The embedded default as `make run` starts it, from a directory with no var/."""
    monkeypatch.chdir(tmp_path)
    gateway = App(load_config(None, env={}, overrides=LISTEN), clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def next_probe(app: App) -> None:
    app.store_probed.clear()
    async with asyncio.timeout(DEADLINE_S):
        await app.store_probed.wait()


def metric(text: str, name: str) -> float:
    (line,) = [ln for ln in text.splitlines() if ln.startswith(name + " ")]
    return float(line.split()[1])


async def test_embedded_default_allows_a_demo_call_and_writes_its_record(
    default_app: App, tmp_path: Path
) -> None:
    assert default_app.config.audit.path == "var/audit.jsonl"  # the shipped default
    var = tmp_path / "var"
    assert stat.S_IMODE(var.stat().st_mode) == 0o750  # created, not world-readable
    variables = await agi_screen(default_app.agi_address, "06 12 34 56 78", "demo")
    assert (variables["GW_VERDICT"], variables["GW_REASON"]) == ("ALLOW", "ok"), variables
    (record,) = [json.loads(ln) for ln in (var / "audit.jsonl").read_text().splitlines()]
    assert record["id"] == variables["GW_DECISION_ID"] and record["verdict"] == "ALLOW"
    status, body = await http_get(default_app.http_address, "/readyz")
    assert status == 200, body
    assert json.loads(body)["audit"] == "up" and json.loads(body)["store"] == "up"
    await next_probe(default_app)
    _, raw = await http_get(default_app.http_address, "/metrics")
    assert metric(raw.decode(), "dialer_gateway_audit_up") == 1
    assert metric(raw.decode(), "dialer_gateway_store_lists") == 4  # the demo lists


async def test_audit_sink_that_stops_writing_fails_readyz_and_the_gauge(
    default_app: App, tmp_path: Path
) -> None:
    # the audit directory vanishes and a file takes its name: nothing can be created there
    (tmp_path / "var").rename(tmp_path / "var.old")
    (tmp_path / "var").write_text("not a directory\n")
    variables = await agi_screen(default_app.agi_address, "06 12 34 56 78", "demo")
    assert (variables["GW_VERDICT"], variables["GW_REASON"]) == ("BLOCK", "store_unavailable")
    status, body = await http_get(default_app.http_address, "/readyz")
    assert status == 503, body
    assert "var/audit.jsonl" in json.loads(body)["audit"], body
    await next_probe(default_app)
    _, raw = await http_get(default_app.http_address, "/metrics")
    assert metric(raw.decode(), "dialer_gateway_audit_up") == 0


async def test_unwritable_audit_path_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    cfg = load_config(None, env={}, overrides={
        **LISTEN, "audit": {"path": str(tmp_path / "file" / "audit.jsonl")}})
    gateway = App(cfg)
    with pytest.raises(AuditSinkError, match=r"audit.path .*/file/audit.jsonl: cannot write"):
        await gateway.start()
    assert gateway.agi is None and gateway.store is None  # nothing opened, nothing listening


def test_serve_with_an_unwritable_audit_path_exits_4_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    env = {**os.environ, "DIALER_GATEWAY_AGI_LISTEN": "127.0.0.1:0",
           "DIALER_GATEWAY_HTTP_LISTEN": "127.0.0.1:0",
           "DIALER_GATEWAY_AUDIT_PATH": str(tmp_path / "file" / "audit.jsonl")}
    done = subprocess.run([sys.executable, "-m", "gateway", "serve"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 4, done.stderr
    assert f"audit.path {tmp_path}/file/audit.jsonl: cannot write" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test alone (it is restarted), without persistence."""
    server = RedisProcess(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_readyz_fails_when_redis_restarted_without_persistence(
    tmp_path: Path, own_redis: RedisProcess
) -> None:
    redis_server = own_redis
    cfg = load_config(None, env={}, overrides={
        **LISTEN, "store": {"url": redis_server.url, "key_prefix": f"ready{os.getpid()}"},
        "audit": {"path": str(tmp_path / "audit.jsonl")}, "demo": {"seed": False}})
    gateway = App(cfg, clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        assert gateway.store is not None
        await import_file(gateway.store, ImportKind.OPPOSITION, b"number\n0699999999\n",
                          now=LEGAL_NOW, mode=ImportMode.REPLACE, list_source="internal")
        status, body = await http_get(gateway.http_address, "/readyz")
        assert status == 200, body
        # the fixture's redis-server runs with --save "" --appendonly no
        await asyncio.to_thread(redis_server.restart)
        status, body = await http_get(gateway.http_address, "/readyz")
        assert status == 503, body
        assert json.loads(body)["store"].startswith("empty: no list in the store"), body
        await next_probe(gateway)
        _, raw = await http_get(gateway.http_address, "/metrics")
        assert metric(raw.decode(), "dialer_gateway_store_up") == 1  # PING still answers
        assert metric(raw.decode(), "dialer_gateway_store_lists") == 0
    finally:
        await gateway.stop()
