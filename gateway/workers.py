"""What a worker process is: its index, its audit chain, its control channel.

With ``[service] workers = N`` (N > 1) ``dialer-gateway serve`` is one supervisor
(:mod:`gateway.supervisor`) and N worker processes (:mod:`gateway.worker_main`). Each
worker runs a complete screening service (store client, policy, audit trail) and the
FastAGI server on the one listening port; worker 0 also runs the AMI proxy, the AMI
event consumer (one upstream link per instance) and the scrub/check API
(docs/architecture.md#worker-processes).

This module holds what both sides agree on: how many workers, the audit chain and file
of each worker, and the control channel's framing (4-byte big-endian length + payload;
the supervisor's first frame is the pickled configuration in force, every other frame
is one JSON object). The channel is a private ``socketpair``: nobody else can write to it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import glob
import json
import os
import pickle
import socket
import struct
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from gateway.audit import AuditSettings
from gateway.config import Config

MAX_FRAME_BYTES = 1 << 20  # a control frame (the pickled configuration is the largest)
_LEN = struct.Struct(">I")


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - Linux has sched_getaffinity
        return max(1, os.cpu_count() or 1)


def is_memory_store(config: Config) -> bool:
    return config.store.url.startswith("memory:")


def resolve_workers(config: Config, cores: int | None = None) -> int:
    """``service.workers``; 0 means one per core with a shared store, 1 with memory://."""
    if config.service.workers > 0:
        return config.service.workers
    if is_memory_store(config):
        return 1
    return cores if cores is not None else cpu_count()


def chain_id(base: str, index: int) -> str:
    """The audit chain (``instance`` of every record) of worker ``index``: one per worker,
    the same across restarts of that worker, so its chain continues."""
    return f"{base}-w{index}"


def audit_path(path: str, index: int) -> str:
    """Worker ``index``'s JSONL file: ``audit.jsonl`` -> ``audit-w1.jsonl`` (each file
    has one writer process: the head file's lock says so, gateway.audit.jsonl)."""
    p = PurePath(path)
    return str(p.with_name(f"{p.stem}-w{index}{p.suffix}"))


def worker_audit(settings: AuditSettings, index: int | None) -> AuditSettings:
    """The audit settings worker ``index`` writes with (``None``: no worker, unchanged):
    a JSONL sink gets the worker's own file and head file."""
    if index is None or settings.sink != "jsonl":
        return settings
    head = settings.head_path
    return dataclasses.replace(settings, path=audit_path(settings.path, index),
                               head_path=None if head is None else audit_path(head, index))


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """How an :class:`~gateway.app.App` runs inside worker ``index`` of ``count``."""

    index: int
    count: int
    base_instance: str  # the instance id; the chain id adds the worker index
    listen_fd: int | None = None  # the supervisor's listening socket (worker_socket shared)
    listen_port: int | None = None  # reuseport: the port the supervisor holds (agi.listen :0)

    @property
    def runs_singletons(self) -> bool:
        """Worker 0 also runs what exists once per instance: the AMI proxy, the AMI event
        consumer (one upstream link) and the scrub/check API (one listener)."""
        return self.index == 0

    @property
    def chain(self) -> str:
        return chain_id(self.base_instance, self.index)


# --- control channel framing --------------------------------------------------------


def encode_json(message: dict[str, Any]) -> bytes:
    payload = json.dumps(message, separators=(",", ":"), default=str).encode()
    return _LEN.pack(len(payload)) + payload


def encode_config(config: Config) -> bytes:
    payload = pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)
    if len(payload) > MAX_FRAME_BYTES:
        raise ValueError(f"configuration is {len(payload)} bytes pickled (max {MAX_FRAME_BYTES})")
    return _LEN.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """One frame's payload; IncompleteReadError at EOF, ValueError when over-long."""
    (size,) = _LEN.unpack(await reader.readexactly(_LEN.size))
    if size > MAX_FRAME_BYTES:
        raise ValueError(f"control frame of {size} bytes (max {MAX_FRAME_BYTES})")
    return await reader.readexactly(size)


def decode_json(payload: bytes) -> dict[str, Any]:
    doc = json.loads(payload)
    if not isinstance(doc, dict):
        raise ValueError("control frame is not a JSON object")
    return doc


def decode_config(payload: bytes) -> Config:
    """The supervisor's configuration (trusted: our parent, over a private socketpair)."""
    config = pickle.loads(payload)  # noqa: S301 - private channel from the parent process
    if not isinstance(config, Config):
        raise ValueError("first control frame is not a Config")
    return config


def listening_socket(host: str, port: int, *, backlog: int, reuse_port: bool) -> socket.socket:
    """The supervisor's socket on ``host:port``: listening (shared mode) or only bound to
    hold the port (reuseport mode: workers bind their own with SO_REUSEPORT)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    family, type_, proto, _, addr = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        if not reuse_port:
            sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def existing_audit_files(path: str, head_path: str | None) -> list[tuple[str, str | None]]:
    """The JSONL files of every worker that ever wrote beside ``path`` (``audit-w0.jsonl``,
    ``audit-w1.jsonl``, ... found on disk, whatever ``workers`` is now), each with its
    head file; plus ``path`` itself when it exists (written while workers was 1).
    Empty when no worker file exists: then ``path`` is the one file to verify."""
    p = Path(path)
    found: list[tuple[int, str]] = []
    for candidate in p.parent.glob(f"{glob.escape(p.stem)}-w*{glob.escape(p.suffix)}"):
        digits = candidate.name[len(p.stem) + 2:len(candidate.name) - len(p.suffix)]
        if digits.isdigit():
            found.append((int(digits), str(candidate)))
    if not found:
        return []
    out: list[tuple[str, str | None]] = []
    if p.exists():
        out.append((path, head_path))
    for index, file in sorted(found):
        out.append((file, None if head_path is None else audit_path(head_path, index)))
    return out
