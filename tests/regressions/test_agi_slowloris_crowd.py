"""Attack: 300 slowloris connections, each trickling its environment one byte a second.

Before: they held session slots and real calls were refused (7 % answered). Now they are
pending connections, closed at ``env_deadline_s`` however steadily they trickle, and
real calls are answered throughout.
"""

from __future__ import annotations

import asyncio
import contextlib

from gateway.agi.server import AgiSettings
from tests.agi.fakes import FakeScreener, RecordingObserver
from tests.agi.harness import running_server
from tests.agi.peer import env_bytes, screen_session
from tests.regressions.fd_limit import raise_nofile

SLOW = 300
CALLS = 30
SETTINGS = AgiSettings(max_sessions=8)  # production deadlines; few session slots


async def trickle(address: tuple[str, int], started: asyncio.Semaphore,
                  closed_at: list[float]) -> None:
    """Send the environment one byte a second until the gateway closes the connection."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(*address)
    opened = loop.time()
    started.release()
    try:
        for byte in env_bytes():
            writer.write(bytes([byte]))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # the attacker's pace: one byte a second
                    if not await reader.read(1):
                        break
    except OSError:
        pass
    finally:
        closed_at.append(loop.time() - opened)
        writer.close()


async def test_300_slowloris_connections_do_not_starve_real_calls() -> None:
    raise_nofile(2 * SLOW + 100)
    observer = RecordingObserver()
    screener = FakeScreener()
    async with running_server(screener, settings=SETTINGS, observer=observer) as server:
        assert server.address is not None
        started = asyncio.Semaphore(0)
        closed_at: list[float] = []
        attackers = [asyncio.create_task(trickle(server.address, started, closed_at))
                     for _ in range(SLOW)]
        async with asyncio.timeout(30):
            for _ in range(SLOW):
                await started.acquire()
            answered = [await screen_session(server.address) for _ in range(CALLS)]
            await asyncio.gather(*attackers)
    assert all(len(c) == 1 and c[0].startswith('EXEC "MSet"') for c in answered)
    assert observer.ended.count("ok") == CALLS
    assert observer.ended.count("env_timeout") == SLOW  # every trickler closed ...
    # ... at its deadline, not after its whole environment (about 700 s at this pace)
    assert max(closed_at) < SETTINGS.env_deadline_s * 10
