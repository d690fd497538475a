"""Accepting connections ourselves, on a loop other than asyncio's (uvloop).

asyncio's loop accepts up to its ``backlog`` argument's count of connections in a turn
and, when accept(2) fails for want of descriptors (EMFILE, ENFILE, ENOBUFS), pauses
accepting for a second: the connections wait in the kernel's queue and are served once
descriptors are free. libuv (uvloop) does neither: it accepts ONE connection per turn
of the loop (libuv >= 1.45), and out of descriptors it accepts each queued connection
and closes it at once, unanswered (docs/reliability.md, "Out of descriptors").

So on any loop but asyncio's, every listener of the gateway (FastAGI, the ops endpoint,
the AMI proxy, the API) creates its server with ``start_serving=False`` and hands its
listening sockets to an :class:`Acceptors`, which accepts as asyncio's loop does and
gives each connection to the loop with ``connect_accepted_socket``. On asyncio's loop
the listeners keep the loop's own accept (:func:`own_accept` is False there).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Iterable

import structlog

log = structlog.get_logger(__name__)

# accept(2) failing (out of descriptors): accepting pauses this long (asyncio's own pause)
ACCEPT_RETRY_S = 1.0
# A listener with no setting of its own: the listen(2) backlog asyncio's create_server()
# defaults to, and the connections accepted in one turn (asyncio's loop accepts as many
# as the backlog in a turn).
BACKLOG = 100
ACCEPT_PER_TURN = BACKLOG

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


def own_accept(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the listeners accept themselves (:class:`Acceptors`) on this loop: on any
    loop but asyncio's, whose own accept they keep."""
    return not isinstance(loop, asyncio.BaseEventLoop)


class Acceptors:
    """Accept on listening sockets up to ``accept_per_turn`` connections per turn of the
    loop, each handed to the loop as an accepted socket built by ``protocol_factory``; on
    a failed accept (out of descriptors) log ``event`` once and pause for
    :data:`ACCEPT_RETRY_S`, the connections waiting in the kernel's queue.

    The sockets are duplicated (the server that created them keeps the originals' and
    closes them) and put to listen(2) with ``backlog`` (a server created with
    ``start_serving=False`` has only bound them); :meth:`close` stops accepting and
    closes the duplicates.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listening: Iterable[socket.socket],
        protocol_factory: ProtocolFactory,
        *,
        accept_per_turn: int = ACCEPT_PER_TURN,
        backlog: int = BACKLOG,
        event: str,
    ) -> None:
        if accept_per_turn < 1:
            raise ValueError("accept_per_turn must be >= 1")
        self._loop = loop
        self._factory = protocol_factory
        self._per_turn = accept_per_turn
        self._event = event
        self._acceptors: list[socket.socket] = []
        self._adopting: set[asyncio.Task[None]] = set()  # accepted, connection_made to come
        for sock in listening:
            acceptor = socket.socket(fileno=os.dup(sock.fileno()))
            acceptor.setblocking(False)
            acceptor.listen(backlog)
            self._acceptors.append(acceptor)
            loop.add_reader(acceptor, self._accept, acceptor)

    async def close(self) -> None:
        """Stop accepting, close the duplicates; the connections already accepted are
        handed to their protocol first (awaited: the caller's drain sees them)."""
        for acceptor in self._acceptors:
            self._loop.remove_reader(acceptor)
            acceptor.close()
        self._acceptors.clear()
        if self._adopting:
            await asyncio.wait(set(self._adopting))

    def _accept(self, listening: socket.socket) -> None:
        """The listening socket is readable: accept up to ``accept_per_turn`` connections,
        as asyncio's loop does (a task each, as asyncio's loop has)."""
        loop = self._loop
        for _ in range(self._per_turn):
            try:
                conn, _ = listening.accept()
            except (BlockingIOError, InterruptedError):
                return  # the queue is empty
            except ConnectionAbortedError:
                continue  # gone before it was accepted
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS: as asyncio's loop, a pause
                log.error(self._event, error=exc.strerror or type(exc).__name__,
                          retry_in_s=ACCEPT_RETRY_S)
                loop.remove_reader(listening)
                loop.call_later(ACCEPT_RETRY_S, self._resume, listening)
                return
            conn.setblocking(False)
            task = loop.create_task(self._adopt(conn))
            self._adopting.add(task)  # a task is only weakly held by the loop
            task.add_done_callback(self._adopting.discard)

    async def _adopt(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except OSError as exc:  # closed by the loop already
            log.warning(self._event, error=exc.strerror or type(exc).__name__)

    def _resume(self, listening: socket.socket) -> None:
        if listening in self._acceptors:  # not closed meanwhile
            self._loop.add_reader(listening, self._accept, listening)


async def create_server(protocol_factory: ProtocolFactory, host: str, port: int, *,
                        event: str) -> tuple[asyncio.Server, Acceptors | None]:
    """``loop.create_server`` for a listener with no accept setting of its own: on
    asyncio's loop it serves as usual (no :class:`Acceptors`); on any other loop the
    server only binds, and the returned :class:`Acceptors` accepts on its sockets
    (failures logged as ``event``). The caller closes the acceptors before the server."""
    loop = asyncio.get_running_loop()
    accept_here = own_accept(loop)
    server = await loop.create_server(protocol_factory, host, port,
                                      start_serving=not accept_here)
    acceptors = (Acceptors(loop, server.sockets, protocol_factory, event=event)
                 if accept_here else None)
    return server, acceptors


async def start_stream_server(
    client_connected: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                               Awaitable[None] | None],
    host: str, port: int, *, event: str, limit: int = 2**16,
) -> tuple[asyncio.Server, Acceptors | None]:
    """:func:`asyncio.start_server` through :func:`create_server`: the same stream
    protocol per connection (a reader of ``limit`` bytes, ``client_connected`` run with
    the reader and writer)."""
    loop = asyncio.get_running_loop()

    def protocol() -> asyncio.StreamReaderProtocol:  # what asyncio.start_server makes
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(limit=limit, loop=loop),
                                            client_connected, loop=loop)

    return await create_server(protocol, host, port, event=event)
