#!/usr/bin/env python3
"""``make bench`` (consents part): Redis bytes per consent and the consent import rate.

N consents with every column filled (consent id, proof reference, withdrawal, time zone,
agreed slot, call centre), one per number, on N distinct random French mobile numbers
(+336 / +337) drawn among ``--span`` numbers, on a redis-server the bench starts itself
(loopback, no persistence). It measures:

- bytes per consent: ``INFO memory`` ``used_memory`` after minus before the store's
  ``import_consents`` (replace, cleanup done), divided by N; the same for the former
  per-number JSON layout, on ``--legacy`` consents (its cost per consent does not depend
  on N);
- import rate: wall time of ``import_consents`` over N, and CPU time (the bench process,
  ``time.process_time``, and redis-server, ``INFO cpu``), with the cost of building the
  rows themselves measured apart;
- encodings: how many bucket hashes are listpacks (``OBJECT ENCODING``);
- lookup: 2 000 sequential ``load_facts`` of consented numbers, p50 / p99;
- a second replace import of N other consents (a generation built aside, the old one
  unlinked): rate, CPU, memory after;
- ``import_file`` end to end on a CSV file of ``--end-to-end`` rows with every column
  (numbers among +33 600 000 000 .. +33 638 999 999, all valid), and its validating pass
  alone, by the generic reader and by the chunked fast pass (CPU time).

Prints a markdown table (paste into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import redis_server

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SPAN = 200_000_000  # +336 00 00 00 00 .. +337 99 99 99 99
LOW = 33_600_000_000


def sample(n: int, seed: int, span: int) -> list[int]:
    return sorted(random.Random(seed).sample(range(LOW, LOW + span), n))


def consents(numbers: list[int], seed: int = 7) -> Iterator[Any]:
    """Rows with every column, values of realistic sizes."""
    from gateway.core.model import ConsentRecord

    rnd = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i, n in enumerate(numbers):
        collected = start + timedelta(seconds=rnd.randrange(2 * 365 * 86400))
        slot = collected + timedelta(days=rnd.randrange(1, 30), hours=rnd.randrange(9, 19))
        yield ConsentRecord(
            id=f"crm-{i:09d}", e164=f"+{n}", professional=("acme", "energia", "telco")[i % 3],
            product_category=("telecom", "energy", "insurance", "renovation")[i % 4],
            collected_at=collected, expires_at=collected + timedelta(days=3 * 365),
            channel=("web", "phone", "paper")[i % 3],
            proof_ref=f"rec/{collected:%Y/%m}/{i:09d}.wav",
            withdrawn_at=collected + timedelta(days=rnd.randrange(30, 700)),
            timezone="Europe/Paris", agreed_slot_start=slot,
            agreed_slot_end=slot + timedelta(minutes=30), call_centre=f"cc-{i % 5}",
        )


async def memory_and_cpu(client: Any) -> tuple[int, float]:
    mem = await client.info("memory")
    cpu = await client.info("cpu")
    return int(mem["used_memory"]), float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def legacy_bytes(url: str, numbers: list[int], client: Any) -> float:
    """Bytes per consent of the former layout (JSON field per consent, per-number hash)."""
    from gateway.store import codec, redis_lists
    from gateway.store.base import ImportMode
    from gateway.store.factory import open_store

    store: Any = open_store(url, key_prefix="legacy", socket_timeout_s=30,
                            connect_timeout_s=5)

    def encode(r: Any) -> tuple[str, str, str]:
        return r.e164, r.id, codec.encode_consent(r)

    before, _ = await memory_and_cpu(client)
    await redis_lists.import_entries(store.conn, "consents", consents(numbers), encode,
                                     mode=ImportMode.REPLACE, now=NOW, content_hash="",
                                     batch_size=1000)
    after, _ = await memory_and_cpu(client)
    await client.flushdb()
    await store.close()
    return (after - before) / len(numbers)


#: end-to-end numbers: +33 600 000 000 .. +33 638 999 999, all valid (``+336 39``, ``+336 9x``
#: and ``+337 0x`` hold ranges phonenumbers calls invalid, which the importer refuses)
E2E_SPAN = 39_000_000
E2E_COLUMNS = ("number", "professional", "product_category", "collected_at", "expires_at",
               "channel", "proof_ref", "withdrawn_at", "timezone", "agreed_slot_start",
               "agreed_slot_end", "consent_id", "call_centre", "address_region")


def write_csv(numbers: list[int], path: str) -> None:
    """A consent CSV with every column (the rows of :func:`consents`, département 67)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join(E2E_COLUMNS) + "\n")
        for r in consents(numbers):
            f.write(",".join((
                r.e164, r.professional, r.product_category, r.collected_at.isoformat(),
                r.expires_at.isoformat(), r.channel, r.proof_ref, r.withdrawn_at.isoformat(),
                r.timezone, r.agreed_slot_start.isoformat(), r.agreed_slot_end.isoformat(),
                r.id, r.call_centre, "67")) + "\n")


def validating_pass(path: str, *, fast: bool) -> float:
    """CPU seconds of the validating pass alone (spool included), generic or fast."""
    from gateway.importer.run import SPECS, ImportKind, validate

    with tempfile.TemporaryFile() as spool:
        c0 = time.process_time()
        validate(SPECS[ImportKind.CONSENTS], path, spool=spool, fast=fast)
        return time.process_time() - c0


async def end_to_end(url: str, numbers: list[int], client: Any) -> list[tuple[str, str]]:
    """``import_file`` of a CSV file with every column: validating pass + store import."""
    from gateway.importer import ImportKind, import_file
    from gateway.store.base import ImportMode
    from gateway.store.factory import open_store

    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        path = f.name
    write_csv(numbers, path)
    n = len(numbers)
    out: list[tuple[str, str]] = []
    store: Any = open_store(url, key_prefix="e2e", socket_timeout_s=30, connect_timeout_s=5)
    try:
        generic = validating_pass(path, fast=False)
        fast = validating_pass(path, fast=True)
        out.append(("validating pass alone, CPU µs/row: generic reader / chunked fast pass",
                    f"{generic / n * 1e6:.1f} / {fast / n * 1e6:.1f}"))
        _, r0 = await memory_and_cpu(client)
        t0, c0 = time.perf_counter(), time.process_time()
        report = await import_file(store, ImportKind.CONSENTS, path, now=NOW,
                                   mode=ImportMode.REPLACE)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        _, r1 = await memory_and_cpu(client)
        assert report.imported == n, report
    finally:
        await store.close()
        os.unlink(path)
    out += [(f"import_file end to end (CSV, every column, {n:,} rows), consents/s (wall)",
             f"{n / wall:,.0f}"),
            ("  CPU s: gateway process / redis-server; consents per CPU-second",
             f"{cpu:.1f} / {r1 - r0:.1f}; {n / (cpu + r1 - r0):,.0f}"),
            ("  gateway process alone: consents per CPU-second", f"{n / cpu:,.0f}")]
    return out


async def run(n: int, span: int, legacy: int, e2e: int) -> list[tuple[str, str]]:
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    import redis.asyncio as redis

    from gateway.store.base import ImportMode
    from gateway.store.factory import open_store

    out: list[tuple[str, str]] = []
    numbers = sample(n, 1, span)
    async with redis_server() as url:
        if url is None:
            return [("redis-server", "not installed: skipped")]
        client = redis.Redis.from_url(url)
        out.append(("consents (numbers sampled among)", f"{n:,} ({span:,})"))
        if legacy:
            per = await legacy_bytes(url, sample(legacy, 5, max(legacy, span * legacy // n)),
                                     client)
            out.append((f"former per-number JSON layout, bytes/consent ({legacy:,})",
                        f"{per:.1f}"))
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in consents(numbers):
            pass
        build_wall, build_cpu = time.perf_counter() - t0, time.process_time() - c0
        store: Any = open_store(url, key_prefix="bench", socket_timeout_s=30,
                                connect_timeout_s=5)
        mem0, rcpu0 = await memory_and_cpu(client)
        t0, c0 = time.perf_counter(), time.process_time()
        info = await store.import_consents(consents(numbers), mode=ImportMode.REPLACE, now=NOW)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        mem1, rcpu1 = await memory_and_cpu(client)
        assert info.size == n, info
        per_consent = (mem1 - mem0) / n
        out.append(("compact layout, bytes/consent", f"{per_consent:.1f}"))
        out.append(("import_consents (rows built on the fly), consents/s (wall)",
                    f"{n / wall:,.0f}"))
        store_wall = wall - build_wall
        out.append(("  the store's part (row building taken out), consents/s (wall)",
                    f"{n / store_wall:,.0f}"))
        out.append(("  CPU s: bench process (of which row building) / redis-server",
                    f"{cpu:.1f} ({build_cpu:.1f}) / {rcpu1 - rcpu0:.1f}"))
        out.append(("  consents per CPU-second (store's process part + redis-server)",
                    f"{n / (cpu - build_cpu + rcpu1 - rcpu0):,.0f}"))
        keys = [k async for k in client.scan_iter(match="bench:k:*", count=1000)]
        encodings: dict[str, int] = {}
        for key in random.Random(3).sample(keys, min(1000, len(keys))):
            enc = (await client.object("encoding", key)).decode()
            encodings[enc] = encodings.get(enc, 0) + 1
        sampled = ", ".join(f"{k} {v}" for k, v in sorted(encodings.items()))
        out.append(("bucket hashes (sampled encodings)", f"{len(keys):,} ({sampled})"))
        rnd = random.Random(2)
        lat = []
        for _ in range(2000):
            e164 = f"+{rnd.choice(numbers)}"
            t = time.perf_counter()
            facts = await store.load_facts(e164=e164, professional="acme", campaign_id="c",
                                           now=NOW, attempt_window_s=86400,
                                           abandon_window_s=86400)
            lat.append(time.perf_counter() - t)
            assert len(facts.consents) <= 1
        lat.sort()
        p50, p99 = statistics.median(lat) * 1000, lat[int(len(lat) * 0.99)] * 1000
        out.append(("load_facts p50 / p99 (ms)", f"{p50:.3f} / {p99:.3f}"))
        # a second replace of the same size: the steady state (a new generation built
        # aside, the superseded one unlinked)
        t0, c0 = time.perf_counter(), time.process_time()
        mem0, rcpu0 = await memory_and_cpu(client)
        await store.import_consents(consents(sample(n, 9, span), seed=8),
                                    mode=ImportMode.REPLACE, now=NOW)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        mem1, rcpu1 = await memory_and_cpu(client)
        out.append(("second replace import (old generation unlinked), consents/s (wall)",
                    f"{n / wall:,.0f}"))
        out.append(("  CPU s: bench process / redis-server; memory after, bytes/consent",
                    f"{cpu:.1f} / {rcpu1 - rcpu0:.1f}; {(mem1 - mem0) / n + per_consent:.1f}"))
        if e2e:
            out.extend(await end_to_end(url, sample(e2e, 11, max(e2e, E2E_SPAN)), client))
        await store.close()
        await client.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consents", type=int, default=1_000_000)
    parser.add_argument("--span", type=int, default=SPAN,
                        help="numbers drawn among this many from +33600000000")
    parser.add_argument("--legacy", type=int, default=100_000,
                        help="consents written in the former layout for comparison (0: skip)")
    parser.add_argument("--end-to-end", type=int, default=100_000,
                        help="rows of the import_file (CSV) measurement (0: skip)")
    args = parser.parse_args()
    table = asyncio.run(run(args.consents, args.span, args.legacy, args.end_to_end))
    print("| measure | value |\n|---|---|")
    for k, v in table:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
