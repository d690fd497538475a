"""The composition root: from a resolved :class:`Config` to the store, the audit trail,
the policy and the screening :class:`~gateway.service.Service`.

One place builds them for ``dialer-gateway serve`` (:class:`gateway.app.App`, which
keeps only the lifecycle: listeners, probes, reload, signals) and for every other CLI
command, so a command decides, imports and reads the trail exactly as the running
gateway does. The memory store of the embedded default is seeded with the demo data when
``demo.seed`` is on (every process has its own, empty memory store).

redis-py, the Redis store and sink, the service and the audit code are imported by the
functions that use them: a CLI command that needs none of them starts without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from gateway.clock import Clock, utc_now
from gateway.config import Config, ConfigError
from gateway.core.house import check_stricter
from gateway.core.pack import PolicyError
from gateway.core.policy import Policy
from gateway.packs import builtin_packs, builtin_packs_of, load_packs_dir
from gateway.redact import redact_text

if TYPE_CHECKING:
    from gateway.audit import AuditTrail
    from gateway.live import LivePolicy
    from gateway.service import Service, ServiceObserver
    from gateway.store.base import Store

log = structlog.get_logger(__name__)

MEMORY_SCHEMES = ("memory://", "memory:")
# store.max_connections = 0: the pool holds one connection per session allowed in flight
# (FastAGI + AMI proxy) plus this margin (readiness probe, AMI event consumer, reloads).
STORE_CONNECTIONS_MARGIN = 16

Closer = Callable[[], Awaitable[None]]


# --- policy ----------------------------------------------------------------------------


def build_policy(config: Config, *, jurisdictions: Collection[str] | None = None) -> Policy:
    """Built-in packs, overridden (same id) or extended by ``policy.packs_dir``.

    ``jurisdictions``: only the built-in packs of these (and the layers over them) are
    read (``check``: :func:`gateway.packs.builtin_packs_of`); ``policy.packs_dir``'s
    are all read, whatever their jurisdiction."""
    builtin = builtin_packs() if jurisdictions is None else builtin_packs_of(jurisdictions)
    packs = {p.id: p for p in builtin}
    if config.policy.packs_dir:
        for pack in load_packs_dir(Path(config.policy.packs_dir)):
            packs[pack.id] = pack
    policy = Policy(
        packs=tuple(packs.values()),
        campaigns=dict(config.campaigns),
        default_region=config.policy.default_region,
    )
    _check_house_rules(policy, datetime.now(UTC))
    return policy


def _check_house_rules(policy: Policy, now: datetime) -> None:
    """House rules may only tighten: refuse one looser than a pack in force or to come."""
    problems = []
    for campaign in policy.campaigns.values():
        if not campaign.house:
            continue
        for pack in policy.packs:
            if pack.jurisdiction == campaign.jurisdiction and (
                    pack.effective_until is None or pack.effective_until > now):
                problems += check_stricter(campaign.id, campaign.house, pack)
    if problems:
        raise PolicyError("; ".join(dict.fromkeys(problems)))


# --- store -----------------------------------------------------------------------------


def is_memory(config: Config) -> bool:
    return config.store.url.startswith(MEMORY_SCHEMES)


def store_max_connections(config: Config) -> int:
    """``store.max_connections``, or (0) one per session allowed in flight plus a margin.

    Each session holds at most one store connection at a time, so a pool of this size
    never makes a call wait while the sessions in flight are within their limits.
    """
    if config.store.max_connections > 0:
        return config.store.max_connections
    ami = config.ami_proxy.settings.max_sessions if config.ami_proxy.enabled else 0
    return config.agi.settings.max_sessions + ami + STORE_CONNECTIONS_MARGIN


def open_store(config: Config, *, max_connections: int | None = None) -> Store:
    """The configured store, not yet connected (the first command connects).

    ``max_connections``: the pool's size (``serve``: :func:`store_max_connections`);
    by default the factory's.
    """
    from gateway.store import factory

    sized: dict[str, Any] = {} if max_connections is None else {
        "max_connections": max_connections}
    return factory.open_store(
        config.store.url, socket_timeout_s=config.store.socket_timeout_s,
        connect_timeout_s=config.store.connect_timeout_s, key_prefix=config.store.key_prefix,
        pool_timeout_s=config.store.pool_timeout_s, **sized,
    )


async def connect_store(config: Config) -> Store:
    """The configured store, pinged (raises StoreUnavailable when it cannot answer); a
    store URL the factory refuses is a :class:`ConfigError`."""
    try:
        store = open_store(config)
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


async def seed_demo(store: Store, config: Config, now: datetime) -> None:
    """The demo data, into the memory store of the embedded default when ``demo.seed``."""
    if config.demo.seed and is_memory(config):
        from gateway.demo import seed  # only the embedded default carries demo data

        await seed(store, now)


async def seeded_store(config: Config, now: datetime) -> Store:
    """:func:`connect_store`, then :func:`seed_demo`."""
    store = await connect_store(config)
    await seed_demo(store, config, now)
    return store


# --- audit trail -----------------------------------------------------------------------


def instance_id(config: Config) -> str:
    """``service.instance_id``, else this host's default (the audit chain's name)."""
    from gateway.service import default_instance_id

    return config.service.instance_id or default_instance_id()


async def open_audit_trail_for(
    config: Config, instance_id: str
) -> tuple[AuditTrail, list[Closer]]:
    """The audit trail of ``config``; a Redis stream works on plain, Sentinel or Cluster.

    The stream is ``audit.stream_key``, else ``<store.key_prefix>:audit``; on a Cluster a
    key without a hash tag is wrapped in one, so the stream and its heads key share a
    slot (``gateway.store.keys``). A deployment whose trail an earlier version wrote to
    ``dg:audit`` keeps it (:func:`_stream_in_use`). Returns the trail and what closes
    the client it was given (the trail does not own an injected client).
    """
    from gateway.audit import AuditUnavailable, open_audit_trail

    settings = dataclasses.replace(config.audit, instance_id=instance_id)
    if settings.sink != "redis":
        return open_audit_trail(settings), []
    from gateway.store.keys import audit_stream_key, legacy_audit_stream_key
    from gateway.store.redis_client import make_redis_client

    url = settings.redis_url or config.store.url
    cluster = url.startswith("redis+cluster")
    client, extra_close = make_redis_client(
        url,
        socket_timeout_s=settings.write_timeout_s,
        connect_timeout_s=settings.write_timeout_s,
        decode_responses=False,
        max_connections=store_max_connections(config),
        pool_timeout_s=settings.write_timeout_s,
    )
    prefix = config.store.key_prefix
    key = audit_stream_key(settings.stream_key, prefix=prefix, cluster=cluster)
    legacy = legacy_audit_stream_key(settings.stream_key, prefix=prefix, cluster=cluster)
    deferred = None
    if legacy is not None:
        try:
            key = await _stream_in_use(client, key, legacy, settings.read_timeout_s)
        except AuditUnavailable as exc:
            # no guess: the trail chooses when Redis answers, and writes nothing before
            log.warning("audit.stream_key_unresolved", stream=legacy, prefixed=key,
                        error=str(exc))
            # tried again at each use, within a record's write deadline
            deferred = functools.partial(_stream_in_use, client, key, legacy,
                                         settings.write_timeout_s)
    settings = dataclasses.replace(settings, stream_key=key)
    trail = open_audit_trail(settings, redis_client=client, resolve_stream_key=deferred)
    return trail, [client.aclose, *extra_close]


async def _stream_in_use(client: Any, key: str, legacy: str, timeout_s: float) -> str:
    """``key``, unless only ``legacy`` exists: the trail an earlier version wrote (its
    default stream did not follow ``store.key_prefix``). Raises
    :class:`~gateway.audit.AuditUnavailable` when Redis does not answer: the stream is
    then chosen at the trail's first use (every process, worker and CLI alike, picks
    the same stream; a guess at start once split a trail in two)."""
    from redis.exceptions import RedisClusterException, RedisError

    from gateway.audit import AuditUnavailable

    try:
        async with asyncio.timeout(timeout_s):
            in_use = bool(await client.exists(key)) or not await client.exists(legacy)
    except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
        raise AuditUnavailable(f"cannot choose the audit stream ({key} or the earlier "
                               f"{legacy}): {type(exc).__name__}") from exc
    if in_use:
        return key
    log.warning("audit.legacy_stream_key", stream=legacy, prefixed=key,
                hint=f'set [audit] stream_key = "{legacy}" to keep this stream')
    return legacy


@contextlib.asynccontextmanager
async def audit_trail(config: Config) -> AsyncIterator[AuditTrail]:
    """The configured audit trail, opened as ``serve`` opens it (same stream key on a
    Redis Cluster), closed with its client on exit."""
    trail, closers = await open_audit_trail_for(config, instance_id(config))
    try:
        yield trail
    finally:
        await trail.close()
        for close in closers:
            await close()


# --- service ---------------------------------------------------------------------------


def build_service(
    config: Config,
    policy: Policy | LivePolicy,
    store: Store,
    *,
    audit: AuditTrail | None = None,
    instance_id: str | None = None,
    observer: ServiceObserver | None = None,
    clock: Clock = utc_now,
) -> Service:
    """The screening service over ``store`` with the configured decision budget and
    pre-screen lifetime. A CLI command passes no audit (its decisions are dry runs)."""
    from gateway.service import Service

    return Service(
        policy=policy,
        store=store,
        audit=audit,
        budget_s=config.service.decision_budget_ms / 1000.0,
        instance_id=instance_id,
        observer=observer,
        clock=clock,
        prescreen_ttl_s=config.ami_proxy.settings.prescreen_ttl_s,
    )
