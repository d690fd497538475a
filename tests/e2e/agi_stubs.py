"""Scripted FastAGI peers for the e2e tests (not the gateway).

- :class:`StubGateway` answers each ``screen`` request from a verdict table with
  ``EXEC MSet GW_VERDICT=...,GW_REASON=...,GW_E164=...`` (proves the harness and the
  dialplan without the real gateway).
- :class:`StalledGateway` accepts connections and never answers (a hung gateway).
- :func:`refused_address` gives a loopback port where nothing listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

AGI_LINE_LIMIT = 4096  # bytes per AGI line from Asterisk
AGI_ENV_LINES_LIMIT = 200  # agi_* lines before the blank line
AGI_READ_TIMEOUT_S = 10.0  # waiting for Asterisk's next line


@dataclass(frozen=True, slots=True)
class StubVerdict:
    verdict: str  # ALLOW | BLOCK
    reason: str
    e164: str


class StubGateway:
    """A tiny FastAGI responder with a fixed verdict per number."""

    def __init__(self, table: Mapping[str, StubVerdict]) -> None:
        self.table = dict(table)
        self.requests: list[dict[str, str]] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"agi://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._session, "127.0.0.1", 0, limit=AGI_LINE_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _readline(self, reader: asyncio.StreamReader) -> str:
        async with asyncio.timeout(AGI_READ_TIMEOUT_S):
            line = await reader.readline()
        if not line:
            raise EOFError
        return line.decode("utf-8", "replace").rstrip("\r\n")

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            env: dict[str, str] = {}
            for _ in range(AGI_ENV_LINES_LIMIT):
                line = await self._readline(reader)
                if not line:
                    break
                key, _, value = line.partition(": ")
                env[key] = value
            self.requests.append(env)
            number = env.get("agi_arg_1", "")
            v = self.table.get(number, StubVerdict("BLOCK", "invalid_number", ""))
            writer.write(f'EXEC MSet "GW_VERDICT={v.verdict},GW_REASON={v.reason},'
                         f'GW_E164={v.e164}"\n'.encode())
            await writer.drain()
            reply = await self._readline(reader)
            if not reply.startswith("200"):
                raise RuntimeError(f"Asterisk refused MSet: {reply}")
        except EOFError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


class StalledGateway:
    """Accepts FastAGI connections and never writes a byte."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.accepted = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"agi://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _session(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)  # held open until stop()
        self.accepted.set()

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@contextlib.asynccontextmanager
async def refused_address() -> AsyncIterator[str]:
    """``agi://127.0.0.1:PORT`` of a bound, non-listening socket: connect is refused.

    Holding the bound socket keeps anyone else from taking the port meanwhile.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"agi://127.0.0.1:{sock.getsockname()[1]}"
