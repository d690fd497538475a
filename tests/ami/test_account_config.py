"""[ami_proxy.accounts.NAME] campaign grants and targets, as the loader resolves them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config

BASE = """
[ami_proxy]
enabled = true

[campaigns.optin]
professional = "acme"
product_category = "telecom"

[campaigns.rollout]
professional = "acme"
product_category = "telecom"
shadow = true

[campaigns.paper]
professional = "acme"
product_category = "press"
press = true

[ami_proxy.accounts.vici]
secret = "acct-secret-xyz"
"""


def load(tmp_path: Path, extra: str) -> object:
    path = tmp_path / "gateway.toml"
    path.write_text(BASE + extra, encoding="utf-8")
    return load_config(path, env={})


def account(tmp_path: Path, extra: str):  # type: ignore[no-untyped-def]
    cfg = load(tmp_path, extra)
    (acc,) = cfg.ami_proxy.accounts  # type: ignore[attr-defined]
    return acc


def test_without_the_new_keys_only_the_default_campaign(tmp_path: Path) -> None:
    acc = account(tmp_path, 'default_campaign = "optin"\n')
    assert acc.usable_campaigns == frozenset({"optin"})
    assert acc.dial_targets == () and acc.agent_targets == ()
    assert not acc.allows("command") and not acc.allows("bridge")


def test_a_shadow_default_campaign_is_not_usable_without_the_grant(tmp_path: Path) -> None:
    acc = account(tmp_path, 'default_campaign = "rollout"\n')
    assert acc.usable_campaigns == frozenset()
    granted = account(tmp_path, 'default_campaign = "rollout"\nallow_shadow_campaigns = true\n')
    assert granted.usable_campaigns == frozenset({"rollout"})


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ('campaigns = ["optin", "rollout"]\n', "allow_shadow_campaigns"),
        ('campaigns = ["paper"]\n', "allow_exempt_campaigns"),
        ('campaigns = ["nope"]\n', "unknown campaign"),
        ('campaigns = ["optin"]\ndefault_campaign = "rollout"\n', "one of campaigns"),
        ('allowed_actions = ["originate", "command"]\n', "never"),
        ('allowed_applications = ["Exec"]\n', "never"),
        ('dial_targets = ["default"]\n', "context,pattern"),
        ('agent_targets = ["default,_9[X"]\n', "pattern"),
        ('usable_campaigns = ["rollout"]\n', "not a setting"),
    ],
)
def test_refused_settings(tmp_path: Path, extra: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load(tmp_path, extra)


def test_explicit_grants(tmp_path: Path) -> None:
    acc = account(tmp_path, 'campaigns = ["optin", "rollout", "paper"]\n'
                            "allow_shadow_campaigns = true\nallow_exempt_campaigns = true\n")
    assert acc.usable_campaigns == frozenset({"optin", "rollout", "paper"})


def test_a_locked_down_account_is_logged_with_what_is_refused(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    from gateway.ami.proxy import log_account_permissions

    acc = account(tmp_path, 'default_campaign = "rollout"\n')
    with capture_logs() as logs:
        log_account_permissions(acc)
    (line,) = [e for e in logs if e["event"] == "ami.proxy_account"]
    assert line["log_level"] == "warning"
    assert any("dial_targets" in r for r in line["refused"])
    assert any("rollout" in r for r in line["refused"])
    assert any("no usable campaign" in r for r in line["refused"])
    assert "acct-secret-xyz" not in str(line)


def test_config_check_prints_an_account_with_targets(tmp_path: Path) -> None:
    """``config check`` serialises the accounts (parsed targets are not fields)."""
    import json
    import subprocess
    import sys

    path = tmp_path / "gateway.toml"
    path.write_text(BASE + 'default_campaign = "optin"\ndial_targets = ["default,_9X."]\n'
                    'agent_targets = ["default,_86000XX"]\n', encoding="utf-8")
    script = Path(sys.executable).with_name("dialer-gateway")
    proc = subprocess.run([str(script), "--config", str(path), "config", "check"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    (acc,) = json.loads(proc.stdout)["ami_proxy"]["settings"]["accounts"]
    assert acc["dial_targets"] == ["default,_9X."]
    assert acc["usable_campaigns"] == ["optin"]
    assert "acct-secret-xyz" not in proc.stdout
