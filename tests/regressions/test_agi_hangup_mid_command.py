"""Incident shape: Asterisk sends ``HANGUP`` while a command runs. No further command."""

from __future__ import annotations

from tests.agi.fakes import RecordingObserver
from tests.agi.harness import running_server
from tests.agi.peer import AsteriskPeer, env_bytes


async def test_hangup_then_late_reply_sends_nothing_more() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        await peer.send(env_bytes(args=("0612345678", "spring-promo")))
        await peer.read_command()
        await peer.send(b"100 result=0 Trying...\nHANGUP\n200 result=-1\n")
        assert await peer.read_until_closed() == b""
        await peer.close()
        assert await observer.wait_ended(1) == ["hangup"]
    assert len(peer.commands) == 1


async def test_hangup_before_any_command_sends_nothing() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        await peer.send(env_bytes(args=("0612345678", "spring-promo")) + b"HANGUP\n")
        assert await peer.read_until_closed() == b""
        await peer.close()
        assert await observer.wait_ended(1) == ["hangup"]
