#!/usr/bin/env python3
"""In-process CPU per Redis round trip: redis-py against the lean client (resp.py).

One redis-server the bench starts (bench/run.py's), one process, CPU time of this
process (``time.process_time``: user + system) over ``--n`` round trips of each shape:

- ``PING``: one command, the floor of a round trip;
- ``facts pipeline``: the lone call's facts read (7 commands: two HGETALL, a
  ZRANGEBYSCORE with scores, three ZCOUNT, an HMGET), replies shaped as the store reads
  them (redis-py's pipeline against ``HotPipeline``);
- ``EVALSHA``: one script call (the reservation's and the audit append's shape);
- the same ``PING`` with 50 callers at once (each its own round trip: redis-py takes 50
  pooled connections, the lean client pipelines them on one).

With ``--ref DIR`` (a checkout, e.g. ``git archive main | tar -x -C DIR``), also the
CPU of one screened call in process (``Service.screen``: Redis store and Redis audit
stream on that server, every number consented, so each call reads, reserves and appends;
sequential and 50 in flight), this tree's gateway package and DIR's alternated, each in its
own interpreter.

Prints markdown tables for docs/benchmarks.md. Not a test: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from run import redis_server

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = "return {KEYS[1], ARGV[1]}"
FLIGHT = 50


async def cpu_per(n: int, one: Callable[[], Awaitable[Any]], *, callers: int = 1) -> float:
    """CPU µs of this process per round trip, over ``n`` round trips."""
    for _ in range(min(200, n)):  # warm: connections open, caches filled
        await one()
    per_caller = n // callers

    async def caller() -> None:
        for _ in range(per_caller):
            await one()

    began = time.process_time()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return (time.process_time() - began) / (per_caller * callers) * 1e6


async def main(args: argparse.Namespace) -> None:
    import redis.asyncio as redis

    from gateway.store.redis_hot import HotPipeline, from_redis_client

    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(redis_server())
        if url is None:
            print("no redis-server: `make redis-server`")
            return
        client = redis.Redis.from_url(url, decode_responses=True, max_connections=64,
                                      socket_timeout=1.0)
        lean = from_redis_client(client, stall_timeout_s=1.0)
        assert lean is not None
        await client.hset("n", mapping={"a": "1", "b": "2"})
        await client.zadd("z", {"x": 1.0, "y": 2.0})
        sha = await client.script_load(SCRIPT)

        def fill(pipe: Any) -> None:
            pipe.hgetall("n")
            pipe.zrangebyscore("z", "(0", "+inf", withscores=True)
            pipe.zcount("c1", "(0", 5)
            pipe.zcount("c2", "(0", 5)
            pipe.zcount("c3", "(0", 5)
            pipe.execute_command("HMGET", "k", "f1", "f2")
            pipe.hgetall("lists")

        async def py_pipe() -> Any:
            pipe = client.pipeline(transaction=False)
            fill(pipe)
            return await pipe.execute()

        async def lean_pipe() -> Any:
            pipe = HotPipeline(lean)
            fill(pipe)
            return await pipe.execute()

        shapes: list[tuple[str, Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]],
                           int]] = [
            ("PING", client.ping, lambda: lean.execute((("PING",),)), 1),
            ("facts pipeline (7 commands)", py_pipe, lean_pipe, 1),
            ("EVALSHA", lambda: client.evalsha(sha, 1, "k", "v"),
             lambda: lean.evalsha(SCRIPT, ["k"], ["v"]), 1),
            (f"PING, {FLIGHT} callers at once", client.ping,
             lambda: lean.execute((("PING",),)), FLIGHT),
        ]
        print("| round trip | redis-py µs CPU | lean µs CPU | ratio |")
        print("|---|---:|---:|---:|")
        for name, py, mine, callers in shapes:
            a: list[float] = []
            b: list[float] = []
            for _ in range(args.repeat):  # alternated: the neighbours' load spreads
                a.append(await cpu_per(args.n, py, callers=callers))
                b.append(await cpu_per(args.n, mine, callers=callers))
            ra, rb = min(a), min(b)
            print(f"| {name} | {ra:.0f} | {rb:.0f} | {ra / rb:.1f}x |")
        await lean.close()
        await client.aclose()
        if args.ref:
            screens(url, args)


def screens(url: str, args: argparse.Namespace) -> None:
    """``Service.screen`` CPU per call, this tree against ``--ref``, alternated."""
    print("\n| gateway | calls in flight | CPU µs per screened call |")
    print("|---|---:|---:|")
    trees = [("before (--ref)", Path(args.ref).resolve()), ("after (this tree)", ROOT)]
    for run in range(args.repeat):
        for name, tree in trees:
            for flight in (1, FLIGHT):
                env = dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{ROOT}")
                out = subprocess.run(  # our own interpreter and script
                    [sys.executable, __file__, "--screen", url, str(tree), str(args.calls),
                     str(flight), f"b{run}{flight}{name[0]}"],
                    env=env, check=True, capture_output=True, text=True).stdout
                print(f"| {name}, run {run + 1} | {flight} | {float(out.split()[-1]):.0f} |")


async def screen(url: str, tree: str, calls: int, flight: int, tag: str) -> float:
    """In a child interpreter whose gateway package is ``tree``'s."""
    import gateway
    from gateway.audit import AuditSettings, open_audit_trail
    from gateway.core.model import Attempt
    from gateway.logs import configure_logging
    from gateway.service import Service
    from gateway.store.factory import open_store
    # the tests' policy and seeding (of ``tree``'s checkout); not type-checked with bench/
    helpers: Any = importlib.import_module("tests.test_service")
    LEGAL_NOW, policy, with_consent = helpers.LEGAL_NOW, helpers.policy, helpers.with_consent

    assert gateway.__file__ is not None and gateway.__file__.startswith(tree)
    configure_logging(level="info", fmt="json", stream=sys.stderr)
    numbers = [f"+336{i:08d}" for i in range(calls + 1)]
    store = await with_consent(open_store(url, key_prefix=tag), *numbers)
    trail = open_audit_trail(AuditSettings(sink="redis", redis_url=url,
                                           stream_key=f"{tag}:audit", instance_id=tag,
                                           write_timeout_s=0.5))
    service = Service(policy=policy(), store=store, audit=trail, clock=lambda: LEGAL_NOW,
                      budget_s=1.0)
    await service.screen(Attempt(number=numbers[-1], campaign_id="spring", source="agi"))
    queue = iter(numbers[:calls])
    reasons: set[str] = set()

    async def caller() -> None:
        for number in queue:
            result = await service.screen(Attempt(number=number, campaign_id="spring",
                                                  source="agi"))
            reasons.add(result.reason.value)

    began = time.process_time()
    await asyncio.gather(*(caller() for _ in range(flight)))
    cpu = (time.process_time() - began) / calls * 1e6
    await trail.close()
    await store.close()
    assert reasons == {"ok"}, reasons  # every call read, reserved and appended
    return cpu


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="round trips per measure")
    parser.add_argument("--repeat", type=int, default=3, help="alternated measures (best kept)")
    parser.add_argument("--ref", default="", help="a checkout to compare Service.screen with")
    parser.add_argument("--calls", type=int, default=2000, help="screened calls per measure")
    return parser.parse_args(argv)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--screen":
        url, tree, calls, flight, tag = sys.argv[2:7]
        print(asyncio.run(screen(url, tree, int(calls), int(flight), tag)))
    else:
        asyncio.run(main(parse(sys.argv[1:])))
