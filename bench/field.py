#!/usr/bin/env python3
"""Field bench: the real gateway process on the production shape, under bursts and idlers.

The gateway runs as its own process (``gateway.app.App`` from a TOML file: Redis store and
Redis audit stream on a redis-server this bench starts, one automated French campaign, the
clock fixed at a legal instant), exactly as ``dialer-gateway serve`` builds it. The calls
come from this process, emulating Asterisk (connect, send a 24-line ``agi_*``
environment, answer every command ``200``, measure connect -> close); the idle and
slowloris connections from a third process (``--attacker-here``: from this one, whose
loop then delays the calls it times).

Scenarios (each reports calls, verdict counts, p50/p99 latency, the gateway's CPU per call
and its RSS):

- ``burst N``: N sessions in flight, closed loop (each finished call starts the next);
- ``open R/s``: a new call every 1/R s whatever happened to the previous ones (a dialer);
- ``idle K``: K connections that never send their environment, re-opened as the gateway
  closes them, while valid calls run one after another for 8 s (30 s without --quick:
  several environment deadlines, so the idlers' waves fall among the calls); the row
  adds the gateway's event-loop lag and the calls over 100 ms (and those slow to connect);
- ``slowloris K``: K connections trickling one byte a second, same valid calls.

Usage: ``.venv/bin/python bench/field.py [--quick] [--only idle,slowloris]
[--agi KEY=VALUE ...]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import HOST, env_block, redis_server

CAMPAIGN = "bench-promo"
NUMBERS = 60_000
SESSION_TIMEOUT_S = 10.0
IDLERS_OPEN_DEADLINE_S = 60.0  # for the idlers to connect before the calls start
CONFIG = """\
[store]
url = "{url}"

[agi]
listen = "127.0.0.1:0"

[http]
listen = "127.0.0.1:0"

[audit]
sink = "redis"

[demo]
seed = false

[logging]
level = "info"
format = "json"

[campaigns.{campaign}]
professional = "acme"
product_category = "telecom"
sector = "telecom"
automated = true
caller_id = "+33162000001"
jurisdiction = "FR"
fail_mode = "closed"
"""


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --- the gateway child ------------------------------------------------------------------


async def serve_gateway(config_path: str) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import gateway.app
    from gateway.app import App
    from gateway.config import load_config
    from gateway.logs import configure_logging

    now = datetime(2026, 12, 1, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))
    config = load_config(Path(config_path), env={})
    lg = config.logging
    configure_logging(lg.level, "json", lg.number_redaction, lg.hash_key)  # type: ignore[arg-type]
    app = App(config, clock=lambda: now)
    await app.start()
    prepare = getattr(gateway.app, "prepare_collector", None)  # absent in older builds
    if prepare is not None:
        prepare()  # as serve does
    lags: list[float] = []
    sampler = asyncio.create_task(sample_lag(lags))
    print(json.dumps({"agi": app.agi_address[1]}), flush=True)
    loop = asyncio.get_running_loop()
    try:
        # each line on stdin asks for the loop lag since the last one; EOF stops
        while await loop.run_in_executor(None, sys.stdin.readline):
            assert app.agi is not None
            print(json.dumps({**lag_stats(lags), "open": app.agi.connections_open}),
                  flush=True)
            lags.clear()
    finally:
        sampler.cancel()
        await app.stop()


LAG_TICK_S = 0.005


async def sample_lag(lags: list[float]) -> None:
    """How late the loop runs a LAG_TICK_S sleep: the wait a ready callback sees."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + LAG_TICK_S
        await asyncio.sleep(LAG_TICK_S)  # the probe itself, not a synchronisation
        lags.append(loop.time() - due)


def lag_stats(lags: list[float]) -> dict[str, float]:
    ordered = sorted(lags) or [0.0]

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return {"lag_p50_ms": pct(0.5), "lag_p99_ms": pct(0.99), "lag_max_ms": ordered[-1] * 1000}


class Gateway:
    """The gateway child: its AGI port, pid, and its loop lag on demand."""

    def __init__(self, port: int, pid: int, proc: asyncio.subprocess.Process) -> None:
        self.port = port
        self.pid = pid
        self._proc = proc

    async def quiesce(self) -> None:
        """Wait until the gateway has closed every connection of the previous scenario."""
        async with asyncio.timeout(60):
            while (await self.lag())["open"] > 0:  # noqa: ASYNC110 - another process: no Event to wait on
                await asyncio.sleep(0.1)  # polling another process, not a synchronisation

    async def lag(self) -> dict[str, float]:
        """The gateway loop's lag since the previous call (resets it); ``open``: its AGI
        connections open now."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(b"lag\n")
        async with asyncio.timeout(30):
            return dict(json.loads(await self._proc.stdout.readline()))


@contextlib.asynccontextmanager
async def gateway(url: str, agi: tuple[str, ...] = ()) -> AsyncIterator[Gateway]:
    """A gateway child process."""
    with tempfile.TemporaryDirectory(prefix="dg-bench-field-") as tmp:
        path = Path(tmp) / "gateway.toml"
        config = CONFIG.format(url=url, campaign=CAMPAIGN)
        # extra [agi] settings (--agi KEY=VALUE), e.g. to compare limits
        config = config.replace("[agi]\n", "[agi]\n" + "".join(f"{a}\n" for a in agi), 1)
        path.write_text(config, encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--gateway", str(path),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None and proc.stdin is not None
        try:
            async with asyncio.timeout(30):
                line = await proc.stdout.readline()
            yield Gateway(int(json.loads(line)["agi"]), proc.pid, proc)
        finally:
            proc.stdin.close()
            try:
                async with asyncio.timeout(15):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def seed(url: str) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from gateway.core.model import ConsentRecord
    from gateway.store.base import ImportMode
    from gateway.store.factory import open_store

    now = datetime(2026, 12, 1, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))
    store = open_store(url)
    try:
        await store.import_consents((
            ConsentRecord(
                id=f"c{i}", e164=f"+336{i:08d}", professional="acme",
                product_category="telecom", collected_at=now - timedelta(days=30),
                expires_at=now + timedelta(days=300), channel="web-form", proof_ref=f"f{i}")
            for i in range(NUMBERS)), mode=ImportMode.REPLACE, now=now)
    finally:
        await store.close()


# --- the load ---------------------------------------------------------------------------


class Numbers:
    def __init__(self) -> None:
        self._next = 0

    def take(self) -> str:
        self._next += 1
        return f"06{self._next % NUMBERS:08d}"


SLOW_S = 0.1  # a call slower than this is counted, and so is its connect (the accept queue)
SLOW_CONNECTS: Counter[str] = Counter()


async def one_call(port: int, number: str) -> tuple[float, str]:
    """(latency_s, 'VERDICT reason' or an error) of one emulated Asterisk session."""
    started = time.perf_counter()
    outcome = "no answer"
    try:
        async with asyncio.timeout(SESSION_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(HOST, port)
            connected = time.perf_counter() - started
            if connected > SLOW_S:
                SLOW_CONNECTS["connect"] += 1  # the kernel's accept queue was full: SYN resent
            try:
                writer.write(env_block(number, CAMPAIGN))
                while line := await reader.readline():
                    if b"GW_VERDICT=" in line:
                        body = line.decode().split('"')[3]
                        items = dict(i.split("=", 1) for i in body.split(","))
                        outcome = f"{items['GW_VERDICT']} {items['GW_REASON']}"
                    writer.write(b"200 result=0\n")
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        outcome = f"error {type(exc).__name__}"
    return time.perf_counter() - started, outcome


def summary(name: str, results: list[tuple[float, str]], cpu_s: float, rss_mb: float,
            elapsed_s: float, extra: str = "") -> dict[str, object]:
    latencies = sorted(r[0] for r in results)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "scenario": name, "calls": len(results), "rate": len(results) / elapsed_s,
        "p50_ms": pct(0.5), "p99_ms": pct(0.99), "cpu_us": cpu_s / len(results) * 1e6,
        "rss_mb": rss_mb, "outcomes": dict(Counter(r[1] for r in results)), "extra": extra,
    }


async def closed_loop(gw: Gateway, numbers: Numbers, in_flight: int,
                      calls: int) -> dict[str, object]:
    results: list[tuple[float, str]] = []
    todo = iter(range(calls))

    async def worker() -> None:
        for _ in todo:
            results.append(await one_call(gw.port, numbers.take()))

    cpu0, t0 = proc_cpu_s(gw.pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - t0
    return summary(f"burst, {in_flight} in flight", results, proc_cpu_s(gw.pid) - cpu0,
                   proc_rss_mb(gw.pid), elapsed)


async def open_loop(gw: Gateway, numbers: Numbers, rate: float,
                    seconds: float) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    tasks = []
    cpu0, t0 = proc_cpu_s(gw.pid), loop.time()
    for i in range(int(rate * seconds)):
        delay = t0 + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)  # the schedule of a dialer, not a synchronisation
        tasks.append(asyncio.create_task(one_call(gw.port, numbers.take())))
    results = list(await asyncio.gather(*tasks))
    elapsed = loop.time() - t0
    return summary(f"open loop, {rate:.0f} calls/s", results, proc_cpu_s(gw.pid) - cpu0,
                   proc_rss_mb(gw.pid), elapsed)


class Idlers:
    """``count`` connections that never complete their environment, each re-opened as soon
    as the gateway closes it: idle (say nothing) or slowloris (a byte a second)."""

    def __init__(self, port: int, count: int, trickle: bool) -> None:
        self.port = port
        self.count = count
        self.trickle = trickle
        self.stop = asyncio.Event()
        self.held = 0  # idlers whose first connection is up
        self.all_held = asyncio.Event()
        self.opened = 0  # connections opened, re-opens included
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._idler(i)) for i in range(self.count)]

    async def close(self) -> None:
        self.stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _idler(self, i: int) -> None:
        first = True
        while not self.stop.is_set():
            try:
                # 10 loopback sources, under agi.max_pending_per_source (1024) each
                reader, writer = await asyncio.open_connection(
                    HOST, self.port, local_addr=(f"127.0.0.{2 + i % 10}", 0))
            except OSError:
                await asyncio.sleep(0.05)  # the gateway's backlog is full: back off
                continue
            self.opened += 1
            if first:
                first = False
                self.held += 1
                if self.held >= self.count:
                    self.all_held.set()
            try:
                if self.trickle:
                    for byte in env_block("0600000001", CAMPAIGN):
                        writer.write(bytes([byte]))
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(1.0):  # one byte a second
                                if not await reader.read(1):
                                    break
                        if self.stop.is_set():
                            break
                else:
                    with contextlib.suppress(OSError):
                        await reader.read(1)  # until the gateway closes it
            except OSError:
                pass
            finally:
                writer.close()


async def serve_attacker(port: int, count: int, trickle: bool) -> None:
    """The idlers in their own process (``--attacker``): prints ``{"held": n}`` once every
    idler has connected (or after IDLERS_OPEN_DEADLINE_S), then ``{"opened": n}`` for each
    line read on stdin; EOF stops."""
    idlers = Idlers(port, count, trickle)
    idlers.start()
    loop = asyncio.get_running_loop()
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(IDLERS_OPEN_DEADLINE_S):
                await idlers.all_held.wait()
        print(json.dumps({"held": idlers.held}), flush=True)
        while await loop.run_in_executor(None, sys.stdin.readline):
            print(json.dumps({"opened": idlers.opened}), flush=True)
    finally:
        await idlers.close()


@contextlib.asynccontextmanager
async def attacker_process(port: int, count: int,
                           trickle: bool) -> AsyncIterator[tuple[int, Any]]:
    """(idlers held, a coroutine function giving the connections opened so far)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--attacker", str(port), str(count),
        "trickle" if trickle else "idle",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stdin is not None
    stdin, stdout = proc.stdin, proc.stdout

    async def opened() -> int:
        stdin.write(b"opened\n")
        async with asyncio.timeout(30):
            return int(json.loads(await stdout.readline())["opened"])

    try:
        async with asyncio.timeout(IDLERS_OPEN_DEADLINE_S + 30):
            held = int(json.loads(await stdout.readline())["held"])
        yield held, opened
    finally:
        stdin.close()
        try:
            async with asyncio.timeout(30):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def attacker_here(port: int, count: int,
                        trickle: bool) -> AsyncIterator[tuple[int, Any]]:
    """The same idlers in this process (the bench's loop shared with the call driver)."""
    idlers = Idlers(port, count, trickle)
    idlers.start()

    async def opened() -> int:
        return idlers.opened

    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(IDLERS_OPEN_DEADLINE_S):
                await idlers.all_held.wait()
        yield idlers.held, opened
    finally:
        await idlers.close()


async def with_idlers(gw: Gateway, numbers: Numbers, idle: int, trickle: bool,
                      seconds: float, separate: bool) -> dict[str, object]:
    """``idle`` connections kept up (re-opened when closed) while valid calls run one after
    another for ``seconds`` (several environment deadlines: the idlers' waves of expiry
    and reconnection fall among the calls)."""
    await gw.quiesce()  # the previous scenario's connections are gone
    attacker = attacker_process if separate else attacker_here
    async with attacker(gw.port, idle, trickle) as (held, opened):
        rss = proc_rss_mb(gw.pid)
        opened0 = await opened()
        await gw.lag()  # reset: the lag below is the calls'
        SLOW_CONNECTS.clear()
        results: list[tuple[float, str]] = []
        cpu0, t0 = proc_cpu_s(gw.pid), time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            results.append(await one_call(gw.port, numbers.take()))
        elapsed = time.perf_counter() - t0
        cpu = proc_cpu_s(gw.pid) - cpu0
        lag = await gw.lag()
        rss = max(rss, proc_rss_mb(gw.pid))
        reopened = await opened() - opened0
    kind = "slowloris (1 byte/s)" if trickle else "idle"
    where = "own process" if separate else "bench process"
    slow = sum(1 for latency, _ in results if latency > SLOW_S)
    return summary(f"{idle} {kind} + sequential calls", results, cpu, rss, elapsed,
                   extra=f"{'all' if held >= idle else f'only {held} of'} {idle} held "
                   f"before the calls ({where}), {reopened} re-opened during the calls; "
                   f"gateway loop lag p99 {lag['lag_p99_ms']:.0f} ms, "
                   f"max {lag['lag_max_ms']:.0f} ms; {slow} calls over "
                   f"{SLOW_S * 1000:.0f} ms, {SLOW_CONNECTS['connect']} of them in connect")


SCENARIOS = ("burst", "open", "idle", "slowloris")


async def main(args: argparse.Namespace) -> None:
    raise_fd_limit()
    only = set(args.only.split(",")) if args.only else set(SCENARIOS)
    if only - set(SCENARIOS):
        raise SystemExit(f"--only: choose among {', '.join(SCENARIOS)}")
    rows: list[dict[str, object]] = []
    load_before = os.getloadavg()
    print(HEADER, flush=True)

    def add(r: dict[str, object]) -> None:
        rows.append(r)
        print(row(r), flush=True)

    async with redis_server() as url:
        if url is None:
            print("no redis-server: nothing to measure")
            return
        await seed(url)
        numbers = Numbers()
        async with gateway(url, tuple(args.agi)) as gw:
            await closed_loop(gw, numbers, 10, 200)  # warm-up
            if "burst" in only:
                for in_flight in (1, 50, 150, 250):
                    calls = 200 if in_flight == 1 else (500 if args.quick else in_flight * 4)
                    add(await closed_loop(gw, numbers, in_flight, calls))
            if "open" in only and not args.quick:
                for rate in (200, 1000):
                    add(await open_loop(gw, numbers, rate, 5.0))
            seconds = 8.0 if args.quick else 30.0
            separate = not args.attacker_here
            if "idle" in only:
                add(await with_idlers(gw, numbers, 5000, False, seconds, separate))
            if "slowloris" in only:
                add(await with_idlers(gw, numbers, 300, True, seconds, separate))
    # the machine's load tells how to read the absolute figures (a shared host inflates them)
    print(f"\nload average (1, 5, 15 min): before {fmt_load(load_before)}, "
          f"after {fmt_load(os.getloadavg())}; {os.cpu_count()} CPUs", flush=True)


def fmt_load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.1f}" for x in load)


HEADER = ("| scenario | calls | calls/s | p50 ms | p99 ms | gateway CPU/call µs | "
          "gateway RSS MB | outcomes |\n|---|---:|---:|---:|---:|---:|---:|---|")


def row(r: dict[str, object]) -> str:
    outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(r["outcomes"].items()))  # type: ignore[attr-defined]
    if r["extra"]:
        outcomes += f" ({r['extra']})"
    return (f"| {r['scenario']} | {r['calls']} | {r['rate']:.0f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['cpu_us']:.0f} | {r['rss_mb']:.0f} | {outcomes} |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--gateway":
        raise_fd_limit()
        asyncio.run(serve_gateway(sys.argv[2]))
    elif len(sys.argv) == 5 and sys.argv[1] == "--attacker":
        raise_fd_limit()
        asyncio.run(serve_attacker(int(sys.argv[2]), int(sys.argv[3]),
                                   sys.argv[4] == "trickle"))
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
        parser.add_argument("--quick", action="store_true")
        parser.add_argument("--only", default="",
                            help=f"comma-separated scenarios among {', '.join(SCENARIOS)}")
        parser.add_argument("--agi", action="append", default=[], metavar="KEY=VALUE",
                            help="an extra [agi] setting of the gateway (TOML), repeatable")
        parser.add_argument("--attacker-here", action="store_true",
                            help="run the idlers in the bench process, beside the calls "
                            "(default: their own process, so the latency is the gateway's)")
        asyncio.run(main(parser.parse_args()))
