"""Attack: megabytes without a newline. Closed once the line exceeds max_line_bytes."""

from __future__ import annotations

import asyncio

from tests.agi.fakes import RecordingObserver
from tests.agi.harness import TEST_SETTINGS, running_server
from tests.agi.peer import AsteriskPeer


async def test_unterminated_megabyte_is_cut_at_the_line_limit() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        sent = 0
        try:
            async with asyncio.timeout(5.0):
                while sent < 1024 * 1024:
                    peer.writer.write(b"agi_x: " + b"a" * 8192)
                    await peer.writer.drain()
                    sent += 8199
        except ConnectionError:
            pass  # the server hung up on us mid-flood: what we want
        assert await peer.read_until_closed() == b""
        await peer.close()
        await observer.wait_ended(1)
    assert observer.errors == ["line_too_long"]
    assert TEST_SETTINGS.max_line_bytes < 1024 * 1024
