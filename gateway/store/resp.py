"""A lean RESP client for the hot path: one pipelined connection, replies matched FIFO.

redis-py costs this process about 65 µs of CPU per round trip before any gateway work
(packing, one reply parse per command each with its own socket timeout, a pool checkout,
a loop wake-up per reply; docs/benchmarks.md). The hot path's three round trips per
placed call (facts read, reservation, audit append) go instead through this client:

- one connection (an :class:`asyncio.Protocol`), every request written at once and
  answered in order; a request is a pipeline of commands and owns *one* future, resolved
  when its last reply arrives (``hiredis.Reader`` parses them);
- no timeout object per request: the caller's deadline (the decision budget) bounds its
  wait, and one timer per connection (the stall sweep) closes a connection that has owed
  replies for ``stall_timeout_s`` without sending a byte;
- a caller that gives up (cancelled) leaves its request in the queue: its replies are
  still read, in order, and dropped; the next request gets its own replies;
- fail closed: a lost connection, a protocol error, a stall, or an error reply that says
  the server cannot serve data (``READONLY``, ``LOADING``, ``MASTERDOWN``: a demoted or
  restarting master) fails *every* request in flight with a connection error (the store
  reports ``StoreUnavailable``), closes the connection, and the next request connects
  again (a Sentinel deployment asks the sentinels for the master again);
- at most ``max_in_flight`` requests per connection; beyond, a request is refused at
  once (:class:`~redis.exceptions.MaxConnectionsError`: the store reports ``StoreBusy``);
- reconnects are attempted on demand, no sooner than an exponential backoff with jitter
  after a failed attempt (a request meanwhile fails at once, never waits); a connect
  that timed out while this process's event loop ran late does not count;
- ``EVALSHA`` answered ``NOSCRIPT`` is the caller's to handle (``SCRIPT LOAD`` and run
  again: :meth:`LeanClient.evalsha`, ``RedisConn.execute_with_script``).

Errors are redis-py's exception classes, so that the store's and the audit sink's error
translation (``RedisConn.guard``) applies unchanged. Plain Redis and Sentinel; a Cluster
keeps redis-py (slot routing, redirections). The connection settings (host, port or unix
path, username, password, db, TLS context, client name, timeouts) are those of the
redis-py client built from the store URL
(:func:`gateway.store.redis_hot.from_redis_client`).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import hashlib
import random
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import hiredis
from redis.exceptions import (
    AuthenticationError,
    MaxConnectionsError,
    NoScriptError,
    ResponseError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from gateway.loop_lag import loop_lag

#: Requests (pipelines) in flight on one connection before new ones are refused.
DEFAULT_MAX_IN_FLIGHT = 1024
#: Reconnect backoff after a failed connection attempt: base doubles up to the cap.
RECONNECT_BACKOFF_BASE_S = 0.01
RECONNECT_BACKOFF_CAP_S = 1.0
#: Error replies that mean "this server cannot answer with data now": never data.
FATAL_REPLIES = (b"READONLY", b"LOADING", b"MASTERDOWN")

Endpoint = tuple[str, int] | str  # (host, port) or a unix socket path
Arg = bytes | str | int | float


def _pack_py(command: tuple[Arg, ...]) -> bytes:
    """One command in RESP (hiredis before 2.1 has no ``pack_command``)."""
    out = [b"*%d\r\n" % len(command)]
    for arg in command:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = repr(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


_pack_one: Callable[[tuple[Arg, ...]], bytes] = getattr(hiredis, "pack_command", _pack_py)


def pack(commands: Sequence[Sequence[Arg]]) -> bytes:
    """The RESP encoding of a pipeline of commands."""
    return b"".join(_pack_one(tuple(c)) for c in commands)


def _error(reply: hiredis.ReplyError) -> ResponseError:
    text = str(reply)
    if text.startswith("NOSCRIPT"):
        return NoScriptError(text)
    return ResponseError(text)


def _fatal(reply: hiredis.ReplyError) -> bool:
    return str(reply).encode()[:10].startswith(FATAL_REPLIES)


class _Request:
    __slots__ = ("future", "n", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], n: int) -> None:
        self.future, self.n = future, n
        self.replies: list[Any] = []


class _Connection(asyncio.Protocol):
    """One connection: requests queued in the order written, replies matched FIFO."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, stall_timeout_s: float,
                 max_in_flight: int) -> None:
        self._loop = loop
        self._stall_s = stall_timeout_s
        self._max = max_in_flight
        self._reader = hiredis.Reader()
        self._pending: collections.deque[_Request] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._progress = 0.0  # loop time of the last byte read, or of a send when idle
        self._timer: asyncio.TimerHandle | None = None
        self.error: Exception | None = None  # set once the connection is unusable
        self.lost: asyncio.Future[None] = loop.create_future()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def usable(self) -> bool:
        return self.error is None and self._transport is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream socket's transport: asyncio's, or uvloop's (which subclasses none of
        # asyncio's transport classes: no isinstance check here)
        self._transport = cast(asyncio.Transport, transport)

    def send(self, data: bytes, n: int) -> asyncio.Future[list[Any]]:
        """Write a request of ``n`` commands; its future gets the ``n`` replies."""
        if self.error is not None or self._transport is None:
            raise self.error or RedisConnectionError("redis connection not open")
        if len(self._pending) >= self._max:
            raise MaxConnectionsError(
                f"No connection available: {self._max} requests in flight on the connection")
        future: asyncio.Future[list[Any]] = self._loop.create_future()
        if not self._pending:
            self._progress = self._loop.time()
        self._pending.append(_Request(future, n))
        self._transport.write(data)
        if self._timer is None:
            self._timer = self._loop.call_at(self._progress + self._stall_s, self._sweep)
        return future

    def data_received(self, data: bytes) -> None:
        self._progress = self._loop.time()
        self._reader.feed(data)
        pending = self._pending
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as exc:
                self.fail(RedisConnectionError(f"redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if not pending:
                self.fail(RedisConnectionError("redis sent a reply nobody asked for"))
                return
            if isinstance(reply, hiredis.ReplyError):
                if _fatal(reply):
                    self.fail(RedisConnectionError(f"redis cannot serve data: {reply}"))
                    return
                reply = _error(reply)
            request = pending[0]
            request.replies.append(reply)
            if len(request.replies) == request.n:
                pending.popleft()
                if not request.future.done():  # its caller gave up: the replies dropped
                    request.future.set_result(request.replies)

    def _sweep(self) -> None:
        """The one timer: replies owed and nothing read for ``stall_timeout_s``."""
        self._timer = None
        if not self._pending or self.error is not None:
            return
        due = self._progress + self._stall_s
        if self._loop.time() >= due:
            self.fail(RedisTimeoutError(
                f"redis sent nothing for {self._stall_s}s with replies owed"))
        else:
            self._timer = self._loop.call_at(due, self._sweep)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(
            f"redis connection lost{f': {exc}' if exc else ''}"))
        if not self.lost.done():
            self.lost.set_result(None)

    def fail(self, error: Exception) -> None:
        """The connection is unusable: every request in flight gets ``error``."""
        if self.error is None:
            self.error = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            future = self._pending.popleft().future
            if not future.done():
                future.set_exception(self.error)
                future.add_done_callback(_retrieved)
        if self._transport is not None:
            self._transport.abort()


def _retrieved(future: asyncio.Future[Any]) -> None:
    """A caller cancelled in the same turn as its connection failed: the error is
    consumed here, so that asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()


class LeanClient:
    """One pipelined connection to a Redis master (module docstring)."""

    def __init__(
        self,
        endpoint: Callable[[], Awaitable[Endpoint]],
        *,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        client_name: str | None = None,
        connect_timeout_s: float = 0.5,
        stall_timeout_s: float = 0.2,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        check_master: bool = False,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._endpoint = endpoint
        self._username, self._password, self._db = username, password, db
        self._ssl, self._server_hostname = ssl, server_hostname
        self._client_name = client_name
        self.connect_timeout_s = connect_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self._max = max_in_flight
        self._check_master = check_master
        self._conn: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._failures = 0  # failed connection attempts in a row
        self._retry_at = float("-inf")
        self._last_error: Exception | None = None
        self._closed = False
        self.connects = 0  # connections made (tests, metrics)
        self.connect_failures = 0  # connection attempts that failed (metrics)

    @property
    def in_flight(self) -> int:
        """Requests written and not fully answered (those abandoned included)."""
        conn = self._conn
        return 0 if conn is None else conn.in_flight

    @property
    def connected(self) -> bool:
        """A connection is open and usable (it opens at the first request after a loss)."""
        conn = self._conn
        return conn is not None and conn.usable

    async def execute(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Send a pipeline of commands; one reply per command, in order (an error reply
        is an exception instance in its place: the caller raises it or not)."""
        if not commands:  # no reply would ever end it
            return []
        conn = self._conn
        if conn is None or not conn.usable:
            conn = await self._connection()
        return await conn.send(pack(commands), len(commands))

    async def evalsha(self, script: bytes | str, keys: Sequence[Arg], args: Sequence[Arg]
                      ) -> Any:
        """One script call by its SHA1; after NOSCRIPT (a restart, a flush) the script is
        loaded and called again. Raises an error reply."""
        sha = script_sha(script)
        command = ("EVALSHA", sha, len(keys), *keys, *args)
        (reply,) = await self.execute((command,))
        if isinstance(reply, NoScriptError):
            (_, reply) = await self.execute((("SCRIPT", "LOAD", script), command))
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _connection(self) -> _Connection:
        if self._closed:
            raise RedisConnectionError("redis client closed")
        if self._connecting is None or self._connecting.done():
            loop = asyncio.get_running_loop()
            if loop.time() < self._retry_at:  # backing off: fail now, never wait
                raise RedisConnectionError(
                    f"redis reconnecting after: {self._last_error}") from self._last_error
            self._connecting = loop.create_task(self._connect(), name="redis-lean-connect")
        # shielded: a caller that gives up does not cancel the others' connection attempt
        attempt = self._connecting
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if attempt.cancelled() and (task is None or not task.cancelling()):
                # close() stopped the attempt, not this caller: a connection error (the
                # store's StoreUnavailable), never a cancellation it did not ask for
                raise RedisConnectionError("redis client closed while connecting") from None
            raise

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        conn: _Connection | None = None
        lag, began = loop_lag(), loop.time()
        ready = False
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                where = await self._endpoint()
                def factory() -> _Connection:
                    return _Connection(loop, stall_timeout_s=self.stall_timeout_s,
                                       max_in_flight=self._max)
                if isinstance(where, str):
                    _, conn = await loop.create_unix_connection(factory, where)
                else:
                    _, conn = await loop.create_connection(
                        factory, where[0], where[1], ssl=self._ssl,
                        server_hostname=(self._server_hostname or where[0])
                        if self._ssl is not None else None)
                await self._handshake(conn)
            ready = True
        except Exception as exc:
            self.connect_failures += 1
            if not (isinstance(exc, TimeoutError)
                    and lag.lagged(began, self.connect_timeout_s)):
                # refused, or silent while the loop kept time: back off. A connect that
                # timed out because this process ran late is no fault of the server's
                self._failures += 1
                delay = min(RECONNECT_BACKOFF_CAP_S,
                            RECONNECT_BACKOFF_BASE_S * 2 ** (self._failures - 1))
                self._retry_at = loop.time() + delay * random.uniform(0.5, 1.0)  # noqa: S311
            if isinstance(exc, TimeoutError):
                exc = RedisTimeoutError(
                    f"redis connection not ready within {self.connect_timeout_s}s")
            elif isinstance(exc, OSError):
                exc = RedisConnectionError(f"redis connection failed: {exc}")
            self._last_error = exc
            raise exc from None
        finally:
            if conn is not None and not ready:  # failed or cancelled: never left open
                conn.fail(RedisConnectionError("redis connection setup failed"))
        self._failures, self._retry_at = 0, float("-inf")
        self._conn = conn
        self.connects += 1
        if self._closed:
            conn.fail(RedisConnectionError("redis client closed"))
        return conn

    async def _handshake(self, conn: _Connection) -> None:
        commands: list[tuple[Arg, ...]] = []
        if self._password is not None:
            commands.append(("AUTH", self._username, self._password) if self._username
                            else ("AUTH", self._password))
        if self._db:
            commands.append(("SELECT", self._db))
        if self._client_name:
            commands.append(("CLIENT", "SETNAME", self._client_name))
        if self._check_master:
            commands.append(("ROLE",))
        if not commands:
            return
        replies = await conn.send(pack(commands), len(commands))
        for command, reply in zip(commands, replies, strict=True):
            if not isinstance(reply, Exception):
                continue
            if command[0] == "AUTH":
                raise AuthenticationError(
                    f"redis authentication failed (user {self._username or 'default'!r}): "
                    f"{reply}")
            if command[0] == "ROLE" and str(reply).startswith("NOPERM"):
                continue  # an ACL user without @admin: HELLO says the role (below)
            raise RedisConnectionError(f"redis connection setup: {command[0]!r}: {reply}")
        if self._check_master:
            role = replies[-1][0] if not isinstance(replies[-1], Exception) else (
                await self._hello_role(conn))
            if role != b"master":
                raise RedisConnectionError(
                    f"redis server is a {role.decode(errors='replace')}, not the master")

    @staticmethod
    async def _hello_role(conn: _Connection) -> bytes:
        """The server's role as ``HELLO`` says it (@connection: allowed to a user that may
        not run ``ROLE``, an @admin and @dangerous command; Redis >= 6)."""
        (hello,) = await conn.send(pack((("HELLO", 2),)), 1)
        if isinstance(hello, Exception):
            raise RedisConnectionError(f"redis connection setup: neither ROLE nor HELLO: "
                                       f"{hello}")
        fields = dict(zip(hello[::2], hello[1::2], strict=True))
        role: bytes = fields.get(b"role", b"unknown role")
        return role

    async def close(self) -> None:
        self._closed = True
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.fail(RedisConnectionError("redis client closed"))
            await conn.lost


@functools.lru_cache(maxsize=64)
def script_sha(script: bytes | str) -> str:
    return hashlib.sha1(script.encode() if isinstance(script, str) else script,
                        usedforsecurity=False).hexdigest()
