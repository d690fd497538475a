"""The hang watch measures a worker's silence to questions it was asked: a service frozen
whole (``docker pause``, ``systemctl freeze``: the supervisor and its workers stopped
together) and thawed is not a service whose workers hung.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workers.support import Served, serve, wait_for

HANG_S = 5.0


@pytest.fixture
def served(tmp_path: Path, redis_url: str, key_prefix: str) -> Iterator[Served]:
    yield from serve(tmp_path, redis_url, key_prefix, "demo",
                     service=f"worker_hang_s = {HANG_S}")



def keeps_its_workers(served: Served, pids: list[int]) -> None:
    """The watch turns several times after the thaw (a tick is min(5 s, hang/3) = 1.7 s):
    /readyz asked over 2 x HANG_S sees the same two workers throughout."""
    end = time.monotonic() + 2 * HANG_S
    while time.monotonic() < end:
        doc = served.readyz()
        assert [w["pid"] for w in doc["workers"]] == pids, doc
        time.sleep(0.2)  # a period to watch over, not a synchronisation


def test_a_service_frozen_whole_then_thawed_keeps_its_workers(served: Served) -> None:
    served.until("READY")
    pids = [w["pid"] for w in served.readyz()["workers"]]
    group = [served.proc.pid, *pids]
    for pid in group:  # what the cgroup freezer does to every process of the unit
        os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(HANG_S + 2.0)  # the freeze itself (not a synchronisation)
    finally:
        for pid in group:
            os.kill(pid, signal.SIGCONT)
    keeps_its_workers(served, pids)
    assert served.events("supervisor.worker_hung") == []
    assert served.events("supervisor.worker_died") == []


def test_a_supervisor_stopped_for_longer_than_the_hang_keeps_its_workers(
        served: Served) -> None:
    """The workers answered every question they were asked: the supervisor asked none
    while it was stopped (a debugger, a long stall of its own loop)."""
    served.until("READY")
    pids = [w["pid"] for w in served.readyz()["workers"]]
    os.kill(served.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(HANG_S + 2.0)
    finally:
        os.kill(served.proc.pid, signal.SIGCONT)
    keeps_its_workers(served, pids)
    assert served.events("supervisor.worker_hung") == []
    # ... while a worker that truly stopped is still found (the watch is not blind after)
    os.kill(pids[1], signal.SIGSTOP)
    hung = wait_for(lambda: served.events("supervisor.worker_hung"), "the hang seen")
    assert [(e["worker"], e["pid"]) for e in hung] == [(1, pids[1])]
