"""The configuration's schema: one frozen dataclass per section (``[store]``, ``[agi]``,
...) and :class:`Config`, their defaults, and the resolved configuration as
``config check`` prints it (secrets redacted, :meth:`Config.to_public_dict`).

No loading here: :mod:`gateway.config` reads the TOML file, the environment and the CLI
flags into these types (with :mod:`gateway.config_convert`), then checks the whole
(:mod:`gateway.config_validate`). Every name is importable from :mod:`gateway.config`.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.agi.settings import AgiSettings
from gateway.ami.settings import AmiSettings, ProxyAccount, ProxySettings
from gateway.api.settings import ApiSettings
from gateway.audit import AuditSettings
from gateway.core.model import Campaign, FailMode
from gateway.redact import is_secret_name, redact_url

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
    # flight (agi.max_sessions + ami_proxy.max_sessions + a margin, see gateway.wiring)
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
    # The event loop serve runs on (gateway.eventloop): "auto" (the default) = uvloop
    # when installed (pip install dialer-gateway[uvloop]), else asyncio's; "asyncio"
    # (asyncio's own, even with uvloop installed); "uvloop" (refused when not installed).
    event_loop: typing.Literal["auto", "asyncio", "uvloop"] = "auto"
    # A worker that sends the supervisor nothing for this long (its event loop blocked,
    # the process stopped) is killed and restarted (gateway.supervisor); 0: never.
    worker_hang_s: float = 30.0


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
