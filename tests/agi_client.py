"""A scripted Asterisk for app-level tests: one FastAGI `screen` session, one HTTP GET.

Shared by tests/test_app.py and tests/deploy/ (the protocol-level peer with every
misbehaviour lives in tests/agi/peer.py).
"""

from __future__ import annotations

import asyncio

DEADLINE_S = 10.0


async def http_get(address: tuple[str, int], path: str) -> tuple[int, bytes]:
    async with asyncio.timeout(DEADLINE_S):
        reader, writer = await asyncio.open_connection(*address)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def agi_screen(address: tuple[str, int], number: str, campaign: str, *,
                     deadline_s: float = DEADLINE_S) -> dict[str, str]:
    """Send the environment, answer every command with 200; the GW_* variables set."""
    env = (
        "agi_network: yes\nagi_network_script: screen\nagi_request: agi://x/screen\n"
        "agi_channel: Local/test-00000001;2\nagi_uniqueid: 1700000000.1\n"
        f"agi_arg_1: {number}\nagi_arg_2: {campaign}\n\n"
    )
    commands: list[str] = []
    async with asyncio.timeout(deadline_s):
        reader, writer = await asyncio.open_connection(*address)
        writer.write(env.encode())
        await writer.drain()
        while line := await reader.readline():
            commands.append(line.decode().strip())
            writer.write(b"200 result=0\n")
            await writer.drain()
        writer.close()
        await writer.wait_closed()
    (mset,) = [c for c in commands if c.startswith('EXEC "MSet"')]
    body = mset.removeprefix('EXEC "MSet" ').strip('"')
    return dict(item.split("=", 1) for item in body.split(","))


async def agi_burst(
    address: tuple[str, int], calls: list[tuple[str, str]], *, in_flight: int,
    deadline_s: float = 120.0,
) -> list[dict[str, str]]:
    """Screen ``calls`` (number, campaign), ``in_flight`` sessions at a time, each on its
    own connection as Asterisk does; the GW_* variables of each call, in order."""
    results: list[dict[str, str] | None] = [None] * len(calls)
    queue = iter(range(len(calls)))

    async def worker() -> None:
        for index in queue:
            number, campaign = calls[index]
            results[index] = await agi_screen(address, number, campaign,
                                              deadline_s=deadline_s)

    async with asyncio.timeout(deadline_s), asyncio.TaskGroup() as group:
        for _ in range(min(in_flight, len(calls))):
            group.create_task(worker())
    return [r for r in results if r is not None]
