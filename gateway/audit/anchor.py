"""Anchors: the expected chain heads kept outside the trail and its head.

The head (``<path>.head`` / ``<stream_key>:heads``) lives beside the records: whoever
deletes the records' tail can delete the head with it. An anchor keeps the same
``{instance: "seq:hash"}`` in a second, independent place, so that ``verify`` still
knows how long each chain must be:

- the **anchor file** (``[audit] anchor_path``), by default in a directory of its own
  (``<dir of the trail>/anchor/``, or ``var/anchor/`` for a Redis stream); point it at
  another file system or a directory the gateway may write but operators' scripts do
  not touch. Rewritten in place under an ``flock`` (several instances may share it:
  each merges its own entry): after each record (JSONL, by the writer thread), or with
  the latest head at most every ``anchor_file_interval_s`` (Redis, by a thread of its
  own), and always with the last head at close.
- the **anchor log line** ``audit.anchor`` (instance, seq, hash) and the gauge
  ``dialer_gateway_audit_chain_seq{chain}``, every ``anchor_interval_s``: kept by the
  log and metrics retention, outside this host's reach; an auditor compares them with
  ``verify``'s ``chains`` (``audit verify --expect INSTANCE=SEQ:HASH``).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import structlog

from gateway.audit.chain import ChainHead

log = structlog.get_logger(__name__)

ANCHOR_FILE_BLOCK_BYTES = 4096  # rewritten in place, padded to whole blocks
AUDIT_EVENTS = ("torn_tail_repaired", "anchor_failed", "anchor_ahead", "supersede_dropped",
                "supersede_failed", "supersede_delayed", "edge_overruled")  # AuditHooks.event names
DIVERGED_PREFIX = "!"  # "!<instance>": that chain was found cut; its anchor is frozen


def decode_heads(data: bytes) -> dict[str, ChainHead]:
    text = data.decode("ascii").strip()
    if not text:
        return {}
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    return {str(k): ChainHead.decode(str(v)) for k, v in raw.items()}


def encode_heads(heads: Mapping[str, ChainHead]) -> bytes:
    text = json.dumps({k: v.encode() for k, v in sorted(heads.items())},
                      separators=(",", ":")).encode("ascii")
    size = -(-(len(text) + 1) // ANCHOR_FILE_BLOCK_BYTES) * ANCHOR_FILE_BLOCK_BYTES
    return text.ljust(size - 1) + b"\n"


def split_diverged(kept: Mapping[str, ChainHead],
                   ) -> tuple[dict[str, ChainHead], dict[str, ChainHead]]:
    """(anchors, diverged marks) of an anchor file's entries."""
    anchors = {k: v for k, v in kept.items() if not k.startswith(DIVERGED_PREFIX)}
    marks = {k[len(DIVERGED_PREFIX):]: v for k, v in kept.items()
             if k.startswith(DIVERGED_PREFIX)}
    return anchors, marks


def read_anchor_file(path: str) -> dict[str, ChainHead] | None:
    """The heads in an anchor file; ``None`` when the file does not exist."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    return decode_heads(data)


class AnchorFile:
    """Writer side of one anchor file (blocking: call it from a worker thread)."""

    def __init__(self, path: str, *, fsync: bool) -> None:
        self.path = path
        self._fsync = fsync
        self._fd: int | None = None
        self.writes = 0  # heads written (read by tests and benchmarks)

    def write(self, instance: str, head: ChainHead) -> None:
        fd = self._open()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(fd).st_size
            current = decode_heads(os.pread(fd, size, 0)) if size else {}
            if DIVERGED_PREFIX + instance in current:
                raise OSError(f"anchor of {instance} frozen: its chain was found cut at "
                              f"seq {current[DIVERGED_PREFIX + instance].seq}; investigate, "
                              "then move the anchor file aside")
            old = current.get(instance)
            if old is not None and old.seq >= head.seq:
                # a chain only grows: the records after our head were removed. Keep the
                # anchor and mark it, so that no later write (or process) moves it on.
                current[DIVERGED_PREFIX + instance] = old
                os.pwrite(fd, encode_heads(current), 0)
                raise OSError(f"anchor of {instance} is ahead of the chain (seq {old.seq} >= "
                              f"{head.seq}): records were removed; anchor frozen")
            current[instance] = head
            data = encode_heads(current)
            os.pwrite(fd, data, 0)
            if len(data) < size:
                os.ftruncate(fd, len(data))
            if self._fsync:
                os.fsync(fd)
            self.writes += 1
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _open(self) -> int:
        if self._fd is None:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, mode=0o750, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class AuditHooks:
    """What the sinks report to the outside (metrics); every callable is thread-safe."""

    event: Callable[[str], None] = lambda _name: None  # torn_tail_repaired, ...
    anchor: Callable[[str, int], None] = lambda _instance, _seq: None  # chain seq gauge


@dataclass
class AnchorLog:
    """Emits the ``audit.anchor`` log line and gauge at most every ``interval_s``."""

    interval_s: float
    hooks: AuditHooks
    where: str
    clock: Callable[[], float] = time.monotonic
    _last: float = field(default=float("-inf"))

    def maybe_emit(self, instance: str, head: ChainHead, *, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        log.info("audit.anchor", trail=self.where, instance=instance, seq=head.seq,
                 hash=head.hash)
        self.hooks.anchor(instance, head.seq)
