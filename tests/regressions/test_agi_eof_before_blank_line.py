"""Attack: the peer closes before the blank line ending the environment.

panoramisk 1.4's FastAGI handler spins on ``reader.read()`` returning b"" forever and
freezes the whole event loop (bench/probes/panoramisk_fast_agi.py, probe ``eof``).
Ours: the session ends with ``eof_before_env_end`` and the next session is served.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.agi.fakes import RecordingObserver
from tests.agi.harness import running_server
from tests.agi.peer import AsteriskPeer, screen_session


@pytest.mark.timeout(20)  # a frozen loop cannot fire asyncio deadlines: pytest-timeout can
async def test_eof_before_blank_line_does_not_freeze_the_loop() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        for _ in range(3):
            peer = await AsteriskPeer.connect(server.address)
            await peer.send(b"agi_network: yes\nagi_network_script: screen\n")
            await peer.close()
        async with asyncio.timeout(1.0):
            commands = await screen_session(server.address)
        assert len(commands) == 1
        ended = await observer.wait_ended(4)
    assert ended.count("protocol_error") == 3
    assert observer.errors == ["eof_before_env_end"] * 3
