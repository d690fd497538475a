"""Real redis-server processes for the audit tests.

The shared session fixture (tests/fixtures/redis_servers.py) was still a placeholder
when these tests were written, so this module starts its own servers.
"""

from __future__ import annotations

import selectors
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
READY_DEADLINE_S = 10.0


@dataclass
class RedisServer:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(workdir: Path) -> RedisServer:
    """Start redis-server on a free loopback port; returns once it logs readiness."""
    for _ in range(5):
        port = _free_port()
        proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir), "--logfile", ""],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            bufsize=0)  # unbuffered: select() must see every line still unread
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + READY_DEADLINE_S
        output = b""
        while time.monotonic() < deadline:
            if not sel.select(timeout=deadline - time.monotonic()):
                break
            line = proc.stdout.readline()
            if not line:
                break  # exited (port taken?)
            output += line
            if b"Ready to accept connections" in line:
                sel.close()
                return RedisServer(proc, port)
        sel.close()
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
    raise RuntimeError(f"redis-server did not start: {output[-500:]!r}")


@pytest.fixture(scope="session")
def audit_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis-audit"))
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of its own, for tests that kill it."""
    server = start_redis(tmp_path)
    yield server
    server.stop()
