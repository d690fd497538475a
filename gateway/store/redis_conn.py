"""The Redis connection of the store: error translation, scripts, list metadata.

Every call to Redis goes through :meth:`RedisConn.guard`, which turns any driver
error (connection refused, socket timeout, cluster down, NOSCRIPT that could not be
reloaded, ...) into :class:`StoreUnavailable` with the operation's name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from gateway.store import redis_scripts as lua
from gateway.store.base import StoreError, StoreUnavailable
from gateway.store.codec import ListMeta
from gateway.store.keys import KeySchema

RedisClient = Redis | RedisCluster


class RedisConn:
    def __init__(
        self,
        client: RedisClient,
        keys: KeySchema,
        *,
        on_close: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.client = client
        self.keys = keys
        self.is_cluster = isinstance(client, RedisCluster)
        self._on_close = tuple(on_close)
        self.reserve = client.register_script(lua.RESERVE)
        self.record_answer = client.register_script(lua.RECORD_ANSWER)
        self.list_meta = client.register_script(lua.LIST_META)
        self.put_entries = client.register_script(lua.PUT_ENTRIES)
        self.hset_entries = client.register_script(lua.HSET_ENTRIES)
        self.remove_entry = client.register_script(lua.REMOVE_ENTRY)
        self.withdraw = client.register_script(lua.WITHDRAW)

    @asynccontextmanager
    async def guard(self, op: str) -> AsyncIterator[None]:
        try:
            yield
        except (RedisError, RedisClusterException, OSError) as exc:
            # OSError covers socket errors and the builtin TimeoutError
            raise StoreUnavailable(
                f"redis store: {op} failed: {type(exc).__name__}: {exc}"
            ) from exc

    def pipeline(self) -> Any:
        """A non-transactional pipeline (one round trip per node on execute)."""
        if isinstance(self.client, RedisCluster):
            return self.client.pipeline()
        return self.client.pipeline(transaction=False)

    async def eval_batch(self, sha_script: Any, calls: Sequence[tuple[list[str], list[Any]]]
                         ) -> list[Any]:
        """Run one script many times in one pipeline; on NOSCRIPT load it and replay.

        The scripts run here are idempotent per call (same field, same value), so a
        replay after a partial NOSCRIPT failure is harmless.
        """
        for attempt in (1, 2):
            pipe = self.pipeline()
            for keys, args in calls:
                # execute_command: redis-py blocks the evalsha helper on cluster pipelines
                pipe.execute_command("EVALSHA", sha_script.sha, len(keys), *keys, *args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
            if not any(isinstance(r, NoScriptError) for r in results) or attempt == 2:
                break
            sha_script.sha = await self.client.script_load(sha_script.script)
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

    async def metas(self) -> dict[str, ListMeta]:
        raw: dict[Any, Any] = await self.client.hgetall(self.keys.lists())
        return metas_from_hash(raw)

    async def close(self) -> None:
        await self.client.aclose()
        for closer in self._on_close:
            await closer()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def metas_from_hash(raw: dict[Any, Any]) -> dict[str, ListMeta]:
    return {
        _text(k): ListMeta.from_json(_text(k), _text(v)) for k, v in raw.items()
    }


def live_args(meta: ListMeta | None) -> list[Any]:
    """ARGV base, version, excluded of PUT_ENTRIES / REMOVE_ENTRY for a list's metadata."""
    if meta is None:
        return [1, 0, ","]
    return [meta.base, meta.version, meta.excluded()]
