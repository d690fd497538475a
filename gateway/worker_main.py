"""One worker process of ``dialer-gateway serve`` with ``[service] workers`` > 1.

Started by :mod:`gateway.supervisor` as ``python -P -m gateway.worker_main`` (with the
supervisor's own interpreter options); never by hand. It reads the configuration in force
from the control channel (the supervisor validated it), runs an :class:`~gateway.app.App`
in its :class:`WorkerRole` (FastAGI on the shared port, no ops endpoint, the AMI parts on
worker 0 only), says ``ready``, then answers the supervisor's ``reload`` and ``ready``
requests. SIGTERM (or SIGINT, or the control channel closing because the supervisor is
gone) drains the calls in flight and exits 0. systemd is told nothing here: only the
supervisor notifies (NotifyAccess=main).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

import structlog

from gateway import eventloop
from gateway.app import App, prepare_collector
from gateway.logs import configure_logging
from gateway.sdnotify import Notifier
from gateway.workers import (
    WorkerRole,
    decode_config,
    decode_json,
    encode_json,
    read_frame,
)

log = structlog.get_logger(__name__)

CONFIG_READ_TIMEOUT_S = 10.0  # the supervisor sends the configuration at once


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="gateway.worker_main")
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--control-fd", type=int, required=True)
    p.add_argument("--listen-fd", type=int, default=None)
    p.add_argument("--listen-port", type=int, default=None)
    p.add_argument("--base-instance", required=True)
    p.add_argument("--event-loop", choices=eventloop.CHOICES, default="asyncio")
    return p.parse_args(argv)


class Worker:
    def __init__(self, role: WorkerRole, control_fd: int) -> None:
        self.role = role
        self._control_fd = control_fd
        self.stop = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, message: dict[str, Any]) -> None:
        if self._writer is None or self._writer.is_closing():
            return
        self._writer.write(encode_json(message))
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        # SIGHUP is the supervisor's to coordinate (validate once, every worker, one
        # report); a HUP sent to a worker alone is logged and ignored.
        loop.add_signal_handler(signal.SIGHUP, lambda: log.warning(
            "worker.sighup_ignored", worker=self.role.index,
            detail="send SIGHUP to the supervisor (MAINPID)"))
        sock = socket.socket(fileno=self._control_fd)
        reader, self._writer = await asyncio.open_unix_connection(sock=sock)
        async with asyncio.timeout(CONFIG_READ_TIMEOUT_S):
            config = decode_config(await read_frame(reader))
        lg = config.logging
        configure_logging(lg.level, lg.format, lg.number_redaction,  # type: ignore[arg-type]  # checked by load_config
                          lg.hash_key)
        structlog.contextvars.bind_contextvars(worker=self.role.index)
        app = App(config, notifier=Notifier({}), worker=self.role)
        await app.start()
        prepare_collector()
        try:
            ok, details = await app.ready()
            await self.send({"type": "ready", "pid": os.getpid(), "ok": ok,
                             "config_hash": app.config_hash, "details": details})
            control = asyncio.create_task(self._control(reader, app), name="worker-control")
            await self.stop.wait()
            control.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await control
        finally:
            await app.stop()
            for task in list(self._tasks):
                task.cancel()
        return 0

    async def _control(self, reader: asyncio.StreamReader, app: App) -> None:
        try:
            while True:
                message = decode_json(await read_frame(reader))
                task = asyncio.create_task(self._answer(message, app))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            log.warning("worker.supervisor_gone", worker=self.role.index)
        except ValueError as exc:  # a bug on the other side: stop rather than guess
            log.error("worker.control_error", worker=self.role.index, error=str(exc))
        self.stop.set()

    async def _answer(self, message: dict[str, Any], app: App) -> None:
        kind, rid = message.get("type"), message.get("id")
        if kind == "reload":
            result = await app.reload()
            body: dict[str, Any] = {"ok": result.ok, **result.to_dict()}
        elif kind == "ready":
            ok, details = await app.ready()
            body = {"ok": ok, "details": details}
        else:
            body = {"ok": False, "error": f"unknown request {kind!r}"}
        await self.send({"type": "reply", "id": rid, "pid": os.getpid(), **body})


def main(argv: Sequence[str] | None = None) -> int:
    args = _args(argv)
    role = WorkerRole(index=args.index, count=args.count, base_instance=args.base_instance,
                      listen_fd=args.listen_fd, listen_port=args.listen_port)
    try:
        return eventloop.run(Worker(role, args.control_fd).run(), args.event_loop)
    except KeyboardInterrupt:
        return 0
    except Exception:
        log.exception("worker.failed", worker=args.index)
        return 1


if __name__ == "__main__":
    sys.exit(main())
