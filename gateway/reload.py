"""Configuration reload (SIGHUP, ``POST /-/reload``, ``dialer-gateway reload``).

A reload re-reads the configuration file (and the environment), the campaigns, the
policy packs (built-in and ``policy.packs_dir``) and the AMI proxy accounts, and
validates all of it *before* anything changes. Then :func:`effective_config` keeps,
from the running configuration, every setting that cannot change without a restart
(:data:`RESTART_ONLY`: listen addresses, the store, the audit sink, the AMI link);
those are reported as "restart needed" and not applied. A file that does not load
leaves the running configuration in force. Everything here is pure except
:func:`prepare`, which reads files (in a worker thread).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.audit import AuditConfigError
from gateway.config import Config, ConfigError, load_config
from gateway.core.policy import Policy, PolicyError

# Settings a running gateway cannot change (section, or "section.key"): listeners are
# bound, the store and audit sink are open, the AMI link is logged in with its account.
RESTART_ONLY: tuple[str, ...] = (
    "store", "agi", "http", "ami", "audit", "demo",
    "ami_proxy.enabled", "ami_proxy.listen", "service.instance_id",
    "service.workers", "service.worker_socket", "service.event_loop",
    "api",  # the scrub/check API: listener, tokens and limits are read when it starts
)


class ReloadError(Exception):
    """The new configuration does not load or validate; nothing was changed."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A loaded, validated configuration and the policy built from it."""

    config: Config
    policy: Policy


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    digest: str  # of the configuration in force after the attempt
    error: str | None = None
    changed: tuple[str, ...] = ()
    restart_needed: tuple[str, ...] = ()
    closed_sessions: tuple[str, ...] = ()  # AMI accounts whose dialer sessions were closed
    campaigns: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": "success" if self.ok else "error",
            "config_hash": self.digest,
            "error": self.error,
            "changed": list(self.changed),
            "restart_needed": list(self.restart_needed),
            "closed_dialer_sessions": list(self.closed_sessions),
            "campaigns": list(self.campaigns),
        }


def config_digest(config: Config, policy: Policy) -> str:
    """A short hash of what is in force: the resolved configuration (secrets redacted,
    so rotating only a secret does not change it) and the content hash of every pack."""
    public = config.to_public_dict()
    public.pop("source", None)
    doc = {"config": public, "packs": sorted(f"{p.id}@{p.content_hash}" for p in policy.packs)}
    blob = json.dumps(doc, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _get(config: Config, path: str) -> Any:
    obj: Any = config
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _diff(prefix: str, old: Any, new: Any) -> list[str]:
    """Dotted names of what differs (names only: values may be secrets)."""
    if old == new:
        return []
    if dataclasses.is_dataclass(old) and dataclasses.is_dataclass(new):
        out: list[str] = []
        for f in dataclasses.fields(old):
            if f.name == "source":
                continue
            sub = f"{prefix}.{f.name}" if prefix else f.name
            if f.name == "settings":  # flattened in the TOML: agi.max_sessions, ...
                sub = prefix
            out.extend(_diff(sub, getattr(old, f.name), getattr(new, f.name)))
        return out
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return [f"{prefix}.{k}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if prefix == "ami_proxy.accounts":
        names_old = {a.name: a for a in old}
        names_new = {a.name: a for a in new}
        keys = sorted(set(names_old) | set(names_new))
        return [f"{prefix}.{k}" for k in keys if names_old.get(k) != names_new.get(k)]
    return [prefix]


def restart_needed(running: Config, loaded: Config) -> tuple[str, ...]:
    """The settings of ``loaded`` that differ from ``running`` and need a restart."""
    out: list[str] = []
    for path in RESTART_ONLY:
        out.extend(_diff(path, _get(running, path), _get(loaded, path)))
    # host/port of the proxy are its listen address, already reported as such
    return tuple(k for k in dict.fromkeys(out) if k not in ("ami_proxy.host", "ami_proxy.port"))


def effective_config(running: Config, loaded: Config) -> Config:
    """``loaded`` with every restart-only setting taken back from ``running``."""
    proxy = loaded.ami_proxy
    if loaded.ami_proxy.enabled != running.ami_proxy.enabled:
        proxy = running.ami_proxy  # switching the proxy on or off needs a restart
    else:
        settings = dataclasses.replace(
            proxy.settings, host=running.ami_proxy.settings.host,
            port=running.ami_proxy.settings.port, enabled=running.ami_proxy.enabled,
        )
        proxy = dataclasses.replace(proxy, listen=running.ami_proxy.listen, settings=settings)
    return dataclasses.replace(
        loaded,
        store=running.store, agi=running.agi, http=running.http, ami=running.ami,
        audit=running.audit, demo=running.demo, ami_proxy=proxy, api=running.api,
        service=dataclasses.replace(loaded.service, instance_id=running.service.instance_id,
                                    workers=running.service.workers,
                                    worker_socket=running.service.worker_socket,
                                    event_loop=running.service.event_loop),
    )


def changed_settings(
    running: Config, effective: Config, old: Policy, new: Policy
) -> tuple[str, ...]:
    """What the reload applies (names only), for the log line and the CLI."""
    out = _diff("", running, effective)
    if {p.content_hash for p in old.packs} != {p.content_hash for p in new.packs}:
        out.append("policy.packs")
    return tuple(dict.fromkeys(out))


def _load(source: str, build_policy: Callable[[Config], Policy]) -> Prepared:
    try:
        config = load_config(None if source == "<defaults>" else source)
        return Prepared(config, build_policy(config))
    except (ConfigError, PolicyError, AuditConfigError) as exc:
        raise ReloadError(str(exc)) from exc
    except (OSError, ValueError) as exc:  # a pack file vanished mid-read, ...
        raise ReloadError(f"{source}: {exc}") from exc


async def prepare(source: str, build_policy: Callable[[Config], Policy]) -> Prepared:
    """Load and validate the configuration at ``source`` (off the event loop)."""
    return await asyncio.to_thread(_load, source, build_policy)
