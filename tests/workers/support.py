"""A real ``dialer-gateway serve`` with worker processes, under a notify socket.

Used by the worker tests: the gateway runs as systemd runs it (its own process, a
real AF_UNIX notify socket, signals), on a real redis-server. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.agi_client import http_get

DEADLINE_S = 30.0  # two workers start in ~3 s each on a busy 2-core machine

CAMPAIGN = """
[campaigns.{cid}]
professional = "demo-pro"
product_category = "telecom"
sector = "telecom"
automated = true
caller_id = "+33162000001"
jurisdiction = "FR"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def workers_toml(tmp_path: Path, redis_url: str, key_prefix: str, agi: int, http: int,
                 *campaigns: str, workers: int = 2, extra: str = "",
                 event_loop: str = "auto", service: str = "") -> str:
    """Two workers on a Redis store, JSONL audit in ``tmp_path``; ``extra`` TOML is added
    before the campaigns, ``service`` lines in the ``[service]`` table."""
    text = f"""
[store]
url = "{redis_url}"
key_prefix = "{key_prefix}"
socket_timeout_s = 2.0      # budgets for a loaded test machine: these tests are about
connect_timeout_s = 2.0     # workers, not deadlines (every answer is asserted exactly)

[agi]
listen = "127.0.0.1:{agi}"
shutdown_grace_s = 10.0
reply_deadline_s = 20.0     # calls held open by the drain test, on a busy machine
session_deadline_s = 40.0

[http]
listen = "127.0.0.1:{http}"

[service]
workers = {workers}
instance_id = "gwt"
event_loop = "{event_loop}"
decision_budget_ms = 5000.0
{service}

[audit]
sink = "jsonl"
path = "{tmp_path / 'audit.jsonl'}"
write_timeout_s = 5.0

[logging]
format = "json"
"""
    return text + extra + "".join(CAMPAIGN.format(cid=c) for c in campaigns)


def write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".new")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def wait_for(predicate: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> Any:
    """Poll ``predicate`` until it returns something truthy (a condition with a deadline)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {deadline_s} s: {what}")


class Served:
    def __init__(self, tmp_path: Path, redis_url: str, key_prefix: str,
                 *campaigns: str, extra: str = "", event_loop: str = "auto", service: str = "",
                 pass_fds: tuple[int, ...] = (), python: tuple[str, ...] = ()) -> None:
        self.extra, self.event_loop, self.service = extra, event_loop, service
        self.tmp_path, self.conf = tmp_path, tmp_path / "gateway.toml"
        self.redis_url, self.key_prefix = redis_url, key_prefix
        agi, http = free_port(), free_port()
        self.agi, self.http = ("127.0.0.1", agi), ("127.0.0.1", http)
        write(self.conf, self.toml(*campaigns))
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(tmp_path / "notify.sock"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_GATEWAY_")}
        env["NOTIFY_SOCKET"] = str(tmp_path / "notify.sock")
        # the console script, or ``python <python options> -m gateway``
        script = Path(sys.executable).with_name("dialer-gateway")
        command = [sys.executable, *python, "-m", "gateway"] if python else [str(script)]
        self.stderr = open(tmp_path / "stderr.log", "wb")
        self.proc = subprocess.Popen([*command, "--config", str(self.conf), "serve"], env=env,
                                     cwd=tmp_path, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, pass_fds=pass_fds)

    def toml(self, *campaigns: str) -> str:
        return workers_toml(self.tmp_path, self.redis_url, self.key_prefix, self.agi[1],
                            self.http[1], *campaigns, extra=self.extra, service=self.service,
                            event_loop=self.event_loop)

    def cli(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_GATEWAY_")}
        script = Path(sys.executable).with_name("dialer-gateway")
        return subprocess.run([str(script), "--config", str(config or self.conf), *args],
                              capture_output=True, timeout=DEADLINE_S, check=False, env=env)

    # --- systemd notifications ---------------------------------------------------------

    def next_message(self) -> dict[str, str]:
        self.notify.settimeout(DEADLINE_S)
        data = self.notify.recv(65536).decode()
        return dict(line.split("=", 1) for line in data.split("\n"))

    def until(self, key: str) -> list[dict[str, str]]:
        seen = []
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end:
            seen.append(self.next_message())
            if key in seen[-1]:
                return seen
        raise AssertionError(f"no {key} within {DEADLINE_S} s: {seen}")

    # --- ops endpoint ------------------------------------------------------------------

    def get(self, path: str) -> tuple[int, bytes]:
        return asyncio.run(http_get(self.http, path))

    def readyz(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.get("/readyz")[1])
        return doc

    def metric(self, line_prefix: str) -> float:
        """The value of the one sample whose line starts with ``line_prefix``."""
        text = self.get("/metrics")[1].decode()
        values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith(line_prefix)]
        assert len(values) == 1, (line_prefix, values)
        return values[0]

    # --- audit: which worker decided what ------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted(self.tmp_path.glob("audit-w*.jsonl")):
            out.extend(json.loads(line) for line in path.read_text().splitlines() if line)
        return out

    def worker_of(self) -> dict[str, str]:
        """decision id -> the audit chain (instance) that recorded it."""
        return {r["id"]: r["instance"] for r in self.records()}

    def log_text(self) -> str:
        self.stderr.flush()
        return (self.tmp_path / "stderr.log").read_text(errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines of event ``name`` so far, from the supervisor and workers."""
        return [json.loads(line) for line in self.log_text().splitlines()
                if f'"{name}"' in line]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=DEADLINE_S)
        # the workers notice the supervisor is gone (control channel EOF) and exit
        self.stderr.close()
        self.notify.close()


def seed_lists(redis_url: str, key_prefix: str) -> None:
    """The demo lists in the Redis store (a store holding no list is not ready)."""
    from gateway.demo import seed
    from gateway.store.factory import open_store

    async def run() -> None:
        store = open_store(redis_url, socket_timeout_s=5.0, connect_timeout_s=5.0,
                           key_prefix=key_prefix)
        try:
            await seed(store, datetime.now(UTC))
        finally:
            await store.close()

    asyncio.run(run())


def serve(tmp_path: Path, redis_url: str, key_prefix: str, *campaigns: str,
          extra: str = "", event_loop: str = "auto", service: str = "",
          pass_fds: tuple[int, ...] = (), python: tuple[str, ...] = ()) -> Iterator[Served]:
    seed_lists(redis_url, key_prefix)
    served = Served(tmp_path, redis_url, key_prefix, *campaigns, extra=extra, service=service,
                    event_loop=event_loop, pass_fds=pass_fds, python=python)
    try:
        yield served
    finally:
        served.close()


def workers_in(cwd: Path) -> list[int]:
    """Worker processes still running in ``cwd`` (the supervisor's working directory)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            here = os.readlink(entry / "cwd") == str(cwd)
        except OSError:
            continue  # exited meanwhile, or not ours
        if here and b"gateway.worker_main" in cmdline:
            out.append(int(entry.name))
    return out
