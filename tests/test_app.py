"""The composition root over real sockets, and ``dialer-gateway serve`` as a process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.app import App
from gateway.config import Config, load_config
from gateway.store.factory import open_store
from tests.agi_client import agi_screen, http_get

# Tuesday 1 December 2026, 10:30 in Paris
LEGAL_NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
DEADLINE_S = 10.0


def config(tmp_path: Path, **sections: dict[str, object]) -> Config:
    overrides: dict[str, dict[str, object]] = {
        "agi": {"listen": "127.0.0.1:0"},
        "http": {"listen": "127.0.0.1:0"},
        "audit": {"sink": "jsonl", "path": str(tmp_path / "audit.jsonl")},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_config(None, env={}, overrides=overrides)


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    gateway = App(config(tmp_path), clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def test_health_readiness_and_metrics(app: App) -> None:
    assert await http_get(app.http_address, "/healthz") == (200, b'{"status":"ok"}')
    status, body = await http_get(app.http_address, "/readyz")
    assert status == 200 and json.loads(body)["store"] == "up"
    assert (await http_get(app.http_address, "/nope"))[0] == 404


async def test_store_up_gauge_is_kept_without_anyone_polling_readyz(app: App) -> None:
    async with asyncio.timeout(DEADLINE_S):
        await app.store_probed.wait()
    _, metrics = await http_get(app.http_address, "/metrics")
    assert "dialer_gateway_store_up 1.0" in metrics.decode()
    # configured campaigns' series exist at 0 before their first event
    assert 'dialer_gateway_fail_open_decisions_total{campaign="demo"} 0.0' in metrics.decode()


async def test_screen_over_fastagi_sets_the_contract_variables(app: App) -> None:
    # The embedded default: demo campaign, demo consents (docs/cli.md)
    variables = await agi_screen(app.agi_address, "06 12 34 56 78", "demo")
    assert set(variables) == {
        "GW_VERDICT",
        "GW_REASON",
        "GW_E164",
        "GW_RETRY_AFTER",
        "GW_DECISION_ID",
    }
    assert variables["GW_VERDICT"] == "ALLOW", variables
    assert variables["GW_E164"] == "+33612345678"
    blocked = await agi_screen(app.agi_address, "not a number", "demo")
    assert (blocked["GW_VERDICT"], blocked["GW_REASON"]) == ("BLOCK", "invalid_number")
    _, metrics = await http_get(app.http_address, "/metrics")
    text = metrics.decode()
    assert (
        'dialer_gateway_decisions_total{campaign="demo",reason="ok",source="agi",'
        'verdict="ALLOW"} 1.0' in text
    )
    assert "612345678" not in text
    assert "dialer_gateway_agi_sessions_total" in text


async def test_readyz_fails_when_the_store_is_down(tmp_path: Path) -> None:
    store = open_store("redis://127.0.0.1:1/0", socket_timeout_s=0.1, connect_timeout_s=0.1)
    gateway = App(config(tmp_path, demo={"seed": False}), store=store)
    await gateway.start()
    try:
        status, body = await http_get(gateway.http_address, "/readyz")
        variables = await agi_screen(gateway.agi_address, "06 12 34 56 78", "demo")
    finally:
        await gateway.stop()
        await store.close()
    assert status == 503 and json.loads(body)["ready"] is False
    assert (variables["GW_VERDICT"], variables["GW_REASON"]) == ("BLOCK", "store_unavailable")


@pytest.mark.parametrize("event_loop", [None, "auto", "asyncio", "uvloop"])
def test_serve_starts_on_the_embedded_default_and_stops_on_sigterm(
        tmp_path: Path, event_loop: str | None) -> None:
    """What `make run` does: no config file at all (the default loop, ``auto``: uvloop,
    which the test environment installs); SIGTERM stops it cleanly. ``[service]
    event_loop`` picks the loop."""
    env = {
        **os.environ,
        **({"DIALER_GATEWAY_SERVICE_EVENT_LOOP": event_loop} if event_loop else {}),
        "DIALER_GATEWAY_AGI_LISTEN": "127.0.0.1:0",
        "DIALER_GATEWAY_HTTP_LISTEN": "127.0.0.1:0",
        "DIALER_GATEWAY_LOGGING_FORMAT": "json",
        "DIALER_GATEWAY_AUDIT_PATH": str(tmp_path / "audit.jsonl"),
    }
    env.pop("DIALER_GATEWAY_CONFIG", None)
    script = Path(sys.executable).with_name("dialer-gateway")
    proc = subprocess.Popen(
        [str(script), "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # bounded by the test timeout; ends at EOF
            seen.append(line)
            if '"gateway.started"' in line:
                break
        assert any('"gateway.started"' in line for line in seen), "".join(seen)
        started = json.loads(next(line for line in seen if '"gateway.started"' in line))
        assert started["campaigns"] == ["demo"]
        want = {None: "uvloop", "auto": "uvloop", "asyncio": "asyncio",
                "uvloop": "uvloop"}
        assert started["event_loop"] == want[event_loop]
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=DEADLINE_S)
    assert proc.returncode == 0, rest
    assert '"gateway.stopped"' in rest


@pytest.mark.parametrize("url_fixture", ["redis_url", "redis_cluster_url", "redis_sentinel_url"])
async def test_redis_store_and_audit_stream_beside_it(
    tmp_path: Path, request: pytest.FixtureRequest, url_fixture: str, key_prefix: str
) -> None:
    """Store and audit stream on plain Redis, a 3-node Cluster and Sentinel: one truth."""
    url = request.getfixturevalue(url_fixture)
    cfg = config(
        tmp_path,
        store={"url": url, "key_prefix": key_prefix},
        audit={"sink": "redis", "stream_key": f"{key_prefix}:audit"},
    )
    gateway = App(cfg, clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        variables = await agi_screen(gateway.agi_address, "06 12 34 56 78", "demo")
        assert gateway.audit is not None
        report = await gateway.audit.verify()
    finally:
        await gateway.stop()
    # no demo data outside the memory store: FR-2026 without consent
    assert (variables["GW_VERDICT"], variables["GW_REASON"]) == ("BLOCK", "no_consent")
    assert report.ok and report.records == 1, report


async def test_list_freshness_gauges(app: App) -> None:
    """Age and entries of each list, and the strictest max age the packs require."""
    async with asyncio.timeout(DEADLINE_S):
        await app.store_probed.wait()
    _, body = await http_get(app.http_address, "/metrics")
    text = body.decode()
    infos = {i.name: i for i in await app.store.lists_status()}  # type: ignore[union-attr]
    bloctel = infos["opposition:bloctel"]
    assert f'dialer_gateway_list_entries{{list="opposition:bloctel"}} {float(bloctel.size)}' in text
    age = (LEGAL_NOW - bloctel.imported_at).total_seconds()
    assert f'dialer_gateway_list_age_seconds{{list="opposition:bloctel"}} {age}' in text
    assert 'dialer_gateway_list_max_age_seconds{list="opposition:bloctel"} 2.592e+06' in text
    assert "+33" not in text  # list names only, never numbers


async def test_the_hot_paths_lean_connections_are_metrics(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    cfg = config(tmp_path, store={"url": redis_url, "key_prefix": key_prefix},
                 audit={"sink": "redis", "stream_key": f"{key_prefix}:audit"})
    gateway = App(cfg, clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        await agi_screen(gateway.agi_address, "06 12 34 56 78", "demo")
        await http_get(gateway.http_address, "/readyz")  # samples them
        _, body = await http_get(gateway.http_address, "/metrics")
    finally:
        await gateway.stop()
    text = body.decode()
    for client in ("store", "audit"):  # one connection each, open, nothing owed
        assert f'dialer_gateway_store_hot_connects_total{{client="{client}"}} 1.0' in text
        assert f'dialer_gateway_store_hot_connect_failures_total{{client="{client}"}}' not in text
        assert f'dialer_gateway_store_hot_connected{{client="{client}"}} 1.0' in text
        assert f'dialer_gateway_store_hot_requests_in_flight{{client="{client}"}} 0.0' in text
    assert "+33" not in text


def test_lean_connection_samples_count_what_is_new_per_client() -> None:
    from gateway.metrics import Metrics

    metrics, first, rebuilt = Metrics(), object(), object()
    metrics.store_hot("audit", first, connects=2, failures=1, connected=True, in_flight=3)
    metrics.store_hot("audit", first, connects=3, failures=1, connected=False, in_flight=0)
    # the sink rebuilt on another stream key: a new client, counting from its own zero
    metrics.store_hot("audit", rebuilt, connects=1, failures=0, connected=True, in_flight=1)
    text = metrics.render().decode()
    assert 'dialer_gateway_store_hot_connects_total{client="audit"} 4.0' in text
    assert 'dialer_gateway_store_hot_connect_failures_total{client="audit"} 1.0' in text
    assert 'dialer_gateway_store_hot_connected{client="audit"} 1.0' in text
    assert 'dialer_gateway_store_hot_requests_in_flight{client="audit"} 1.0' in text
