"""``[ami_proxy] prescreen_ttl_s``: the prescreen token's lifetime reaches the Service."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import App
from gateway.config import ConfigError, load_config
from gateway.store.prescreen import DEFAULT_PRESCREEN_TTL_S, MAX_PRESCREEN_TTL_S

BASE = ('[agi]\nlisten = "127.0.0.1:0"\n[http]\nlisten = "127.0.0.1:0"\n'
        '[audit]\nsink = "none"\n[demo]\nseed = false\n')


def test_default_and_environment() -> None:
    assert load_config(None, env={}).ami_proxy.settings.prescreen_ttl_s == (
        DEFAULT_PRESCREEN_TTL_S)
    cfg = load_config(None, env={"DIALER_GATEWAY_AMI_PROXY_PRESCREEN_TTL_S": "300"})
    assert cfg.ami_proxy.settings.prescreen_ttl_s == 300


async def test_the_service_uses_it_and_a_reload_changes_it(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(BASE + "[ami_proxy]\nprescreen_ttl_s = 300\n", encoding="utf-8")
    app = App(load_config(path, env={}))
    await app.start()
    try:
        assert app.service is not None and app.service.prescreen_ttl_s == 300
        path.write_text(BASE + "[ami_proxy]\nprescreen_ttl_s = 240\n", encoding="utf-8")
        result = await app.reload()
        assert result.ok, result.error
        assert app.service.prescreen_ttl_s == 240  # the next allowed Originate's token
    finally:
        await app.stop()


@pytest.mark.parametrize("value", [0, -5, MAX_PRESCREEN_TTL_S + 1])
def test_out_of_range_is_refused(tmp_path: Path, value: int) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(f"[ami_proxy]\nprescreen_ttl_s = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"ami_proxy\.prescreen_ttl_s"):
        load_config(path, env={})
