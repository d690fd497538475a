"""Reload in process: re-read, validate, switch at once, or keep everything as it was."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.app import App
from gateway.cli import main
from gateway.config import load_config
from gateway.core.model import Attempt, Reason, Verdict
from gateway.store.memory import MemoryStore
from tests.agi_client import agi_screen, http_get
from tests.lifecycle.support import gateway_toml, write

LEGAL_NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # Tuesday, 10:30 in Paris
DEADLINE_S = 10.0


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    write(path, gateway_toml(tmp_path, "demo"))
    return path


@pytest.fixture
async def app(conf: Path) -> AsyncIterator[App]:
    gateway = App(load_config(conf, env={}), clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def metrics(app: App) -> str:
    _, body = await http_get(app.http_address, "/metrics")
    return body.decode()


async def post(address: tuple[str, int], path: str, method: str = "POST") -> tuple[int, Any]:
    async with asyncio.timeout(DEADLINE_S):
        reader, writer = await asyncio.open_connection(*address)
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


async def test_a_new_campaign_is_used_after_reload(app: App, conf: Path, tmp_path: Path) -> None:
    before = await agi_screen(app.agi_address, "06 12 34 56 78", "spring")
    assert (before["GW_VERDICT"], before["GW_REASON"]) == ("BLOCK", "campaign_unknown")
    old_hash = app.config_hash
    write(conf, gateway_toml(tmp_path, "demo", "spring"))
    result = await app.reload()
    assert result.ok, result.error
    assert "campaigns.spring" in result.changed and result.restart_needed == ()
    assert result.digest == app.config_hash != old_hash
    after = await agi_screen(app.agi_address, "06 12 34 56 78", "spring")
    assert (after["GW_VERDICT"], after["GW_REASON"]) == ("ALLOW", "ok")
    text = await metrics(app)
    assert 'dialer_gateway_config_reloads_total{result="success"} 1.0' in text
    assert f'dialer_gateway_config_info{{hash="{app.config_hash}"}} 1.0' in text
    assert old_hash not in text  # one info series: the configuration in force
    assert 'dialer_gateway_decisions_total{campaign="spring",reason="ok"' in text
    assert "dialer_gateway_config_restart_pending 0.0" in text


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda base: base + "[agi\nlisten = 1", "invalid TOML"),
        (lambda base: base + "[campaigns.x]\nprofessional = \"p\"\n",
         "campaigns.x.product_category"),
        (lambda base: base + "[policy]\npacks_dir = \"/nonexistent/packs\"\n",
         "/nonexistent/packs"),
        (lambda base: base.replace('format = "json"', 'format = "json"\nlevel = "loud"'),
         "log level"),
    ],
    ids=["toml", "campaign", "packs_dir", "logging"],
)
async def test_a_bad_file_keeps_the_running_configuration(
    app: App, conf: Path, tmp_path: Path, edit: Callable[[str], str], named: str
) -> None:
    old_hash, old_policy = app.config_hash, app.policy
    write(conf, edit(gateway_toml(tmp_path, "demo", "spring")))
    result = await app.reload()
    assert not result.ok and result.error is not None and named in result.error
    assert app.config_hash == old_hash and app.policy is old_policy
    allowed = await agi_screen(app.agi_address, "06 12 34 56 78", "demo")
    assert allowed["GW_VERDICT"] == "ALLOW"
    body = await metrics(app)
    assert 'dialer_gateway_config_reloads_total{result="error"} 1.0' in body
    assert 'dialer_gateway_config_reloads_total{result="success"} 0.0' in body
    assert f'dialer_gateway_config_info{{hash="{old_hash}"}} 1.0' in body


async def test_a_bad_pack_file_is_named_and_changes_nothing(
    app: App, conf: Path, tmp_path: Path
) -> None:
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "broken.toml").write_text("id = \"X\"\n", encoding="utf-8")
    write(conf, gateway_toml(tmp_path, "demo", "spring",
                             extra=f"[policy]\npacks_dir = \"{packs}\"\n"))
    result = await app.reload()
    assert not result.ok and result.error is not None and "broken.toml" in result.error
    assert "spring" not in app.policy.campaigns  # nothing of the new file was applied


async def test_listen_addresses_and_store_need_a_restart(
    app: App, conf: Path, tmp_path: Path
) -> None:
    agi = app.agi_address
    write(conf, gateway_toml(tmp_path, "demo", "spring", agi="127.0.0.1:1",
                             extra="[store]\nurl = \"redis://:pw@127.0.0.1:1/0\"\n"))
    result = await app.reload()
    assert result.ok
    assert set(result.restart_needed) == {"agi.listen", "store.url"}
    assert "spring" in app.policy.campaigns  # the rest is applied
    assert app.config.store.url == "memory://" and app.agi_address == agi
    allowed = await agi_screen(agi, "06 12 34 56 78", "spring")
    assert allowed["GW_VERDICT"] == "ALLOW"
    body = await metrics(app)
    assert "dialer_gateway_config_restart_pending 1.0" in body
    assert "pw" not in json.dumps(result.to_dict())  # names only, never values


async def test_a_call_in_flight_keeps_the_policy_it_started_with(
    conf: Path, tmp_path: Path
) -> None:
    class PausedStore(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.entered = asyncio.Event()
            self.release = asyncio.Event()

        async def load_facts(self, **kwargs: Any) -> Any:
            self.entered.set()
            await self.release.wait()
            return await super().load_facts(**kwargs)

    write(conf, gateway_toml(tmp_path, "demo", "spring",
                             extra="[service]\ndecision_budget_ms = 5000\n"))
    store = PausedStore()
    gateway = App(load_config(conf, env={}), store=store, clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        assert gateway.service is not None
        call = asyncio.create_task(gateway.service.screen(
            Attempt(number="+33612345678", campaign_id="spring", caller_id=None, source="agi")))
        async with asyncio.timeout(DEADLINE_S):
            await store.entered.wait()
        write(conf, gateway_toml(tmp_path, "demo"))  # "spring" removed
        result = await gateway.reload()
        assert result.ok and "spring" not in gateway.policy.campaigns
        store.release.set()
        async with asyncio.timeout(DEADLINE_S):
            decided = await call
        # decided on the campaign it started with, not half-reloaded into campaign_unknown
        assert (decided.verdict, decided.reason) == (Verdict.ALLOW, Reason.OK)
        assert decided.campaign_id == "spring"
        later = await gateway.service.screen(
            Attempt(number="+33612345678", campaign_id="spring", caller_id=None, source="agi"))
        assert later.reason is Reason.CAMPAIGN_UNKNOWN
    finally:
        await gateway.stop()


async def test_post_reload_on_the_ops_endpoint(app: App, conf: Path, tmp_path: Path) -> None:
    write(conf, gateway_toml(tmp_path, "demo", "spring"))
    status, doc = await post(app.http_address, "/-/reload")
    assert status == 200 and doc["result"] == "success"
    assert doc["config_hash"] == app.config_hash and "spring" in doc["campaigns"]
    write(conf, "[nonsense]\n")
    status, doc = await post(app.http_address, "/-/reload")
    assert status == 422 and doc["result"] == "error" and "nonsense" in doc["error"]
    status, doc = await post(app.http_address, "/-/reload", method="GET")
    assert status == 405
    assert "spring" in app.policy.campaigns


async def test_cli_reload_reports_success_refusal_and_absence(
    app: App, conf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host, port = app.http_address
    endpoint = f"{host}:{port}"
    write(conf, gateway_toml(tmp_path, "demo", "spring"))
    code = await asyncio.to_thread(main, ["reload", "--endpoint", endpoint])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"reloaded: config {app.config_hash}" in out and "campaigns.spring" in out
    write(conf, gateway_toml(tmp_path, "demo", "spring", http="127.0.0.1:1"))
    code = await asyncio.to_thread(main, ["reload", "--endpoint", endpoint])
    _, err = capsys.readouterr()
    assert code == 0 and "restart needed, not applied: http.listen" in err
    write(conf, gateway_toml(tmp_path, "demo") + "[campaigns.bad]\n")
    code = await asyncio.to_thread(main, ["reload", "--endpoint", endpoint, "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and "reload refused" in err and "campaigns.bad" in err
    assert json.loads(out[out.index('{\n  "'):])["result"] == "error"  # after any log lines
    assert "spring" in app.policy.campaigns


async def test_cli_reload_finds_the_endpoint_in_the_file(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, port = app.http_address
    # an operator's file: http.listen is its real address, the rest may be broken
    other = tmp_path / "other.toml"
    other.write_text(f"[http]\nlisten = \"0.0.0.0:{port}\"\n[bogus]\n", encoding="utf-8")
    code = await asyncio.to_thread(main, ["--config", str(other), "reload"])
    out, err = capsys.readouterr()
    assert code == 0, err  # 0.0.0.0 is asked on loopback; the gateway re-read its own file
    assert f"reloaded: config {app.config_hash}" in out
    broken = tmp_path / "broken.toml"
    broken.write_text("[http\n", encoding="utf-8")
    code = await asyncio.to_thread(main, ["--config", str(broken), "reload"])
    _, err = capsys.readouterr()
    assert code == 2 and "invalid TOML" in err and "keeps its configuration" in err


def test_cli_reload_without_a_gateway_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reload", "--endpoint", "127.0.0.1:1", "--timeout", "2"]) == 3
    assert "did not answer" in capsys.readouterr().err


async def test_a_reloaded_decision_budget_moves_the_fastagi_backstop_with_it(
    conf: Path, tmp_path: Path
) -> None:
    """The FastAGI handler's deadline backs the Service's budget up and must never be the
    shorter of the two: a budget raised by a reload moved the Service only, and the edge
    then cut screens the Service would still finish (answered BLOCK timeout, superseded)."""
    write(conf, gateway_toml(tmp_path, "demo", "spring"))
    gateway = App(load_config(conf, env={}), clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        assert gateway.service is not None and gateway._screen_handler is not None
        before = gateway._screen_handler.deadline_s
        write(conf, gateway_toml(tmp_path, "demo", "spring",
                                 extra="[service]\ndecision_budget_ms = 4000\n"))
        assert (await gateway.reload()).ok
        assert gateway.service.budget_s == 4.0
        after = gateway._screen_handler.deadline_s
    finally:
        await gateway.stop()
    assert before < 4.0 < after
    assert after >= gateway.service.budget_s + gateway.config.audit.write_timeout_s
