"""Configuration: defaults < TOML file < environment < CLI flags.

Every key has a default, so no file at all means the embedded default (memory
store, the demo campaign, the built-in policy packs). Sections map onto frozen
dataclasses; unknown keys and wrong types are errors that name the file, the key
and the problem. Secrets are redacted in every ``repr``.

This module loads: it reads the file, folds in the environment and the flags, and
handles the sections whose table is not one dataclass (``[agi]``, ``[ami]``,
``[ami_proxy]``, ``[campaigns]``). The dataclasses are in :mod:`gateway.config_schema`,
the value converter in :mod:`gateway.config_convert`, the checks of the whole in
:mod:`gateway.config_validate`; their public names are importable from here.

Environment: ``DIALER_GATEWAY_CONFIG`` names the file; ``DIALER_GATEWAY_<SECTION>_<KEY>``
overrides one scalar key (``DIALER_GATEWAY_STORE_URL=redis://...``,
``DIALER_GATEWAY_AMI_SECRET=...``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.agi.settings import AgiSettings
from gateway.ami.settings import AmiSettings, ProxyAccount, ProxySettings
from gateway.api.settings import ApiSettings
from gateway.audit import AuditSettings
from gateway.config_convert import build_dataclass, env_value
from gateway.config_schema import (
    DEMO_CAMPAIGN,
    AgiConfig,
    AmiConfig,
    AmiProxyConfig,
    Config,
    ConfigError,
    DemoConfig,
    HttpConfig,
    LoggingConfig,
    PolicyConfig,
    ServiceConfig,
    StoreConfig,
    parse_hostport,
)
from gateway.config_secrets import SecretFileError, apply_store_password_file
from gateway.config_validate import MAX_WORKERS, resolve_proxy_campaigns, validate
from gateway.core.house import KEYS as HOUSE_KEYS
from gateway.core.house import parse_house_rules
from gateway.core.model import Campaign
from gateway.core.pack import SECTORS, PolicyError

__all__ = [
    "DEMO_CAMPAIGN",
    "ENV_PREFIX",
    "MAX_WORKERS",
    "AgiConfig",
    "AmiConfig",
    "AmiProxyConfig",
    "Config",
    "ConfigError",
    "DemoConfig",
    "HttpConfig",
    "LoggingConfig",
    "PolicyConfig",
    "ServiceConfig",
    "StoreConfig",
    "build_dataclass",
    "load_config",
    "parse_hostport",
]

ENV_PREFIX = "DIALER_GATEWAY_"


def _campaigns(table: Mapping[str, Any], src: str) -> dict[str, Campaign]:
    out: dict[str, Campaign] = {}
    for cid, ctable in table.items():
        where = f"{src}: campaigns.{cid}"
        if not isinstance(ctable, Mapping):
            raise ConfigError(f"{where}: expected a table")
        data = dict(ctable)
        if "id" in data and data["id"] != cid:
            raise ConfigError(f"{where}.id: must equal the table name {cid!r}")
        data["id"] = cid
        for required in ("professional", "product_category"):
            if required not in data:
                raise ConfigError(f"{where}.{required}: missing (required for every campaign)")
        if "sector" in data and data["sector"] not in SECTORS:
            raise ConfigError(f"{where}.sector: {data['sector']!r} is not a known sector; "
                              f"one of {', '.join(sorted(SECTORS))} (docs/policy.md)")
        house_keys = {k: data.pop(k) for k in list(data) if k in HOUSE_KEYS}
        if "house" in data:
            raise ConfigError(f"{where}.house: unknown key (house rules are windows, "
                              "abandon_limit and schedule)")
        campaign = build_dataclass(Campaign, data, where)
        if house_keys:
            try:
                house = parse_house_rules(house_keys, f"{src}: campaigns.{cid}")
            except PolicyError as exc:
                raise ConfigError(str(exc)) from None
            campaign = dataclasses.replace(campaign, house=house)
        out[cid] = campaign
    return out


_SECTIONS: dict[str, type[Any]] = {
    "store": StoreConfig,
    "agi": AgiConfig,
    "http": HttpConfig,
    "ami": AmiConfig,
    "ami_proxy": AmiProxyConfig,
    "service": ServiceConfig,
    "policy": PolicyConfig,
    "audit": AuditSettings,
    "logging": LoggingConfig,
    "demo": DemoConfig,
    "api": ApiSettings,
}
# Sections whose table is flattened: their own keys plus the keys of an edge's settings.
_NESTED: dict[str, tuple[type[Any], frozenset[str]]] = {
    "agi": (AgiSettings, frozenset()),
    "ami": (AmiSettings, frozenset()),
    "ami_proxy": (ProxySettings, frozenset({"host", "port", "accounts", "enabled"})),
}


def _section_hints(section: str) -> dict[str, Any]:
    cls = _SECTIONS[section]
    hints = {k: v for k, v in typing.get_type_hints(cls).items() if k != "settings"}
    if section in _NESTED:
        inner, hidden = _NESTED[section]
        hints.update(
            {k: v for k, v in typing.get_type_hints(inner).items() if k not in hidden}
        )
    return hints


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """Fold ``DIALER_GATEWAY_<SECTION>_<KEY>`` scalars into the raw TOML data."""
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        # longest section name first: "ami_proxy_listen" is not "ami" + "proxy_listen"
        for section in sorted(_SECTIONS, key=len, reverse=True):
            if not rest.startswith(section + "_"):
                continue
            key = rest[len(section) + 1 :]
            hints = _section_hints(section)
            if key not in hints:
                raise ConfigError(f"environment {name}: unknown key {section}.{key}")
            data.setdefault(section, {})[key] = env_value(raw, hints[key], name)
            break
        # other DIALER_GATEWAY_* variables (e.g. DIALER_GATEWAY_REQUIRE_E2E) are not config


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Resolve the configuration: defaults < file < environment < ``overrides`` (CLI)."""
    env = os.environ if env is None else env
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = env[ENV_PREFIX + "CONFIG"]
    data: dict[str, Any] = {}
    src = "<defaults>"
    if path is not None:
        src = str(path)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"{src}: cannot read: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{src}: invalid TOML: {exc}") from exc
    _apply_env(data, env)
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
    try:
        apply_store_password_file(data, src)
    except SecretFileError as exc:
        raise ConfigError(str(exc)) from exc

    audit = data.get("audit")
    if isinstance(audit, dict) and audit.get("sink") == "redis" and not audit.get("redis_url"):
        store_url = data.get("store", {}).get("url", "")
        if isinstance(store_url, str) and store_url.startswith(("redis", "rediss")):
            audit["redis_url"] = store_url  # the audit stream lives beside the store
    unknown = set(data) - set(_SECTIONS) - {"campaigns"}
    if unknown:
        raise ConfigError(f"{src}: unknown section(s): {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {"source": src}
    for section, cls in _SECTIONS.items():
        if section not in data:
            continue
        table = data[section]
        if not isinstance(table, Mapping):
            raise ConfigError(f"{src}: {section}: expected a table")
        where = f"{src}: {section}"
        if section == "agi":
            kwargs[section] = _agi(table, where)
        elif section == "ami":
            kwargs[section] = _ami(table, where)
        elif section == "ami_proxy":
            kwargs[section] = _ami_proxy(table, where)
        else:
            kwargs[section] = build_dataclass(cls, table, where)
    if "campaigns" in data:
        kwargs["campaigns"] = _campaigns(data["campaigns"], src)
    cfg = Config(**kwargs)
    validate(cfg)
    return resolve_proxy_campaigns(cfg)


def _split(table: Mapping[str, Any], own: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    mine = {k: v for k, v in table.items() if k in own}
    rest = {k: v for k, v in table.items() if k not in own}
    return mine, rest


def _agi(table: Mapping[str, Any], where: str) -> AgiConfig:
    mine, rest = _split(table, {"listen"})
    if "stream_limit_bytes" in rest:  # a setting of earlier versions: say what replaced it
        raise ConfigError(f"{where}.stream_limit_bytes: no longer a setting (the AGI edge "
                          "reads as bytes arrive; reading pauses beyond max_unread_events)")
    settings = build_dataclass(AgiSettings, rest, where)
    cfg: AgiConfig = build_dataclass(AgiConfig, mine, where)
    return dataclasses.replace(cfg, settings=settings)


def _ami(table: Mapping[str, Any], where: str) -> AmiConfig:
    mine, rest = _split(table, {"enabled", "secret_file"})
    cfg: AmiConfig = build_dataclass(AmiConfig, mine, where)
    if cfg.secret_file and not rest.get("secret"):
        try:
            rest["secret"] = Path(cfg.secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}.secret_file: cannot read {cfg.secret_file}: {exc}") from exc
    settings = build_dataclass(AmiSettings, rest, where)
    return dataclasses.replace(cfg, settings=settings)


def _ami_proxy(table: Mapping[str, Any], where: str) -> AmiProxyConfig:
    mine, rest = _split(table, {"enabled", "listen", "accounts"})
    accounts_raw = mine.pop("accounts", {})
    if not isinstance(accounts_raw, Mapping):
        raise ConfigError(f"{where}.accounts: expected tables [ami_proxy.accounts.NAME]")
    for hidden in ("host", "port"):
        if hidden in rest:
            raise ConfigError(f"{where}.{hidden}: use listen = \"host:port\"")
    cfg: AmiProxyConfig = build_dataclass(AmiProxyConfig, mine, where)
    host, port = parse_hostport(cfg.listen, key=f"{where}.listen")
    for name, acc in accounts_raw.items():
        if isinstance(acc, Mapping) and "usable_campaigns" in acc:
            raise ConfigError(f"{where}.accounts.{name}.usable_campaigns: not a setting "
                              "(use campaigns, allow_shadow_campaigns, allow_exempt_campaigns)")
    accounts = tuple(
        build_dataclass(ProxyAccount, {**acc, "name": name}, f"{where}.accounts.{name}")
        if isinstance(acc, Mapping)
        else _not_table(f"{where}.accounts.{name}")
        for name, acc in accounts_raw.items()
    )
    rest.update(host=host, port=port, accounts=accounts, enabled=cfg.enabled)
    settings = _build_passthrough(ProxySettings, rest, where, passthrough={"accounts"})
    return dataclasses.replace(cfg, settings=settings)


def _not_table(where: str) -> Any:
    raise ConfigError(f"{where}: expected a table")


def _build_passthrough(
    cls: type[Any], table: Mapping[str, Any], where: str, *, passthrough: set[str]
) -> Any:
    checked = build_dataclass(cls, {k: v for k, v in table.items() if k not in passthrough}, where)
    return dataclasses.replace(checked, **{k: table[k] for k in passthrough if k in table})
