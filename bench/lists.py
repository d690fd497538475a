#!/usr/bin/env python3
"""``make bench`` (lists part): compact opposition lists against a plain Redis SET.

For N random French mobile numbers (+336 / +337, the densest real range) it measures,
on a redis-server the bench starts itself (loopback, no persistence):

- bytes per number: ``used_memory`` after minus before, divided by N, for
  (a) a baseline plain SET of the E.164 strings (SADD in batches) and
  (b) ``RedisStore.import_opposition`` (compact buckets);
- import rate: the store import alone (rows already parsed; numbers already grouped, as
  ``import_file`` hands them over), and ``import_file`` end to end (validation + store) on
  a file of canonical E.164 lines and on one of national lines (``0612345678``), each as
  a wall-clock rate and as numbers per CPU second (this process, threads and children
  included, plus the redis-server's own CPU time): the machine may be shared;
- lookup latency: ``load_facts`` for listed numbers (p50 / p99 of sequential calls);
- swap time: a replace import's commit (the metadata switch) and cleanup time (UNLINK of
  the superseded generation), from the store's own timing of its phases.

Prints a markdown table (paste into docs/benchmarks.md). ``--numbers`` sets N
(``make bench``: 1,000,000; ``make bench-large``: 10,000,000); ``--span`` sets the range
they are drawn from (the density decides the bucket fill, hence bytes per number).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.store.base import OppositionRow

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import redis_server

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


SPAN = 200_000_000  # +336 00 00 00 00 .. +337 99 99 99 99


def sample(n: int, seed: int, span: int = SPAN) -> list[int]:
    """n distinct random numbers among the first ``span`` from +336 00 00 00 00."""
    rnd = random.Random(seed)
    low = 33_600_000_000
    return sorted(rnd.sample(range(low, low + span), n))


async def used_memory(client: object) -> int:
    info = await client.info("memory")  # type: ignore[attr-defined]
    return int(info["used_memory"])


async def baseline_set(client: object, numbers: list[int]) -> float:
    before = await used_memory(client)
    for start in range(0, len(numbers), 10_000):
        await client.sadd("baseline", *[f"+{n}" for n in numbers[start:start + 10_000]])  # type: ignore[attr-defined]
    per = (await used_memory(client) - before) / len(numbers)
    await client.delete("baseline")  # type: ignore[attr-defined]
    return per


def cpu_s() -> float:
    """CPU seconds of this process (all threads) and of its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def redis_cpu_s(client: object) -> float:
    info = await client.info("cpu")  # type: ignore[attr-defined]
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def rates(n: int, wall_s: float, cpu: float, redis_cpu: float) -> str:
    """Wall rate, then the rate per CPU second (bench process + redis-server)."""
    return (f"{n / wall_s:,.0f} wall ({wall_s:.2f} s); {n / (cpu + redis_cpu):,.0f} per CPU s "
            f"({cpu:.2f} s here + {redis_cpu:.2f} s redis-server)")


def rows(numbers: list[int]) -> Iterator[OppositionRow]:
    from gateway.store.base import OppositionRow

    for n in numbers:
        yield OppositionRow(f"+{n}")


async def end_to_end_rates(store: Any, client: Any, numbers: list[int],
                           out: list[tuple[str, str]]) -> None:
    """``import_file`` of an E.164 file, then of a national one (replacing it)."""
    from gateway.importer import ImportKind, import_file

    store.compact.retire_grace_s = 0  # the grace before the cleanup is not import work
    n = len(numbers)
    for label, line in (("E.164 lines", "+{}\n"), ("national lines", "0{}\n")):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            for x in numbers:
                f.write(line.format(x if line[0] == "+" else x - 33_000_000_000))
            path = f.name
        try:
            before = await used_memory(client)
            t0, c0, r0 = time.perf_counter(), cpu_s(), await redis_cpu_s(client)
            report = await import_file(store, ImportKind.OPPOSITION, path, now=NOW,
                                       list_source="bloctel", allow_shrink=True)
            took, cpu, rcpu = (time.perf_counter() - t0, cpu_s() - c0,
                               await redis_cpu_s(client) - r0)
            out.append((f"import_file end to end ({label}), numbers/s",
                        rates(n, took, cpu, rcpu)))
            out.append((f"  of which outside the metadata (kept) / size ({label})",
                        f"{report.outside_metadata:,} / {report.size:,}"))
            if report.version == 1:  # the first list of this redis-server
                per = (await used_memory(client) - before) / n
                out.append(("compact list after import_file, bytes/number", f"{per:.2f}"))
        finally:
            os.unlink(path)


async def run(n: int, end_to_end: bool, span: int = SPAN,
              only_end_to_end: bool = False) -> list[tuple[str, str]]:
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    import redis.asyncio as redis

    from gateway.store.base import ImportMode
    from gateway.store.compact import CompactNumbers
    from gateway.store.factory import open_store

    out: list[tuple[str, str]] = []
    numbers = sample(n, 1, span)
    async with redis_server() as url:
        if url is None:
            return [("redis-server", "not installed: skipped")]
        client = redis.Redis.from_url(url)
        out.append(("numbers (sampled among)", f"{n:,} ({span:,})"))
        if only_end_to_end:
            store = open_store(url, key_prefix="bench", socket_timeout_s=60,
                               connect_timeout_s=5)
            await end_to_end_rates(store, client, numbers, out)
            await store.close()
            await client.aclose()
            return out
        baseline = await baseline_set(client, numbers)
        out.append(("plain SET of E.164 strings, bytes/number", f"{baseline:.1f}"))
        store = open_store(url, key_prefix="bench", socket_timeout_s=30, connect_timeout_s=5)
        before = await used_memory(client)
        t0, c0, r0 = time.perf_counter(), cpu_s(), await redis_cpu_s(client)
        await store.import_opposition("bloctel", rows(numbers), mode=ImportMode.REPLACE, now=NOW)
        took, cpu, rcpu = (time.perf_counter() - t0, cpu_s() - c0,
                           await redis_cpu_s(client) - r0)
        per = (await used_memory(client) - before) / n
        out.append(("compact list, bytes/number", f"{per:.2f}"))
        out.append(("store import (parsed rows), numbers/s", rates(n, took, cpu, rcpu)))
        grouped = CompactNumbers.build(numbers)
        t0, c0, r0 = time.perf_counter(), cpu_s(), await redis_cpu_s(client)
        await store.import_opposition("grouped", grouped, mode=ImportMode.REPLACE, now=NOW)
        took, cpu, rcpu = (time.perf_counter() - t0, cpu_s() - c0,
                           await redis_cpu_s(client) - r0)
        out.append(("store import (grouped numbers, what import_file hands over), numbers/s",
                    rates(n, took, cpu, rcpu)))
        await store.drop_opposition("grouped")
        del grouped
        # lookups: half listed, half not
        rnd = random.Random(2)
        low = 33_600_000_000
        probes = [f"+{rnd.choice(numbers)}" if i % 2 else f"+{low + rnd.randrange(span)}"
                  for i in range(2000)]
        lat = []
        for e164 in probes:
            t = time.perf_counter()
            await store.load_facts(e164=e164, professional="acme", campaign_id="c", now=NOW,
                                   attempt_window_s=86400, abandon_window_s=86400)
            lat.append(time.perf_counter() - t)
        lat.sort()
        p50, p99 = statistics.median(lat) * 1000, lat[int(len(lat) * 0.99)] * 1000
        out.append(("load_facts p50 / p99 (ms)", f"{p50:.3f} / {p99:.3f}"))
        # replace with a second snapshot: swap (commit) and cleanup timings
        second = sample(n, 3, span)
        compact = store.compact  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        compact.timings = timings
        await store.import_opposition("bloctel", rows(second), mode=ImportMode.REPLACE, now=NOW)
        total = time.perf_counter() - t0
        out.append(("replace import total (s)", f"{total:.1f}"))
        out.append(("swap (metadata switch, ms)", f"{timings.get('swap', 0) * 1000:.2f}"))
        out.append(("cleanup of the superseded version (s)", f"{timings.get('cleanup', 0):.2f}"))
        if end_to_end:
            await end_to_end_rates(store, client, numbers, out)
        await store.close()
        await client.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--no-end-to-end", action="store_true",
                        help="skip the import_file measurement (validation pass)")
    parser.add_argument("--end-to-end-only", action="store_true",
                        help="only import_file (E.164 then national file) and the list's "
                             "bytes/number: the 10 M end-to-end figure without the rest")
    parser.add_argument("--span", type=int, default=SPAN,
                        help="sample among this many numbers from +33600000000 (density: "
                             "1,000,000 among 20,000,000 fills buckets as 10 M among 200 M)")
    args = parser.parse_args()
    table = asyncio.run(run(args.numbers, not args.no_end_to_end, args.span,
                            args.end_to_end_only))
    print("| measure | value |\n|---|---|")
    for k, v in table:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
