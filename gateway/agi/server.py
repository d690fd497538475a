"""The FastAGI server: an asyncio protocol around the sans-IO codec, every limit named.

What the peer sends is parsed as it arrives (no stream reader in between: one read buffer
for all connections, the events queued for their session, reading paused beyond
``max_unread_events``); each command is one write.

One connection is one session task, started once there is something to do (its
environment has come, the peer broke the protocol or closed, a deadline or the shutdown
came): a connection waiting for its environment costs no task. A connection goes
through two budgets:

- *pending* (``max_pending``, ``max_pending_per_source``): connected, still reading its
  ``agi_*`` environment (``env_deadline_s``). Asterisk sends the environment as soon as
  it connects, so a connection that lingers here is idle or hostile. At a limit the
  *oldest* pending connection (of the same source for the per-source limit) is shed to
  admit the new one: its environment deadline is brought to ``shed_grace_s`` from
  now at the latest, with the deadline's last look: an idle or slowloris peer is closed
  (idle peers can never lock real calls out, they only shorten each other's life),
  while a real call whose environment has arrived, only not yet read by a saturated
  loop, is answered as overloaded, never dropped unanswered.
  Pending connections are closed at ``env_deadline_s`` by one sweep, oldest first, at
  most ``expire_per_turn`` in a turn of the loop, and at most ``accept_per_turn`` are
  accepted in a turn: thousands of idlers falling due (or reconnecting) together cannot
  hold the loop while a real call's environment waits in its socket. Their ends are
  logged once a second with a count.
- *sessions* (``max_sessions``): environment read, a handler running. Admission control,
  by count and by age: beyond the limit, or when the session waited more than
  ``max_queue_wait_s`` between its connection and its environment being read (a queue
  the loop is late on), it is answered by the handler's ``overloaded`` method (the screen
  route answers ``BLOCK timeout`` at once, unscreened) rather than queued or dropped.

Every wait on the peer is bounded (environment, each command's reply, the whole session)
and a deadline is the peer's fault only: when one fires, bytes the peer sent in time but
the saturated loop had not read yet are still taken (:meth:`AgiSession._last_look`), so
an overloaded gateway answers a real call late rather than closing it unread. Shutdown
is graceful: stop accepting, let sessions in flight finish until the grace
deadline, cancel the rest.

Usage from the composition root::

    server = AgiServer({"screen": ScreenHandler(service)}, AgiSettings())
    async with asyncio.TaskGroup() as tg:
        tg.create_task(server.serve("127.0.0.1", 4573))   # cancel it to shut down
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import os
import socket
import struct
import termios
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar, cast

import structlog

from gateway.accept import Acceptors, own_accept
from gateway.agi.protocol import (
    AgiEnvironment,
    AgiEvent,
    AgiHangup,
    AgiProtocolError,
    AgiReply,
    AgiSessionParser,
    AgiTrying,
    AgiUsage,
    encode_command,
)
from gateway.agi.settings import AgiSettings as AgiSettings  # re-exported for the callers

log = structlog.get_logger(__name__)

# Loop turns a deadline's last look lets pass: the first polls the sockets (bytes in the
# kernel reach the parser), the second runs after the session has been woken.
LAST_LOOK_TURNS = 2

# Linux ``struct tcp_info``: ``tcpi_last_data_recv`` (ms since the kernel last received
# data on the connection), a u32 at this offset; read with TCP_INFO where it exists.
_TCP_INFO = getattr(socket, "TCP_INFO", None)
_TCP_INFO_BYTES = 104
_LAST_DATA_RECV = struct.Struct("=I")
_LAST_DATA_RECV_OFFSET = 52
_UNREAD = struct.Struct("i")  # FIONREAD: bytes in the socket's receive queue

_T = TypeVar("_T")

# The sweep of pending connections' deadlines looks at least this often while any are
# pending: a connection is closed at most this late, and the deadlines that fall within
# one tick are closed together (in slices of expire_per_turn), not one loop turn each.
SWEEP_TICK_S = 0.01

# A connection that ends before its environment (an idler closed at its deadline, a peer
# that closes or sends garbage at once) is logged at most once per this many seconds and
# kind, with ``repeated``: how many since the previous line (the metrics count each one).
# An attacker's connections cannot flood the log: a line costs the loop about as much as
# the rest of such a connection's life.
PENDING_END_LOG_INTERVAL_S = 1.0


class AgiObserver(Protocol):
    """What the server reports; the composition root plugs Prometheus in."""

    def session_started(self) -> None: ...

    def session_ended(self, outcome: str, duration_s: float) -> None: ...

    def session_rejected(self) -> None: ...

    def protocol_error(self, kind: str) -> None: ...

    def sessions_in_flight(self, count: int) -> None: ...

    def connections_pending(self, count: int) -> None: ...


class NullObserver:
    """The default observer: reports nothing."""

    def session_started(self) -> None:
        return None

    def session_ended(self, outcome: str, duration_s: float) -> None:
        return None

    def session_rejected(self) -> None:
        return None

    def protocol_error(self, kind: str) -> None:
        return None

    def sessions_in_flight(self, count: int) -> None:
        return None

    def connections_pending(self, count: int) -> None:
        return None


# --- how a session ends early (each carries a bounded ``outcome`` code) ------------------


class AgiSessionEnded(Exception):
    """The session cannot go on; the server closes it. Not a bug."""

    outcome = "ended"


class ChannelHungUp(AgiSessionEnded):
    """Asterisk sent ``HANGUP``."""

    outcome = "hangup"


class DeadChannel(AgiSessionEnded):
    """Asterisk answered ``511``: the channel is dead."""

    outcome = "dead_channel"


class CommandRejected(AgiSessionEnded):
    """Asterisk answered ``510`` (unknown command) or ``520`` (usage)."""

    outcome = "command_rejected"

    def __init__(self, code: int, lines: tuple[str, ...]) -> None:
        super().__init__(f"{code}: {' / '.join(lines)}")
        self.code = code
        self.lines = lines


class PeerClosed(AgiSessionEnded):
    """The peer closed the connection while a reply was awaited."""

    outcome = "disconnected"


class DeadlineExceeded(AgiSessionEnded):
    """The peer did not answer in time (``phase``: env or reply)."""

    def __init__(self, phase: str) -> None:
        super().__init__(phase)
        self.phase = phase
        self.outcome = f"{phase}_timeout"


class _ReplyLate(Exception):
    """A command's reply deadline passed while its session waited on the peer (internal:
    :meth:`AgiSession.command` takes its last look, then raises DeadlineExceeded)."""


# --- one session ------------------------------------------------------------------------


class AgiSession:
    """One FastAGI connection, as a handler sees it."""

    def __init__(
        self,
        transport: asyncio.Transport,
        settings: AgiSettings,
        session_id: int,
        start: Callable[[AgiSession], None],
    ) -> None:
        self._transport = transport
        # the server starts the session's task when there is something to do: the peer
        # sent its environment (or broke the protocol, or closed), or a deadline came
        self._start: Callable[[AgiSession], None] | None = start
        self._settings = settings
        self._parser = AgiSessionParser(
            max_line_bytes=settings.max_line_bytes,
            max_headers=settings.max_headers,
            max_usage_lines=settings.max_usage_lines,
            max_env_bytes=settings.max_env_bytes,
        )
        # events parsed as their bytes arrive (_received), not read by the session yet
        self._pending: deque[AgiEvent] = deque()
        self._error: AgiProtocolError | None = None  # the peer broke the protocol
        self._eof = False  # the peer closed its side
        self._lost = False  # the connection broke (reset)
        self._paused = False  # reading paused: max_unread_events unread
        self._waiter: asyncio.Future[None] | None = None  # the session waits for the peer
        self._reply_late = False  # a command's reply deadline has passed (command())
        self.id = session_id
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.source = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        self.env = AgiEnvironment({})
        self.commands_sent = 0
        self.half_closed = False  # finish(): the last command sent, its reply not awaited
        self.env_read = False  # the environment has been read (the session left pending)
        self.shed = False  # shed by the server to make room (pending limits)
        self.accepted_at = asyncio.get_running_loop().time()
        self._env_timeout: asyncio.Timeout | None = None
        self._env_due: float | None = None  # brought forward before its wait began

    @property
    def env_due(self) -> float:
        """When the environment deadline (``env_deadline_s``) falls due."""
        return self.accepted_at + self._settings.env_deadline_s

    async def read_environment(self) -> AgiEnvironment:
        """Read up to the blank line; the wait ends when the server expires the session
        (:meth:`expire`, at :attr:`env_due`) or sheds it (:meth:`shed_now`); the server's
        ``session_deadline_s`` bounds it in any case."""
        if self._pending:  # already in (the usual case: the task starts with it)
            return self._took_environment(await self._next_event())
        try:
            async with asyncio.timeout_at(self._env_due) as self._env_timeout:
                try:
                    event = await self._next_event()
                finally:
                    self._env_timeout = None  # _bring_deadline() reschedules a live one
        except TimeoutError:
            event = await self._last_look("env", self._next_event)
        return self._took_environment(event)

    def _took_environment(self, event: AgiEvent) -> AgiEnvironment:
        if not isinstance(event, AgiEnvironment):  # pragma: no cover - parser order
            raise AgiProtocolError("bad_header")
        self.env = event
        self.env_read = True
        return event

    async def execute(self, name: str, *args: str) -> AgiReply:
        """Send ``NAME "arg" ...`` and return its final reply (see :meth:`command`)."""
        return await self.command(encode_command(name, *args))

    async def command(self, line: bytes) -> AgiReply:
        """Send one encoded command; return its final ``200`` reply.

        ``100 Trying`` is skipped. Raises :class:`ChannelHungUp` (in-band ``HANGUP``),
        :class:`DeadChannel` (511), :class:`CommandRejected` (510, 520),
        :class:`DeadlineExceeded` (no final reply within ``reply_deadline_s``),
        :class:`PeerClosed` or :class:`AgiProtocolError`.
        """
        self._send(line)
        return await self._await_reply()

    async def finish(self, line: bytes) -> AgiReply | None:
        """Send the session's last command and end our side at once: ``None``, its reply
        not awaited (the handler returns, the session closes).

        Asterisk runs a command when it reads its line, before it writes the reply
        (res_agi.c run_agi); the end of stream behind the line is what its next read
        gets, and the AGI ends there with ``AGISTATUS=SUCCESS``. The end of stream is a
        FIN right behind the line (shutdown SHUT_WR: at once on asyncio's loop, at the
        next turn on uvloop; before the close either way). The reply, and the
        ``HANGUP`` Asterisk writes after it, come to a closed socket and the kernel
        answers them with a reset. Coming after our FIN, it makes
        Asterisk's next write fail with EPIPE (logged at debug level only); a bare reset
        would make it ECONNRESET, logged as an ERROR.

        When the line could not go to the kernel in full (the peer does not read), the
        reply is awaited as :meth:`command` does (closing then would lose the line);
        so it is when the peer's bytes waited in the socket, unread, before the line
        was written: nothing was due but a ``HANGUP`` (the channel hung up as the screen
        ended, and Asterisk closes with ``AGIEXITONHANGUP``), read then and counted
        ``hangup``, not ``ok``. Raises as :meth:`command` does before anything is sent.
        """
        # looked at before the write: once the line is out, Asterisk's reply may be back
        # within microseconds (on the same host), and is not a reason to wait
        unread = self._kernel_has_bytes()
        self._send(line)
        transport = self._transport
        if transport.is_closing() or transport.get_write_buffer_size() or unread:
            return await self._await_reply()
        try:
            transport.write_eof()  # FIN behind the line (asyncio: shutdown() at once)
        except OSError:  # the peer reset meanwhile: the session closes all the same
            pass
        self.half_closed = True
        return None

    def _send(self, line: bytes) -> None:
        if self._pending:
            if any(isinstance(e, AgiHangup) for e in self._pending):
                raise ChannelHungUp()
            raise AgiProtocolError("unsolicited_reply")
        if self._parser.line_begun:  # a line begun before the command cannot answer it
            raise AgiProtocolError("unsolicited_reply")
        # one small line: written at once, or buffered by the transport (a peer that does
        # not read gets no reply in time, and its session is closed, aborted if unsent).
        # Not to a closed connection (the peer reset it or shut its side): uvloop raises
        # there; the wait below ends with how the peer left.
        if not self._transport.is_closing():
            self._transport.write(line)
            self.commands_sent += 1

    async def _await_reply(self) -> AgiReply:
        # the reply deadline is a plain timer that wakes the wait on the peer
        # (_next_event), not an asyncio.timeout: no cancellation of the task to undo, for
        # the one wait that every call makes
        loop = asyncio.get_running_loop()
        self._reply_late = False
        timer = loop.call_at(loop.time() + self._settings.reply_deadline_s, self._reply_due)
        try:
            return await self._final_reply()
        except _ReplyLate:
            self._reply_late = False  # the last look's reads have their own deadline
            return await self._last_look("reply", self._final_reply)
        finally:
            timer.cancel()

    def _reply_due(self) -> None:
        """The reply deadline: the wait on the peer ends (_next_event raises _ReplyLate)."""
        self._reply_late = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _final_reply(self) -> AgiReply:
        while True:
            event = await self._next_event()
            if isinstance(event, AgiTrying):
                continue
            if isinstance(event, AgiHangup):
                raise ChannelHungUp()
            if isinstance(event, AgiUsage):
                raise CommandRejected(520, event.lines)
            if isinstance(event, AgiReply):
                if event.code == 511:
                    raise DeadChannel(event.text)
                if event.code != 200:
                    raise CommandRejected(event.code, (event.text,))
                return event
            raise AgiProtocolError("unsolicited_reply")  # a second environment

    async def _last_look(self, phase: str, read: Callable[[], Awaitable[_T]]) -> _T:
        """A ``phase`` deadline fired: take what the peer sent in time, without waiting.

        On a saturated gateway one turn of the event loop can outlast a deadline: the
        peer's bytes sit in the socket, or parsed and queued with this task's wake-up
        beaten by the timer. :data:`LAST_LOOK_TURNS` loop turns deliver what has already
        arrived; then ``read`` runs on what is buffered, and the first wait on the peer
        ends it (:class:`DeadlineExceeded`). An idle or trickling peer is closed as before;
        when the kernel holds no byte of the peer's, the loop turns are skipped (what is
        already parsed is still read): an idler costs one turn, not three.
        """
        if self._kernel_has_bytes():
            for _ in range(LAST_LOOK_TURNS):
                await asyncio.sleep(0)  # one loop turn (not a wait on the peer)
        try:
            async with asyncio.timeout(0):  # fires only if read() has to wait
                return await read()
        except TimeoutError:
            raise DeadlineExceeded(phase) from None

    async def _next_event(self) -> AgiEvent:
        pending = self._pending
        while not pending:
            if self._error is not None:
                raise AgiProtocolError(self._error.kind, self._error.detail)
            if self._lost:
                raise PeerClosed()
            if self._eof:
                self._parser.feed_eof()  # raises if the peer left a message unfinished
                raise PeerClosed()
            if self._reply_late:  # the reply deadline passed (see command())
                raise _ReplyLate()
            if self._paused:
                self._resume()
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        event = pending.popleft()
        if self._paused and len(pending) <= self._settings.max_unread_events // 2:
            self._resume()
        return event

    # --- what the connection delivers (_AgiConnection) -------------------------------------

    def _received(self, data: bytes) -> None:
        """Bytes from the peer: parsed at once, their events queued for the session."""
        if self._error is not None:
            return
        try:
            events = self._parser.feed(data)
        except AgiProtocolError as exc:  # raised to the session at its next read
            self._error = exc
            self._pause()
            self._wake()
            return
        if events:
            self._pending.extend(events)
            if len(self._pending) >= self._settings.max_unread_events:
                self._pause()
            self._wake()

    def _ended(self, exc: Exception | None) -> None:
        """The peer closed its side (``exc`` None) or the connection broke."""
        if exc is None:
            self._eof = True
        else:
            self._lost = True
        self._wake()

    def _wake(self) -> None:
        """Something for the session to read: start its task, or wake it."""
        start = self._start
        if start is not None:
            self._start = None
            start(self)
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def start_now(self) -> None:
        """Start the session's task if it has not started yet (a deadline, a shutdown)."""
        start = self._start
        if start is not None:
            self._start = None
            start(self)

    def _pause(self) -> None:
        if not self._paused:
            self._paused = True
            self._transport.pause_reading()

    def _resume(self) -> None:
        if self._error is None:  # a peer that broke the protocol is not read again
            self._paused = False
            self._transport.resume_reading()

    def _kernel_has_bytes(self) -> bool:
        """Whether bytes from the peer wait in the kernel, unread (True when unknown)."""
        sock = self._transport.get_extra_info("socket")
        if sock is None:
            return True
        try:
            unread = fcntl.ioctl(sock.fileno(), termios.FIONREAD, _UNREAD.pack(0))
        except (OSError, ValueError):  # ValueError: closed already (its fileno is -1)
            return True
        return bool(_UNREAD.unpack(unread)[0])

    def waited_s(self) -> float:
        """How long ago the call reached this host: since its connection was accepted,
        or, when the kernel says so (Linux TCP_INFO), since its environment arrived in the
        socket (that counts the accept queue and the loop's turns before the accept)."""
        waited = asyncio.get_running_loop().time() - self.accepted_at
        sock = self._transport.get_extra_info("socket")
        if _TCP_INFO is None or sock is None or sock.family not in (
                socket.AF_INET, socket.AF_INET6):
            return waited
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_BYTES)
            (since_ms,) = _LAST_DATA_RECV.unpack_from(info, _LAST_DATA_RECV_OFFSET)
        except (OSError, struct.error):
            return waited
        return max(waited, float(since_ms) / 1000.0)

    def shed_now(self) -> None:
        """Shorten the wait for the environment, to admit a newer connection.

        The environment deadline comes to ``shed_grace_s`` from now at the latest:
        an environment that has arrived, or arrives by then (the deadline's last look
        included), is answered as overloaded; a peer that has not sent one by then is
        closed (outcome ``shed``). A saturated client may send its environment a little
        after its connection was accepted: it gets that grace, an idler no more."""
        self.shed = True
        # never later than its own deadline: the oldest pending connection is the one
        # shed, often already due (the sweep brings at most expire_per_turn a turn)
        self._bring_deadline(min(self.env_due,
                                 asyncio.get_running_loop().time() + self._settings.shed_grace_s))
        self.start_now()  # its task waits for the environment until then

    def expire(self) -> None:
        """The environment deadline is due: end the wait now (with the deadline's last
        look: an environment already sent is still read)."""
        self._bring_deadline(asyncio.get_running_loop().time())
        self.start_now()

    def _bring_deadline(self, due: float) -> None:
        """The environment wait ends at ``due`` at the latest."""
        if self._env_timeout is None:
            self._env_due = due if self._env_due is None else min(self._env_due, due)
        else:
            when = self._env_timeout.when()
            self._env_timeout.reschedule(due if when is None else min(when, due))

    def close(self) -> None:
        """Close the connection now (abort it if unsent bytes remain)."""
        transport = self._transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()


class _AgiConnection(asyncio.BufferedProtocol):
    """The socket side of one session: what arrives is parsed at once, from one read
    buffer shared by the server's connections (each read is consumed before the next),
    with no stream reader nor writer in between."""

    __slots__ = ("_server", "_session")

    def __init__(self, server: AgiServer) -> None:
        self._server = server
        self._session: AgiSession | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._session = self._server._on_connect(cast(asyncio.Transport, transport))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._server._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self._session is not None:
            self._session._received(bytes(self._server._read_buffer[:nbytes]))

    def eof_received(self) -> bool:
        if self._session is not None:
            self._session._ended(None)
        return False  # the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        if self._session is not None:
            self._session._ended(exc)


AgiHandler = Callable[[AgiSession], Awaitable[None]]


def _bound(session: AgiSession) -> Any:
    """The session's logger, bound when a line is logged (most sessions log none)."""
    return log.bind(session=session.id, peer=session.peer)


class _SampledLog:
    """At most one line per ``interval_s`` and key (a bounded set: an event and its kind),
    with ``repeated``: the occurrences since the previous line, this one included."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._last: dict[str, tuple[float, int]] = {}  # key -> (logged at, not logged yet)

    def warning(self, bound: Any, event: str, key_kind: str, **fields: object) -> None:
        self._log(bound.warning, event, key_kind, fields)

    def info(self, bound: Any, event: str, key_kind: str, **fields: object) -> None:
        self._log(bound.info, event, key_kind, fields)

    def _log(self, emit: Any, event: str, key_kind: str, fields: dict[str, object]) -> None:
        key = f"{event}:{key_kind}"
        now = asyncio.get_running_loop().time()
        logged_at, count = self._last.get(key, (float("-inf"), 0))
        count += 1
        if now - logged_at >= self._interval_s:
            emit(event, repeated=count, **fields)
            self._last[key] = (now, 0)
        else:
            self._last[key] = (logged_at, count)


# --- the server -------------------------------------------------------------------------


class AgiServer:
    """FastAGI server dispatching on the route (``agi_network_script`` before ``?``)."""

    def __init__(
        self,
        handlers: Mapping[str, AgiHandler],
        settings: AgiSettings | None = None,
        *,
        observer: AgiObserver | None = None,
    ) -> None:
        self._handlers = {route.strip("/"): h for route, h in handlers.items()}
        self.settings = settings or AgiSettings()
        self._observer: AgiObserver = observer or NullObserver()
        self._server: asyncio.Server | None = None
        # start() accepts itself on a loop other than asyncio's (gateway.accept)
        self._acceptors: Acceptors | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # connections reading their environment, oldest first. OrderedDict, not dict: the
        # oldest is taken and removed all the time, and a dict's first key is found past
        # the slots of the keys removed before it (O(n) per look, until it is rebuilt)
        self._pending: OrderedDict[AgiSession, None] = OrderedDict()
        self._pending_by_source: dict[str, OrderedDict[AgiSession, None]] = {}
        self._active = 0  # sessions past their environment, handler running
        self._pending_arrived = asyncio.Event()  # wakes the expiry sweep
        self._sweeper: asyncio.Task[None] | None = None
        self._pending_end_log = _SampledLog(PENDING_END_LOG_INTERVAL_S)
        self._ids = itertools.count(1)
        self._closing = False
        # every connection reads into this one buffer (consumed at once by its parser)
        self._read_buffer = memoryview(bytearray(self.settings.read_chunk_bytes))
        self.address: tuple[str, int] | None = None
        self.listening = asyncio.Event()  # set once start() has bound the socket

    @property
    def sessions_in_flight(self) -> int:
        """Sessions past their environment (a handler running)."""
        return self._active

    @property
    def connections_pending(self) -> int:
        """Connections still reading their environment."""
        return len(self._pending)

    @property
    def connections_open(self) -> int:
        """Sessions with a task running: a connection still waiting for its environment
        has none until it comes (or its deadline does)."""
        return len(self._tasks)

    async def start(self, host: str, port: int, *, sock: socket.socket | None = None,
                    reuse_port: bool = False) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0: any free port); return the bound address.

        ``sock``: accept on this listening socket instead (a worker process inherits the
        supervisor's, gateway.supervisor); ``reuse_port``: bind with SO_REUSEPORT."""
        if self._server is not None:
            raise RuntimeError("AgiServer already started")
        where: dict[str, Any] = (
            {"sock": sock} if sock is not None
            else {"host": host, "port": port, "reuse_port": reuse_port or None})
        loop = asyncio.get_running_loop()
        # asyncio's loop accepts as many connections in one turn as its backlog argument:
        # accept_per_turn, so that a flood of reconnections is taken in slices, the
        # sockets polled between them; then the kernel's queue gets its own length
        # (listen(2) again, through a duplicate of the descriptor: asyncio hands out no
        # listen()). Any other loop (uvloop) does not serve the socket itself: its libuv
        # accepts ONE connection per turn of the loop (libuv >= 1.45, "don't accept() in
        # a loop"), and a turn that runs hundreds of callbacks lasts milliseconds: past a
        # few hundred calls a second the kernel's queue overflows, SYNs are dropped
        # before the admission control sees them (docs/benchmarks.md, fifth round of
        # issue 12). The server accepts on it as asyncio's loop does (gateway.accept).
        accept_here = own_accept(loop)
        self._server = await loop.create_server(
            self._new_connection,
            backlog=min(self.settings.accept_per_turn, self.settings.backlog),
            start_serving=not accept_here,
            **where,
        )
        for listening in self._server.sockets:
            with socket.socket(fileno=os.dup(listening.fileno())) as same:
                same.listen(self.settings.backlog)
        if accept_here:
            self._acceptors = Acceptors(
                loop, self._server.sockets, self._new_connection,
                accept_per_turn=self.settings.accept_per_turn, backlog=self.settings.backlog,
                event="agi.accept_failed")
        self._sweeper = loop.create_task(self._expire_pending(), name="agi-expire-pending")
        sockname = self._server.sockets[0].getsockname()
        self.address = (str(sockname[0]), int(sockname[1]))
        log.info("agi.listening", host=self.address[0], port=self.address[1])
        self.listening.set()
        return self.address

    async def serve(self, host: str, port: int) -> None:
        """Start, then serve until cancelled; on cancellation shut down gracefully."""
        await self.start(host, port)
        try:
            await asyncio.Future()  # until cancelled
        finally:
            await self.close(self.settings.shutdown_grace_s)

    async def close(self, grace_s: float) -> None:
        """Stop accepting; wait up to ``grace_s`` for sessions in flight; cancel the rest."""
        self._closing = True
        if self._acceptors is not None:
            await self._acceptors.close()
        if self._server is not None:
            self._server.close()
        for session in list(self._pending):
            session.start_now()  # drained like the others: its environment may still come
        tasks = set(self._tasks)
        if tasks:
            log.info("agi.draining", sessions=len(tasks), grace_s=grace_s)
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            if pending:
                log.warning("agi.shutdown_cancelled", sessions=len(pending))
                for task in pending:
                    task.cancel()
                _, stuck = await asyncio.wait(pending, timeout=self.settings.cancel_deadline_s)
                if stuck:
                    log.error("agi.shutdown_stuck", sessions=len(stuck))
        if self._server is not None:
            try:
                async with asyncio.timeout(self.settings.cancel_deadline_s):
                    await self._server.wait_closed()
            except TimeoutError:
                log.error("agi.shutdown_stuck", sessions=len(self._tasks))
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        log.info("agi.closed")

    # --- connections ----------------------------------------------------------------------

    def _new_connection(self) -> _AgiConnection:
        return _AgiConnection(self)

    def _on_connect(self, transport: asyncio.Transport) -> AgiSession | None:
        if self._closing:
            log.warning("agi.session_rejected", reason="closing", in_flight=self._active)
            self._observer.session_rejected()
            transport.abort()
            return None
        session = AgiSession(transport, self.settings, next(self._ids), self._start_session)
        self._admit_pending(session)
        return session

    def _start_session(self, session: AgiSession) -> None:
        """The session's task, started once there is something to do (AgiSession._wake):
        a connection waiting for its environment costs no task, and a call whose
        environment has come starts with it read, without a wait on the peer first."""
        task = asyncio.get_running_loop().create_task(
            self._session_root(session), name=f"agi-session-{session.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _admit_pending(self, session: AgiSession) -> None:
        """Count a new connection as pending; shed the oldest one at a limit."""
        same_source = self._pending_by_source.get(session.source)
        if same_source is None:
            same_source = self._pending_by_source[session.source] = OrderedDict()
        victim: AgiSession | None = None
        if len(same_source) >= self.settings.max_pending_per_source:
            victim, limit = next(iter(same_source)), "max_pending_per_source"
        elif len(self._pending) >= self.settings.max_pending:
            victim, limit = next(iter(self._pending)), "max_pending"
        if victim is not None:
            self._leave_pending(victim)
            victim.shed_now()
            log.debug("agi.pending_shed", session=victim.id, peer=victim.peer, limit=limit)
        self._pending[session] = None
        same_source[session] = None
        self._pending_arrived.set()
        self._observer.connections_pending(len(self._pending))

    async def _expire_pending(self) -> None:
        """Close pending connections at their environment deadline, oldest first, at most
        ``expire_per_turn`` in one turn of the loop.

        One sweep instead of a timer per connection: idlers connected together (an
        attacker opens thousands at once, and re-opens them as soon as they are closed)
        fall due together, and one turn of the loop running all their deadlines (their
        last looks, their closes) would hold back the real call whose environment is
        waiting in its socket. In slices, the loop polls the sockets between them. The
        pending set is in connection order, which is deadline order (shed connections,
        whose deadline was brought forward, have left it and keep their own timer)."""
        loop = asyncio.get_running_loop()
        batch = self.settings.expire_per_turn
        while True:
            try:
                if not self._pending:
                    self._pending_arrived.clear()
                    await self._pending_arrived.wait()
                    continue
                now = loop.time()
                due = next(iter(self._pending)).env_due
                if due > now:
                    # a tick at most: the deadlines due within a tick are swept together
                    await asyncio.sleep(min(due - now, SWEEP_TICK_S))
                    continue
                expired = 0
                while self._pending and expired < batch:
                    session = next(iter(self._pending))
                    if session.env_due > now:
                        break
                    self._leave_pending(session)
                    session.expire()
                    expired += 1
                await asyncio.sleep(0)  # one loop turn: the sockets are polled
            except Exception:  # the sweep's task root: log a bug, keep sweeping
                log.exception("agi.expire_failed")
                await asyncio.sleep(self.settings.env_deadline_s)

    def _leave_pending(self, session: AgiSession) -> None:
        if session not in self._pending:
            return
        del self._pending[session]
        same_source = self._pending_by_source.get(session.source)
        if same_source is not None:
            same_source.pop(session, None)
            if not same_source:
                del self._pending_by_source[session.source]
        self._observer.connections_pending(len(self._pending))

    async def _session_root(self, session: AgiSession) -> None:
        loop = asyncio.get_running_loop()
        started = session.accepted_at  # the task starts when there is something to do
        outcome = "cancelled"
        self._observer.session_started()
        try:
            async with asyncio.timeout_at(started + self.settings.session_deadline_s):
                outcome = await self._run(session)
        except AgiProtocolError as exc:
            outcome = "protocol_error"
            self._observer.protocol_error(exc.kind)
            if session.env_read:
                _bound(session).warning("agi.protocol_error", kind=exc.kind, detail=exc.detail)
            else:
                self._pending_end_log.warning(_bound(session), "agi.protocol_error", exc.kind,
                                              kind=exc.kind, detail=exc.detail)
        except CommandRejected as exc:
            outcome = exc.outcome
            _bound(session).error("agi.command_rejected", code=exc.code, lines=list(exc.lines[:8]))
        except DeadlineExceeded as exc:
            outcome = "shed" if session.shed else exc.outcome
            if outcome == "env_timeout":
                self._pending_end_log.warning(_bound(session), "agi.session_aborted", outcome,
                                              outcome=outcome)
            elif not session.shed:
                _bound(session).warning("agi.session_aborted", outcome=outcome)
        except AgiSessionEnded as exc:
            outcome = exc.outcome
            if not session.env_read:  # a peer resetting before its environment: sampled
                self._pending_end_log.info(_bound(session), "agi.session_ended_early", outcome,
                                           outcome=outcome)
            elif not session.shed:
                _bound(session).info("agi.session_ended_early", outcome=outcome)
        except TimeoutError:
            outcome = "session_timeout"
            _bound(session).warning("agi.session_aborted", outcome=outcome)
        except Exception:  # the session task root: log every bug, keep serving
            outcome = "failed"
            log.exception("agi.session_failed", session=session.id, peer=session.peer)
        finally:
            self._leave_pending(session)
            session.close()
            if session.shed and outcome != "overloaded":
                outcome = "shed"
            self._observer.session_ended(outcome, loop.time() - started)

    async def _run(self, session: AgiSession) -> str:
        env = await session.read_environment()
        self._leave_pending(session)
        handler = self._handlers.get(env.route)
        if handler is None:
            log.warning(
                "agi.unknown_route",
                session=session.id,
                route=env.route[:64],
                known=sorted(self._handlers),
            )
            return "unknown_route"
        if self._active >= self.settings.max_sessions:
            return await self._overloaded(session, handler, "max_sessions")
        if session.shed:
            return await self._overloaded(session, handler, "max_pending")
        if session.waited_s() > self.settings.max_queue_wait_s:
            return await self._overloaded(session, handler, "max_queue_wait_s")
        self._active += 1
        self._observer.sessions_in_flight(self._active)
        try:
            await handler(session)
        finally:
            self._active -= 1
            self._observer.sessions_in_flight(self._active)
        return "ok"

    async def _overloaded(self, session: AgiSession, handler: AgiHandler, limit: str) -> str:
        """Past a limit (``limit``: which one): an immediate answer, no queue."""
        log.debug("agi.session_overloaded", session=session.id, limit=limit,
                  in_flight=self._active, max_sessions=self.settings.max_sessions)
        answer = getattr(handler, "overloaded", None)
        if answer is not None:
            await answer(session)
        return "overloaded"
