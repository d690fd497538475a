"""Attack: a peer that trickles the environment one byte at a time, forever.

The environment deadline covers the whole environment, not each read: the trickle does
not keep the session alive past ``env_deadline_s``.
"""

from __future__ import annotations

import asyncio

from tests.agi.fakes import RecordingObserver
from tests.agi.harness import TEST_SETTINGS, running_server
from tests.agi.peer import AsteriskPeer


async def test_trickling_peer_is_closed_at_the_env_deadline() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        payload = b"agi_network: yes\n" * 100
        closed = False
        async with asyncio.timeout(TEST_SETTINGS.env_deadline_s * 10):
            for byte in payload:
                try:
                    await peer.send(bytes([byte]))
                except ConnectionError:
                    closed = True
                    break
                if observer.ended:  # the server gave up on us
                    closed = True
                    break
                # pace the trickle on the peer's own clock, as an attacker would
                await asyncio.sleep(TEST_SETTINGS.env_deadline_s / 20)
        await peer.close()
        assert closed
        assert await observer.wait_ended(1) == ["env_timeout"]
