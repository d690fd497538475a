"""SIGTERM while the workers are starting: each worker stops at once, none is killed.

A stop right after a worker's start cancelled its first store probe while the probe's
PING was in flight; that cancellation was swallowed below it, the probe went on to its
5 s sleep, and the worker's stop waited on it until the supervisor's drain deadline
(22 s by default) and its SIGKILL. The probe is now cancelled again until it ends.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workers.support import DEADLINE_S, Served, serve, wait_for


@pytest.fixture
def served(tmp_path: Path, redis_url: str, key_prefix: str) -> Iterator[Served]:
    yield from serve(tmp_path, redis_url, key_prefix, "demo")


def test_sigterm_right_after_a_worker_started_stops_every_worker(served: Served) -> None:
    wait_for(lambda: '"gateway.started"' in served.log_text(), "a worker started")
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=DEADLINE_S) == 0
    log = served.log_text()
    assert "supervisor.worker_killed" not in log
    assert log.count('"gateway.stopped"') == log.count('"gateway.started"') >= 1
