"""A worker whose control channel goes out of step is taken out and restarted.

The supervisor reads each worker's length-prefixed JSON frames. An over-long or malformed
frame (a worker bug, a corrupted write) ended that worker's reader for good while the
worker stayed marked ready.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from gateway.config import load_config
from gateway.supervisor import Supervisor

DEADLINE_S = 10.0


@pytest.mark.parametrize("frame", [
    (2 << 20).to_bytes(4, "big"),  # over-long: the channel is out of step
    len(b"[1]").to_bytes(4, "big") + b"[1]",  # not a JSON object
    len(b'{"type":"reply","id":[]}').to_bytes(4, "big") + b'{"type":"reply","id":[]}',
], ids=["over-long", "not-an-object", "bad-id"])
async def test_a_worker_whose_control_frame_is_malformed_is_stopped_and_not_ready(
        frame: bytes) -> None:
    """The reader of that worker's channel stopped for good and the worker stayed ready:
    every /readyz then waited its 2 s and failed, every reload its 20 s, and the worker
    was never restarted. Now it is not ready at once and is told to drain and exit (its
    watcher restarts it)."""
    sup = Supervisor(load_config(None, env={}, overrides={
        "service": {"workers": 2}, "store": {"url": "redis://127.0.0.1:1"}}))  # not reached
    worker = sup.workers[0]
    worker.proc = await asyncio.create_subprocess_exec("sleep", "60")  # a worker stand-in
    worker.ready.set()
    reader = asyncio.StreamReader()
    reader.feed_data(frame)
    try:
        async with asyncio.timeout(DEADLINE_S):
            await sup._read(worker, reader)
            code = await worker.proc.wait()
        assert code == -signal.SIGTERM
        assert not worker.ready.is_set()
    finally:
        if worker.proc.returncode is None:
            worker.proc.kill()
            await worker.proc.wait()


async def test_a_worker_out_of_step_that_ignores_sigterm_is_killed_past_the_drain() -> None:
    """Told to drain, it is no longer ready, so the hang watch does not look at it: a
    worker that did not exit (SIGTERM ignored, its drain stuck) stayed for good. Past
    the drain deadline of a stop, it is killed (then restarted by its watcher)."""
    sup = Supervisor(load_config(None, env={}, overrides={
        "service": {"workers": 2}, "store": {"url": "redis://127.0.0.1:1"}}))  # not reached
    worker = sup.workers[0]
    worker.proc = await asyncio.create_subprocess_exec(  # a worker that ignores SIGTERM
        "sh", "-c", "trap '' TERM; echo up; exec sleep 60",  # ignored, also past exec
        stdout=asyncio.subprocess.PIPE)
    worker.ready.set()
    reader = asyncio.StreamReader()
    reader.feed_data(len(b"[1]").to_bytes(4, "big") + b"[1]")
    try:
        async with asyncio.timeout(DEADLINE_S):
            assert worker.proc.stdout is not None
            assert await worker.proc.stdout.readline() == b"up\n"  # its trap is set
            await sup._read(worker, reader)  # SIGTERM, ignored
            sup._kill_overdue(time.monotonic())  # within the drain deadline: left to drain
            assert worker.proc.returncode is None
            sup._kill_overdue(worker.kill_at)
            code = await worker.proc.wait()
        assert code == -signal.SIGKILL
    finally:
        if worker.proc.returncode is None:
            worker.proc.kill()
            await worker.proc.wait()
