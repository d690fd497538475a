"""Attack: the peer resets, or shuts down its sending side, while its call is screened.

The session's transport is closed by then. asyncio's transport drops a write to a closed
connection; uvloop's (the loop ``serve`` runs on when it is installed) raises
RuntimeError, and the session ended as ``failed``: a traceback at error level for each
such connection, which anyone reaching the port could make by the thousand. The peer
left: the session ends ``disconnected``, on either loop, and whether the answer would
wait for its reply or not (AgiSession.finish: nothing is written, nor half-closed).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable

import pytest

from gateway.agi.handlers import ScreenHandler
from gateway.agi.server import AgiSession
from tests.agi.fakes import FakeScreener, RecordingObserver
from tests.agi.harness import running_server
from tests.agi.peer import env_bytes, screen_session
from tests.fixtures.event_loops import loop_factories


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def shut_sending_side(sock: socket.socket) -> None:
    sock.shutdown(socket.SHUT_WR)


async def peer_gone_during_the_screen(leave: Callable[[socket.socket], None],
                                      confirmed: bool) -> list[str]:
    """The outcome of the session whose peer left; ``confirmed``: a call answered before,
    so that this answer's reply would not be awaited (AgiSession.finish)."""
    screener = FakeScreener(hold=not confirmed)
    screen = ScreenHandler(screener)
    sessions: list[AgiSession] = []

    async def handler(session: AgiSession) -> None:
        sessions.append(session)
        await screen(session)

    observer = RecordingObserver()
    async with running_server(handlers={"screen": handler}, observer=observer) as server:
        assert server.address is not None
        if confirmed:
            await screen_session(server.address)  # Asterisk confirmed an answer
            screener.release.clear()
            screener.entered.clear()
        sock = socket.create_connection(server.address)
        try:
            sock.sendall(env_bytes(args=("0612345678", "spring-promo")))
            async with asyncio.timeout(5.0):
                await screener.entered.wait()
            leave(sock)
            transport = sessions[-1]._transport
            for _ in range(10_000):  # loop turns, until the server has seen the peer go
                if transport.is_closing():
                    break
                await asyncio.sleep(0)
            assert transport.is_closing()
            screener.release.set()  # the screen ends: its answer has nowhere to go
            return (await observer.wait_ended(len(sessions)))[-1:]
        finally:
            sock.close()


@pytest.mark.parametrize("confirmed", [False, True], ids=["reply_awaited", "reply_not_awaited"])
@pytest.mark.parametrize("leave", [reset, shut_sending_side], ids=["reset", "shutdown"])
@pytest.mark.parametrize("loop_factory", loop_factories())
def test_a_peer_gone_during_the_screen_ends_disconnected_not_failed(
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
        leave: Callable[[socket.socket], None], confirmed: bool) -> None:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        assert runner.run(peer_gone_during_the_screen(leave, confirmed)) == ["disconnected"]
