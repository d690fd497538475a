"""The hot path's pipeline on the lean client (resp.py): the few commands it queues.

:class:`HotPipeline` has the subset of a redis-py pipeline's interface that the facts
read and the reservations use (``hgetall``, ``zrangebyscore`` with scores, ``zcount``,
``getdel``, ``zscore``, ``sismember``, ``getbit``, ``execute_command``), each reply
shaped as that code reads it: a hash as a dict, scores as floats, counts as ints. Text
comes back as bytes (the store decodes with ``_text`` wherever it reads text, as for a
client without ``decode_responses``). ``execute(raise_on_error=False)`` keeps error
replies in place, as redis-py does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.store.resp import Arg, LeanClient


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
