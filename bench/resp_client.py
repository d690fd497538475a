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

Prints a markdown table for docs/benchmarks.md. Not a test: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import redis_server  # noqa: E402  # after the path fix above

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

    from gateway.store.redis_hot import HotPipeline
    from gateway.store.resp import from_redis_client

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
            print(f"| {name} | {ra:.0f} | {rb:.0f} | {ra / rb:.1f}× |")
        await lean.close()
        await client.aclose()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="round trips per measure")
    parser.add_argument("--repeat", type=int, default=3, help="alternated measures (best kept)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
