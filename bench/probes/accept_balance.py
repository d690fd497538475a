#!/usr/bin/env python3
"""How N asyncio worker processes share one listening port: inherited socket or SO_REUSEPORT.

Isolates the socket mechanism from the gateway: each worker is a bare asyncio server
whose handler reads one line, burns ``--work-us`` of CPU (a decision), answers and
closes. The client (this process, after forking the workers) runs sequentially, with
50 connections in flight, and with 50 in flight where one worker is slowed by a
CPU hog (a noisy neighbour, a GC pause, a slow Redis answer for that worker);
it prints, per mode, the calls each worker served and the p50/p99 latency.

    .venv/bin/python bench/probes/accept_balance.py [--seconds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import time
from collections import Counter

HOST = "127.0.0.1"


def burn(us: float) -> None:
    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        pass


def serve(sock: socket.socket | None, port: int, work_us: float, hog: bool) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        burn(work_us * (4 if hog else 1))  # a slowed worker: 4x the CPU per call
        writer.write(f"{os.getpid()}\n".encode())
        await writer.drain()
        writer.close()

    async def main() -> None:
        if sock is not None:
            server = await asyncio.start_server(handle, sock=sock, backlog=1024)
        else:
            server = await asyncio.start_server(handle, HOST, port, reuse_port=True,
                                                backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


async def one(port: int) -> tuple[float, int]:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(b"x\n")
    pid = int((await reader.readline()).decode())
    writer.close()
    return time.perf_counter() - started, pid


async def load(port: int, in_flight: int, seconds: float) -> tuple[Counter[int], list[float]]:
    served: Counter[int] = Counter()
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def caller() -> None:
        while loop.time() < deadline:
            latency, pid = await one(port)
            served[pid] += 1
            latencies.append(latency)

    await asyncio.gather(*(caller() for _ in range(in_flight)))
    return served, sorted(latencies)


def run(mode: str, workers: int, in_flight: int, seconds: float, work_us: float,
        hog: bool) -> str:
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if mode == "reuseport":
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((HOST, 0))
    port = holder.getsockname()[1]
    if mode == "shared":
        holder.listen(1024)
    pids = []
    for i in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            try:
                serve(holder if mode == "shared" else None, port, work_us, hog and i == 0)
            finally:
                os._exit(0)
        pids.append(pid)
    time.sleep(1.0)  # the workers bind and listen (a probe, not a test: no readiness pipe)
    try:
        served, lat = asyncio.run(load(port, in_flight, seconds))
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        holder.close()
    total = sum(served.values())
    shares = " / ".join(f"{100 * served[p] / total:.0f}" for p in pids)
    p50, p99 = lat[len(lat) // 2] * 1000, lat[int(0.99 * (len(lat) - 1))] * 1000
    return (f"| {mode} | {in_flight} | {'worker 0 slowed 4x' if hog else 'even'} | "
            f"{total / seconds:.0f} | {p50:.2f} | {p99:.2f} | {shares} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work-us", type=float, default=500.0)
    args = parser.parse_args()
    print(f"\naccept balance: {args.workers} workers, {args.work_us:g} µs CPU per call, "
          f"{os.cpu_count()} CPU, {args.seconds:g} s per row\n")
    print("| socket | in flight | workers | calls/s | p50 ms | p99 ms | calls per worker % |")
    print("|---|---:|---|---:|---:|---:|---|")
    for in_flight, hog in ((1, False), (50, False), (50, True)):
        for mode in ("shared", "reuseport"):
            print(run(mode, args.workers, in_flight, args.seconds, args.work_us, hog),
                  flush=True)


if __name__ == "__main__":
    main()
