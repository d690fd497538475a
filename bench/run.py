#!/usr/bin/env python3
"""``make bench``: FastAGI screening throughput and latency, loopback only, bounded.

The servers run in this process; the load comes from a child process (this script with
``--client``) emulating Asterisk: it connects, sends a FastAGI environment, answers every
command with ``200 result=0`` and measures each session from connect to the server's close.
Each scenario runs sequentially (1 session at a time) and with 50 concurrent sessions,
for at most ``--seconds`` (default 1.5 s) or ``--max-sessions`` sessions, in ``--rounds``
(default 3) interleaved rounds; the table shows the round of median throughput.

Scenarios, measured in the same run:
- bare: a bare asyncio FastAGI server that answers one fixed MSet with no logic;
- agi-mset / agi-set5: our server with an instant in-process screener, answering with one
  ``EXEC MSet`` or with five ``SET VARIABLE``;
- service-memory: our server with the real Service, built-in packs, memory store;
- service-redis: the same on a Redis store, with a redis-server the bench starts itself
  (skipped, and said so, when no redis-server binary exists).

Prints a markdown table (paste into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

HOST = "127.0.0.1"
CAMPAIGN = "bench-promo"
NUMBERS = 40_000  # consented numbers 0600000000 .. 0600039999 (each dialled once)
NOW = datetime(2026, 12, 1, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))  # a legal Tuesday
SESSION_TIMEOUT_S = 5.0
FIXED_MSET = (
    b'EXEC "MSet" "GW_VERDICT=ALLOW,GW_REASON=ok,GW_E164=+33600000000,'
    b'GW_RETRY_AFTER=,GW_DECISION_ID=bare"\n'
)


def env_block(number: str, campaign: str) -> bytes:
    lines = [
        "agi_network: yes",
        "agi_network_script: screen",
        "agi_request: agi://127.0.0.1/screen",
        "agi_channel: PJSIP/trunk-00000001",
        "agi_language: en",
        "agi_type: PJSIP",
        "agi_uniqueid: 1718000000.1",
        "agi_version: 22.10.1",
        "agi_callerid: unknown",
        "agi_calleridname: unknown",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        "agi_dnid: unknown",
        "agi_rdnis: unknown",
        "agi_context: outbound",
        "agi_extension: s",
        "agi_priority: 2",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        "agi_threadid: 140000000000000",
        f"agi_arg_1: {number}",
        f"agi_arg_2: {campaign}",
    ]
    return ("\n".join(lines) + "\n\n").encode()


# --- the client (child process) ---------------------------------------------------------


async def one_session(port: int, number: str) -> tuple[float, int, str]:
    """One emulated Asterisk session: (latency_s, commands, verdict or '')."""
    started = time.perf_counter()
    commands = 0
    verdict = ""
    async with asyncio.timeout(SESSION_TIMEOUT_S):
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(env_block(number, CAMPAIGN))
            while line := await reader.readline():
                commands += 1
                if b"GW_VERDICT=ALLOW" in line or b'"GW_VERDICT" "ALLOW"' in line:
                    verdict = "ALLOW"
                elif b"GW_VERDICT" in line:
                    verdict = "BLOCK"
                writer.write(b"200 result=0\n" if line.startswith(b"EXEC") else b"200 result=1\n")
        finally:
            writer.close()
    return time.perf_counter() - started, commands, verdict


async def client(
    port: int, concurrency: int, seconds: float, max_sessions: int, start: int
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    latencies: list[float] = []
    errors = 0
    commands = 0
    allowed = 0
    counter = iter(range(start, 10**9))

    async def worker() -> None:
        nonlocal errors, commands, allowed
        while loop.time() < deadline and len(latencies) + errors < max_sessions:
            number = f"06{next(counter) % NUMBERS:08d}"
            try:
                latency, sent, verdict = await one_session(port, number)
            except (OSError, TimeoutError):
                errors += 1
                continue
            commands += sent
            if verdict:
                latencies.append(latency)
                allowed += verdict == "ALLOW"
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "sessions": len(latencies),
        "errors": errors,
        "elapsed_s": elapsed,
        "rate": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "commands_per_session": commands / max(1, len(latencies)),
        "allowed": allowed,
    }


def run_client(
    port: int, concurrency: int, seconds: float, max_sessions: int, start: int
) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--client", str(port), str(concurrency), str(seconds),
         str(max_sessions), str(start)],
        capture_output=True, text=True, timeout=seconds + 30, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench client failed: {proc.stderr[-2000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --- the servers (this process) ---------------------------------------------------------


@contextlib.asynccontextmanager
async def bare_server() -> AsyncIterator[int]:
    """The floor: a FastAGI server with no logic, no limits, no logging."""
    tasks: set[asyncio.Task[None]] = set()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(SESSION_TIMEOUT_S):
                while (await reader.readline()) not in (b"\n", b""):
                    pass
                writer.write(FIXED_MSET)
                await writer.drain()
                await reader.readline()
        finally:
            writer.close()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(session(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(on_connect, HOST, 0, backlog=256)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()
        if tasks:
            await asyncio.wait(tasks, timeout=SESSION_TIMEOUT_S)


class InstantScreener:
    """Answers ALLOW at once: measures the FastAGI path alone."""

    def __init__(self) -> None:
        from gateway.core.model import Decision, Reason, Verdict
        from gateway.service_api import ScreenResult

        decision = Decision(Verdict.ALLOW, Reason.OK, "+33600000000", None, ())
        self._result = ScreenResult(
            Verdict.ALLOW, Reason.OK, "+33600000000", None, "0123456789abcdef", decision
        )

    async def screen(self, attempt: object, *, context: Mapping[str, str] | None = None) -> object:
        return self._result


@contextlib.asynccontextmanager
async def agi_server(screener: object, mode: str) -> AsyncIterator[int]:
    from gateway.agi.handlers import ScreenHandler
    from gateway.agi.server import AgiServer, AgiSettings
    from gateway.metrics import Metrics
    from gateway.observers import AgiMetrics

    metrics = Metrics([CAMPAIGN])
    server = AgiServer(
        {"screen": ScreenHandler(screener, variable_mode=mode)},  # type: ignore[arg-type]
        AgiSettings(),
        observer=AgiMetrics(metrics),
    )
    _, port = await server.start(HOST, 0)
    try:
        yield port
    finally:
        await server.close(5.0)


async def seeded_service(store: object) -> object:
    from gateway.core.model import Campaign, ConsentRecord
    from gateway.core.policy import Policy
    from gateway.metrics import Metrics
    from gateway.packs import builtin_packs
    from gateway.service import Service
    from gateway.store.base import ImportMode, Store

    assert isinstance(store, Store)
    campaign = Campaign(
        id=CAMPAIGN, professional="acme", product_category="telecom", sector="telecom",
        automated=True, caller_id="+33162000001",
    )
    consents = [
        ConsentRecord(
            id=f"c{i}", e164=f"+336{i:08d}", professional="acme", product_category="telecom",
            collected_at=NOW - timedelta(days=30), expires_at=NOW + timedelta(days=300),
            channel="web-form", proof_ref=f"form-{i}",
        )
        for i in range(NUMBERS)
    ]
    await store.import_consents(consents, mode=ImportMode.REPLACE, now=NOW)
    return Service(
        policy=Policy(packs=builtin_packs(), campaigns={CAMPAIGN: campaign}),
        store=store, audit=None, budget_s=0.5, instance_id="bench",
        observer=Metrics([CAMPAIGN]), clock=lambda: NOW,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def redis_server() -> AsyncIterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    import redis.asyncio as redis

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="dg-bench-redis-") as tmp:
        proc = await asyncio.create_subprocess_exec(
            binary, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no",
            "--dir", tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis(host=HOST, port=port, socket_timeout=0.5)
            try:
                async with asyncio.timeout(10.0):
                    while True:
                        try:
                            await client.ping()
                            break
                        except redis.ConnectionError:
                            await asyncio.sleep(0.05)  # redis-server still starting
            finally:
                await client.aclose()
            yield f"redis://{HOST}:{port}/0"
        finally:
            proc.terminate()
            try:
                async with asyncio.timeout(5.0):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                async with asyncio.timeout(5.0):
                    await proc.wait()


# --- the run ----------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    concurrency: int
    runs: list[dict[str, float]]

    @property
    def stats(self) -> dict[str, float]:
        """The run with the median throughput (the rounds are interleaved)."""
        ranked = sorted(self.runs, key=lambda s: s["rate"])
        return ranked[len(ranked) // 2]


async def main(args: argparse.Namespace) -> None:
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    from gateway.store.factory import open_store
    from gateway.store.memory import MemoryStore

    notes: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        screener = InstantScreener()
        ports = {
            "bare asyncio": await stack.enter_async_context(bare_server()),
            "agi, 1x MSet": await stack.enter_async_context(agi_server(screener, "mset")),
            "agi, 5x SET VARIABLE": await stack.enter_async_context(
                agi_server(screener, "set_variable")
            ),
        }
        memory = MemoryStore()
        stack.push_async_callback(memory.close)
        ports["service, memory store"] = await stack.enter_async_context(
            agi_server(await seeded_service(memory), "mset")
        )
        url = await stack.enter_async_context(redis_server())
        if url is None:
            notes.append("service, redis store: skipped (no redis-server; `make redis-server`)")
        else:
            store = open_store(url, socket_timeout_s=0.5, connect_timeout_s=0.5)
            stack.push_async_callback(store.close)
            ports["service, redis store"] = await stack.enter_async_context(
                agi_server(await seeded_service(store), "mset")
            )
        rows = {(name, c): Row(name, c, []) for name in ports for c in (1, 50)}
        used = dict.fromkeys(ports, 0)  # numbers already dialled per server: never reused
        for round_no in range(args.rounds):
            for (name, concurrency), row in rows.items():
                stats = await asyncio.to_thread(
                    run_client, ports[name], concurrency, args.seconds, args.max_sessions,
                    used[name],
                )
                used[name] += int(stats["sessions"] + stats["errors"]) + concurrency
                row.runs.append(stats)
                print(f"  round {round_no + 1} {name:22} c={concurrency:<3} "
                      f"{stats['rate']:7.0f}/s p50 {stats['p50_ms']:.2f} ms "
                      f"p99 {stats['p99_ms']:.2f} ms errors {stats['errors']:.0f}",
                      file=sys.stderr, flush=True)

    print(f"\nFastAGI bench: {os.cpu_count()} CPU, Python {sys.version.split()[0]}, "
          f"loopback; {args.rounds} interleaved rounds of {args.seconds:g} s per row, "
          f"median-throughput round shown\n")
    print("| scenario | concurrency | sessions | sessions/s | p50 ms | p99 ms | "
          "commands/session | ALLOW | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows.values():
        s = row.stats
        errors = sum(r["errors"] for r in row.runs)
        print(f"| {row.scenario} | {row.concurrency} | {s['sessions']:.0f} | {s['rate']:.0f} | "
              f"{s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['commands_per_session']:.0f} | "
              f"{100 * s['allowed'] / max(1, s['sessions']):.0f} % | {errors:.0f} |")
    for note in notes:
        print(f"\n{note}")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per row and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--max-sessions", type=int, default=20_000, help="per row")
    return parser.parse_args(argv)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        port, concurrency, seconds, max_sessions, start = sys.argv[2:7]
        out = asyncio.run(
            client(int(port), int(concurrency), float(seconds), int(max_sessions), int(start))
        )
        print(json.dumps(out))
    else:
        asyncio.run(main(parse(sys.argv[1:])))
