"""A worker that stops answering (its event loop blocked, the process stopped) is killed
and restarted.

Before, nothing watched for it: the supervisor stayed truthful (/readyz said "not
ready" after 2 s, a reload failed after 20 s naming it) but never restarted it, so the
instance ran one worker short until someone noticed.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workers.support import Served, serve, wait_for


@pytest.fixture
def served(tmp_path: Path, redis_url: str, key_prefix: str) -> Iterator[Served]:
    yield from serve(tmp_path, redis_url, key_prefix, "demo",
                     service="worker_hang_s = 5.0")



def test_a_stopped_worker_is_killed_and_restarted(served: Served) -> None:
    served.until("READY")
    pids = {w["index"]: w["pid"] for w in served.readyz()["workers"]}
    os.kill(pids[1], signal.SIGSTOP)  # a loop that never turns again
    hung = wait_for(lambda: served.events("supervisor.worker_hung"), "the hang seen")
    assert [(e["worker"], e["pid"]) for e in hung] == [(1, pids[1])]
    assert float(str(hung[0]["silent_s"])) >= 5.0

    def restarted() -> bool:
        doc = served.readyz()
        now = {w["index"]: w["pid"] for w in doc["workers"]}
        return bool(doc["ready"]) and now[0] == pids[0] and now[1] not in (None, pids[1])

    wait_for(restarted, "worker 1 restarted and ready")
    died = served.events("supervisor.worker_died")
    assert [(e["worker"], e["code"]) for e in died] == [(1, -signal.SIGKILL)]
    # worker 0, as idle as worker 1 the whole time (no call), answered the watch's
    # questions: never taken for a hung worker
    assert served.events("supervisor.worker_hung") == hung

