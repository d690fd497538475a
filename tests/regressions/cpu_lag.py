"""Real CPU work that makes an event loop lag, for the saturation regressions.

Not a simulation of a slow peer: the loop itself is kept busy, as a CPU-saturated gateway
is. Every turn of the loop spends at least ``chunk_s`` in :func:`burn` (hashing), so a
reply that arrives in a millisecond is read a turn later, after any deadline shorter
than ``chunk_s`` has fired.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator


def burn(seconds: float) -> int:
    """Spend ``seconds`` of CPU on this thread (no syscalls, no sleeping)."""
    end = time.perf_counter() + seconds
    acc = 0
    while time.perf_counter() < end:
        acc = hash((acc, 0x5F3759DF))
    return acc


@contextlib.asynccontextmanager
async def lagging_loop(chunk_s: float) -> AsyncIterator[None]:
    """While inside, each turn of the running loop burns ``chunk_s`` of CPU."""
    stop = asyncio.Event()

    async def burner() -> None:
        while not stop.is_set():
            burn(chunk_s)
            await asyncio.sleep(0)  # one turn for everyone else, then burn again

    task = asyncio.create_task(burner(), name="cpu-burner")
    try:
        yield
    finally:
        stop.set()
        await task
