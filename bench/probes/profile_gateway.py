#!/usr/bin/env python3
"""Profile the gateway's per-call path in production shape (the profile recipe of
docs/benchmarks.md).

The same setup as ``bench/workers.py`` (a real ``dialer-gateway serve``, one worker, on a
redis-server this probe starts; Redis store and Redis audit stream, JSON logs at
``info``, consented numbers), but the gateway runs under ``cProfile``. The load is the
workers bench's Asterisk emulator (``--load sequential`` or ``--load flight``: 50 in
flight) for ``--seconds``. The profiler runs only during the load (SIGUSR1 starts it,
SIGUSR2 stops it and writes the file: start-up and imports stay out) and it counts the
main thread's CPU time (``time.thread_time``), not wall time: a ``socket.send`` that wakes
the reader on the other core, or an ``epoll`` wait, is not charged to the gateway.

It also prints the CPU per call of the gateway process and of redis-server over the
load, and the Redis commands per call (``INFO commandstats``): the CPU figures include
cProfile's own overhead (about 2x), read them against each other, not against the
workers bench.

    .venv/bin/python bench/probes/profile_gateway.py [--load flight] [--seconds 5]
        [--sort tottime] [--top 40] [--out /tmp/gw.prof] [--no-profile]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import workers  # bench/workers.py: its setup and its client

# Runs the gateway (``python -m gateway ...``) with a profiler driven by signals.
RUNNER = """
import cProfile, runpy, signal, sys, time
out, profile = sys.argv[1], cProfile.Profile(time.thread_time)
signal.signal(signal.SIGUSR1, lambda *_: profile.enable())
def stop(*_):
    profile.disable()
    profile.dump_stats(out)
signal.signal(signal.SIGUSR2, stop)
sys.argv = ["dialer-gateway", *sys.argv[2:]]
runpy.run_module("gateway", run_name="__main__")
"""


def user_system(pid: int) -> tuple[float, float]:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / workers.TICKS, int(fields[12]) / workers.TICKS


def commandstats(url: str) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("commandstats")
    finally:
        client.close()
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}


def main(args: argparse.Namespace) -> None:
    Path(args.out).unlink(missing_ok=True)
    kind, value = ("closed", 1) if args.load == "sequential" else ("closed", 50)
    with tempfile.TemporaryDirectory(prefix="dg-profile-") as tmp_s:
        tmp = Path(tmp_s)
        with workers.redis_server(tmp) as (url, redis_pid):
            asyncio.run(workers.seed(url))
            agi, http = workers.free_port(), workers.free_port()
            conf = tmp / "gateway.toml"
            conf.write_text(workers.gateway_toml(url, agi, http, 1, "shared",
                                                 workers.bench_pack(tmp)))
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("DIALER_GATEWAY_", "NOTIFY_SOCKET"))}
            proc = subprocess.Popen(
                [sys.executable, "-c", RUNNER, args.out,
                 "--config", str(conf), "serve"] if args.profile
                else [sys.executable, "-m", "gateway", "--config", str(conf), "serve"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp)
            try:
                workers.wait_ready(proc, http)
                (u0, s0), (ru0, rs0) = user_system(proc.pid), user_system(redis_pid)
                cmds0 = commandstats(url)
                if args.profile:
                    proc.send_signal(signal.SIGUSR1)
                stats = workers.run_client(agi, kind, value, args.seconds, 0)
                if args.profile:
                    proc.send_signal(signal.SIGUSR2)
                (u1, s1), (ru1, rs1) = user_system(proc.pid), user_system(redis_pid)
                cmds = commandstats(url)
                end = time.monotonic() + 30
                while (args.profile and not Path(args.out).exists()
                       and time.monotonic() < end):
                    time.sleep(0.1)  # the gateway writing its profile
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    n = stats["answered"] or 1
    print(f"{args.load}: {stats['answered']} calls, {stats['rate']:.0f}/s, "
          f"p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms, {stats['outcomes']}")
    print(f"CPU per call{' under cProfile' if args.profile else ''} (user + system): "
          f"gateway {1e6 * (u1 - u0) / n:.0f} + {1e6 * (s1 - s0) / n:.0f} µs, "
          f"redis-server {1e6 * (ru1 - ru0) / n:.0f} + {1e6 * (rs1 - rs0) / n:.0f} µs")
    print("Redis commands per call: " + ", ".join(
        f"{name} {(cmds[name] - cmds0.get(name, 0)) / n:.2f}" for name in sorted(cmds)
        if cmds[name] - cmds0.get(name, 0) > 0))
    if args.profile:
        pstats.Stats(args.out).sort_stats(args.sort).print_stats(args.top)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", choices=("sequential", "flight"), default="sequential")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sort", default="tottime", help="pstats sort key")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "dg-gateway.prof"))
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="no profiler: the CPU per call (user + system) only")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse(sys.argv[1:]))
