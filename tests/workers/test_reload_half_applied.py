"""A reload that only some workers applied never leaves an instance that says it is ready.

The supervisor validates once, then each worker reloads. When one worker cannot answer
(stopped, then killed mid-reload) the reload fails, but the other worker has applied the
new configuration; the restarted worker starts with the configuration still in force.
Calls were then screened under two configurations at once while /readyz said ready.
Each worker's configuration hash is now followed: /readyz names the worker that runs
another configuration than the instance's, until a reload every worker takes.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.workers.support import Served, serve, wait_for, write
from tests.workers.test_serve_workers import chains_answering


@pytest.fixture
def served(tmp_path: Path, redis_url: str, key_prefix: str) -> Iterator[Served]:
    yield from serve(tmp_path, redis_url, key_prefix, "demo")


def reloaded_by(served: Served, index: int) -> bool:
    return any(e.get("worker") == index for e in served.events("config.reloaded"))


def test_a_half_applied_reload_is_not_ready_until_every_worker_reloads(
        served: Served) -> None:
    served.until("READY")
    pids = {w["index"]: w["pid"] for w in served.readyz()["workers"]}
    write(served.conf, served.toml("demo", "spring"))
    os.kill(pids[1], signal.SIGSTOP)  # worker 1 cannot answer the reload ...
    served.proc.send_signal(signal.SIGHUP)
    assert served.next_message()["RELOADING"] == "1"
    wait_for(lambda: reloaded_by(served, 0), "worker 0 applied the reload")
    os.kill(pids[1], signal.SIGKILL)  # ... and dies: the reload fails, half applied
    assert "last reload FAILED" in served.next_message()["STATUS"]

    def restarted() -> dict[str, Any] | None:
        doc = served.readyz()
        w1 = doc["workers"][1]
        return doc if w1["pid"] not in (None, pids[1]) and w1["ready"] else None

    doc = wait_for(restarted, "worker 1 restarted")
    # worker 1 runs the configuration in force (no "spring"), worker 0 the new one
    assert doc["ready"] is False, doc
    assert doc["workers"][0]["ready"] is False and "reload again" in doc["workers"][0]["error"]

    # a reload every worker takes makes the instance consistent, and ready, again
    served.proc.send_signal(signal.SIGHUP)
    assert served.next_message()["RELOADING"] == "1"
    assert "FAILED" not in served.next_message()["STATUS"]
    assert served.readyz()["ready"] is True
    chains_answering(served, "spring", "no_consent")
