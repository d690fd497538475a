"""From a resolved :class:`Config` to the objects the CLI commands use.

Store, policy and audit trail are built the way ``serve`` builds them (the policy by
:func:`gateway.policies.build_policy`); the memory
store of the embedded default is seeded with the demo data when ``demo.seed`` is on
(every CLI process has its own, empty memory store).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

import structlog

from gateway.audit import AuditTrail
from gateway.config import Config, ConfigError
from gateway.logs import configure_logging
from gateway.redact import redact_text
from gateway.service import default_instance_id
from gateway.store import factory
from gateway.store.base import Store

log = structlog.get_logger(__name__)

MEMORY_SCHEMES = ("memory://", "memory:")


def is_memory(config: Config) -> bool:
    return config.store.url.startswith(MEMORY_SCHEMES)


async def open_store(config: Config) -> Store:
    """The configured store, pinged (raises StoreUnavailable when it cannot answer)."""
    try:
        store = factory.open_store(
            config.store.url, socket_timeout_s=config.store.socket_timeout_s,
            connect_timeout_s=config.store.connect_timeout_s, key_prefix=config.store.key_prefix,
            pool_timeout_s=config.store.pool_timeout_s,
        )
    except ValueError as exc:
        raise ConfigError(f"{config.source}: store.url: {redact_text(str(exc))}") from None
    pinged = False
    try:
        await store.ping()
        pinged = True
    finally:
        if not pinged:
            await store.close()
    return store


@contextlib.asynccontextmanager
async def audit_trail(config: Config) -> AsyncIterator[AuditTrail]:
    """The configured audit trail, opened as ``serve`` opens it (same stream key on a
    Redis Cluster), closed with its client on exit."""
    from gateway.app import open_audit_trail_for  # the servers: only for audit commands

    instance = config.service.instance_id or default_instance_id()
    trail, closers = open_audit_trail_for(config, instance)
    try:
        yield trail
    finally:
        await trail.close()
        for close in closers:
            await close()


def configure_logs(config: Config, *, serve: bool) -> None:
    """Structured logs on stderr (stdout carries the commands' data).

    ``serve`` logs at the configured level; the other commands at warning and above.
    """
    level = config.logging.level if serve else "warning"
    try:
        configure_logging(
            level,
            config.logging.format,  # type: ignore[arg-type]  # checked by load_config
            config.logging.number_redaction,  # type: ignore[arg-type]  # idem
            config.logging.hash_key,
        )
    except ValueError as exc:
        raise ConfigError(f"{config.source}: logging: {exc}") from exc


def warn_memory(config: Config, what: str) -> None:
    if is_memory(config):
        print(f"dialer-gateway: warning: the store is {config.store.url} (in this process "
              f"only): {what} will not persist; configure [store] url = \"redis://...\"",
              file=sys.stderr)
