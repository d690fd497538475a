#!/usr/bin/env python3
"""CPU per call of the FastAGI edge alone: the gateway's AGI server and ``screen`` route
over a screener that answers at once (no store, no audit), against the bare asyncio
FastAGI session of ``bench/baselines.py``, both under the workers bench's Asterisk
emulator (run in its own process). Isolates what the edge costs per call (its reads,
deadlines, admission, metrics, close) from the screen behind it.

    .venv/bin/python bench/probes/agi_edge.py [--load flight] [--seconds 4] [--rounds 3]
        [--roles bare,edge-ref,edge --ref DIR]   # DIR: another checkout, e.g. main's
        [--profile OUT]   # the edge under cProfile (thread CPU time), written to OUT
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

# the gateway package measured: this checkout's, or the --ref checkout's (edge-ref)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, os.environ.get("DG_AGI_EDGE_REF", "")
                or str(Path(__file__).resolve().parents[2]))

import baselines  # bench/baselines.py: the bare session
import workers  # bench/workers.py: its Asterisk emulator

from gateway.agi.handlers import ScreenHandler
from gateway.agi.server import AgiServer, AgiSettings
from gateway.core.model import Attempt, Decision, Reason, Verdict
from gateway.logs import configure_logging
from gateway.metrics import Metrics
from gateway.observers import AgiMetrics
from gateway.service_api import ScreenResult

REF_ENV = "DG_AGI_EDGE_REF"  # the --ref checkout, for the edge-ref server's process

DECISION = Decision(verdict=Verdict.ALLOW, reason=Reason.OK, e164="+33600000000",
                    retry_after_s=None, trace=())


class InstantScreener:
    """Answers every call ALLOW at once (the edge's cost alone)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.ids = 0

    async def screen(self, attempt: Attempt, *,
                     context: Mapping[str, str] | None = None) -> ScreenResult:
        self.ids += 1
        result = ScreenResult(verdict=Verdict.ALLOW, reason=Reason.OK, e164=DECISION.e164,
                              retry_after_s=None, decision_id=f"{self.ids:024x}",
                              decision=DECISION, campaign_id=attempt.campaign_id)
        self.metrics.decision(result, source="agi", latency_s=0.001)
        return result

    def overruled(self, result: ScreenResult, *, reason: Reason) -> None:
        return None


async def serve(role: str, port_out: int, profile: str) -> None:
    configure_logging("info", "json")  # as the gateway runs in production
    if role == "bare":
        server = await asyncio.start_server(baselines.bare_session(), workers.HOST, 0)
        port = server.sockets[0].getsockname()[1]
    else:
        metrics = Metrics()
        agi = AgiServer({"screen": ScreenHandler(InstantScreener(metrics))}, AgiSettings(),
                        observer=AgiMetrics(metrics))
        port = (await agi.start(workers.HOST, 0))[1]
    os.write(port_out, f"{port}\n".encode())
    prof = cProfile.Profile(time.thread_time) if profile else None
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_reader(0, done.set)
    if prof:
        prof.enable()
    await done.wait()
    if prof:
        prof.disable()
        prof.dump_stats(profile)


def run(role: str, load: str, seconds: float, profile: str = "", ref: str = "",
        ) -> dict[str, float]:
    read, write = os.pipe()
    env = {k: v for k, v in os.environ.items() if k != REF_ENV}
    if role == "edge-ref":
        env[REF_ENV] = ref
    proc = subprocess.Popen([sys.executable, __file__, "--serve", role, str(write), profile],
                            stdin=subprocess.PIPE, pass_fds=(write,), env=env)
    os.close(write)
    with os.fdopen(read) as f:
        port = int(f.readline())
    closed = {"sequential": 1.0, "flight": 50.0}
    mode, value = (("closed", closed[load]) if load in closed
                   else ("open", float(load.removesuffix("/s"))))
    before = workers.cpu_seconds([proc.pid])
    result = workers.run_client(port, mode, value, seconds, 0)
    cpu = workers.cpu_seconds([proc.pid]) - before
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)
    calls = max(1, int(result["answered"]))
    return {"calls": calls, "cpu_us": cpu / calls * 1e6, "p50_ms": result["p50_ms"],
            "p99_ms": result["p99_ms"]}


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        asyncio.run(serve(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--load", default="flight")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--roles", default="bare,edge",
                        help="comma-separated: bare, edge, edge-ref (needs --ref)")
    parser.add_argument("--ref", default="", help="edge-ref: a checkout (`git archive main "
                        "| tar -x -C DIR`) whose gateway package runs instead of this one")
    parser.add_argument("--profile", default="")
    args = parser.parse_args()
    if args.profile:
        print(json.dumps(run("edge", args.load, args.seconds, args.profile)))
        return
    for n in range(args.rounds):
        for role in args.roles.split(","):
            r = run(role, args.load, args.seconds, ref=args.ref)
            print(f"round {n + 1} {role:5} {args.load}: {r['calls']} calls, "
                  f"CPU {r['cpu_us']:.0f} µs/call, p50 {r['p50_ms']:.1f} ms, "
                  f"p99 {r['p99_ms']:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
