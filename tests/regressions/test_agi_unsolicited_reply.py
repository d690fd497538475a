"""Attack: the peer pre-loads a ``200`` reply before any command was sent.

A naive server would take it as the answer to its first command. Ours refuses.
"""

from __future__ import annotations

from tests.agi.fakes import RecordingObserver
from tests.agi.harness import running_server
from tests.agi.peer import AsteriskPeer, env_bytes


async def test_reply_before_command_is_a_protocol_error() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        await peer.send(env_bytes(args=("0612345678", "spring-promo")) + b"200 result=0\n")
        assert await peer.read_until_closed() == b""
        await peer.close()
        assert await observer.wait_ended(1) == ["protocol_error"]
    assert observer.errors == ["unsolicited_reply"]


async def test_a_reply_begun_before_the_command_is_not_its_answer() -> None:
    """The peer pre-loads the first bytes of a reply, no newline yet, and finishes the
    line once the command has come: the line began before the command was sent, so it
    cannot be its answer (Asterisk sends nothing between its environment and the first
    command). The server refuses it as unsolicited, without sending the command."""
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        await peer.send(env_bytes(args=("0612345678", "spring-promo")) + b"200 result=1")
        command = await peer.read_command()  # '' once the server has closed
        if command:
            await peer.send(b"\n")  # the line ends: a naive server takes it as the answer
        assert command == ""
        await peer.close()
        assert await observer.wait_ended(1) == ["protocol_error"]
    assert observer.errors == ["unsolicited_reply"]
