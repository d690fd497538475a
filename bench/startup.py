#!/usr/bin/env python3
"""``make bench`` (CLI start-up): wall and CPU time of ``dialer-gateway check``.

Each command runs ``--rounds`` times in a fresh process, rounds interleaved (every
command once, then again), after one warm-up run that writes the bytecode caches (as
``pip install`` does for a wheel). Wall = fork to exit, awaited by a blocking ``wait4``;
CPU = user + system time of the child (its ``wait4`` resource usage), which a loaded
machine inflates far less than the wall.
Beside the commands, the floors: the bare interpreter, and the libraries any decision
needs (asyncio, phonenumbers, structlog, and the ``holidays`` table of France), once
with France's module of the holidays library imported alone, as ``gateway.packs`` does,
and once through the library's ``holidays.countries`` package, which imports its ~250
country modules whatever the country asked for (as the gateway did before).

The embedded default (memory store seeded with the demo data, no audit sink), as a user
trying the README's first command gets it. Prints a markdown table for
docs/benchmarks.md; the structure that keeps it short is held by
tests/test_cli_imports.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PY = sys.executable
SCRIPT = str(Path(PY).with_name("dialer-gateway"))
LIBS = "import asyncio, json, argparse, phonenumbers, structlog, holidays\n"
FRANCE_ALONE = (  # gateway.packs.preload_holiday_countries, spelled out
    "import importlib.util, pathlib, sys\n"
    "path = pathlib.Path(holidays.__file__).parent / 'countries' / 'france.py'\n"
    "spec = importlib.util.spec_from_file_location('holidays.countries.france', path)\n"
    "module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(module)\n"
)
FRANCE = "holidays.country_holidays('FR')\n"
COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass (interpreter)", [PY, "-c", "pass"]),
    ("libraries a decision needs (floor)", [PY, "-c", LIBS + FRANCE_ALONE + FRANCE]),
    ("the same, holidays' countries package whole", [PY, "-c", LIBS + FRANCE]),
    ("dialer-gateway --version", [SCRIPT, "--version"]),
    ("dialer-gateway --help", [SCRIPT, "--help"]),
    ("dialer-gateway check 0612345678 --campaign demo",
     [SCRIPT, "check", "0612345678", "--campaign", "demo"]),
]
DEADLINE_S = 60


def run_once(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """Wall and CPU seconds of one run. The exit is awaited by a blocking ``wait4``:
    ``subprocess.run(timeout=...)`` polls with sleeps of up to 50 ms, which added up to
    50 ms to every wall time (the walls measured so were multiples of 50 ms plus the
    first polls); the deadline is a timer that kills the child instead."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = threading.Timer(DEADLINE_S, proc.kill)
    deadline.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        deadline.cancel()
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, argv)
    return wall, usage.ru_utime + usage.ru_stime


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
