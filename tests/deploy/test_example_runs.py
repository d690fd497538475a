"""deploy/gateway.toml.example runs: a gateway on a real redis-server screens calls of both
example campaigns, and /metrics exposes the series the alert rules select on."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.app import App
from gateway.config import load_config
from gateway.importer import ImportKind, import_file
from gateway.store.base import ImportMode
from tests.agi_client import agi_screen, http_get
from tests.deploy.support import example_secret_overrides, exported

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "gateway.toml.example"
LEGAL_NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # Tuesday 10:30 in Paris, FR-2026
SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")


@pytest.fixture
async def app(tmp_path: Path, redis_url: str, key_prefix: str) -> AsyncIterator[App]:
    cfg = load_config(EXAMPLE, env={}, overrides={
        "store": {"url": redis_url, "key_prefix": key_prefix, "password_file": ""},
        "agi": {"listen": "127.0.0.1:0"},
        "http": {"listen": "127.0.0.1:0"},
        "audit": {"path": str(tmp_path / "audit.jsonl")},
        # no Asterisk here (the AMI edges have their own tests)
        "ami": {"enabled": False,
                "secret_file": example_secret_overrides()["ami"]["secret_file"]},
    })
    gateway = App(cfg, clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            out.append((match.group(1), labels, float(match.group(3))))
    return out


async def test_example_configuration_screens_and_exports_what_alerts_select(app: App) -> None:
    # a Redis with no list at all (never imported, or restarted without persistence)
    status, body = await http_get(app.http_address, "/readyz")
    assert status == 503 and json.loads(body)["store"].startswith("empty:"), body
    assert app.store is not None
    await import_file(app.store, ImportKind.OPPOSITION, b"number\n0699999999\n",
                      now=LEGAL_NOW, mode=ImportMode.REPLACE, list_source="internal")
    status, body = await http_get(app.http_address, "/readyz")
    assert status == 200, body
    assert json.loads(body)["store"] == "up" and json.loads(body)["audit"] == "up"

    # no consent imported: the enforced campaign blocks, the shadow campaign lets through
    enforced = await agi_screen(app.agi_address, "06 12 34 56 78", "fr-telecom-optin")
    assert (enforced["GW_VERDICT"], enforced["GW_REASON"]) == ("BLOCK", "no_consent")
    shadow = await agi_screen(app.agi_address, "06 12 34 56 78", "fr-insurance-shadow")
    assert (shadow["GW_VERDICT"], shadow["GW_REASON"]) == ("ALLOW", "no_consent")
    unknown = await agi_screen(app.agi_address, "06 12 34 56 78", "not-configured")
    assert (unknown["GW_VERDICT"], unknown["GW_REASON"]) == ("BLOCK", "campaign_unknown")

    status, raw = await http_get(app.http_address, "/metrics")
    text = raw.decode()
    assert status == 200
    series = samples(text)
    names = {name for name, _, _ in series}
    assert names <= exported().names, names - exported().names

    def value(name: str, **labels: str) -> float:
        return sum(v for n, ls, v in series if n == name and labels.items() <= ls.items())

    # exactly the label values the alert rules and the dashboard select on
    assert value("dialer_gateway_decisions_total", campaign="fr-telecom-optin",
                 verdict="BLOCK", reason="no_consent") == 1
    assert value("dialer_gateway_decisions_total", campaign="unknown",
                 verdict="BLOCK", reason="campaign_unknown") == 1
    assert value("dialer_gateway_shadow_decisions_total", campaign="fr-insurance-shadow",
                 engine_verdict="BLOCK") == 1
    assert value("dialer_gateway_decision_duration_seconds_count", source="agi") == 3
    assert value("dialer_gateway_store_up") == 1
    assert value("dialer_gateway_store_lists") == 1
    assert value("dialer_gateway_audit_up") == 1
    assert ("dialer_gateway_audit_errors_total", {}, 0.0) in series  # exported from the start
    assert value("dialer_gateway_fail_open_decisions_total") == 0

    # one audit record per decision, in the configured file, with the pack's hash
    audit = await asyncio.to_thread(Path(app.config.audit.path).read_text, encoding="utf-8")
    records = [json.loads(line) for line in audit.splitlines()]
    assert [r["campaign"] for r in records] == [
        "fr-telecom-optin", "fr-insurance-shadow", "not-configured"]
    for record in records[:2]:  # a campaign that is not configured has no jurisdiction/pack
        assert record["pack"]["id"] == "FR-2026" and len(record["pack"]["hash"]) == 64
    assert records[1]["shadow"] is True and records[1]["engine"]["verdict"] == "BLOCK"
    assert {r["instance"] for r in records} == {"gw1"}
