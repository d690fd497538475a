"""A scripted Asterisk-like FastAGI peer for the server tests (real sockets, loopback).

Every wait has a deadline (``DEADLINE_S``): a test that hangs fails instead.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

DEADLINE_S = 5.0


def env_lines(
    script: str = "screen",
    args: tuple[str, ...] = (),
    **extra: str,
) -> list[bytes]:
    """The environment Asterisk 22 sends for ``AGI(agi://127.0.0.1/<script>,<args>)``."""
    variables = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://127.0.0.1/{script}",
        "agi_channel": "PJSIP/trunk-00000001",
        "agi_language": "en",
        "agi_type": "PJSIP",
        "agi_uniqueid": "1718000000.1",
        "agi_version": "22.10.1",
        "agi_callerid": "unknown",
        "agi_calleridname": "unknown",
        "agi_callingpres": "0",
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": "unknown",
        "agi_rdnis": "unknown",
        "agi_context": "outbound",
        "agi_extension": "s",
        "agi_priority": "2",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "140000000000000",
    }
    variables.update(extra)
    for i, arg in enumerate(args, start=1):
        variables[f"agi_arg_{i}"] = arg
    return [f"{k}: {v}\n".encode() for k, v in variables.items()]


def env_bytes(script: str = "screen", args: tuple[str, ...] = (), **extra: str) -> bytes:
    return b"".join(env_lines(script, args, **extra)) + b"\n"


@dataclass
class AsteriskPeer:
    """One connection, driven step by step by a test."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    commands: list[str] = field(default_factory=list)

    @classmethod
    async def connect(cls, address: tuple[str, int], *,
                      local_host: str | None = None) -> AsteriskPeer:
        """``local_host``: the peer's own address (another host: 127.0.0.2 and up)."""
        local_addr = None if local_host is None else (local_host, 0)
        async with asyncio.timeout(DEADLINE_S):
            reader, writer = await asyncio.open_connection(*address, local_addr=local_addr)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        async with asyncio.timeout(DEADLINE_S):
            await self.writer.drain()

    async def read_command(self) -> str:
        """The next command line the server sends ('' if it closed instead)."""
        async with asyncio.timeout(DEADLINE_S):
            line = await self.reader.readline()
        text = line.decode()
        if text:
            self.commands.append(text.rstrip("\n"))
        return text.rstrip("\n")

    async def read_until_closed(self) -> bytes:
        """Everything the server still sends, up to its close (EOF or reset)."""
        chunks = []
        async with asyncio.timeout(DEADLINE_S):
            while True:
                try:
                    data = await self.reader.read(4096)
                except ConnectionResetError:
                    break
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks)

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(DEADLINE_S):
                await self.writer.wait_closed()
        except (ConnectionError, BrokenPipeError):
            pass


async def screen_session(
    address: tuple[str, int],
    args: tuple[str, ...] = ("0612345678", "spring-promo"),
    reply: bytes = b"200 result=0\n",
    script: str = "screen",
    local_host: str | None = None,
) -> list[str]:
    """A well-behaved Asterisk: env, answer each command with ``reply``, until close."""
    peer = await AsteriskPeer.connect(address, local_host=local_host)
    try:
        await peer.send(env_bytes(script, args))
        while await peer.read_command():
            await peer.send(reply)
        return peer.commands
    finally:
        await peer.close()


def connect_now(address: tuple[str, int] | None) -> socket.socket:
    """A client connection completed by the kernel, whatever the server's loop does
    (non-blocking: hand it to :func:`answer_commands`)."""
    assert address is not None
    client = socket.create_connection(address)
    client.setblocking(False)
    return client


async def answer_commands(sock: socket.socket, *, deadline_s: float = DEADLINE_S) -> list[str]:
    """Asterisk's side of a connection whose environment was already sent: ``200
    result=0`` to every command, until the server closes; the commands received
    (``"reset"`` last if the server reset the connection)."""
    reader, writer = await asyncio.open_connection(sock=sock)
    commands: list[str] = []
    try:
        async with asyncio.timeout(deadline_s):
            while line := await reader.readline():
                commands.append(line.decode().rstrip("\n"))
                writer.write(b"200 result=0\n")
    except ConnectionError:
        commands.append("reset")
    finally:
        writer.close()
    return commands
