"""Attack: many more silent connections than max_sessions, held open.

Before: the silent connections took every session slot and real calls were closed at
once until the idle ones reached their deadline. Now they only count as *pending*
(reading their environment): they are closed at the environment deadline, and a real
call connecting during the flood is served.
"""

from __future__ import annotations

import asyncio

from gateway.agi.server import AgiSettings
from tests.agi.fakes import RecordingObserver
from tests.agi.harness import running_server
from tests.agi.peer import AsteriskPeer, screen_session


async def test_silent_flood_does_not_lock_out_a_real_call() -> None:
    settings = AgiSettings(max_sessions=4, env_deadline_s=0.5, session_deadline_s=2.0)
    observer = RecordingObserver()
    async with running_server(settings=settings, observer=observer) as server:
        assert server.address is not None
        flood = [await AsteriskPeer.connect(server.address) for _ in range(12)]
        # during the flood, a real call is screened
        assert len(await screen_session(server.address)) == 1
        closed = await asyncio.gather(*(p.read_until_closed() for p in flood))
        assert closed == [b""] * 12  # closed at the env deadline
        for peer in flood:
            await peer.close()
        ended = await observer.wait_ended(13)
        assert sorted(ended) == ["env_timeout"] * 12 + ["ok"]
        assert observer.rejected == 0
        assert len(await screen_session(server.address)) == 1
    assert max(observer.pending) >= 12
