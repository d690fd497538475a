"""The Redis connection of the store: error translation, scripts, list metadata.

On plain Redis and Sentinel the hot path's round trips (``hot_pipeline``, ``lean``) use
a lean pipelined connection of their own (resp.py), the rest redis-py's pool; the errors
of both are translated here alike.

Every call to Redis goes through :meth:`RedisConn.guard`, which turns any driver
error (connection refused, socket timeout, cluster down, NOSCRIPT that could not be
reloaded, ...) into :class:`StoreUnavailable` with the operation's name.

It is also the store's admission gate: at most ``max_operations`` guarded operations
run at once (one connection each, per node on a Cluster), which is the size of the
connection pool. Beyond that an operation *waits* for a slot, until the decision's
deadline on the hot path (``OPERATION_DEADLINE``, set by the Service: the budget) or for
``pool_timeout_s`` elsewhere (imports, CLI); a wait that runs out
raises :class:`StoreBusy` (saturated, not down). The same gate works for plain Redis,
Sentinel and Cluster, whose redis-py pools would otherwise fail a burst at once with
``MaxConnectionsError``.

A socket timeout is not always the store's fault: on a CPU-saturated gateway one turn of
the event loop can outlast ``socket_timeout_s``, and a reply that arrived in time is read
too late. When the loop ran late meanwhile (``gateway.loop_lag``) or the store answered
this process during the operation or just before it, the timeout raises
:class:`StoreBusy` (saturated: the hot path answers ``timeout``); a store that has been
silent for a second while the loop keeps time, or refuses connections, raises
:class:`StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    MaxConnectionsError,
    NoScriptError,
    RedisClusterException,
    RedisError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from gateway.loop_lag import answered_recently, loop_lag
from gateway.store import redis_scripts as lua
from gateway.store.base import OPERATION_DEADLINE, StoreBusy, StoreError, StoreUnavailable
from gateway.store.codec import ListMeta
from gateway.store.keys import KeySchema
from gateway.store.redis_hot import HotPipeline, from_redis_client
from gateway.store.resp import LeanClient

RedisClient = Redis | RedisCluster

# Defaults when the client's pool size cannot be read (see _pool_size) and for the wait.
FALLBACK_MAX_OPERATIONS = 64
DEFAULT_POOL_TIMEOUT_S = 1.0
# What redis-py's BlockingConnectionPool raises when its own wait runs out.
_POOL_EXHAUSTED = "No connection available"


def _pool_size(client: RedisClient) -> int:
    """The client's connections per pool (per node for a Cluster)."""
    if isinstance(client, RedisCluster):
        size = client.nodes_manager.connection_kwargs.get("max_connections")
    else:
        size = getattr(client.connection_pool, "max_connections", None)
    return int(size) if isinstance(size, int) and size > 0 else FALLBACK_MAX_OPERATIONS


def _socket_timeout(client: RedisClient) -> float | None:
    """The client's socket timeout (seconds), or None when it has none."""
    if isinstance(client, RedisCluster):
        kwargs = client.nodes_manager.connection_kwargs
    else:
        kwargs = getattr(client.connection_pool, "connection_kwargs", {})
    value = kwargs.get("socket_timeout")
    return float(value) if isinstance(value, int | float) and value > 0 else None


def is_timeout(exc: BaseException) -> bool:
    """Whether a driver error is a deadline that fired (a read, a connect) rather than a
    refusal or a closed connection."""
    return isinstance(exc, RedisTimeoutError | TimeoutError)


def is_pool_exhausted(exc: BaseException) -> bool:
    """Whether a driver error means "no free connection" rather than "Redis is down"."""
    return isinstance(exc, MaxConnectionsError) or (
        isinstance(exc, RedisConnectionError) and _POOL_EXHAUSTED in str(exc)
    )


class RedisConn:
    def __init__(
        self,
        client: RedisClient,
        keys: KeySchema,
        *,
        on_close: Sequence[Callable[[], Awaitable[None]]] = (),
        max_operations: int | None = None,
        pool_timeout_s: float | None = None,
    ) -> None:
        self.client = client
        self.max_operations = max_operations or _pool_size(client)
        self.pool_timeout_s = (
            DEFAULT_POOL_TIMEOUT_S if pool_timeout_s is None else pool_timeout_s
        )
        self._slots = asyncio.Semaphore(self.max_operations)
        self.socket_timeout_s = _socket_timeout(client)
        self._last_reply = float("-inf")  # loop time the store last answered an operation
        self.keys = keys
        self.is_cluster = isinstance(client, RedisCluster)
        self._on_close = tuple(on_close)
        # the hot path's own connection (resp.py) on plain Redis and Sentinel; a Cluster
        # keeps redis-py (None)
        self.lean: LeanClient | None = from_redis_client(client)
        self.reserve = client.register_script(lua.RESERVE)
        self.reserve_paced = client.register_script(lua.RESERVE_PACED)
        self.record_answer = client.register_script(lua.RECORD_ANSWER)
        self.list_meta = client.register_script(lua.LIST_META)
        self.put_entries = client.register_script(lua.PUT_ENTRIES)
        self.hset_entries = client.register_script(lua.HSET_ENTRIES)
        self.remove_entry = client.register_script(lua.REMOVE_ENTRY)
        self.withdraw = client.register_script(lua.WITHDRAW)
        self.read_facts = client.register_script(lua.READ_FACTS)
        self._scripts = (self.reserve, self.reserve_paced, self.record_answer, self.list_meta,
                         self.put_entries, self.hset_entries, self.remove_entry, self.withdraw,
                         self.read_facts)

    @property
    def operations_waiting(self) -> int:
        """Operations waiting for a free connection right now (0 when not saturated)."""
        waiters = getattr(self._slots, "_waiters", None)
        return len(waiters) if waiters else 0

    @asynccontextmanager
    async def guard(self, op: str) -> AsyncIterator[None]:
        """One store operation: wait for a connection slot, run, translate errors."""
        if self._slots.locked():
            deadline = OPERATION_DEADLINE.get()
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self.pool_timeout_s
            try:
                async with asyncio.timeout_at(deadline):
                    await self._slots.acquire()
            except TimeoutError:
                raise StoreBusy(
                    f"redis store: {op}: all {self.max_operations} connections stayed busy "
                    "until the deadline"
                ) from None
        else:
            await self._slots.acquire()
        lag, began = loop_lag(), asyncio.get_running_loop().time()
        try:
            yield
        except (RedisError, RedisClusterException, OSError) as exc:
            # OSError covers socket errors and the builtin TimeoutError
            if is_pool_exhausted(exc):
                raise StoreBusy(f"redis store: {op}: no free connection: {exc}") from exc
            if is_timeout(exc) and (answered_recently(self._last_reply, began)
                                    or lag.lagged(began, self.socket_timeout_s)):
                raise StoreBusy(
                    f"redis store: {op}: {exc} while the event loop ran late or the store "
                    "kept answering: saturated, not down"
                ) from exc
            raise StoreUnavailable(
                f"redis store: {op} failed: {type(exc).__name__}: {exc}"
            ) from exc
        else:
            self._last_reply = asyncio.get_running_loop().time()
        finally:
            self._slots.release()

    def pipeline(self) -> Any:
        """A non-transactional pipeline (one round trip per node on execute)."""
        if isinstance(self.client, RedisCluster):
            return self.client.pipeline()
        return self.client.pipeline(transaction=False)

    def hot_pipeline(self) -> Any:
        """The hot path's pipeline: on the lean connection when there is one (plain
        Redis, Sentinel), else redis-py's (replies shaped alike, text as bytes or str)."""
        if self.lean is not None:
            return HotPipeline(self.lean)
        return self.pipeline()

    async def execute_with_script(self, sha_script: Any, fill: Callable[[Any], None],
                                  *, hot: bool = False) -> list[Any]:
        """One pipeline (``fill`` queues its commands, calling ``sha_script`` by EVALSHA),
        every reply kept (errors included); when the server had lost the script (NOSCRIPT:
        a restart, a flush), it is loaded and the pipeline run again, so its commands must
        be safe to run twice. ``hot``: on the hot path's pipeline (:meth:`hot_pipeline`)."""
        for attempt in (1, 2):
            pipe = self.hot_pipeline() if hot else self.pipeline()
            fill(pipe)
            results: list[Any] = await pipe.execute(raise_on_error=False)
            if attempt == 2 or not any(isinstance(r, NoScriptError) for r in results):
                break
            if hot and self.lean is not None:  # loaded where the pipeline runs
                (sha,) = await self.lean.execute((("SCRIPT", "LOAD", sha_script.script),))
                if isinstance(sha, Exception):
                    raise sha
                sha_script.sha = _text(sha)
            else:
                sha_script.sha = await self.client.script_load(sha_script.script)
        return results

    async def eval_batch(self, sha_script: Any, calls: Sequence[tuple[list[str], list[Any]]],
                         *, per_call: bool = False, hot: bool = False) -> list[Any]:
        """Run one script many times in one pipeline; on NOSCRIPT load it and replay.

        The scripts run here are idempotent per call (same field, same value), so a
        replay after a partial NOSCRIPT failure is harmless. ``per_call``: a call's error
        is its result (the others ran), instead of raising the first one.
        """
        def fill(pipe: Any) -> None:
            for keys, args in calls:
                # execute_command: redis-py blocks the evalsha helper on cluster pipelines
                pipe.execute_command("EVALSHA", sha_script.sha, len(keys), *keys, *args)

        results = await self.execute_with_script(sha_script, fill, hot=hot)
        if per_call:
            return [StoreUnavailable(f"script failed: {r}") if isinstance(r, Exception) else r
                    for r in results]
        for r in results:
            if isinstance(r, Exception):
                raise r
        return results

    async def meta(self, op: str, name: str, *args: Any) -> ListMeta:
        """Run one LIST_META operation; raises StoreError when the script refuses."""
        status, payload = await self.list_meta(keys=[self.keys.lists()], args=[op, name, *args])
        if _text(status) != "OK":
            raise StoreError(f"list {name}: {_text(payload)}")
        return ListMeta.from_json(name, _text(payload))

    async def load_scripts(self) -> None:
        """SCRIPT LOAD of every script registered above (on a Cluster: on every primary),
        so that the first calls after a start do not pay EVALSHA's NOSCRIPT round trip."""
        for script in self._scripts:
            await self.client.script_load(script.script)
        if self.lean is not None:  # its connection opened before the first call
            (pong,) = await self.lean.execute((("PING",),))
            if isinstance(pong, Exception):
                raise pong

    async def metas(self) -> dict[str, ListMeta]:
        raw: dict[Any, Any] = await self.client.hgetall(self.keys.lists())
        return metas_from_hash(raw)

    async def close(self) -> None:
        if self.lean is not None:
            await self.lean.close()
        await self.client.aclose()
        for closer in self._on_close:
            await closer()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def metas_from_hash(raw: dict[Any, Any]) -> dict[str, ListMeta]:
    return {_text(k): _meta(_text(k), _text(v)) for k, v in raw.items()}


@functools.lru_cache(maxsize=256)
def _meta(name: str, raw: str) -> ListMeta:
    """Every decision reads the lists' metadata, which changes only with an import: its
    JSON is decoded once per value (a ListMeta is immutable), not once per call."""
    return ListMeta.from_json(name, raw)


def live_args(meta: ListMeta | None) -> list[Any]:
    """ARGV base, version, excluded of PUT_ENTRIES / REMOVE_ENTRY for a list's metadata."""
    if meta is None:
        return [1, 0, ","]
    return [meta.base, meta.version, meta.excluded()]
