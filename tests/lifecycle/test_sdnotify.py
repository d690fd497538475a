"""The sd_notify datagram protocol against real AF_UNIX datagram sockets."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.sdnotify import MAX_STATUS_CHARS, Notifier, monotonic_usec, socket_address

DEADLINE_S = 5.0


def receive(sock: socket.socket) -> dict[str, str]:
    sock.settimeout(DEADLINE_S)
    data = sock.recv(65536).decode()
    return dict(line.split("=", 1) for line in data.split("\n"))


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        yield sock, path


def test_ready_reloading_stopping_reach_a_path_socket(
    path_socket: tuple[socket.socket, str],
) -> None:
    sock, path = path_socket
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("serving: 2 campaigns")
    assert receive(sock) == {"READY": "1", "STATUS": "serving: 2 campaigns"}
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert n.reloading()
    msg = receive(sock)
    assert msg["RELOADING"] == "1"
    assert before <= int(msg["MONOTONIC_USEC"]) <= monotonic_usec()
    assert n.stopping()
    assert receive(sock)["STOPPING"] == "1"


def test_an_abstract_socket_name_starts_with_at() -> None:
    name = f"@dialer-gateway-test-{os.getpid()}-{time.monotonic_ns()}"
    assert socket_address(name) == b"\0" + name[1:].encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name[1:].encode())
        assert Notifier({"NOTIFY_SOCKET": name}).ready("ok")
        assert receive(sock) == {"READY": "1", "STATUS": "ok"}


def test_status_is_one_short_line(path_socket: tuple[socket.socket, str]) -> None:
    sock, path = path_socket
    Notifier({"NOTIFY_SOCKET": path}).status("reload failed:\nline 2\n" + "x" * 1000)
    status = receive(sock)["STATUS"]
    assert "\n" not in status and status.startswith("reload failed: line 2 x")
    assert len(status) == MAX_STATUS_CHARS


def test_without_notify_socket_nothing_is_sent() -> None:
    n = Notifier({})
    assert not n.enabled
    assert not n.ready("ok")


def test_a_missing_socket_is_reported_not_raised(tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.enabled
    assert not n.ready("ok")  # ENOENT: logged once, the gateway carries on
    assert not n.stopping()


def test_a_relative_name_is_refused() -> None:
    assert not Notifier({"NOTIFY_SOCKET": "relative/name"}).enabled


def test_a_manager_that_stops_reading_costs_no_wait(
    path_socket: tuple[socket.socket, str],
) -> None:
    """Its queue full, a send used to spin for its 1 s timeout (poll says writable,
    sendto says EAGAIN), holding the supervisor's event loop: 21 reloads cost 37 s of
    CPU and /healthz waited 1 s. Now the datagram is dropped at once and said so."""
    sock, path = path_socket
    n = Notifier({"NOTIFY_SOCKET": path})
    sent = 0
    while n.status(f"filling {sent}"):  # nobody reads: the queue fills up
        sent += 1
        assert sent < 100_000, "the receiver's queue never filled"
    started = time.process_time()
    assert n.ready("serving") is False
    assert n.status("still serving") is False
    assert time.process_time() - started < 0.5  # no busy wait (it was 1 s per send)
    assert receive(sock)["STATUS"] == "filling 0"  # what was queued is intact
