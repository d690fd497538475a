"""A logged-in AMI client connection to Asterisk on the codec (no replay, ever).

Used by the proxy's upstream link and by the event consumer. It only frames, logs in
and reads; reconnection and routing belong to the callers.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable

import structlog

from gateway.ami.auth import md5_key
from gateway.ami.codec import AmiMessage, AmiParser, AmiProtocolError, encode
from gateway.ami.settings import AmiSettings

log = structlog.get_logger(__name__)


class AmiLinkError(Exception):
    """The AMI connection failed (refused, timed out, closed, login rejected)."""


class AmiLink:
    """One TCP connection to Asterisk's AMI."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, settings: AmiSettings
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._settings = settings
        self._parser = AmiParser(
            expect_banner=True,
            max_message_bytes=settings.max_message_bytes,
            max_headers=settings.max_headers,
        )
        self._ready: deque[AmiMessage] = deque()
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, settings: AmiSettings, *, events: bool) -> AmiLink:
        """Connect and log in (MD5 challenge). Raises AmiLinkError."""
        try:
            async with asyncio.timeout(settings.connect_timeout_s):
                reader, writer = await asyncio.open_connection(settings.host, settings.port)
        except (OSError, TimeoutError) as exc:
            raise AmiLinkError(f"connect failed: {type(exc).__name__}") from exc
        link = cls(reader, writer, settings)
        try:
            async with asyncio.timeout(settings.login_timeout_s):
                await link.login(events=events)
        except TimeoutError as exc:
            await link.close()
            raise AmiLinkError("login timed out") from exc
        except AmiLinkError:
            await link.close()
            raise
        return link

    async def login(self, *, events: bool) -> None:
        s = self._settings
        await self.send(AmiMessage.of(Action="Challenge", AuthType="MD5", ActionID="gw-login-1"))
        resp = await self._response("gw-login-1")
        challenge = resp.get("Challenge")
        if resp.response != "Success" or not challenge:
            raise AmiLinkError("challenge refused")
        await self.send(
            AmiMessage.of(
                Action="Login", AuthType="MD5", Username=s.username,
                Key=md5_key(challenge, s.secret), Events="on" if events else "off",
                ActionID="gw-login-2",
            )
        )
        resp = await self._response("gw-login-2")
        if resp.response != "Success":
            raise AmiLinkError("login rejected")

    async def _response(self, action_id: str) -> AmiMessage:
        while True:
            msg = await self.read()
            if msg.kind == "response" and msg.action_id == action_id:
                return msg
            # events before login completes (FullyBooted ...) are of no interest

    async def send(self, message: AmiMessage) -> None:
        data = encode(message)
        async with self._write_lock:
            try:
                if self._writer.is_closing():  # Asterisk reset it: uvloop's write() would
                    raise ConnectionResetError("AMI connection closed")  # raise RuntimeError
                self._writer.write(data)
                async with asyncio.timeout(self._settings.write_timeout_s):
                    await self._writer.drain()
            except (OSError, TimeoutError) as exc:
                raise AmiLinkError(f"write failed: {type(exc).__name__}") from exc

    async def read(self) -> AmiMessage:
        """Next message; no deadline of its own (callers keep the link alive with Ping)."""
        while not self._ready:
            try:
                data = await self._reader.read(self._settings.read_chunk_bytes)
            except OSError as exc:
                raise AmiLinkError(f"read failed: {type(exc).__name__}") from exc
            if not data:
                raise AmiLinkError("connection closed by Asterisk")
            try:
                self._ready.extend(self._parser.feed(data))
            except AmiProtocolError as exc:
                raise AmiLinkError(f"protocol error: {exc}") from exc
        return self._ready.popleft()

    async def close(self) -> None:
        self._writer.close()
        try:
            async with asyncio.timeout(1.0):
                await self._writer.wait_closed()
        except (OSError, TimeoutError):
            pass


class Backoff:
    """Exponential backoff with jitter; reset after a successful connection."""

    def __init__(self, settings: AmiSettings, rng: random.Random | None = None) -> None:
        self._s = settings
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._next = settings.reconnect_initial_s

    def reset(self) -> None:
        self._next = self._s.reconnect_initial_s

    def delay(self) -> float:
        base = self._next
        self._next = min(self._s.reconnect_max_s, self._next * 2)
        j = self._s.reconnect_jitter
        return max(0.0, base * (1 + self._rng.uniform(-j, j)))


LinkFactory = Callable[[AmiSettings], Awaitable["AmiLink"]]


async def connect_with_retry(
    factory: LinkFactory,
    settings: AmiSettings,
    backoff: Backoff,
    *,
    role: str,
    set_state: Callable[[str], None],
) -> AmiLink:
    """Open (and log in) a link, retrying with ``backoff`` until it succeeds.

    Reports ``connecting`` / ``down`` through ``set_state``; logs
    ``ami.<role>_connect_failed`` for each failure; resets the backoff on success.
    """
    while True:
        set_state("connecting")
        try:
            link = await factory(settings)
        except AmiLinkError as exc:
            log.warning(f"ami.{role}_connect_failed", error=str(exc))
            set_state("down")
            await asyncio.sleep(backoff.delay())
            continue
        backoff.reset()
        return link
