"""Attack: more concurrent connections than max_sessions (held open, silent)."""

from __future__ import annotations

import asyncio

from gateway.agi.server import AgiSettings
from tests.agi.fakes import RecordingObserver
from tests.agi.harness import running_server
from tests.agi.peer import AsteriskPeer, screen_session


async def test_flood_is_rejected_and_service_resumes() -> None:
    settings = AgiSettings(max_sessions=4, env_deadline_s=0.5, session_deadline_s=2.0)
    observer = RecordingObserver()
    async with running_server(settings=settings, observer=observer) as server:
        assert server.address is not None
        flood = [await AsteriskPeer.connect(server.address) for _ in range(12)]
        closed = await asyncio.gather(*(p.read_until_closed() for p in flood))
        assert closed == [b""] * 12  # rejected at once, or closed at the env deadline
        for peer in flood:
            await peer.close()
        assert observer.rejected == 8
        assert await observer.wait_ended(4) == ["env_timeout"] * 4
        assert len(await screen_session(server.address)) == 1
    assert max(observer.in_flight) == 4
