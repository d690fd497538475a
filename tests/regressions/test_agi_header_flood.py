"""Attack: endless well-formed ``agi_*`` headers, never the blank line."""

from __future__ import annotations

from tests.agi.fakes import RecordingObserver
from tests.agi.harness import TEST_SETTINGS, running_server
from tests.agi.peer import AsteriskPeer


async def test_header_flood_is_cut_at_max_headers() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        try:
            await peer.send(b"".join(b"agi_h%d: v\n" % i for i in range(10_000)))
        except ConnectionError:
            pass
        assert await peer.read_until_closed() == b""
        await peer.close()
        await observer.wait_ended(1)
    assert observer.errors == ["too_many_headers"]
    assert TEST_SETTINGS.max_headers < 10_000
