#!/usr/bin/env python3
"""Field bench: the real gateway process on the production shape, under bursts and idlers.

The gateway runs as its own process (``gateway.app.App`` from a TOML file: Redis store and
Redis audit stream on a redis-server this bench starts, one automated French campaign, the
clock fixed at a legal instant), exactly as ``dialer-gateway serve`` builds it. The load
comes from this process, emulating Asterisk (connect, send a 24-line ``agi_*``
environment, answer every command ``200``, measure connect -> close).

Scenarios (each reports calls, verdict counts, p50/p99 latency, the gateway's CPU per call
and its RSS):

- ``burst N``: N sessions in flight, closed loop (each finished call starts the next);
- ``open R/s``: a new call every 1/R s whatever happened to the previous ones (a dialer);
- ``idle K``: K connections that never send their environment, re-opened as the gateway
  closes them, while valid calls run sequentially;
- ``slowloris K``: K connections trickling one byte a second, same valid calls.

Usage: ``.venv/bin/python bench/field.py [--quick]``; prints a markdown table.
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

    from gateway.app import App
    from gateway.config import load_config
    from gateway.logs import configure_logging

    now = datetime(2026, 12, 1, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))
    config = load_config(Path(config_path), env={})
    lg = config.logging
    configure_logging(lg.level, "json", lg.number_redaction, lg.hash_key)  # type: ignore[arg-type]
    app = App(config, clock=lambda: now)
    await app.start()
    print(json.dumps({"agi": app.agi_address[1]}), flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await app.stop()


@contextlib.asynccontextmanager
async def gateway(url: str) -> AsyncIterator[tuple[int, int]]:
    """(agi port, pid) of a gateway child process."""
    with tempfile.TemporaryDirectory(prefix="dg-bench-field-") as tmp:
        path = Path(tmp) / "gateway.toml"
        path.write_text(CONFIG.format(url=url, campaign=CAMPAIGN), encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--gateway", str(path),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None and proc.stdin is not None
        try:
            async with asyncio.timeout(30):
                line = await proc.stdout.readline()
            yield int(json.loads(line)["agi"]), proc.pid
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


async def one_call(port: int, number: str) -> tuple[float, str]:
    """(latency_s, 'VERDICT reason' or an error) of one emulated Asterisk session."""
    started = time.perf_counter()
    outcome = "no answer"
    try:
        async with asyncio.timeout(SESSION_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(HOST, port)
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


async def closed_loop(port: int, pid: int, numbers: Numbers, in_flight: int,
                      calls: int) -> dict[str, object]:
    results: list[tuple[float, str]] = []
    todo = iter(range(calls))

    async def worker() -> None:
        for _ in todo:
            results.append(await one_call(port, numbers.take()))

    cpu0, t0 = proc_cpu_s(pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - t0
    return summary(f"burst, {in_flight} in flight", results, proc_cpu_s(pid) - cpu0,
                   proc_rss_mb(pid), elapsed)


async def open_loop(port: int, pid: int, numbers: Numbers, rate: float,
                    seconds: float) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    tasks = []
    cpu0, t0 = proc_cpu_s(pid), loop.time()
    for i in range(int(rate * seconds)):
        delay = t0 + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)  # the schedule of a dialer, not a synchronisation
        tasks.append(asyncio.create_task(one_call(port, numbers.take())))
    results = list(await asyncio.gather(*tasks))
    elapsed = loop.time() - t0
    return summary(f"open loop, {rate:.0f} calls/s", results, proc_cpu_s(pid) - cpu0,
                   proc_rss_mb(pid), elapsed)


async def with_idlers(port: int, pid: int, numbers: Numbers, idle: int, trickle: bool,
                      calls: int) -> dict[str, object]:
    """``idle`` connections kept up (re-opened when closed) while valid calls run."""
    stop = asyncio.Event()
    all_open = asyncio.Event()
    opened = 0

    async def idler() -> None:
        nonlocal opened
        while not stop.is_set():
            try:
                # 10 loopback sources, under agi.max_pending_per_source (1024) each
                reader, writer = await asyncio.open_connection(
                    HOST, port, local_addr=(f"127.0.0.{2 + opened % 10}", 0))
            except OSError:
                await asyncio.sleep(0.05)  # the gateway's backlog is full: back off
                continue
            opened += 1
            if opened >= idle:
                all_open.set()
            try:
                if trickle:
                    for byte in env_block("0600000001", CAMPAIGN):
                        writer.write(bytes([byte]))
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(1.0):  # one byte a second
                                if not await reader.read(1):
                                    break
                        if stop.is_set():
                            break
                else:
                    with contextlib.suppress(OSError):
                        await reader.read(1)  # until the gateway closes it
            except OSError:
                pass
            finally:
                writer.close()

    idlers = [asyncio.create_task(idler()) for _ in range(idle)]
    try:
        held = "all"
        try:
            async with asyncio.timeout(IDLERS_OPEN_DEADLINE_S):
                await all_open.wait()
        except TimeoutError:  # a loaded host: measure with what could connect, and say so
            held = f"only {opened}"
        rss = proc_rss_mb(pid)
        results: list[tuple[float, str]] = []
        cpu0, t0 = proc_cpu_s(pid), time.perf_counter()
        for _ in range(calls):
            results.append(await one_call(port, numbers.take()))
        elapsed = time.perf_counter() - t0
        rss = max(rss, proc_rss_mb(pid))
        reopened = max(0, opened - idle)
    finally:
        stop.set()
        for task in idlers:
            task.cancel()
        await asyncio.gather(*idlers, return_exceptions=True)
    kind = "slowloris (1 byte/s)" if trickle else "idle"
    return summary(f"{idle} {kind} + sequential calls", results, proc_cpu_s(pid) - cpu0, rss,
                   elapsed, extra=f"{held} {idle} connected before the calls, "
                   f"{reopened} re-opened during the run")


async def main(args: argparse.Namespace) -> None:
    raise_fd_limit()
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
        async with gateway(url) as (port, pid):
            await closed_loop(port, pid, numbers, 10, 200)  # warm-up
            for in_flight in (1, 50, 150, 250):
                calls = 200 if in_flight == 1 else (500 if args.quick else in_flight * 4)
                add(await closed_loop(port, pid, numbers, in_flight, calls))
            if not args.quick:
                for rate in (200, 1000):
                    add(await open_loop(port, pid, numbers, rate, 5.0))
            add(await with_idlers(port, pid, numbers, 5000, False, 100 if args.quick else 200))
            add(await with_idlers(port, pid, numbers, 300, True, 100 if args.quick else 200))
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
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
        parser.add_argument("--quick", action="store_true")
        asyncio.run(main(parser.parse_args()))
