#!/usr/bin/env python3
"""CPU of the metric writes of one screened FastAGI call, per prometheus-client value class.

A screened call (one ``ALLOW ok`` through the FastAGI server) makes these metric calls
(counted in a worker of ``serve`` with 2 workers): connections_pending twice (admitted,
environment read), sessions_in_flight twice (handler in, out), the decision counter,
the decision latency histogram (2 value writes: its sum and one bucket) and the sessions
counter by outcome: 8 value writes. They are replayed here on the real ``Metrics`` and
``AgiMetrics``, each value class in its own interpreter (prometheus-client chooses it once
per process):

- ``memory``: ``serve`` with one worker (no multiprocess files: a float under a lock);
- ``multiprocess, library``: a worker whose values use prometheus-client's own class
  (a ``getpid()`` system call at every write, to notice a fork);
- ``multiprocess, cached pid``: a worker of this tree (``gateway.multiproc``).

CPU time of this process (``time.process_time``), best of ``--rounds`` over ``--n``
calls. Prints a markdown table for docs/benchmarks.md. Not a test: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODES = ("memory", "library", "cached")
LABELS = {
    "memory": "memory (1 worker)",
    "library": "multiprocess, library class",
    "cached": "multiprocess, cached pid",
}


def measure(mode: str, n: int, rounds: int) -> dict[str, Any]:
    """In this interpreter (set up by :func:`main` for ``mode``): per call, the value
    writes, the getpid() calls and the CPU µs."""
    sys.path.insert(0, str(ROOT))
    if mode == "library":  # a value of this process before gateway.metrics: no switch
        from prometheus_client import CollectorRegistry, Counter

        Counter("bench_early", "x", registry=CollectorRegistry()).inc()
    from prometheus_client import values

    from gateway.core.model import Decision, Reason, Verdict
    from gateway.metrics import Metrics
    from gateway.observers import AgiMetrics
    from gateway.service_api import ScreenResult

    cached = bool(getattr(values.ValueClass, "_gateway_cached_pid", False))
    assert cached == (mode == "cached"), (mode, values.ValueClass)  # the setup is right
    metrics = Metrics(["c1"])
    agi = AgiMetrics(metrics)
    decision = Decision(Verdict.ALLOW, Reason.OK, "+33612345678", None, ())
    result = ScreenResult(Verdict.ALLOW, Reason.OK, "+33612345678", None, "d1", decision,
                          campaign_id="c1")

    def call() -> None:
        agi.connections_pending(1)
        agi.connections_pending(0)
        agi.sessions_in_flight(1)
        metrics.decision(result, source="agi", latency_s=0.0007)
        agi.sessions_in_flight(0)
        agi.session_ended("ok", 0.002)

    writes = [0]
    if mode != "memory":
        from prometheus_client import mmap_dict

        original = mmap_dict.MmapedDict.write_value

        def counting(self: Any, key: str, value: float, timestamp: float) -> None:
            writes[0] += 1
            original(self, key, value, timestamp)  # type: ignore[no-untyped-call]  # untyped in prometheus-client

        mmap_dict.MmapedDict.write_value = counting  # type: ignore[method-assign]
    getpids = [0]

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call" and arg is os.getpid:
            getpids[0] += 1

    call()  # children made, files mapped
    writes[0] = 0
    sys.setprofile(profile)
    call()
    sys.setprofile(None)
    if mode != "memory":
        mmap_dict.MmapedDict.write_value = original  # type: ignore[method-assign]
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        for _ in range(n):
            call()
        best = min(best, (time.process_time() - began) / n * 1e6)
    return {"mode": mode, "writes": writes[0] if mode != "memory" else None,
            "getpid": getpids[0], "us": best}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--alternations", type=int, default=2)
    p.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one interpreter's
    args = p.parse_args()
    if args.mode:
        print(json.dumps(measure(args.mode, args.n, args.rounds)))
        return
    found: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    for _ in range(args.alternations):
        for mode in MODES:
            with tempfile.TemporaryDirectory(prefix="dg-mw-") as tmp:
                env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
                if mode != "memory":
                    env["PROMETHEUS_MULTIPROC_DIR"] = tmp
                out = subprocess.run(
                    [sys.executable, __file__, "--mode", mode, "--n", str(args.n),
                     "--rounds", str(args.rounds)],
                    env=env, capture_output=True, text=True, check=True, timeout=600,
                )
                found[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    load = os.getloadavg()[0]
    print(f"Metric writes of one screened call ({args.n} calls, best of {args.rounds}, "
          f"{args.alternations} alternations, load average {load:.1f})\n")
    print("| value class | value writes / call | getpid() / call | CPU µs / call |")
    print("|---|---:|---:|---:|")
    for mode in MODES:
        runs = found[mode]
        us = " / ".join(f"{r['us']:.2f}" for r in runs)
        w = runs[0]["writes"]
        print(f"| {LABELS[mode]} | {'8 (in memory)' if w is None else w} | "
              f"{runs[0]['getpid']} | {us} |")


if __name__ == "__main__":
    main()
