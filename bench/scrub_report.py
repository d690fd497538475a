#!/usr/bin/env python3
"""``make bench`` (second part): bulk scrub throughput and compliance-report build time.

- scrub: a redis-server started here (loopback, free port), consents and an opposition
  list imported with the CLI, then ``dialer-gateway scrub`` on a generated lead file
  (``--leads``, default 100 000 rows: 30 % consented, 10 % on the opposition list, 55 %
  unknown, 5 % invalid), in this process: wall time and this process's CPU time (the
  redis-server's own CPU is not counted: it is another process).
- engine alone: ``plan`` + ``decide`` (a call's per-lead engine work) and ``plan`` +
  ``decide_brief`` (the scrub's: the same verdict without the trace) for the same numbers
  with empty facts and no store, in this process: the CPU ceiling of the scrub before any
  I/O.
- report: a chain-sealed JSONL trail of ``--records`` records (default 1 000 000, shaped
  like the service's, 4 instances' chains interleaved over 30 days), then ``dialer-gateway
  report`` over it in a child process: wall time, CPU time and peak RSS of the child.

Prints a markdown table (docs/benchmarks.md, "Scrub and report").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from run import redis_server

from gateway.audit.chain import GENESIS_PREV, seal
from gateway.cli import main as cli
from gateway.config import load_config
from gateway.core import numbers as numbers_module
from gateway.core.brief import decide_brief
from gateway.core.engine import decide, plan
from gateway.core.model import Attempt, Facts
from gateway.wiring import build_policy

AT = "2026-12-01T10:30:00+01:00"
START = datetime(2026, 11, 1, tzinfo=UTC)
REASONS = ["no_consent"] * 5 + ["opposition"] * 2 + ["outside_hours", "frequency_cap",
                                                      "invalid_number", "consent_expired"]


def write_inputs(tmp: Path, leads: int, url: str) -> tuple[Path, Path]:
    rnd = random.Random(7)
    cfg = tmp / "gw.toml"
    cfg.write_text(f'[store]\nurl = "{url}"\nsocket_timeout_s = 5.0\n'
                   '[campaigns.promo]\nprofessional = "acme"\nproduct_category = "telecom"\n'
                   # L.221-17: a French campaign presents a number (without one, every lead
                   # would stop at the caller-id rule)
                   'caller_id = "+33170000000"\n', encoding="utf-8")
    consents = (tmp / "consents.csv").open("w", encoding="utf-8")
    consents.write("consent_id,number,professional,product_category,collected_at,expires_at,"
                   "channel,proof_ref\n")
    opposition = (tmp / "bloctel.csv").open("w", encoding="utf-8")
    opposition.write("number\n")
    path = tmp / "leads.csv"
    with path.open("w", encoding="utf-8") as out, consents, opposition:
        out.write("id;name;city;phone\n")
        for i in range(leads):
            number = f"06{i:08d}"
            kind = rnd.random()
            if kind < 0.30:
                consents.write(f"c{i},{number},acme,telecom,2026-10-01T00:00:00Z,"
                               f"2027-10-01T00:00:00Z,web,proof-{i}\n")
            elif kind < 0.40:
                opposition.write(f"{number}\n")
            elif kind > 0.95:
                number = f"06{i:04d}"  # too short: invalid
            out.write(f"{i};Lead {i};Lyon;{number[:2]} {number[2:]}\n")
    return cfg, path


async def scrub_bench(leads: int) -> dict[str, Any]:
    async with redis_server() as url:
        if url is None:
            return {"skipped": "no redis-server (make redis-server)"}
        with tempfile.TemporaryDirectory(prefix="dg-bench-scrub-") as name:
            tmp = Path(name)
            cfg, path = write_inputs(tmp, leads, url)
            for argv in (["consent", "import", str(tmp / "consents.csv")],
                         ["opposition", "import", str(tmp / "bloctel.csv"), "--source",
                          "bloctel"]):
                code = await asyncio.to_thread(cli, ["--config", str(cfg), *argv])
                assert code == 0, argv
            out = tmp / "out.csv"
            wall, cpu = time.perf_counter(), time.process_time()
            code = await asyncio.to_thread(cli, [
                "--config", str(cfg), "scrub", str(path), "--campaign", "promo", "--at", AT,
                "--out", str(out), "--json"])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert code == 0
            rows = sum(1 for _ in out.open(encoding="utf-8")) - 1
            assert rows == leads
            return {"rows": rows, "wall_s": wall, "cpu_s": cpu}


def engine_bench(leads: int) -> dict[str, Any]:
    """plan + decide and plan + decide_brief for the bench's numbers, empty facts, no store
    (CPU per lead)."""
    with tempfile.TemporaryDirectory(prefix="dg-bench-engine-") as name:
        cfg, path = write_inputs(Path(name), leads, "memory://")
        policy = build_policy(load_config(cfg, env={}))
        numbers = [line.rsplit(";", 1)[1].strip()
                   for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    at = datetime.fromisoformat(AT)
    attempts = [Attempt(number=n, campaign_id="promo", source="scrub") for n in numbers]
    facts = Facts()
    # the scrub run before this one parsed the same numbers: start from a cold cache
    numbers_module._parse_cached.cache_clear()
    cpu = time.process_time()
    plans = [plan(a, policy, at) for a in attempts]
    plan_s = time.process_time() - cpu
    spent = {}
    for name, judge in (("decide_s", decide), ("brief_s", decide_brief)):
        cpu = time.process_time()
        for a, p in zip(attempts, plans, strict=True):
            if not hasattr(p, "verdict"):  # a Plan, not an early Decision
                judge(a, facts, policy, at, p)  # the plan is reused, as the service does
        spent[name] = time.process_time() - cpu
    return {"rows": leads, "plan_s": plan_s, **spent}


def write_trail(path: Path, records: int) -> None:
    rnd = random.Random(11)
    heads = {f"gw-{i}": (0, GENESIS_PREV) for i in range(4)}
    step = 30 * 86400 / records
    with path.open("w", encoding="ascii") as out:
        for n in range(records):
            inst = f"gw-{n % 4}"
            seq, prev = heads[inst]
            at = START + timedelta(seconds=n * step)
            reason = "ok" if rnd.random() < 0.35 else rnd.choice(REASONS)
            verdict = "ALLOW" if reason == "ok" else "BLOCK"
            number = f"+336{rnd.randrange(10**8):08d}"
            body = {
                "v": 1, "id": f"{n:024x}", "ts": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "instance": inst, "source": "agi", "campaign": f"camp-{n % 7}",
                "professional": "acme", "number": number, "number_input": number,
                "number_mode": "full", "key_id": None, "caller_id": "+33162000001",
                "verdict": verdict, "reason": reason,
                "engine": {"verdict": verdict, "reason": reason}, "retry_after_s": None,
                "shadow": False, "fail_open": False, "fail_mode": "closed",
                "pack": {"id": "fr", "hash": "ab" * 32},
                "consent_id": f"c{n}" if verdict == "ALLOW" else None, "contract_id": None,
                "lists": [{"name": "opposition:bloctel", "version": 3, "age_s": 3600}],
                "zones": ["Europe/Paris"],
                "local_times": {"Europe/Paris": (at + timedelta(hours=1)).isoformat()},
                "counters": {"attempts_seen": rnd.randrange(4), "attempts_limit": 4,
                             "attempt_window_s": 2592000},
                "latency_us": 900, "context": {},
                "trace": ["abandon: 3/120 = 2.50% over 24 h, limit 3.00%", f"verdict: {verdict}"],
            }
            line, digest = seal(body, seq=seq, prev=prev)
            out.write(line + "\n")
            heads[inst] = (seq + 1, digest)


def report_bench(records: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dg-bench-report-") as name:
        tmp = Path(name)
        trail = tmp / "audit.jsonl"
        write_trail(trail, records)
        cfg = tmp / "gw.toml"
        cfg.write_text(f'[audit]\nsink = "jsonl"\npath = "{trail}"\n', encoding="utf-8")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        done = subprocess.run(
            [str(Path(sys.executable).with_name("dialer-gateway")), "--config", str(cfg),
             "report",
             "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(tmp / "r.html")],
            capture_output=True, text=True, check=False, timeout=1800)
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert done.returncode == 0, done.stderr
        return {"records": records, "size_mb": trail.stat().st_size / 1e6, "wall_s": wall,
                "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                "max_rss_mb": after.ru_maxrss / 1024}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--leads", type=int, default=100_000)
    p.add_argument("--records", type=int, default=1_000_000)
    return p.parse_args(argv)


def main() -> None:
    args = parse(sys.argv[1:])
    with contextlib.redirect_stdout(sys.stderr):  # the CLI's own summaries
        scrub = asyncio.run(scrub_bench(args.leads))
    engine = engine_bench(args.leads)
    report = report_bench(args.records)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}\n")
    print("| measure | size | wall s | CPU s | rate (wall) | rate (CPU) | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    if "skipped" in scrub:
        print(f"| scrub (redis store) | skipped: {scrub['skipped']} | | | | | |")
    else:
        print(f"| scrub (redis store) | {scrub['rows']:,} leads | {scrub['wall_s']:.1f} | "
              f"{scrub['cpu_s']:.1f} | {scrub['rows'] / scrub['wall_s']:,.0f} leads/s | "
              f"{scrub['rows'] / scrub['cpu_s']:,.0f} leads/CPU-s | |")
    for name, key in (("decide", "decide_s"), ("decide_brief", "brief_s")):
        cpu = engine["plan_s"] + engine[key]
        print(f"| engine alone (plan + {name}, no store) | {engine['rows']:,} leads | | "
              f"{cpu:.1f} | | {engine['rows'] / cpu:,.0f} leads/CPU-s "
              f"(plan {engine['plan_s'] / engine['rows'] * 1e6:.0f} µs + {name} "
              f"{engine[key] / engine['rows'] * 1e6:.0f} µs per lead) | |")
    print(f"| report (JSONL trail) | {report['records']:,} records, "
          f"{report['size_mb']:.0f} MB | {report['wall_s']:.1f} | {report['cpu_s']:.1f} | "
          f"{report['records'] / report['wall_s']:,.0f} records/s | "
          f"{report['records'] / report['cpu_s']:,.0f} records/CPU-s | "
          f"{report['max_rss_mb']:.0f} MB |")


if __name__ == "__main__":
    main()
