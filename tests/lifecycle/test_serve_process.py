"""``dialer-gateway serve`` as a process under a notify socket: READY, SIGHUP, STOPPING.

The test binds a real AF_UNIX datagram socket, names it in ``NOTIFY_SOCKET`` as
systemd does, and reads what the gateway sends. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.sdnotify import monotonic_usec
from tests.agi_client import agi_screen, http_get
from tests.lifecycle.support import gateway_toml, write

DEADLINE_S = 15.0
# what the demo number gets once campaign "spring" is known: the process runs on the real
# clock, so the demo consent's ALLOW in legal hours and the window's block outside them
KNOWN_CAMPAIGN = {("ALLOW", "ok"), ("BLOCK", "outside_hours"), ("BLOCK", "holiday")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], notify: socket.socket, conf: Path,
                 agi: tuple[str, int], http: tuple[str, int]) -> None:
        self.proc, self.notify, self.conf, self.agi, self.http = proc, notify, conf, agi, http

    def next_message(self) -> dict[str, str]:
        self.notify.settimeout(DEADLINE_S)
        data = self.notify.recv(65536).decode()
        return dict(line.split("=", 1) for line in data.split("\n"))

    def until(self, key: str) -> list[dict[str, str]]:
        """Messages up to and including the first carrying ``key``."""
        seen = []
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            seen.append(self.next_message())
            if key in seen[-1]:
                return seen
        raise AssertionError(f"no {key} within {DEADLINE_S} s: {seen}")

    def metrics(self) -> str:
        _, body = asyncio.run(http_get(self.http, "/metrics"))
        return body.decode()


def start(tmp_path: Path, notify_name: str, bind: str | bytes) -> Iterator[Served]:
    agi, http = ("127.0.0.1", free_port()), ("127.0.0.1", free_port())
    conf = tmp_path / "gateway.toml"
    write(conf, gateway_toml(tmp_path, "demo", agi=f"{agi[0]}:{agi[1]}",
                             http=f"{http[0]}:{http[1]}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_GATEWAY_")}
    env["NOTIFY_SOCKET"] = notify_name
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(bind)
    script = Path(sys.executable).with_name("dialer-gateway")
    proc = subprocess.Popen([str(script), "--config", str(conf), "serve"], env=env,
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield Served(proc, notify, conf, agi, http)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=DEADLINE_S)  # reaps it and closes the stderr pipe
        notify.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    path = str(tmp_path / "notify.sock")
    yield from start(tmp_path, path, path)


def test_ready_reload_on_sighup_and_stopping(served: Served, tmp_path: Path) -> None:
    t0 = monotonic_usec()
    ready = served.until("READY")[-1]
    assert ready["READY"] == "1" and "1 campaigns" in ready["STATUS"]
    assert "store up" in ready["STATUS"]
    # READY=1 means listening: a call is answered at once
    before = asyncio.run(agi_screen(served.agi, "06 12 34 56 78", "spring"))
    assert before["GW_REASON"] == "campaign_unknown"

    write(served.conf, gateway_toml(tmp_path, "demo", "spring",
                                    agi=f"{served.agi[0]}:{served.agi[1]}",
                                    http=f"{served.http[0]}:{served.http[1]}"))
    served.proc.send_signal(signal.SIGHUP)
    reloading = served.next_message()
    assert reloading["RELOADING"] == "1"
    assert t0 <= int(reloading["MONOTONIC_USEC"]) <= monotonic_usec()
    after_reload = served.next_message()
    assert after_reload["READY"] == "1" and "2 campaigns" in after_reload["STATUS"]
    after = asyncio.run(agi_screen(served.agi, "06 12 34 56 78", "spring"))
    assert (after["GW_VERDICT"], after["GW_REASON"]) in KNOWN_CAMPAIGN

    write(served.conf, "[campaigns.broken]\n")
    served.proc.send_signal(signal.SIGHUP)
    assert served.next_message()["RELOADING"] == "1"
    failed = served.next_message()
    assert failed["READY"] == "1" and "last reload FAILED" in failed["STATUS"]
    assert "2 campaigns" in failed["STATUS"]  # still the previous configuration
    text = served.metrics()
    assert 'dialer_gateway_config_reloads_total{result="success"} 1.0' in text
    assert 'dialer_gateway_config_reloads_total{result="error"} 1.0' in text
    still = asyncio.run(agi_screen(served.agi, "06 12 34 56 78", "spring"))
    assert (still["GW_VERDICT"], still["GW_REASON"]) in KNOWN_CAMPAIGN
    assert served.proc.poll() is None  # SIGHUP no longer kills the gateway

    served.proc.send_signal(signal.SIGTERM)
    assert served.next_message()["STOPPING"] == "1"
    _, err = served.proc.communicate(timeout=DEADLINE_S)
    assert served.proc.returncode == 0, err.decode()[-2000:]
    assert b"config.reload_failed" in err and b"campaigns.broken" in err


def test_ready_on_an_abstract_notify_socket(tmp_path: Path) -> None:
    name = f"dialer-gateway-test-{os.getpid()}-{time.monotonic_ns()}"
    for served in start(tmp_path, "@" + name, b"\0" + name.encode()):
        assert served.until("READY")[-1]["READY"] == "1"
        served.proc.send_signal(signal.SIGTERM)
        assert served.next_message()["STOPPING"] == "1"
        _, err = served.proc.communicate(timeout=DEADLINE_S)
        assert served.proc.returncode == 0, err.decode()[-2000:]
