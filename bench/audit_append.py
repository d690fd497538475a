#!/usr/bin/env python3
"""Cost of one audit append (JSONL sink), with and without the anchor file.

Appends ``--records`` records one after the other (each awaited, as the service does)
through ``AuditTrail.append`` into a temporary directory, in interleaved rounds, for:
no anchor file (``anchor_path = ""``), the anchor file (default), and both with
``fsync = true``. Prints a markdown table (paste into docs/benchmarks.md): median round,
p50 / p99 latency per append.

    .venv/bin/python bench/audit_append.py [--records 3000] [--rounds 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.audit import AuditSettings, open_audit_trail
from tests.audit.helpers import make_record

CASES: tuple[tuple[str, dict[str, object]], ...] = (
    ("no anchor file", {"anchor_path": ""}),
    ("anchor file", {}),
    ("no anchor file, fsync", {"anchor_path": "", "fsync": True}),
    ("anchor file, fsync", {"fsync": True}),
)


async def one_round(directory: str, name: str, extra: dict[str, object], records: int,
                    round_no: int) -> list[float]:
    path = os.path.join(directory, f"{round_no}-{name.replace(' ', '_').replace(',', '')}")
    os.makedirs(path)
    settings = AuditSettings(path=os.path.join(path, "audit.jsonl"), instance_id="bench",
                             write_timeout_s=5.0, **extra)  # type: ignore[arg-type]
    trail = open_audit_trail(settings)
    rec = [make_record(i) for i in range(records)]
    await trail.append(rec[0])  # opens the files
    out: list[float] = []
    for r in rec[1:]:
        t0 = time.perf_counter()
        await trail.append(r)
        out.append(time.perf_counter() - t0)
    await trail.close()
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = ap.parse_args()
    results: dict[str, list[list[float]]] = {name: [] for name, _ in CASES}
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        for round_no in range(args.rounds):
            for name, extra in CASES:
                results[name].append(
                    await one_round(directory, name, extra, args.records, round_no))
    print("| case | appends | appends/s | p50 µs | p99 µs |")
    print("|---|---:|---:|---:|---:|")
    for name, rounds in results.items():
        best = sorted(rounds, key=sum)[len(rounds) // 2]  # the median round
        lat = sorted(best)
        p50 = statistics.median(lat) * 1e6
        p99 = lat[int(len(lat) * 0.99) - 1] * 1e6
        print(f"| {name} | {len(lat)} | {len(lat) / sum(lat):.0f} | {p50:.0f} | {p99:.0f} |")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    asyncio.run(main())
