"""Attack: a dialer that never reads must not stall the proxy or the other dialers."""

from __future__ import annotations

import asyncio
import socket

from gateway.ami.codec import AmiMessage
from tests.ami.helpers import WAIT_S, Dialer, harness


async def test_dialer_that_never_reads_is_disconnected_others_unaffected() -> None:
    async with harness(send_queue_limit=200, write_timeout_s=60.0) as h:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", h.proxy.port))
        r, w = await asyncio.open_connection(sock=sock)
        slow = Dialer(r, w)
        h.dialers.append(slow)
        assert (await slow.login()).response == "Success"
        good = await h.dialer()
        # ``good`` reads everything in the background
        seen: list[AmiMessage] = []
        after = asyncio.Event()

        async def drain_good() -> None:
            while True:
                m = await good.recv(deadline_s=30.0)
                seen.append(m)
                if m.event == "AfterSlow":
                    after.set()

        reader = asyncio.create_task(drain_good())
        blob = "x" * 2000
        port = sock.getsockname()[1]
        slow_session = next(s for s in h.proxy.sessions if s.peer_port == port)
        try:
            async with asyncio.timeout(WAIT_S * 4):
                n = 0
                while slow_session in h.proxy.sessions:
                    n += 1
                    await h.fake.emit(AmiMessage.of(Event="Flood", N=str(n), Blob=blob))
            assert slow_session.close_reason == "slow_consumer"
            await h.fake.emit(AmiMessage.of(Event="AfterSlow"))
            async with asyncio.timeout(WAIT_S):
                await after.wait()
            flood = [m for m in seen if m.event == "Flood"]
            assert [m.get("N") for m in flood] == [str(i) for i in range(1, n + 1)]
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
