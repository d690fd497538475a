"""Attack/incident: a multi-line ``520-`` usage block.

panoramisk 1.4 reads only two lines of it and takes the rest as the reply to the next
command (probe ``usage``). Ours reads the block to ``520 End of proper usage.``, logs it
and closes: nothing is ever answered out of step.
"""

from __future__ import annotations

from gateway.agi.protocol import AgiSessionParser, AgiUsage
from tests.agi.fakes import RecordingObserver
from tests.agi.harness import running_server
from tests.agi.peer import AsteriskPeer, env_bytes

USAGE = (
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b" Usage: SET VARIABLE <variablename> <value>\n"
    b" Sets a variable to the current channel.\n"
    b"520 End of proper usage.\n"
)


def test_usage_block_is_one_event() -> None:
    events = AgiSessionParser().feed(b"\n" + USAGE + b"200 result=1\n")
    assert isinstance(events[1], AgiUsage)
    assert len(events[1].lines) == 4
    assert len(events) == 3


async def test_usage_block_closes_the_session() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        await peer.send(env_bytes(args=("0612345678", "spring-promo")))
        await peer.read_command()
        await peer.send(USAGE + b"200 result=1\n")
        assert await peer.read_until_closed() == b""
        await peer.close()
        assert await observer.wait_ended(1) == ["command_rejected"]
    assert len(peer.commands) == 1
