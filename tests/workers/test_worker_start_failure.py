"""A worker that cannot start stops the whole gateway: no READY, a clear log line, the
exit code of the worker, and no worker left behind (systemd then shows the failure
rather than a gateway that is half up)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workers.support import DEADLINE_S, Served, serve, workers_in


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def test_worker_zero_cannot_bind_the_ami_proxy(tmp_path: Path, redis_url: str,
                                               key_prefix: str, held_port: int) -> None:
    extra = f"""
[ami_proxy]
enabled = true
listen = "127.0.0.1:{held_port}"

[ami_proxy.accounts.dialer]
secret = "s3cret-for-tests"
"""
    for served in serve(tmp_path, redis_url, key_prefix, "demo", extra=extra):
        assert served.proc.wait(timeout=DEADLINE_S) == 1
        log = served.log_text()
        assert "supervisor.worker_failed_to_start" in log
        assert "Address already in use" in log or "address already in use" in log
        assert "supervisor.stopped" in log
        assert _no_ready(served)
        assert workers_in(tmp_path) == []


def _no_ready(served: Served) -> bool:
    served.notify.settimeout(0.0)
    try:
        while True:
            if b"READY=1" in served.notify.recv(65536):
                return False
    except BlockingIOError:
        return True


def test_serve_refuses_workers_with_the_memory_store(tmp_path: Path) -> None:
    conf = tmp_path / "g.toml"
    conf.write_text('[agi]\nlisten = "127.0.0.1:0"\n[http]\nlisten = "127.0.0.1:0"\n'
                    '[service]\nworkers = 2\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_GATEWAY_")}
    done = subprocess.run([str(Path(sys.executable).with_name("dialer-gateway")), "--config",
                           str(conf), "serve"], capture_output=True, text=True, env=env,
                          timeout=DEADLINE_S, check=False)
    assert done.returncode == 2
    assert "service.workers = 2: the memory store lives in one process" in done.stderr
