#!/usr/bin/env python3
"""``make bench`` (CLI start-up): wall and CPU time of ``dialer-gateway check``.

Each command runs ``--rounds`` times in a fresh process, rounds interleaved (every
command once, then again), after one warm-up run that writes the bytecode caches (as
``pip install`` does for a wheel). Wall = fork to exit; CPU = user + system time of the
child (``RUSAGE_CHILDREN``), which a loaded machine inflates far less than the wall.
Beside the command, two floors: the bare interpreter, and the libraries any decision
needs (asyncio, phonenumbers, structlog, and the ``holidays`` table of France: that
library imports its ~150 country modules whatever the country asked for).

The embedded default (memory store seeded with the demo data, no audit sink), as a user
trying the README's first command gets it. Prints a markdown table for
docs/benchmarks.md; the structure that keeps it short is held by
tests/test_cli_imports.py.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
SCRIPT = str(Path(PY).with_name("dialer-gateway"))
FLOOR_LIBS = ("import asyncio, json, argparse, phonenumbers, structlog, holidays; "
              "holidays.country_holidays('FR')")
COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass (interpreter)", [PY, "-c", "pass"]),
    ("libraries a decision needs (floor)", [PY, "-c", FLOOR_LIBS]),
    ("dialer-gateway --version", [SCRIPT, "--version"]),
    ("dialer-gateway check 0612345678 --campaign demo",
     [SCRIPT, "check", "0612345678", "--campaign", "demo"]),
]
DEADLINE_S = 60


def run_once(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True, timeout=DEADLINE_S)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(args: argparse.Namespace) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DIALER_GATEWAY_") and k != "PYTHONDONTWRITEBYTECODE"}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in COMMANDS}
    with tempfile.TemporaryDirectory(prefix="dg-bench-startup-") as cwd:
        for _, argv in COMMANDS:  # warm-up: bytecode caches written, files in the page cache
            run_once(argv, env, cwd)
        for _ in range(args.rounds):
            for name, argv in COMMANDS:
                samples[name].append(run_once(argv, env, cwd))
    load = os.getloadavg()
    print(f"\nCLI start-up: {len(os.sched_getaffinity(0))} CPU, Python "
          f"{sys.version.split()[0]}, {args.rounds} rounds, load average "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)\n")
    print("| command | wall p50 ms | wall min ms | wall max ms | CPU p50 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in samples.items():
        walls = [w * 1000 for w, _ in runs]
        cpus = [c * 1000 for _, c in runs]
        print(f"| `{name}` | {statistics.median(walls):.0f} | {min(walls):.0f} | "
              f"{max(walls):.0f} | {statistics.median(cpus):.0f} |")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse(sys.argv[1:]))
