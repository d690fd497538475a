"""The hot path's pipeline on the lean client (resp.py): the few commands it queues.

:class:`HotPipeline` has the subset of a redis-py pipeline's interface that the facts
read and the reservations use (``hgetall``, ``zrangebyscore`` with scores, ``zcount``,
``getdel``, ``zscore``, ``sismember``, ``getbit``, ``execute_command``), each reply
shaped as that code reads it: a hash as a dict, scores as floats, counts as ints. Text
comes back as bytes (the store decodes with ``_text`` wherever it reads text, as for a
client without ``decode_responses``). ``execute(raise_on_error=False)`` keeps error
replies in place, as redis-py does.

:func:`from_redis_client` makes the lean client of a store or an audit sink from the
redis-py client of the same URL (its settings; Sentinel: its sentinels).
"""

from __future__ import annotations

import ssl as ssl_module
from collections.abc import Callable
from typing import Any

from gateway.store.resp import DEFAULT_MAX_IN_FLIGHT, Arg, Endpoint, LeanClient


def _hash(reply: Any) -> Any:
    if isinstance(reply, list):
        it = iter(reply)
        return dict(zip(it, it, strict=False))
    return reply


def _scored(reply: Any) -> Any:
    if isinstance(reply, list):
        it = iter(reply)
        return [(m, float(s)) for m, s in zip(it, it, strict=False)]
    return reply


def _score(reply: Any) -> Any:
    return float(reply) if isinstance(reply, bytes) else reply


def _raw(reply: Any) -> Any:
    return reply


class HotPipeline:
    """Commands queued, then sent in one request on the lean connection."""

    __slots__ = ("_client", "_commands", "_shapes")

    def __init__(self, client: LeanClient) -> None:
        self._client = client
        self._commands: list[tuple[Arg, ...]] = []
        self._shapes: list[Callable[[Any], Any]] = []

    def _queue(self, shape: Callable[[Any], Any], *command: Arg) -> None:
        self._commands.append(command)
        self._shapes.append(shape)

    def execute_command(self, *command: Arg, **_options: Any) -> None:
        """A raw command (replies as the server sends them; options such as redis-py's
        NEVER_DECODE change nothing here: nothing is decoded)."""
        self._queue(_raw, *command)

    def hgetall(self, key: str) -> None:
        self._queue(_hash, "HGETALL", key)

    def zrangebyscore(self, key: str, low: Arg, high: Arg, *, withscores: bool = False
                      ) -> None:
        if withscores:
            self._queue(_scored, "ZRANGEBYSCORE", key, low, high, "WITHSCORES")
        else:
            self._queue(_raw, "ZRANGEBYSCORE", key, low, high)

    def zcount(self, key: str, low: Arg, high: Arg) -> None:
        self._queue(_raw, "ZCOUNT", key, low, high)

    def getdel(self, key: str) -> None:
        self._queue(_raw, "GETDEL", key)

    def zscore(self, key: str, member: Arg) -> None:
        self._queue(_score, "ZSCORE", key, member)

    def sismember(self, key: str, member: Arg) -> None:
        self._queue(_raw, "SISMEMBER", key, member)

    def getbit(self, key: str, offset: int) -> None:
        self._queue(_raw, "GETBIT", key, offset)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        if not self._commands:
            return []
        replies = await self._client.execute(self._commands)
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        return [r if isinstance(r, Exception) else shape(r)
                for shape, r in zip(self._shapes, replies, strict=True)]


def from_redis_client(client: Any, *, stall_timeout_s: float | None = None,
                      max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> LeanClient | None:
    """A lean client to the server of a plain or Sentinel ``redis.asyncio`` client, with
    its settings (None for a Cluster client, or a pool of an unknown kind)."""
    from redis.asyncio import Redis
    from redis.asyncio.sentinel import SentinelConnectionPool

    if not isinstance(client, Redis):
        return None
    pool = client.connection_pool
    kw = dict(pool.connection_kwargs)
    socket_timeout = kw.get("socket_timeout") or 0.2
    common: dict[str, Any] = {
        "username": kw.get("username"), "password": kw.get("password"),
        "db": int(kw.get("db") or 0), "client_name": kw.get("client_name"),
        "connect_timeout_s": float(kw.get("socket_connect_timeout") or socket_timeout),
        "stall_timeout_s": float(stall_timeout_s or socket_timeout),
        "max_in_flight": max_in_flight,
    }
    context = _ssl_context(pool)
    if isinstance(pool, SentinelConnectionPool):
        manager, service = pool.sentinel_manager, pool.service_name

        async def master() -> Endpoint:
            host, port = await manager.discover_master(service)
            return str(host), int(port)

        return LeanClient(master, ssl=context, check_master=True, **common)
    path = kw.get("path")
    if path:
        async def unix() -> Endpoint:
            return str(path)

        return LeanClient(unix, **common)
    host, port = str(kw.get("host") or "localhost"), int(kw.get("port") or 6379)

    async def fixed() -> Endpoint:
        return host, port

    return LeanClient(fixed, ssl=context, **common)


def _ssl_context(pool: Any) -> ssl_module.SSLContext | None:
    """The TLS context redis-py would use for this pool's connections (its URL's
    ``ssl_*`` options), or None when its connections are not TLS."""
    kw = {k: v for k, v in pool.connection_kwargs.items()
          if k not in ("connection_pool",)}
    if "Sentinel" in pool.connection_class.__name__:  # it asks its pool for the master
        kw["connection_pool"] = pool
    conn = pool.connection_class(**kw)
    holder = getattr(conn, "ssl_context", None)
    if holder is None:
        return None
    context: ssl_module.SSLContext = holder.get()
    return context
