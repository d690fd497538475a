"""gateway.wiring, the one composition root: what ``serve`` and every CLI command build
from a Config, and what importing it does not load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway import wiring
from gateway.app import App
from gateway.config import ConfigError, load_config
from gateway.core.model import Attempt
from gateway.store.base import StoreUnavailable

SUBPROCESS_DEADLINE_S = 60
AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # a Tuesday, inside the French windows
BASE = ('[agi]\nlisten = "127.0.0.1:0"\n[http]\nlisten = "127.0.0.1:0"\n'
        '[audit]\nsink = "none"\n')

# What building a CLI command's parts must not drag in at import: the servers and their
# libraries, and the stores' and the service's modules until a function asks for them.
NOT_AT_IMPORT = [
    "gateway.app", "gateway.agi.server", "gateway.ami.runtime", "gateway.http",
    "gateway.metrics", "gateway.service", "gateway.store.factory", "gateway.store.redis",
    "prometheus_client", "aiohttp",
]


def test_importing_the_wiring_loads_neither_the_servers_nor_the_stores(tmp_path: Path) -> None:
    source = "import json, sys; import gateway.wiring; print(json.dumps(sorted(sys.modules)))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_GATEWAY_")}
    proc = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=SUBPROCESS_DEADLINE_S, check=False)
    assert proc.returncode == 0, proc.stderr
    modules = set(json.loads(proc.stdout))
    assert "gateway.wiring" in modules
    assert sorted(m for m in NOT_AT_IMPORT if m in modules) == []


def test_the_service_carries_the_configured_budget_and_prescreen_lifetime() -> None:
    config = load_config(None, env={"DIALER_GATEWAY_SERVICE_DECISION_BUDGET_MS": "400",
                                    "DIALER_GATEWAY_AMI_PROXY_PRESCREEN_TTL_S": "300"})
    store = wiring.open_store(config)
    service = wiring.build_service(config, wiring.build_policy(config), store,
                                   instance_id="cli-1", clock=lambda: AT)
    assert service.budget_s == pytest.approx(0.4)
    assert service.prescreen_ttl_s == 300
    assert service.instance_id == "cli-1"
    assert service.clock() == AT


async def test_serve_and_a_cli_command_build_the_same_parts(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(BASE + "[service]\ndecision_budget_ms = 400\n", encoding="utf-8")
    config = load_config(path, env={})
    app = App(config, clock=lambda: AT)
    await app.start()
    try:
        assert app.service is not None
        store = await wiring.seeded_store(config, AT)
        try:
            cli = wiring.build_service(config, wiring.build_policy(config), store)
            attempt = Attempt(number="0612345678", campaign_id="demo", source="cli")
            served, checked = (await app.service.evaluate(attempt, AT),
                               await cli.evaluate(attempt, AT))
        finally:
            await store.close()
        assert app.service.budget_s == cli.budget_s == pytest.approx(0.4)
        assert served.verdict == checked.verdict
        assert (served.reason, served.pack_hash, served.consent_id) == (
            checked.reason, checked.pack_hash, checked.consent_id)
        assert checked.consent_id  # the demo data was seeded in both memory stores
    finally:
        await app.stop()


async def test_the_demo_data_goes_to_the_memory_store_only_when_asked() -> None:
    for env, seeded in (({}, True), ({"DIALER_GATEWAY_DEMO_SEED": "false"}, False)):
        config = load_config(None, env=env)
        store = await wiring.seeded_store(config, AT)
        try:
            assert bool(await store.lists_status()) is seeded, env
        finally:
            await store.close()


async def test_a_store_that_cannot_answer_is_unavailable_and_a_bad_url_a_config_error(
) -> None:
    down = load_config(None, env={"DIALER_GATEWAY_STORE_URL": "redis://127.0.0.1:1/0",
                                  "DIALER_GATEWAY_STORE_CONNECT_TIMEOUT_S": "0.2"})
    with pytest.raises(StoreUnavailable):
        await wiring.connect_store(down)
    bad = load_config(None, env={"DIALER_GATEWAY_STORE_URL": "redis+cluster://:s3cret@/"})
    with pytest.raises(ConfigError, match=r"store\.url") as caught:
        await wiring.connect_store(bad)
    assert "s3cret" not in str(caught.value)


def test_the_pool_is_sized_from_the_sessions_in_flight_unless_set() -> None:
    config = load_config(None, env={})
    assert wiring.store_max_connections(config) == (
        config.agi.settings.max_sessions + wiring.STORE_CONNECTIONS_MARGIN)
    fixed = load_config(None, env={"DIALER_GATEWAY_STORE_MAX_CONNECTIONS": "7"})
    assert wiring.store_max_connections(fixed) == 7
