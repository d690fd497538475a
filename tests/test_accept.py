"""gateway.accept: the listeners' own accept (uvloop), over real sockets on both loops
(the helper uses only the loop's reader callbacks and connect_accepted_socket)."""

from __future__ import annotations

import asyncio
import socket

from gateway.accept import Acceptors, own_accept

DEADLINE_S = 5.0
CLIENTS = 5


class Made(asyncio.Protocol):
    def __init__(self, made: list[asyncio.BaseTransport], all_made: asyncio.Event) -> None:
        self.made = made
        self.all_made = all_made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(transport)
        if len(self.made) == CLIENTS:
            self.all_made.set()


async def test_accepts_until_closed_then_leaves_the_queue_alone() -> None:
    loop = asyncio.get_running_loop()
    made: list[asyncio.BaseTransport] = []
    all_made = asyncio.Event()

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))  # bound only, as create_server(start_serving=False)
        address = listening.getsockname()
        acceptors = Acceptors(loop, [listening], lambda: Made(made, all_made), accept_per_turn=2,
                              event="test.accept_failed")
        before = [socket.create_connection(address) for _ in range(CLIENTS)]
        try:
            async with asyncio.timeout(DEADLINE_S):
                await all_made.wait()  # accept_per_turn=2: over three turns at least
            await acceptors.close()
            after = socket.create_connection(address)  # queued by the kernel on `listening`
            try:
                for _ in range(50):
                    await asyncio.sleep(0)
                assert len(made) == CLIENTS  # not accepted once closed
            finally:
                after.close()
        finally:
            for client in before:
                client.close()
            for transport in made:
                transport.close()


async def test_own_accept_on_uvloop_only() -> None:
    loop = asyncio.get_running_loop()
    assert own_accept(loop) is (type(loop).__module__.split(".")[0] == "uvloop")
