"""From a resolved :class:`Config` to the objects the CLI commands use.

Store, policy and audit trail are built the way ``serve`` builds them; the memory
store of the embedded default is seeded with the demo data when ``demo.seed`` is on
(every CLI process has its own, empty memory store).
"""

from __future__ import annotations

import socket
import sys

import structlog

from gateway.audit import AuditSettings, AuditTrail, open_audit_trail
from gateway.config import Config, ConfigError
from gateway.core.policy import Policy, builtin_packs, combine_packs, load_packs_dir
from gateway.store import factory
from gateway.store.base import Store

log = structlog.get_logger(__name__)

MEMORY_SCHEMES = ("memory://", "memory:")


def is_memory(config: Config) -> bool:
    return config.store.url.startswith(MEMORY_SCHEMES)


def build_policy(config: Config) -> Policy:
    """Built-in packs (plus ``policy.packs_dir``) and the configured campaigns."""
    packs = builtin_packs()
    if config.policy.packs_dir:
        packs = combine_packs(packs, load_packs_dir(config.policy.packs_dir))
    return Policy(packs=packs, campaigns=dict(config.campaigns),
                  default_region=config.policy.default_region)


async def open_store(config: Config) -> Store:
    """The configured store, pinged (raises StoreUnavailable when it cannot answer)."""
    try:
        store = factory.open_store(
            config.store.url, socket_timeout_s=config.store.socket_timeout_s,
            connect_timeout_s=config.store.connect_timeout_s, key_prefix=config.store.key_prefix,
        )
    except ValueError as exc:
        raise ConfigError(f"{config.source}: store.url: {exc}") from exc
    pinged = False
    try:
        await store.ping()
        pinged = True
    finally:
        if not pinged:
            await store.close()
    return store


def audit_settings(config: Config) -> AuditSettings:
    audit = config.audit
    redis_url = audit.redis_url
    if redis_url is None and config.store.url.startswith("redis"):
        redis_url = config.store.url
    instance = config.service.instance_id or socket.gethostname()
    try:
        return AuditSettings(
            sink=audit.sink,
            path=audit.path, redis_url=redis_url, stream_key=audit.stream_key,
            maxlen=audit.maxlen, number_mode=audit.number_mode,
            hash_key=audit.hash_key, fsync=audit.fsync, write_timeout_s=audit.write_timeout_s,
            instance_id=instance.replace(":", "-"),
        )
    except ValueError as exc:
        raise ConfigError(f"{config.source}: audit: {exc}") from exc


def open_audit(config: Config) -> AuditTrail:
    return open_audit_trail(audit_settings(config))


def warn_memory(config: Config, what: str) -> None:
    if is_memory(config):
        print(f"dialer-gateway: warning: the store is {config.store.url} (in this process "
              f"only): {what} will not persist; configure [store] url = \"redis://...\"",
              file=sys.stderr)
