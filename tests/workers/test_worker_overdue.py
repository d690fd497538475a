"""A worker that is not ready and never ends is killed once overdue, then restarted.

The hang watch looks at ready workers only. A restarted worker stopped (or stuck) before
it said ready, like a worker told to drain (SIGTERM) that does not exit, was left as it
was: the instance ran one worker short for good, /readyz "not ready" forever.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.supervisor import WORKER_START_TIMEOUT_S
from tests.workers.support import Served, serve, wait_for, workers_in


@pytest.fixture
def served(tmp_path: Path, redis_url: str, key_prefix: str) -> Iterator[Served]:
    yield from serve(tmp_path, redis_url, key_prefix, "demo",
                     service="worker_hang_s = 5.0")



def test_a_restarted_worker_stopped_before_ready_is_killed_and_restarted(
        served: Served) -> None:
    served.until("READY")
    pids = {w["index"]: w["pid"] for w in served.readyz()["workers"]}
    os.kill(pids[1], signal.SIGKILL)  # died: restarted after the backoff (0.5 s)
    known = set(pids.values())
    # the new worker, stopped as soon as it exists (Python takes ~1 s to get to ready)
    new = wait_for(lambda: [p for p in workers_in(served.tmp_path) if p not in known],
                   "worker 1 started again", deadline_s=10.0)[0]
    os.kill(new, signal.SIGSTOP)
    overdue = wait_for(lambda: served.events("supervisor.worker_overdue"),
                       "the stuck start seen", deadline_s=WORKER_START_TIMEOUT_S + 15.0)
    assert [(e["worker"], e["pid"]) for e in overdue] == [(1, new)]

    def restarted() -> bool:
        doc = served.readyz()
        now = {w["index"]: w["pid"] for w in doc["workers"]}
        return bool(doc["ready"]) and now[0] == pids[0] and now[1] not in (None, pids[1], new)

    wait_for(restarted, "worker 1 restarted again and ready")
    died = served.events("supervisor.worker_died")
    assert [(e["worker"], e["code"]) for e in died] == [(1, -signal.SIGKILL), (1, -signal.SIGKILL)]
