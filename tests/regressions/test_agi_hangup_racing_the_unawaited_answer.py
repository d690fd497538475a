"""A channel hung up as its screen ended was counted ``ok`` once answers stopped waiting.

With ``AGIEXITONHANGUP=yes`` (asterisk/), Asterisk writes ``HANGUP`` and closes the socket
when the channel hangs up. When that arrives while the screen's last step runs, the
bytes sit in the kernel, not yet read by the loop: the answer that waits for its reply
reads them and the session ends ``hangup``; the answer that does not wait
(AgiSession.finish, once Asterisk has confirmed one) was written to a peer already gone,
and the session counted ``ok``, on asyncio's loop. A ``HANGUP`` already in the socket is
now read: the session ends ``hangup``, on either loop, whether answers wait or not.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Mapping

import pytest

from gateway.agi.handlers import ScreenHandler
from gateway.core.model import Attempt
from gateway.service_api import ScreenResult
from tests.agi.fakes import RecordingObserver, result
from tests.agi.harness import running_server
from tests.agi.peer import env_bytes, screen_session
from tests.fixtures.event_loops import loop_factories


class HangingUpScreener:
    """Decides at once; as it does, the channel of ``peer`` hangs up (HANGUP, close)."""

    def __init__(self) -> None:
        self.peer: socket.socket | None = None

    async def screen(
        self, attempt: Attempt, *, context: Mapping[str, str] | None = None
    ) -> ScreenResult:
        if self.peer is not None:
            self.peer.sendall(b"HANGUP\n")
            self.peer.close()
        return result()


async def hung_up_as_the_screen_ends(confirmed: bool) -> list[str]:
    screener = HangingUpScreener()
    observer = RecordingObserver()
    handlers = {"screen": ScreenHandler(screener)}
    async with running_server(handlers=handlers, observer=observer) as server:
        assert server.address is not None
        before = 0
        if confirmed:  # Asterisk confirmed an answer: the next one does not wait
            await screen_session(server.address)
            before = 1
        sock = socket.create_connection(server.address)
        try:
            screener.peer = sock
            sock.sendall(env_bytes(args=("0612345678", "spring-promo")))
            return (await observer.wait_ended(before + 1))[before:]
        finally:
            sock.close()


@pytest.mark.parametrize("confirmed", [False, True], ids=["reply_awaited", "reply_not_awaited"])
@pytest.mark.parametrize("loop_factory", loop_factories())
def test_a_hangup_in_the_socket_as_the_screen_ends_is_counted_hangup(
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None, confirmed: bool) -> None:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        assert runner.run(hung_up_as_the_screen_ends(confirmed)) == ["hangup"]
