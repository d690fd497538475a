"""A worker holds its own descriptors only, on either loop.

The supervisor is started with a descriptor its launcher left inheritable (a lock a
wrapper script holds with ``flock``, a pipe a parent waits on for EOF). On asyncio's loop
``create_subprocess_exec`` closes it in each worker (``close_fds``); uvloop does not
implement ``close_fds``, and every worker held it too, past the supervisor's own exit.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from tests.workers.support import serve, wait_for, workers_in


def holds(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    targets = set()
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            targets.add(os.readlink(fd))
    return str(path) in targets


@pytest.mark.parametrize("event_loop", ["auto", "asyncio"])
def test_workers_do_not_inherit_the_launchers_descriptors(
        tmp_path: Path, redis_url: str, key_prefix: str, event_loop: str) -> None:
    lock = tmp_path / "launcher.lock"
    with open(lock, "w") as held:
        os.set_inheritable(held.fileno(), True)
        with contextlib.contextmanager(serve)(tmp_path, redis_url, key_prefix, "demo",
                                              event_loop=event_loop,
                                              pass_fds=(held.fileno(),)) as served:
            ready = served.until("READY")[-1]
            assert ready["READY"] == "1"
            pids = wait_for(lambda: workers_in(tmp_path) if len(workers_in(tmp_path)) == 2
                            else None, "two workers running")
            assert holds(served.proc.pid, lock)  # the supervisor got it
            assert [pid for pid in pids if holds(pid, lock)] == []
