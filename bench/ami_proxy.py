#!/usr/bin/env python3
"""``make bench`` (AMI proxy): latency the proxy adds to an ``Originate``.

Three processes on loopback, as in production (dialer, gateway, Asterisk):

- **upstream**: a minimal AMI server standing in for Asterisk. It answers the login and
  every action with ``Response: Success`` (and its ``ActionID``) at once, so the
  measure holds the proxy's cost and nothing of Asterisk's;
- **proxy**: ``gateway.ami.upstream.Upstream`` + ``gateway.ami.proxy.AmiProxy`` with
  production settings, the Prometheus observer and one VICIdial-like account, screening
  with either an instant screener (``ALLOW`` at once: framing, permissions, ActionID
  remapping and relaying alone) or the real ``Service`` (built-in packs, one automated
  campaign, a consent for every number, memory store, no audit sink, clock fixed at a
  legal instant);
- **the dialer** (this process): logs in, sends ``Originate`` actions one after the
  other (or from 10 sessions at once) and times each from its write to its
  ``Response``, once directly to the upstream and once through the proxy.

Columns: p50/p99 of each path, the difference with the direct path (the latency the
proxy adds), and the CPU per Originate of the server process (the upstream's for the
direct path, the proxy's for the others: the proxy's own cost, which a shared machine
inflates far less than the latency). Rounds are interleaved (direct, proxy/instant,
proxy/service, then again); every Originate dials a new number (no frequency cap kicks
in). Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

HOST = "127.0.0.1"
CAMPAIGN = "bench"
NOW = datetime(2026, 12, 1, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))  # a legal Tuesday
NUMBERS = 200_000  # consented numbers 0600000000 ..; each dialled at most once
DEADLINE_S = 10.0
TICKS = os.sysconf("SC_CLK_TCK")
ACCOUNT = ("vici", "dialer-pw")  # loopback-only bench credentials
UPSTREAM_ACCOUNT = ("gw", "upstream-pw")


# --- the upstream: an AMI server that answers at once -------------------------------------


async def upstream_main() -> None:
    from gateway.ami.codec import AmiMessage, AmiParser, encode, encode_banner

    tasks: set[asyncio.Task[None]] = set()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = AmiParser()
        writer.write(encode_banner("5.0.1"))
        try:
            while data := await reader.read(65536):
                out = []
                for msg in parser.feed(data):
                    base = (("ActionID", msg.action_id),) if msg.action_id is not None else ()
                    extra = (("Challenge", "0123456789"),) if (
                        (msg.action or "").lower() == "challenge") else ()
                    out.append(encode(AmiMessage((("Response", "Success"), *base, *extra))))
                writer.write(b"".join(out))
        except ConnectionError:
            pass
        finally:
            writer.close()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(session(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(on_connect, HOST, 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await wait_stdin_closed()
    server.close()


async def wait_stdin_closed() -> None:
    """The parent closes our stdin to stop us (no signal handling needed)."""
    await asyncio.to_thread(sys.stdin.read)


# --- the proxy --------------------------------------------------------------------------


class InstantScreener:
    """Answers ALLOW at once: the proxy's own path alone."""

    def __init__(self) -> None:
        from gateway.core.model import Decision, Reason, Verdict
        from gateway.service_api import ScreenResult

        self._ids = itertools.count()

        def make(number: str, i: int) -> object:
            return ScreenResult(Verdict.ALLOW, Reason.OK, number, None, f"{i:016x}",
                                Decision(Verdict.ALLOW, Reason.OK, number, None, ()))

        self._make = make

    async def screen(self, attempt: object, *, context: Mapping[str, str] | None = None,
                     ) -> object:
        return self._make(getattr(attempt, "number", ""), next(self._ids))


async def seeded_service() -> object:
    from gateway.core.model import Campaign, ConsentRecord
    from gateway.core.policy import Policy
    from gateway.metrics import Metrics
    from gateway.packs import builtin_packs
    from gateway.service import Service
    from gateway.store.base import ImportMode
    from gateway.store.memory import MemoryStore

    store = MemoryStore()
    campaign = Campaign(
        id=CAMPAIGN, professional="acme", product_category="telecom", sector="telecom",
        automated=True, caller_id="+33162000001",
    )
    await store.import_consents(
        (ConsentRecord(id=f"c{i}", e164=f"+336{i:08d}", professional="acme",
                       product_category="telecom", collected_at=NOW - timedelta(days=30),
                       expires_at=NOW + timedelta(days=300), channel="web-form",
                       proof_ref=f"form-{i}") for i in range(NUMBERS)),
        mode=ImportMode.REPLACE, now=NOW)
    return Service(
        policy=Policy(packs=builtin_packs(), campaigns={CAMPAIGN: campaign}),
        store=store, audit=None, budget_s=0.5, instance_id="bench",
        observer=Metrics([CAMPAIGN]), clock=lambda: NOW,
    )


async def proxy_main(upstream_port: int, screener_kind: str) -> None:
    import structlog

    from gateway.ami.proxy import AmiProxy
    from gateway.ami.settings import AmiSettings, ProxyAccount, ProxySettings
    from gateway.ami.upstream import Upstream
    from gateway.metrics import Metrics
    from gateway.observers import AmiMetrics

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    screener = InstantScreener() if screener_kind == "instant" else await seeded_service()
    observer = AmiMetrics(Metrics([CAMPAIGN]))
    upstream = Upstream(AmiSettings(host=HOST, port=upstream_port, username=UPSTREAM_ACCOUNT[0],
                                    secret=UPSTREAM_ACCOUNT[1]), observer=observer)
    account = ProxyAccount(name=ACCOUNT[0], secret=ACCOUNT[1], default_campaign=CAMPAIGN,
                           campaigns=(CAMPAIGN,), agent_targets=("default,8365",))
    proxy = AmiProxy(ProxySettings(enabled=True, host=HOST, port=0, accounts=(account,)),
                     upstream=upstream, screener=screener,  # type: ignore[arg-type]
                     observer=observer)
    link = asyncio.create_task(upstream.run())
    async with asyncio.timeout(DEADLINE_S):
        await upstream.connected.wait()
    await proxy.start()
    print(proxy.port, flush=True)
    await wait_stdin_closed()
    await proxy.close()
    link.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await link


# --- the dialer (this process) ------------------------------------------------------------


@contextlib.asynccontextmanager
async def child(*args: str) -> AsyncIterator[tuple[int, int]]:
    """A server role of this script in its own process; yields (port, pid)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("DIALER_GATEWAY_")})
    assert proc.stdin is not None and proc.stdout is not None
    try:
        async with asyncio.timeout(60):
            line = await proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench/ami_proxy.py {' '.join(args)} did not start")
        yield int(line), proc.pid
    finally:
        proc.stdin.close()
        try:
            async with asyncio.timeout(DEADLINE_S):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


class Dialer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from gateway.ami.codec import AmiParser

        self.reader, self.writer = reader, writer
        self.parser = AmiParser(expect_banner=True)
        self.ready: list[Any] = []

    @classmethod
    async def login(cls, port: int, user: str, secret: str) -> Dialer:
        d = cls(*await asyncio.open_connection(HOST, port))
        resp = await d.action((("Action", "Login"), ("Username", user), ("Secret", secret),
                               ("ActionID", "login")))
        if resp.response != "Success":
            raise RuntimeError(f"login refused: {resp.headers}")
        return d

    async def action(self, pairs: tuple[tuple[str, str], ...]) -> Any:
        from gateway.ami.codec import AmiMessage, encode

        self.writer.write(encode(AmiMessage(pairs)))
        async with asyncio.timeout(DEADLINE_S):
            while True:
                while self.ready:
                    msg = self.ready.pop(0)
                    if msg.kind == "response":
                        return msg
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("the server closed the connection")
                self.ready.extend(self.parser.feed(data))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def originate(number: int, action_id: str) -> tuple[tuple[str, str], ...]:
    return (("Action", "Originate"), ("Channel", f"PJSIP/06{number:08d}@trunk"),
            ("Exten", "8365"), ("Context", "default"), ("Priority", "1"),
            ("Variable", f"CAMPAIGN={CAMPAIGN}"), ("CallerID", '"Acme" <0162000001>'),
            ("Timeout", "30000"), ("Async", "true"), ("ActionID", action_id))


async def measure(port: int, user: str, secret: str, count: int, sessions: int,
                  numbers: itertools.count[int]) -> tuple[list[float], int]:
    """Latencies (s) of ``count`` Originates spread over ``sessions`` dialers, and how
    many were not answered Success."""
    dialers = [await Dialer.login(port, user, secret) for _ in range(sessions)]
    latencies: list[float] = []
    failed = 0

    async def run(d: Dialer, n: int) -> None:
        nonlocal failed
        for i in range(n):
            started = time.perf_counter()
            resp = await d.action(originate(next(numbers), f"o{i}"))
            latencies.append(time.perf_counter() - started)
            if resp.response != "Success":
                failed += 1

    try:
        await asyncio.gather(*(run(d, count // sessions) for d in dialers))
    finally:
        for d in dialers:
            await d.close()
    return latencies, failed


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


async def main(args: argparse.Namespace) -> None:
    numbers = itertools.count()
    targets = ("direct to the upstream", "proxy, instant screener",
               "proxy, Service (memory store)")
    samples: dict[tuple[str, int], list[float]] = {}
    failures: dict[tuple[str, int], int] = {}
    cpu: dict[tuple[str, int], float] = {}  # seconds of the proxy process (or upstream)
    async with contextlib.AsyncExitStack() as stack:
        upstream, upstream_pid = await stack.enter_async_context(child("--upstream"))
        instant = await stack.enter_async_context(child("--proxy", str(upstream), "instant"))
        service = await stack.enter_async_context(child("--proxy", str(upstream), "service"))
        ports = {
            targets[0]: ((upstream, *UPSTREAM_ACCOUNT), upstream_pid),
            targets[1]: ((instant[0], *ACCOUNT), instant[1]),
            targets[2]: ((service[0], *ACCOUNT), service[1]),
        }
        for name in targets:  # warm-up: connections, caches, first-call imports
            await measure(*ports[name][0], 200, 1, numbers)
        for round_no in range(args.rounds):
            for sessions in (1, 10):
                for name in targets:
                    login, pid = ports[name]
                    before = cpu_seconds(pid)
                    lat, failed = await measure(*login, args.originates, sessions, numbers)
                    key = (name, sessions)
                    cpu[key] = cpu.get(key, 0.0) + cpu_seconds(pid) - before
                    samples.setdefault(key, []).extend(lat)
                    failures[key] = failures.get(key, 0) + failed
                    print(f"  round {round_no + 1} {name:30} {sessions:2} in flight "
                          f"p50 {pct(lat, 0.5):.3f} p99 {pct(lat, 0.99):.3f} ms",
                          file=sys.stderr, flush=True)
    load = os.getloadavg()
    print(f"\nAMI proxy bench: {len(os.sched_getaffinity(0))} CPU, Python "
          f"{sys.version.split()[0]}, loopback, {args.rounds} interleaved rounds of "
          f"{args.originates} Originates per row, load average {load[0]:.1f} / "
          f"{load[1]:.1f} / {load[2]:.1f}\n")
    print("| path | in flight | Originates | p50 ms | p99 ms | added p50 ms | "
          "added p99 ms | server CPU µs/Originate | not Success |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for sessions in (1, 10):
        base = samples[(targets[0], sessions)]
        for name in targets:
            lat = samples[(name, sessions)]
            added = ("-", "-") if name == targets[0] else (
                f"{pct(lat, 0.5) - pct(base, 0.5):.3f}", f"{pct(lat, 0.99) - pct(base, 0.99):.3f}")
            print(f"| {name} | {sessions} | {len(lat)} | {pct(lat, 0.5):.3f} | "
                  f"{pct(lat, 0.99):.3f} | {added[0]} | {added[1]} | "
                  f"{1e6 * cpu[(name, sessions)] / len(lat):.0f} | "
                  f"{failures[(name, sessions)]} |")
    print("\n(mean ms: " + ", ".join(
        f"{name} x{s}: {1000 * statistics.fmean(v):.3f}" for (name, s), v in samples.items())
          + ")")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--originates", type=int, default=2000, help="per row and round")
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args(argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--upstream"]:
        asyncio.run(upstream_main())
    elif sys.argv[1:2] == ["--proxy"]:
        asyncio.run(proxy_main(int(sys.argv[2]), sys.argv[3]))
    else:
        asyncio.run(main(parse(sys.argv[1:])))
