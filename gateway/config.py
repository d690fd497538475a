"""Configuration: defaults < TOML file < environment < CLI flags.

Every key has a default, so no file at all means the embedded default (memory
store, the demo campaign, the built-in policy packs). Sections map onto frozen
dataclasses; unknown keys and wrong types are errors that name the file, the key
and the problem. Secrets are redacted in every ``repr``.

Environment: ``DIALER_GATEWAY_CONFIG`` names the file; ``DIALER_GATEWAY_<SECTION>_<KEY>``
overrides one scalar key (``DIALER_GATEWAY_STORE_URL=redis://...``,
``DIALER_GATEWAY_AMI_SECRET=...``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.agi.settings import AgiSettings
from gateway.ami.settings import AmiSettings, ProxyAccount, ProxySettings
from gateway.api.settings import ApiSettings
from gateway.audit import AuditSettings
from gateway.config_secrets import SecretFileError, apply_store_password_file
from gateway.core.house import KEYS as HOUSE_KEYS
from gateway.core.house import parse_house_rules
from gateway.core.model import Campaign, FailMode
from gateway.core.pack import SECTORS, PolicyError
from gateway.redact import describe_value, is_secret_name, redact_url
from gateway.store.prescreen import MAX_PRESCREEN_TTL_S

ENV_PREFIX = "DIALER_GATEWAY_"
MAX_WORKERS = 64  # [service] workers: upper bound (a typo must not fork 10,000 processes)
DEMO_CAMPAIGN = Campaign(
    id="demo",
    professional="demo-pro",
    product_category="telecom",
    sector="telecom",
    automated=True,
    caller_id="+33162000001",
    jurisdiction="FR",
)


class ConfigError(ValueError):
    """A configuration problem; the message names the source, the key and the problem."""


def _secret_field(default: str | None = None) -> Any:
    return field(default=default, repr=False)


def parse_hostport(value: str, *, key: str) -> tuple[str, int]:
    """``"127.0.0.1:4573"`` / ``"[::1]:4573"`` -> (host, port)."""
    host, sep, port_s = value.rpartition(":")
    if not sep or not port_s.isdigit():
        raise ConfigError(f"{key}: expected host:port, got {value!r}")
    port = int(port_s)
    if not 0 <= port <= 65535:
        raise ConfigError(f"{key}: port out of range in {value!r}")
    return host.strip("[]") or "127.0.0.1", port


@dataclass(frozen=True, slots=True, repr=False)
class StoreConfig:
    url: str = "memory://"
    socket_timeout_s: float = 0.2
    connect_timeout_s: float = 0.5
    key_prefix: str = "dg"
    # connections per pool (per node on a Cluster); 0: sized from the sessions allowed in
    # flight (agi.max_sessions + ami_proxy.max_sessions + a margin, see gateway.app)
    max_connections: int = 0
    pool_timeout_s: float = 1.0  # longest wait for a free connection (hot path: the budget)
    password_file: str | None = None  # the Redis password, read into url (config_secrets)

    def __repr__(self) -> str:  # the URL may carry a password
        return f"StoreConfig(url={redact_url(self.url)!r}, key_prefix={self.key_prefix!r})"


@dataclass(frozen=True, slots=True)
class AgiConfig:
    """``[agi]``: ``listen`` plus every limit of :class:`AgiSettings` (docs/agi.md)."""

    listen: str = "127.0.0.1:4573"
    settings: AgiSettings = field(default_factory=AgiSettings)


@dataclass(frozen=True, slots=True)
class HttpConfig:
    listen: str = "127.0.0.1:9464"


@dataclass(frozen=True, slots=True)
class AmiConfig:
    """``[ami]``: the real Asterisk AMI, for the event consumer and the proxy's upstream.

    ``enabled`` turns the event consumer on; the secret comes from ``secret``,
    ``secret_file`` or ``DIALER_GATEWAY_AMI_SECRET``.
    """

    enabled: bool = False
    secret_file: str | None = None
    settings: AmiSettings = field(default_factory=AmiSettings)


@dataclass(frozen=True, slots=True)
class AmiProxyConfig:
    """``[ami_proxy]``: ``enabled``, ``listen``, limits of :class:`ProxySettings`, accounts."""

    enabled: bool = False
    listen: str = "127.0.0.1:5039"
    settings: ProxySettings = field(default_factory=ProxySettings)

    @property
    def accounts(self) -> tuple[ProxyAccount, ...]:
        return self.settings.accounts


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    decision_budget_ms: float = 250.0
    instance_id: str = ""  # empty: hostname-pid
    # Worker processes serving FastAGI on one port (gateway.supervisor). 0: one per core
    # with a shared (Redis) store, 1 with the memory store (it lives in one process).
    workers: int = 0
    # How the workers share the port: "shared" (one socket bound by the supervisor,
    # inherited) or "reuseport" (one SO_REUSEPORT socket per worker); docs/operations.md.
    worker_socket: typing.Literal["shared", "reuseport"] = "shared"


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    packs_dir: str | None = None  # extra/override packs (TOML), beside the built-in ones
    default_region: str = "FR"


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "info"
    format: str = "auto"  # json | console | auto
    number_redaction: str = "last2"  # full | last2 | hash
    hash_key: str | None = _secret_field()


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """Seed data for the embedded default (memory store only)."""

    seed: bool = True


@dataclass(frozen=True, slots=True)
class Config:
    store: StoreConfig = field(default_factory=StoreConfig)
    agi: AgiConfig = field(default_factory=AgiConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    ami: AmiConfig = field(default_factory=AmiConfig)
    ami_proxy: AmiProxyConfig = field(default_factory=AmiProxyConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    audit: AuditSettings = field(default_factory=AuditSettings)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    api: ApiSettings = field(default_factory=ApiSettings)
    campaigns: Mapping[str, Campaign] = field(default_factory=lambda: {"demo": DEMO_CAMPAIGN})
    source: str = "<defaults>"

    def to_public_dict(self) -> dict[str, Any]:
        """The resolved configuration with secrets redacted (``config check``)."""
        public: dict[str, Any] = _public(self)
        return public


_SECRET_NAMES = frozenset({"secret", "hash_key", "password", "tokens"})


def _public(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name.endswith("_file"):  # a path to a secret, not the secret
                out[f.name] = value
            elif f.name in _SECRET_NAMES or is_secret_name(f.name):
                out[f.name] = None if value in (None, "") else "***"
            elif f.name.endswith("url") and isinstance(value, str):
                out[f.name] = redact_url(value)
            else:
                out[f.name] = _public(value)
        return out
    if isinstance(obj, Mapping):
        return {str(k): _public(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [_public(v) for v in obj]
    if isinstance(obj, frozenset | set):
        return sorted(_public(v) for v in obj)
    if isinstance(obj, FailMode):
        return obj.value
    return obj


# --- loading ------------------------------------------------------------------------


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check/convert one TOML value against a dataclass field type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        errors = []
        for arg in args:
            try:
                return _convert(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if isinstance(tp, type) and issubclass(tp, FailMode):
        try:
            return FailMode(value)
        except ValueError:
            raise ConfigError(f"{where}: expected 'closed' or 'open', got {value!r}") from None
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        choices = ", ".join(repr(a) for a in typing.get_args(tp))
        raise ConfigError(f"{where}: expected one of {choices}, got {value!r}")
    if origin is frozenset:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return frozenset(_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp, _ellipsis) = typing.get_args(tp)
        return tuple(_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    raise ConfigError(f"{where}: unsupported type {tp!r}")  # a bug in this module


def build_dataclass(cls: type[Any], table: Mapping[str, Any], where: str) -> Any:
    """Build ``cls`` from a TOML table, refusing unknown keys and wrong types."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))})")
        try:
            kwargs[key] = _convert(value, hints[key], f"{where}.{key}")
        except ConfigError:
            if not (is_secret_name(key) or key.endswith("url")):
                raise
            # never echo a secret (or a URL that may carry one): name the key and the type
            raise ConfigError(
                f"{where}.{key}: expected a string, got {describe_value(value)}") from None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


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
            data.setdefault(section, {})[key] = _env_value(raw, hints[key], name)
            break
        # other DIALER_GATEWAY_* variables (e.g. DIALER_GATEWAY_REQUIRE_E2E) are not config


def _env_value(raw: str, tp: Any, name: str) -> Any:
    args = set(typing.get_args(tp)) or {tp}
    if bool in args:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"environment {name}: expected true/false, got {raw!r}")
    if int in args and raw.lstrip("-").isdigit():
        return int(raw)
    if float in args:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"environment {name}: expected a number, got {raw!r}") from None
    return raw


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
    _validate(cfg)
    return _resolve_proxy_campaigns(cfg)


def _split(table: Mapping[str, Any], own: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    mine = {k: v for k, v in table.items() if k in own}
    rest = {k: v for k, v in table.items() if k not in own}
    return mine, rest


def _agi(table: Mapping[str, Any], where: str) -> AgiConfig:
    mine, rest = _split(table, {"listen"})
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


def _validate(cfg: Config) -> None:
    src = cfg.source
    for key, value in (
        ("agi.listen", cfg.agi.listen),
        ("http.listen", cfg.http.listen),
        ("ami_proxy.listen", cfg.ami_proxy.listen),
        ("api.listen", cfg.api.listen),
    ):
        parse_hostport(value, key=f"{src}: {key}")
    if cfg.service.decision_budget_ms <= 0:
        raise ConfigError(f"{src}: service.decision_budget_ms: must be > 0")
    if cfg.store.max_connections < 0:
        raise ConfigError(f"{src}: store.max_connections: must be >= 0 (0: automatic)")
    if cfg.store.pool_timeout_s <= 0:
        raise ConfigError(f"{src}: store.pool_timeout_s: must be > 0")
    if not 0 <= cfg.service.workers <= MAX_WORKERS:
        raise ConfigError(f"{src}: service.workers: must be 0 (one per core) to {MAX_WORKERS}")
    if cfg.service.workers > 1 and cfg.store.url.startswith("memory:"):
        raise ConfigError(
            f"{src}: service.workers = {cfg.service.workers}: the memory store lives in one "
            "process, so it needs workers = 1; use a Redis store for more workers")
    if not 1 <= cfg.ami_proxy.settings.prescreen_ttl_s <= MAX_PRESCREEN_TTL_S:
        raise ConfigError(f"{src}: ami_proxy.prescreen_ttl_s: expected 1 to "
                          f"{MAX_PRESCREEN_TTL_S} seconds")
    if cfg.logging.number_redaction not in ("full", "last2", "hash"):
        raise ConfigError(f"{src}: logging.number_redaction: expected full, last2 or hash")
    if cfg.logging.number_redaction == "hash" and not cfg.logging.hash_key:
        raise ConfigError(f"{src}: logging.hash_key: required when number_redaction = 'hash'")
    if cfg.logging.format not in ("json", "console", "auto"):
        raise ConfigError(f"{src}: logging.format: expected json, console or auto")
    if cfg.ami_proxy.enabled:
        if not cfg.ami_proxy.accounts:
            raise ConfigError(f"{src}: ami_proxy: enabled but no [ami_proxy.accounts.NAME]")
        for acc in cfg.ami_proxy.accounts:
            if not acc.secret:
                raise ConfigError(f"{src}: ami_proxy.accounts.{acc.name}.secret: missing")
            if acc.default_campaign and acc.default_campaign not in cfg.campaigns:
                raise ConfigError(
                    f"{src}: ami_proxy.accounts.{acc.name}.default_campaign: "
                    f"unknown campaign {acc.default_campaign!r}"
                )


def _resolve_proxy_campaigns(cfg: Config) -> Config:
    """Each proxy account's usable campaigns, with the shadow/exempt grants applied.

    A campaign named in ``campaigns`` must exist, and a shadow (``shadow = true``) or
    consent-exempt (``press = true``) one needs the account's explicit grant, else the
    configuration is refused. Without ``campaigns`` the account may use its
    ``default_campaign`` only, and not even that one if it is shadow/exempt without
    the grant (the proxy logs what it refuses when it starts).
    """
    src = cfg.source
    accounts = []
    for acc in cfg.ami_proxy.accounts:
        where = f"{src}: ami_proxy.accounts.{acc.name}"
        explicit = bool(acc.campaigns)
        named = acc.campaigns or ((acc.default_campaign,) if acc.default_campaign else ())
        if explicit and acc.default_campaign and acc.default_campaign not in acc.campaigns:
            raise ConfigError(f"{where}.default_campaign: must be one of campaigns")
        usable = set()
        for cid in named:
            camp = cfg.campaigns.get(cid)
            if camp is None:
                raise ConfigError(f"{where}.campaigns: unknown campaign {cid!r}")
            missing = [
                grant for flag, grant in (
                    (camp.shadow, "allow_shadow_campaigns"),
                    (camp.press, "allow_exempt_campaigns"),
                ) if flag and not getattr(acc, grant)
            ]
            if missing and explicit:
                raise ConfigError(
                    f"{where}.campaigns: {cid!r} needs {' and '.join(missing)} = true"
                )
            if not missing:
                usable.add(cid)
        accounts.append(dataclasses.replace(acc, usable_campaigns=frozenset(usable)))
    settings = dataclasses.replace(cfg.ami_proxy.settings, accounts=tuple(accounts))
    return dataclasses.replace(
        cfg, ami_proxy=dataclasses.replace(cfg.ami_proxy, settings=settings)
    )

