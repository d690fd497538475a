"""systemd readiness notification (``Type=notify``) without a dependency.

The protocol (sd_notify(3)): one datagram of ``KEY=value`` lines sent to the
``AF_UNIX`` ``SOCK_DGRAM`` socket named by ``$NOTIFY_SOCKET``; a name starting with
``@`` is an abstract socket (the ``@`` becomes a NUL byte). Without the variable
(not under systemd) every call does nothing. A failed send is logged once per
state and never stops the gateway: readiness is a courtesy to the service manager,
not part of deciding calls.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
MAX_STATUS_CHARS = 200  # STATUS= text shown by `systemctl status`, kept short


def socket_address(name: str) -> str | bytes:
    """The ``sendto`` address of ``$NOTIFY_SOCKET`` (abstract when it starts with '@')."""
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    return name


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as systemd wants it with ``RELOADING=1``."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def _clean(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line[:MAX_STATUS_CHARS]


class Notifier:
    """Sends sd_notify datagrams; a no-op when ``$NOTIFY_SOCKET`` is unset."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        name = env.get(NOTIFY_SOCKET_ENV, "")
        self._address: str | bytes | None = None
        if name.startswith(("/", "@")):
            self._address = socket_address(name)
        elif name:
            log.warning("sdnotify.unsupported_socket", notify_socket=name)
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines (keys upper-cased); True when the datagram was sent."""
        if self._address is None:
            return False
        payload = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                # Never wait: a datagram socket whose reader stopped reading is "writable"
                # to poll(2) while sendto fails EAGAIN, so a timeout made this a busy loop
                # holding the event loop for that long (about 1 s of CPU per notification).
                # A manager that reads nothing would not read this datagram either.
                sock.setblocking(False)
                sock.sendto(payload, self._address)
        except OSError as exc:
            if not self._failed:
                log.warning("sdnotify.send_failed", error=str(exc))
            self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str) -> bool:
        return self.notify(ready=1, status=_clean(status))

    def reloading(self, status: str = "reloading configuration") -> bool:
        return self.notify(reloading=1, monotonic_usec=monotonic_usec(), status=_clean(status))

    def stopping(self, status: str = "stopping: draining calls in flight") -> bool:
        return self.notify(stopping=1, status=_clean(status))

    def status(self, status: str) -> bool:
        return self.notify(status=_clean(status))
