"""Test helpers for the AMI proxy: an in-test Screener, a raw dialer, a proxy harness."""

# ruff: noqa: S107 - fixed test credentials for loopback-only fakes

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace

from gateway.ami.codec import AmiMessage, AmiParser, encode
from gateway.ami.proxy import AmiProxy
from gateway.ami.settings import AmiSettings, ProxyAccount, ProxySettings
from gateway.ami.upstream import Upstream
from gateway.core.model import Attempt, Decision, Reason, Verdict
from gateway.service_api import ScreenResult
from tests.ami.fake_asterisk import FakeAsterisk

WAIT_S = 5.0


@dataclass
class InTestScreener:
    """Blocks numbers listed in ``blocked`` (reason), allows the rest; records attempts."""

    blocked: dict[str, Reason] = field(default_factory=dict)
    attempts: list[tuple[Attempt, Mapping[str, str]]] = field(default_factory=list)
    gate: asyncio.Event | None = None  # when set, screen() waits for it
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def screen(
        self, attempt: Attempt, *, context: Mapping[str, str] | None = None
    ) -> ScreenResult:
        self.attempts.append((attempt, dict(context or {})))
        if self.gate is not None:
            await self.gate.wait()
        digits = attempt.number.lstrip("+")
        if not digits.isdigit():
            reason = Reason.INVALID_NUMBER
        else:
            reason = self.blocked.get(attempt.number, Reason.OK)
        verdict = Verdict.ALLOW if reason is Reason.OK else Verdict.BLOCK
        decision = Decision(verdict, reason, attempt.number, None, ())
        return ScreenResult(verdict, reason, attempt.number, None,
                            f"dec-{next(self._ids)}", decision)


class Dialer:
    """A raw AMI client on a real socket (what a dialer sends, byte for byte)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = AmiParser(expect_banner=True)
        self.ready: list[AmiMessage] = []

    @classmethod
    async def connect(cls, port: int) -> Dialer:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, *pairs: tuple[str, str], **kw: str) -> None:
        await self.send_raw(encode(AmiMessage.of(*pairs, **kw)))

    async def recv(self, deadline_s: float = WAIT_S) -> AmiMessage:
        async with asyncio.timeout(deadline_s):
            while not self.ready:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("proxy closed the connection")
                self.ready.extend(self.parser.feed(data))
        return self.ready.pop(0)

    async def response(self, deadline_s: float = WAIT_S) -> AmiMessage:
        """The next Response, skipping events."""
        while True:
            m = await self.recv(deadline_s)
            if m.kind == "response":
                return m

    async def closed(self, deadline_s: float = WAIT_S) -> bool:
        """Read until EOF (True) within the deadline."""
        try:
            while True:
                await self.recv(deadline_s)
        except EOFError:
            return True
        except ConnectionResetError:
            return True

    async def login(self, username: str = "vici", secret: str = "dialer-pw") -> AmiMessage:
        await self.send(Action="Login", Username=username, Secret=secret, ActionID="L")
        return await self.response()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


# A VICIdial-like account: Local/9<number>@default dials, 8365/86000XX are agent extensions.
ACCOUNT = ProxyAccount(
    name="vici", secret="dialer-pw", default_campaign="spring",
    campaigns=("spring", "autumn"),
    strip_prefix="9",
    dial_targets=("default,_9X.",),
    agent_targets=("default,8365", "default,_86000XX"),
)


def proxy_settings(**kw: object) -> ProxySettings:
    base = ProxySettings(enabled=True, port=0, accounts=(ACCOUNT,), failed_login_delay_s=0.01)
    return replace(base, **kw)  # type: ignore[arg-type]


@dataclass
class Harness:
    fake: FakeAsterisk
    upstream: Upstream
    proxy: AmiProxy
    screener: InTestScreener
    task: asyncio.Task[None]
    dialers: list[Dialer] = field(default_factory=list)

    async def dialer(self, login: bool = True) -> Dialer:
        d = await Dialer.connect(self.proxy.port)
        self.dialers.append(d)
        if login:
            resp = await d.login()
            assert resp.response == "Success", resp.headers
        return d


async def wait_state(upstream: Upstream, state: str, deadline_s: float = WAIT_S) -> None:
    """Wait until the upstream link reports ``state`` (listener + event, no polling)."""
    reached = asyncio.Event()

    def listener(s: str) -> None:
        if s == state:
            reached.set()

    upstream.add_state_listener(listener)
    if upstream.state == state:
        reached.set()
    async with asyncio.timeout(deadline_s):
        await reached.wait()


def upstream_settings(fake: FakeAsterisk) -> AmiSettings:
    return AmiSettings(port=fake.port, username=fake.username, secret=fake.secret,
                       reconnect_initial_s=0.01, reconnect_max_s=0.05)


@contextlib.asynccontextmanager
async def harness(**proxy_kw: object) -> AsyncIterator[Harness]:
    fake = FakeAsterisk()
    await fake.start()
    screener = InTestScreener()
    upstream = Upstream(upstream_settings(fake))
    task = asyncio.create_task(upstream.run())
    proxy = AmiProxy(proxy_settings(**proxy_kw), upstream=upstream, screener=screener)
    h: Harness | None = None
    try:
        async with asyncio.timeout(WAIT_S):
            await upstream.connected.wait()
        await proxy.start()
        h = Harness(fake, upstream, proxy, screener, task)
        yield h
    finally:
        for d in h.dialers if h is not None else ():
            await d.close()
        await proxy.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await fake.stop()
