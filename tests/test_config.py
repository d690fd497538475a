"""Configuration: defaults < file < environment < CLI overrides; errors name the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from gateway.core.model import FailMode

FULL = """
[store]
url = "redis://user:pa55word@127.0.0.1:6379/0"

[agi]
listen = "0.0.0.0:4573"
max_sessions = 100

[ami]
enabled = true
host = "10.0.0.5"
secret = "amisecret"

[ami_proxy]
enabled = true
listen = "127.0.0.1:5039"

[ami_proxy.accounts.vicidial]
secret = "dialersecret"
permit = ["127.0.0.1/32"]
campaign_variable = "CAMPAIGN"
default_campaign = "spring-promo"
strip_prefix = "9"

[audit]
sink = "redis"

[campaigns.spring-promo]
professional = "acme"
product_category = "telecom"
sector = "telecom"
automated = true
caller_id = "+33162000001"
jurisdiction = "FR"
fail_mode = "open"
shadow = false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_is_the_embedded_default() -> None:
    cfg = load_config(None, env={})
    assert cfg.store.url == "memory://"
    assert cfg.agi.listen == "127.0.0.1:4573"
    assert list(cfg.campaigns) == ["demo"]
    assert not cfg.ami_proxy.enabled and not cfg.ami.enabled


def test_architecture_sample_loads(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, FULL), env={})
    campaign = cfg.campaigns["spring-promo"]
    assert campaign.professional == "acme" and campaign.fail_mode is FailMode.OPEN
    assert cfg.agi.settings.max_sessions == 100
    assert cfg.ami.settings.host == "10.0.0.5"
    (account,) = cfg.ami_proxy.accounts
    assert (account.name, account.strip_prefix, account.default_campaign) == (
        "vicidial",
        "9",
        "spring-promo",
    )
    assert cfg.ami_proxy.settings.port == 5039
    # the audit stream goes beside the store when no redis_url is given
    assert cfg.audit.redis_url == "redis://user:pa55word@127.0.0.1:6379/0"


def test_precedence_file_env_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurl = "redis://a:1/0"\n[agi]\nlisten = "127.0.0.1:1000"\n')
    env = {
        "DIALER_GATEWAY_STORE_URL": "redis://b:2/0",
        "DIALER_GATEWAY_AGI_LISTEN": "127.0.0.1:2000",
    }
    cfg = load_config(path, env=env, overrides={"agi": {"listen": "127.0.0.1:3000"}})
    assert cfg.store.url == "redis://b:2/0"  # env beats file
    assert cfg.agi.listen == "127.0.0.1:3000"  # CLI beats env


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurl = "redis://c:3/0"\n')
    assert load_config(None, env={"DIALER_GATEWAY_CONFIG": str(path)}).store.url == "redis://c:3/0"


def test_env_reaches_nested_edge_settings() -> None:
    cfg = load_config(
        None,
        env={"DIALER_GATEWAY_AMI_PROXY_MAX_SESSIONS": "7", "DIALER_GATEWAY_AMI_SECRET": "s"},
    )
    assert cfg.ami_proxy.settings.max_sessions == 7
    assert cfg.ami.settings.secret == "s"


def test_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "ami.secret"
    secret.write_text("from-file\n")
    cfg = load_config(write(tmp_path, f'[ami]\nsecret_file = "{secret}"\n'), env={})
    assert cfg.ami.settings.secret == "from-file"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[store]\nurll = "x"\n', "store.urll: unknown key"),
        ('[agi]\nmax_sessions = "many"\n', "max_sessions: expected an integer"),
        ("[bogus]\nx = 1\n", "unknown section(s): bogus"),
        ('[campaigns.x]\nproduct_category = "t"\n', "campaigns.x.professional: missing"),
        (
            '[campaigns.x]\nprofessional = "p"\nproduct_category = "t"\nfail_mode = "maybe"\n',
            "campaigns.x.fail_mode",
        ),
        ('[agi]\nlisten = "nope"\n', "agi.listen: expected host:port"),
        ("[agi]\nstream_limit_bytes = 16384\n", "agi.stream_limit_bytes: no longer a setting"),
        ('[audit]\nsink = "tape"\n', "audit.sink: expected one of"),
        ("[ami_proxy]\nenabled = true\n", "no [ami_proxy.accounts.NAME]"),
        (
            '[ami_proxy]\nenabled = true\n[ami_proxy.accounts.v]\npermit = ["x"]\nsecret = "s"\n',
            "ami_proxy.accounts.v",
        ),
        ("not toml [", "invalid TOML"),
    ],
)
def test_errors_name_file_key_and_problem(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_secrets_never_in_repr_or_public_dump(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, FULL), env={})
    dumped = json.dumps(cfg.to_public_dict())
    for secret in ("pa55word", "amisecret", "dialersecret"):
        assert secret not in repr(cfg)
        assert secret not in dumped
    assert '"secret": "***"' in dumped
