#!/usr/bin/env python3
"""``make bench`` (workers part): one gateway process against N worker processes.

Production shape: a real ``dialer-gateway serve`` (its own processes, as systemd runs
it) on a redis-server the bench starts, Redis store and Redis audit stream, a campaign
whose numbers all have a consent (each number dialled once). The load comes from a
child process emulating Asterisk (connect, FastAGI environment, ``200 result=0`` to
every command, latency from connect to the gateway's close):

- sequential (1 call at a time) and 50 calls in flight, each for ``--seconds``;
- open loop: a new call every 1/rate s whatever the answers (as a dialer does), at
  200 / 1,000 / 2,000 calls/s for ``--seconds``; a call not answered within 5 s counts
  as unanswered.

For each gateway shape (``workers = 1``; ``workers = N`` with the inherited socket;
``workers = N`` with SO_REUSEPORT) it reports throughput, p50/p99, CPU per call (user +
system time of the gateway's processes over the row, from /proc), the verdicts, and how
the calls spread over the workers (counted from the audit stream: each worker has its
own chain), the gateway's own count of sessions by outcome (``/metrics``) and the
kernel's listen-queue overflows during the row (``TcpExtListenOverflows``: a SYN dropped
because an accept queue was full; the counter is the whole machine's). Its ``[agi]``
limits are the defaults (``max_sessions`` 256, ``max_queue_wait_s`` 0.25 s, backlog
1024). Prints a markdown table for docs/benchmarks.md.

Beside the gateway, in the same run and under the same loads, the baselines of
``bench/baselines.py``: a bare asyncio FastAGI server (the floor), the same with the three
Redis round trips of a placed call and nothing else (the floor of any design with a
shared store and an audit stream), a naive server (one Redis command per rule,
phonenumbers on every call) and a process-per-call AGI script
(sequential and 50 in flight only: an open loop would start hundreds of interpreters a
second on a machine that can run a few dozen).

The pack is FR-2026 with its windows opened to every day, all day (``bench_pack``), so
that a run at any hour takes the whole path (load facts, decide, reserve, audit) instead
of answering ``BLOCK outside_hours``; holidays still block.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

HOST = "127.0.0.1"
CAMPAIGN = "bench"
NUMBERS = 100_000  # consented numbers 0600000000 ..; each dialled at most once
SESSION_TIMEOUT_S = 5.0
START_TIMEOUT_S = 60.0
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def env_block(number: str) -> bytes:
    return (
        "agi_network: yes\nagi_network_script: screen\nagi_request: agi://127.0.0.1/screen\n"
        "agi_channel: PJSIP/trunk-00000001\nagi_language: en\nagi_type: PJSIP\n"
        "agi_uniqueid: 1718000000.1\nagi_version: 22.10.1\nagi_callerid: unknown\n"
        "agi_context: outbound\nagi_extension: s\nagi_priority: 2\n"
        f"agi_arg_1: {number}\nagi_arg_2: {CAMPAIGN}\n\n"
    ).encode()


# --- the client (child process) ---------------------------------------------------------


async def one_call(port: int, number: str) -> tuple[float, str]:
    """(latency_s, "VERDICT reason") of one emulated Asterisk session (asyncio streams:
    the ``streams`` generator, the one of the rounds before 2026-12-07 20:10 UTC)."""
    started = time.perf_counter()
    answer = ""
    async with asyncio.timeout(SESSION_TIMEOUT_S):
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(env_block(number))
            while line := await reader.readline():
                if b"GW_VERDICT=" in line:
                    answer = verdict_of(line)
                writer.write(b"200 result=0\n")
        finally:
            writer.close()
    return time.perf_counter() - started, answer


def verdict_of(line: bytes) -> str:
    """"VERDICT reason" from the gateway's MSet line."""
    text = line.decode()
    verdict = text.split("GW_VERDICT=", 1)[1].split(",", 1)[0]
    reason = text.split("GW_REASON=", 1)[1].split(",", 1)[0]
    return f"{verdict} {reason}"


class _Session(asyncio.Protocol):
    """One emulated Asterisk session as a bare protocol (the ``protocol`` generator): the
    same bytes as :func:`one_call` (environment, ``200 result=0`` to every line), with
    no stream reader or writer, no task of its own and no per-line await; the latency
    ends when the gateway's end of stream is read, as there."""

    __slots__ = ("answer", "buffer", "done", "ended", "env", "transport")

    def __init__(self, env: bytes, done: asyncio.Future[None]) -> None:
        self.env, self.done = env, done
        self.buffer = b""
        self.answer = ""
        self.ended = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a cast, not an isinstance check: uvloop's transports are not asyncio.Transport
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.env)

    def data_received(self, data: bytes) -> None:
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        assert self.transport is not None
        for line in lines:
            if b"GW_VERDICT=" in line:
                self.answer = verdict_of(line)
            self.transport.write(b"200 result=0\n")

    def eof_received(self) -> bool:
        self._end()
        return False  # the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def _end(self) -> None:
        if not self.done.done():
            self.ended = time.perf_counter()
            self.done.set_result(None)


async def one_call_protocol(port: int, number: str) -> tuple[float, str]:
    """:func:`one_call` with :class:`_Session` (the default generator)."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    session = _Session(env_block(number), loop.create_future())
    async with asyncio.timeout(SESSION_TIMEOUT_S):
        transport, _ = await loop.create_connection(lambda: session, HOST, port)
        try:
            await session.done
        finally:
            transport.close()
    return session.ended - started, session.answer


# uvloop: the protocol generator on uvloop's loop (the client only; the gateway runs its
# own [service] event_loop)
GENERATORS = {"protocol": one_call_protocol, "streams": one_call,
              "uvloop": one_call_protocol}


async def client(port: int, mode: str, value: float, seconds: float, start: int,
                 generator: str = "protocol", warmup_s: float = 0.0) -> dict[str, Any]:
    """mode "closed": ``value`` calls in flight; mode "open": ``value`` new calls/s.
    ``generator``: ``protocol`` (a bare asyncio protocol per call; ``uvloop``: the same,
    the caller has installed uvloop) or ``streams`` (asyncio streams, the rounds before
    2026-12-07 20:10 UTC); its own CPU is reported. ``warmup_s``: the same load first,
    for that long, then the ``seconds`` measured: the warm-up's calls count in the
    outcomes (every call is accounted for) and in the CPU per call, not in the rate or the
    latencies (this process is new for each row, and its own first calls are slow)."""
    loop = asyncio.get_running_loop()
    emulate = GENERATORS[generator]
    outcomes: Counter[str] = Counter()
    numbers = iter(range(start, 10**9))

    async def phase(length_s: float) -> tuple[list[float], list[float], float]:
        latencies: list[float] = []
        began: list[float] = []  # loop time each answered call started, beside its latency

        async def call() -> None:
            t0 = loop.time()
            try:
                latency, answer = await emulate(port, f"06{next(numbers) % NUMBERS:08d}")
            except TimeoutError:
                outcomes["unanswered (timeout)"] += 1
                return
            except OSError as exc:
                outcomes[f"connect error {type(exc).__name__}"] += 1
                return
            outcomes[answer or "no answer"] += 1
            if answer:
                latencies.append(latency)
                began.append(t0)

        started = time.perf_counter()
        deadline = loop.time() + length_s
        if mode == "closed":
            async def caller() -> None:
                while loop.time() < deadline:
                    await call()
            await asyncio.gather(*(caller() for _ in range(int(value))))
        else:
            tasks = []
            interval = 1.0 / value
            due = loop.time()
            while due < deadline:
                tasks.append(asyncio.create_task(call()))
                due += interval
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.gather(*tasks)
        return latencies, began, time.perf_counter() - started

    cpu_started = time.process_time()
    warm = (await phase(warmup_s))[0] if warmup_s > 0 else []
    latencies, began, elapsed = await phase(seconds)
    client_cpu_s = time.process_time() - cpu_started
    tail = tail_windows(began, latencies)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 \
            if latencies else float("nan")

    return {"offered": sum(outcomes.values()), "answered": len(latencies),
            "answered_all": len(latencies) + len(warm), "warmup_calls": len(warm),
            "rate": len(latencies) / elapsed, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "outcomes": dict(outcomes), "elapsed_s": elapsed, "client_cpu_s": client_cpu_s,
            "tail": tail}


TAIL_WINDOW_S = 0.1


def tail_windows(began: list[float], latencies: list[float]) -> list[int]:
    """Where the slowest 1 % of the calls started: [windows of TAIL_WINDOW_S holding at
    least one, windows in the run, most in one window]. Spread over the run, the tail is
    the cost of a call; bunched into a few windows, it is a few slow moments of the
    machine (or of the server) that every call then in flight waited through."""
    if not latencies:
        return [0, 0, 0]
    cut = sorted(latencies)[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    first = min(began)
    counts = Counter(int((t - first) / TAIL_WINDOW_S)
                     for t, latency in zip(began, latencies, strict=True) if latency >= cut)
    windows = int((max(began) - first) / TAIL_WINDOW_S) + 1
    return [len(counts), windows, max(counts.values())]


def run_client(port: int, mode: str, value: float, seconds: float, start: int,
               generator: str = "protocol", warmup_s: float = 0.0) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--client", str(port), mode, str(value), str(seconds),
         str(start), generator, str(warmup_s)], capture_output=True, text=True,
        timeout=warmup_s + seconds + 60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"bench client failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --- redis-server and the gateway -------------------------------------------------------


@contextlib.contextmanager
def redis_server(tmp: Path, unix: bool = False) -> Iterator[tuple[str, int]]:
    """A redis-server on a free loopback port; ``unix``: its URL names its unix socket
    instead (the same server listens on both)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("bench/workers.py: no redis-server (`make redis-server`)")
    port = free_port()
    sock = tmp / "redis.sock"
    proc = subprocess.Popen([binary, "--bind", HOST, "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(tmp),
                             "--unixsocket", str(sock), "--unixsocketperm", "700"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(host=HOST, port=port, socket_timeout=0.5)
        end = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)  # redis-server still starting
        client.close()
        yield (f"unix://{sock}?db=0" if unix else f"redis://{HOST}:{port}/0"), proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def seed(url: str) -> None:
    from gateway.core.model import ConsentRecord
    from gateway.store.base import ImportMode
    from gateway.store.factory import open_store

    now = datetime.now(UTC)
    store = open_store(url, socket_timeout_s=5.0, connect_timeout_s=1.0)
    try:
        await store.import_consents(
            (ConsentRecord(id=f"c{i}", e164=f"+336{i:08d}", professional="acme",
                           product_category="telecom", collected_at=now - timedelta(days=30),
                           expires_at=now + timedelta(days=300), channel="web-form",
                           proof_ref=f"form-{i}") for i in range(NUMBERS)),
            mode=ImportMode.REPLACE, now=now)
    finally:
        await store.close()


def bench_pack(tmp: Path) -> Path:
    """FR-2026 with windows open every day, all day: the same rules at any hour."""
    import re

    source = Path(__file__).resolve().parent.parent / "gateway/core/packs/fr-2026.toml"
    text = source.read_text(encoding="utf-8")
    windows = "".join(f'{day} = ["00:00-24:00"]\n'
                      for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    text = re.sub(r"\[windows\][^\n]*\n(?:[a-z]{3} = [^\n]*\n)+", "[windows]\n" + windows,
                  text, count=1)
    packs = tmp / "packs"
    packs.mkdir(exist_ok=True)
    (packs / "fr-2026.toml").write_text(text, encoding="utf-8")
    return packs


def gateway_toml(url: str, agi: int, http: int, workers: int, socket_mode: str,
                 packs: Path, event_loop: str = "auto") -> str:
    return f"""
[policy]
packs_dir = "{packs}"
[store]
url = "{url}"
[agi]
listen = "{HOST}:{agi}"
[http]
listen = "{HOST}:{http}"
[service]
workers = {workers}
worker_socket = "{socket_mode}"
event_loop = "{event_loop}"
instance_id = "bench"
[audit]
sink = "redis"
[logging]
format = "json"
[campaigns.{CAMPAIGN}]
professional = "acme"
product_category = "telecom"
sector = "telecom"
automated = true
caller_id = "+33162000001"
jurisdiction = "FR"
"""


def http_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=5) as resp:
        return json.loads(resp.read())


def wait_ready(proc: subprocess.Popen[bytes], http: int) -> dict[str, Any]:
    """The gateway's ``/readyz`` answer once it says ready (polled: a process starting)."""
    end = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            ready: dict[str, Any] = http_json(http, "/readyz")
            if ready.get("ready"):
                return ready
        except OSError:
            pass
        if time.monotonic() > end or proc.poll() is not None:
            raise RuntimeError("gateway did not become ready")
        time.sleep(0.1)  # a process starting: poll its /readyz

def cpu_seconds(pids: list[int], children: bool = False) -> float:
    """User + system time of ``pids``; with ``children``, plus that of their reaped
    children (the process-per-call launcher's scripts)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
        if children:
            total += int(fields[13]) + int(fields[14])  # cutime + cstime
    return total / TICKS


@contextlib.contextmanager
def gateway(tmp: Path, url: str, workers: int, socket_mode: str, source: str = "",
            event_loop: str = "auto") -> Iterator[dict[str, Any]]:
    """``source``: a checkout whose ``gateway`` package runs instead of this one (A/B);
    ``event_loop``: its ``[service] event_loop`` (``--event-loop``)."""
    agi, http = free_port(), free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DIALER_GATEWAY_", "NOTIFY_SOCKET"))}
    if source:
        env["PYTHONPATH"] = source
    conf = tmp / f"gateway-{workers}-{socket_mode}.toml"
    conf.write_text(gateway_toml(url, agi, http, workers, socket_mode, bench_pack(tmp),
                                 event_loop))
    script = Path(sys.executable).with_name("dialer-gateway")
    # run in tmp: a supervisor older than `python -P` (a --ref checkout) starts its
    # workers with the working directory first on sys.path, so from this checkout's root
    # its workers would have run this checkout's gateway package, not the --ref one
    proc = subprocess.Popen([str(script), "--config", str(conf), "serve"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            cwd=tmp)
    try:
        ready = wait_ready(proc, http)
        pids = [proc.pid] + [w["pid"] for w in ready.get("workers", [])]
        yield {"agi": agi, "pids": pids, "audit": True, "http": http}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def agi_outcomes(http: int) -> Counter[str]:
    """The gateway's own count of FastAGI sessions by outcome (all workers)."""
    counts: Counter[str] = Counter()
    with urllib.request.urlopen(f"http://{HOST}:{http}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("dialer_gateway_agi_sessions_total{"):
                outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
                counts[outcome] += int(float(line.rsplit(" ", 1)[1]))
    return counts


def listen_overflows() -> int:
    """TcpExtListenOverflows of this network namespace (accept queue full: SYN dropped)."""
    with open("/proc/net/netstat", encoding="ascii") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(table.get("ListenOverflows", 0))
    return 0


def per_instance(url: str) -> Counter[str]:
    """Audit records per chain (worker) in the stream."""
    import redis

    client = redis.Redis.from_url(url)
    counts: Counter[str] = Counter()
    last = "-"
    while True:
        page: list[Any] = list(client.xrange("dg:audit", min=last, max="+", count=5000) or [])
        for entry_id, fields in page:
            if entry_id == last:
                continue
            counts[json.loads(fields[b"r"])["instance"]] += 1
        if len(page) < 5000:
            break
        last = page[-1][0]
    client.close()
    return counts


# --- the run ----------------------------------------------------------------------------

LOADS = [("sequential", "closed", 1), ("50 in flight", "closed", 50),
         ("open 200/s", "open", 200), ("open 1,000/s", "open", 1000),
         ("open 2,000/s", "open", 2000)]
# twice one worker's capacity on a fast VM: with --loads 4000/s only (not in `make bench`)
EXTRA_LOADS = [("open 4,000/s", "open", 4000)]


@contextlib.contextmanager
def baseline(role: str, url: str) -> Iterator[dict[str, Any]]:
    import baselines

    args = ["--bare"] if role == "bare" else [f"--{role}", url]
    with baselines.started(*args) as (port, pid):
        yield {"agi": port, "pids": [pid], "children": role == "per-call"}


def pin(pids: list[int], cpus: set[int]) -> None:
    """Every thread of ``pids`` on ``cpus`` (affinity is per thread; new threads inherit)."""
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(int(tid), cpus)


def main(args: argparse.Namespace) -> None:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    def gateway_shape(tmp: Path, url: str, workers: int, socket_mode: str, source: str = "",
                      ) -> contextlib.AbstractContextManager[dict[str, Any]]:
        return gateway(tmp, url, workers, socket_mode, source, args.event_loop)

    cores = len(os.sched_getaffinity(0))
    n = args.workers or cores
    shapes: dict[str, Any] = {
        "bare": ("bare FastAGI (floor)", lambda tmp, url: baseline("bare", url)),
        "bare-redis": ("bare FastAGI + 3 Redis round trips (floor with a store)",
                       lambda tmp, url: baseline("bare-redis", url)),
        "gw1": ("gateway, 1 worker", lambda tmp, url: gateway_shape(tmp, url, 1, "shared")),
        "gw1-ref": (f"gateway, 1 worker, {args.ref or 'no --ref'}",
                    lambda tmp, url: gateway_shape(tmp, url, 1, "shared", args.ref)),
        "gwN": (f"gateway, {n} workers (shared)",
                lambda tmp, url: gateway_shape(tmp, url, n, "shared")),
        "gwN-ref": (f"gateway, {n} workers (shared), {args.ref or 'no --ref'}",
                    lambda tmp, url: gateway_shape(tmp, url, n, "shared", args.ref)),
        "gwN-reuseport": (f"gateway, {n} workers (reuseport)",
                          lambda tmp, url: gateway_shape(tmp, url, n, "reuseport")),
        "naive": ("naive (1 Redis command per rule)",
                  lambda tmp, url: baseline("naive", url)),
        "per-call": ("process-per-call AGI script",
                     lambda tmp, url: baseline("per-call", url)),
    }
    chosen = (args.shapes.split(",") if args.shapes
              else [s for s in shapes if not s.endswith("-ref")])
    chosen *= args.repeat  # A/B: e.g. --shapes gw1-ref,gw1 --repeat 3 alternates them
    loads = ([load for load in LOADS + EXTRA_LOADS
              if load[0].split()[-1].replace(",", "") in args.loads.split(",")]
             if args.loads else LOADS)
    rows: list[tuple[str, str, dict[str, Any] | None, float, float, str, str]] = []
    used = 0
    with tempfile.TemporaryDirectory(prefix="dg-bench-workers-") as tmp_s:
        tmp = Path(tmp_s)
        with redis_server(tmp, args.redis_unix) as (url, redis_pid):
            asyncio.run(seed(url))
            import baselines

            baselines.seed(url, NUMBERS)
            for key in chosen:
                shape, start = shapes[key]
                with start(tmp, url) as gw:
                    pinned = args.pin and cores > 1 and len(gw["pids"]) == 1
                    if pinned:  # the server alone on the last core, the rest on the others
                        last = max(os.sched_getaffinity(0))
                        others = os.sched_getaffinity(0) - {last}
                        pin(gw["pids"], {last})
                        pin([os.getpid(), redis_pid], others)
                        shape = f"{shape}, pinned"
                    for load, kind, value in loads:
                        if key == "per-call" and kind == "open":
                            rows.append((shape, load, None, 0.0, 0.0, "", ""))
                            continue
                        children = bool(gw.get("children"))
                        before_cpu = cpu_seconds(gw["pids"], children)
                        before_redis = cpu_seconds([redis_pid])
                        before = per_instance(url) if gw.get("audit") else Counter()
                        before_out = agi_outcomes(gw["http"]) if "http" in gw else Counter()
                        overflows = listen_overflows()
                        # the process-per-call script's calls take a quarter of a second
                        # each: nothing to warm up, and 50 in flight never answer in time
                        stats = run_client(gw["agi"], kind, value, args.seconds, used,
                                           args.generator,
                                           0.0 if key == "per-call" else args.warmup)
                        overflows = listen_overflows() - overflows
                        server = ((agi_outcomes(gw["http"]) - before_out) if "http" in gw
                                  else Counter())
                        used += int(stats["offered"]) + 1
                        cpu = cpu_seconds(gw["pids"], children) - before_cpu
                        redis_cpu = cpu_seconds([redis_pid]) - before_redis
                        spread = (per_instance(url) - before) if gw.get("audit") else Counter()
                        total = sum(spread.values()) or 1
                        share = " / ".join(f"{100 * n / total:.0f}" for _, n in
                                           sorted(spread.items())) or "-"
                        side = (", ".join(f"{k}: {v}" for k, v in sorted(server.items()))
                                + f"; listen overflows: {overflows}") if server else "-"
                        rows.append((shape, load, stats, cpu, redis_cpu, share, side))
                    if pinned:
                        pin([os.getpid(), redis_pid], os.sched_getaffinity(0) | {last})
                        print(f"  {shape:36} {load:13} {stats['rate']:6.0f}/s "
                              f"p50 {stats['p50_ms']:.1f} p99 {stats['p99_ms']:.1f} ms "
                              f"{stats['outcomes']} spread {share} server {dict(server)} "
                              f"listen overflows {overflows}", file=sys.stderr, flush=True)
    load_avg = os.getloadavg()
    print(f"\nWorkers bench: {cores} CPU, Python {sys.version.split()[0]}, loopback, "
          f"Redis store + Redis audit stream, {args.generator} load generator, "
          f"{args.seconds:g} s per row after {args.warmup:g} s of warm-up, load average "
          f"at the end {load_avg[0]:.1f} / {load_avg[1]:.1f} / {load_avg[2]:.1f}\n")
    print("| server | load | offered | answered/s | p50 ms | p99 ms | CPU µs/call | "
          "redis-server CPU µs/call | load generator CPU µs/call | outcomes | "
          "calls per worker % | gateway's session outcomes |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|")
    for shape, load, s, cpu, redis_cpu, share, side in rows:
        if s is None:
            print(f"| {shape} | {load} | - | - | - | - | - | - | - | not run | - | - |")
            continue
        every = s.get("answered_all", s["answered"])  # the warm-up's calls cost CPU too
        per_call = f"{1e6 * cpu / every:.0f}" if every else "-"
        redis_per_call = f"{1e6 * redis_cpu / every:.0f}" if every else "-"
        client_per_call = f"{1e6 * s['client_cpu_s'] / every:.0f}" if every else "-"
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(s["outcomes"].items()))
        p50, p99 = ((f"{s['p50_ms']:.1f}", f"{s['p99_ms']:.1f}") if s["answered"]
                    else ("-", "-"))
        print(f"| {shape} | {load} | {s['offered']} | {s['rate']:.0f} | {p50} | {p99} | "
              f"{per_call} | {redis_per_call} | {client_per_call} | {outcomes} | {share} | "
              f"{side} |")
    tails = [f"{shape}, {load}: {s['tail'][0]} of {s['tail'][1]} windows, at most "
             f"{s['tail'][2]} in one" for shape, load, s, *_ in rows
             if s and s.get("tail") and load.startswith("open")]
    if tails:
        print(f"\nWhere the slowest 1 % of the calls started ({TAIL_WINDOW_S * 1000:.0f} ms "
              "windows; few windows holding many: the tail is a few slow moments, not "
              "the cost of a call):\n" + "\n".join(f"- {t}" for t in tails))
    best = {shape: max((s["rate"] for sh, _, s, *_ in rows if sh == shape and s), default=0)
            for shape, _ in shapes.values()}
    per_call_best = best.get(shapes["per-call"][0], 0)
    if per_call_best:
        print(f"\nBest answered/s over the loads, against the process-per-call script "
              f"({per_call_best:.1f}/s): " + ", ".join(
                  f"{shape} {rate / per_call_best:.0f}x" for shape, rate in best.items()
                  if rate and shape != shapes["per-call"][0]))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per row")
    parser.add_argument("--workers", type=int, default=0, help="N (default: one per core)")
    parser.add_argument("--loads", default="", help="comma-separated subset of: sequential, "
                        "flight, 200/s, 1000/s, 2000/s, 4000/s (the last word of a load's name; "
                        "default: all but 4000/s)")
    parser.add_argument("--shapes", default="", help="comma-separated subset of: bare, "
                        "bare-redis, gw1, gwN, gwN-reuseport, naive, per-call, gw1-ref, "
                        "gwN-ref (default: all but the -ref ones)")
    parser.add_argument("--ref", default="", help="gw1-ref, gwN-ref: a checkout (e.g. `git archive "
                        "main | tar -x -C DIR`) whose gateway package runs instead of this "
                        "one, to compare two versions in one run")
    parser.add_argument("--redis-unix", action="store_true", help="the gateway and the "
                        "baselines reach redis-server through its unix socket (a Redis on "
                        "the same host) instead of loopback TCP")
    parser.add_argument("--pin", action="store_true", help="a one-process server (bare, "
                        "gw1) alone on the last core; this bench, its load generator and "
                        "redis-server on the others (on 2 cores: the generator off the "
                        "gateway's core)")
    parser.add_argument("--event-loop", choices=("auto", "asyncio", "uvloop"),
                        default="auto", help="[service] event_loop of the gateway (default: "
                        "auto, the shipped default: uvloop when installed)")
    parser.add_argument("--generator", choices=sorted(GENERATORS), default="uvloop",
                        help="the Asterisk emulator: uvloop (a bare protocol per call on "
                        "uvloop's loop, the default), protocol (the same on asyncio's "
                        "loop) or streams (asyncio streams, the rounds before 2026-12-07 "
                        "20:10 UTC)")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of the row's "
                        "load before the measured --seconds (default 0.5; 0: none): its calls "
                        "count in the outcomes and the CPU per call, not in the rate and the "
                        "latencies. The load generator is a new process per row, and its "
                        "first calls took 7-10 ms even against a warm gateway")
    parser.add_argument("--repeat", type=int, default=1, help="run the chosen shapes this "
                        "many times, in turn (A/B against --ref, spreading the noise)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        port, mode, value, seconds, start = sys.argv[2:7]
        generator = sys.argv[7] if len(sys.argv) > 7 else "protocol"
        warmup = float(sys.argv[8]) if len(sys.argv) > 8 else 0.0
        if generator == "uvloop":
            import uvloop  # the test extra installs it (`make bench` uses that venv)
            uvloop.install()
        print(json.dumps(asyncio.run(client(int(port), mode, float(value), float(seconds),
                                            int(start), generator, warmup))))
    else:
        main(parse(sys.argv[1:]))
