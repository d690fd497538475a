"""The one ``redis.asyncio`` client factory: the store and the audit stream use it.

Any store URL but ``memory://`` (the URL forms are listed in :mod:`gateway.store.factory`):
plain Redis (``redis://``, ``rediss://``, ``unix://``), Sentinel (``redis+sentinel://``)
and Cluster (``redis+cluster://``). No connection is made here: the first command
connects. Timeouts apply to every socket read/write and connect; one retry after a
connection error (a reconnect after a Redis restart), with a short backoff.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

# redis-py is imported when a client is made, not before: a CLI command on the memory
# store starts without it (docs/benchmarks.md, CLI start-up).
if TYPE_CHECKING:
    from redis.asyncio.retry import Retry

# Retries after a connection error or timeout (1: survive one stale pooled connection).
DEFAULT_RETRIES = 1
# Backoff between those retries (seconds): base doubles up to the cap.
RETRY_BACKOFF_BASE_S = 0.01
RETRY_BACKOFF_CAP_S = 0.1
# Connections per pool (per node for a cluster) when the caller gives none; the gateway
# sizes it from the sessions it lets in flight (gateway.wiring.store_max_connections).
DEFAULT_MAX_CONNECTIONS = 64
# Longest wait for a free connection outside the hot path (imports, CLI); the hot path
# is cut earlier by its decision budget.
DEFAULT_POOL_TIMEOUT_S = 1.0


def _retry() -> Retry:
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    return Retry(ExponentialBackoff(cap=RETRY_BACKOFF_CAP_S, base=RETRY_BACKOFF_BASE_S),
                 DEFAULT_RETRIES)


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    hosts = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host:
            host, port = port, str(default_port)
        hosts.append((host.strip("[]"), int(port)))
    if not hosts or not all(h for h, _ in hosts):
        raise ValueError("store URL without host")
    return hosts


def _split_userinfo(netloc: str) -> tuple[str | None, str | None, str]:
    if "@" not in netloc:
        return None, None, netloc
    userinfo, _, hosts = netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if sep else None), hosts


def _flag(params: dict[str, list[str]], name: str) -> bool:
    return params.get(name, ["false"])[-1].lower() in ("1", "true", "yes")


def make_redis_client(
    url: str,
    *,
    socket_timeout_s: float = 0.2,
    connect_timeout_s: float = 0.5,
    decode_responses: bool = True,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S,
) -> tuple[Any, list[Callable[[], Awaitable[None]]]]:
    """A ``redis.asyncio`` client for any store URL but ``memory://`` (plain, Sentinel,
    Cluster), and the extra close callbacks it needs (Sentinel connections).

    The audit trail uses it too, so that its stream lives beside the store whatever
    the deployment. A plain-Redis client waits up to ``pool_timeout_s`` for one of its
    ``max_connections`` connections (redis-py raises ``ConnectionError("No connection
    available.")`` after that; :class:`~gateway.store.redis_conn.RedisConn` reports it
    as :class:`~gateway.store.base.StoreBusy`).
    """
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.cluster import ClusterNode, RedisCluster
    from redis.asyncio.sentinel import Sentinel

    if max_connections < 1:
        raise ValueError("max_connections must be at least 1")
    scheme = url.partition("://")[0].lower()
    common: dict[str, Any] = {
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": connect_timeout_s,
        "retry": _retry(),
        "decode_responses": decode_responses,
    }
    if scheme in ("redis", "rediss", "unix"):
        pool = BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=pool_timeout_s, **common
        )
        return Redis.from_pool(pool), []
    parts = urlsplit(url)
    params = parse_qs(parts.query)
    user, password, netloc = _split_userinfo(parts.netloc)
    username = params.get("username", [user])[-1]
    password = params.get("password", [password])[-1]
    ssl = _flag(params, "ssl")
    if scheme == "redis+cluster":
        nodes = [ClusterNode(h, p) for h, p in _hosts(netloc, 6379)]
        cluster = RedisCluster(
            startup_nodes=nodes, username=username, password=password, ssl=ssl,
            max_connections=max_connections, **common,
        )
        return cluster, []
    if scheme == "redis+sentinel":
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ValueError("redis+sentinel URL needs /service_name[/db]")
        service, db = path[0], int(path[1]) if len(path) > 1 else 0
        # redis-py's async Sentinel.__init__ had no annotations before 8.x (unused since)
        sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]
            _hosts(netloc, 26379),
            sentinel_kwargs={
                "socket_timeout": socket_timeout_s,
                "socket_connect_timeout": connect_timeout_s,
                "password": params.get("sentinel_password", [None])[-1],
                "username": params.get("sentinel_username", [None])[-1],
                "ssl": ssl,
                # one master lookup per new data connection: as many as the data pool
                "max_connections": max_connections,
            },
            **common,
        )
        master = sentinel.master_for(
            service, db=db, username=username, password=password, ssl=ssl,
            max_connections=max_connections,
        )

        async def close_sentinels() -> None:
            for s in sentinel.sentinels:
                await s.aclose()

        return master, [close_sentinels]
    raise ValueError(f"unsupported store URL scheme {scheme!r} (memory, redis, rediss, "
                     "redis+sentinel, redis+cluster)")
