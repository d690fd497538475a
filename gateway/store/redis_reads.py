"""Batched reads in few commands: a pipeline's read commands run by one small script.

The bulk facts read (``RedisStore.load_facts_many``, the scrub) sends five to seven
commands per number. Through a redis-py pipeline each costs about 10 µs of this process's
CPU (command packing, one reply parse with its own socket timeout, a response callback),
more than the decision itself. :class:`ScriptedReads` takes the same calls as a pipeline
(the few read commands the facts read uses), and sends them as ``EVALSHA`` of
``READ_MANY`` (redis_scripts.py), :data:`COMMANDS_PER_CALL` commands per call, all calls in one
pipeline: one reply per call. It gives back the replies the pipeline would have
given (``HGETALL`` as a dict, ``ZRANGEBYSCORE ... WITHSCORES`` as ``(member, score)``
pairs), with every string as bytes (the callers read them with ``_text``).

Each call runs its commands in order, and the calls run in pipeline order: the same
order as the pipeline's (buckets before the list metadata that confirms them). A command
travels as one line, its key in it (``HGETALL<tab>key``), one argument per call: only on
plain Redis and Sentinel, where a script may read any key (on a Cluster a script's keys
must be declared and share one slot).
"""

from __future__ import annotations

from typing import Any

from redis.client import NEVER_DECODE
from redis.exceptions import NoScriptError

from gateway.store.redis_conn import RedisConn

#: Commands run by one script call (about 25 numbers: ≈ 0.15 ms of the server's time, the
#: longest a live call's read waits behind a scrub).
COMMANDS_PER_CALL = 128


class ScriptedReads:
    """A pipeline of read commands (one key each) sent as READ_MANY calls."""

    __slots__ = ("_conn", "_hashes", "_lines", "_pairs")

    def __init__(self, conn: RedisConn) -> None:
        self._conn = conn
        # one line per command, its key in it: one argument per call to encode instead
        # of one per key and one per line (the encoding was most of the client's cost)
        self._lines: list[str] = []
        self._hashes: list[int] = []  # replies to turn into a dict
        self._pairs: list[int] = []  # replies to turn into (member, score) pairs

    def _add(self, line: str, key: str) -> None:
        # the other fields are numbers, fields and score bounds of this module's callers;
        # a key is built from the configuration (prefix, professional): refused, never
        # split, when it holds a separator
        if "\t" in key or "\n" in key:
            raise ValueError(f"ScriptedReads: a key with a tab or a newline: {key!r}")
        self._lines.append(line)

    def hgetall(self, key: str) -> None:
        self._hashes.append(len(self._lines))
        self._add(f"HGETALL\t{key}", key)

    def zrangebyscore(self, key: str, low: Any, high: Any, *, withscores: bool = False
                      ) -> None:
        if withscores:
            self._pairs.append(len(self._lines))
            self._add(f"ZRANGEBYSCORE\t{key}\t{low}\t{high}\tWITHSCORES", key)
        else:
            self._add(f"ZRANGEBYSCORE\t{key}\t{low}\t{high}", key)

    def zcount(self, key: str, low: Any, high: Any) -> None:
        self._add(f"ZCOUNT\t{key}\t{low}\t{high}", key)

    def sismember(self, key: str, member: Any) -> None:
        self._add(f"SISMEMBER\t{key}\t{member}", key)

    def getbit(self, key: str, offset: int) -> None:
        self._add(f"GETBIT\t{key}\t{offset}", key)

    def execute_command(self, op: str, key: str, *args: Any, **_options: Any) -> None:
        """``HMGET`` only (its values are bytes here anyway: NEVER_DECODE is implied)."""
        line = "\t".join((op, key, *map(str, args)))
        if op != "HMGET" or "\n" in line or line.count("\t") != len(args) + 1:
            raise ValueError(f"ScriptedReads: {op} {args!r} is not one of its reads")
        self._add(line, key)

    async def execute(self) -> list[Any]:
        """The replies, one per command queued, as the pipeline would give them."""
        conn, lines = self._conn, self._lines
        script = conn.read_many
        calls = ["\n".join(lines[start:start + COMMANDS_PER_CALL])
                 for start in range(0, len(lines), COMMANDS_PER_CALL)]
        for attempt in (1, 2):
            pipe = conn.pipeline()
            for text in calls:
                pipe.execute_command("EVALSHA", script.sha, 0, text, **{NEVER_DECODE: []})
            results: list[Any] = await pipe.execute(raise_on_error=False)
            if attempt == 2 or not any(isinstance(r, NoScriptError) for r in results):
                break
            # the server's script cache was flushed (a restart): load it, read again
            script.sha = await conn.client.script_load(script.script)
        out: list[Any] = []
        for r in results:
            if isinstance(r, Exception):
                raise r
            out.extend(r)
        for i in self._hashes:
            it = iter(out[i])
            out[i] = dict(zip(it, it, strict=False))
        for i in self._pairs:
            it = iter(out[i])
            out[i] = [(m, float(s)) for m, s in zip(it, it, strict=False)]
        return out
