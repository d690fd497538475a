"""Start-up checks and readiness probes of what the gateway writes to and reads from.

- **Audit sink** (``[audit]``): a JSONL sink's directory is created when missing (mode
  0750: the trail holds personal data) and the file and its head file are opened for
  writing before anything listens, so a sink that cannot be written stops the start with
  an :class:`AuditSinkError` naming the path (``dialer-gateway serve`` exits 4). While
  running, :func:`probe_audit` re-checks writability for ``/readyz`` and
  ``dialer_gateway_audit_up``; the App also counts write errors between probes.
- **Store contents**: a Redis restarted without persistence answers ``PING`` but has lost
  every list. :func:`probe_store_lists` reads the list registry: no list at all means the
  gateway cannot make a lawful decision (every call would be ``no_consent`` or
  ``list_stale``), so ``/readyz`` fails until the lists are restored or imported
  (docs/operations.md#the-store-lost-its-lists).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from gateway.audit.settings import AuditSettings
from gateway.store.base import Store, StoreUnavailable

AUDIT_DIR_MODE = 0o750  # a created audit directory: owner rwx, group r-x (operators)
AUDIT_FILE_MODE = 0o640  # the same mode the JSONL sink creates its files with
AUDIT_PROBE_TIMEOUT_S = 1.0  # a writability check on a hung (network) file system
LISTS_PROBE_TIMEOUT_S = 0.5  # reading the list registry (one HGETALL on Redis)


class AuditSinkError(Exception):
    """The audit sink cannot be written: the gateway must not start (no proof, no call)."""


def audit_paths(settings: AuditSettings) -> tuple[Path, Path]:
    """Absolute paths of the JSONL file and its head file (relative to the cwd)."""
    path = Path(settings.path).absolute()
    head = Path(settings.resolved_head_path).absolute()
    return path, head


def prepare_audit_sink(settings: AuditSettings) -> str | None:
    """Make the JSONL sink writable or raise :class:`AuditSinkError` (blocking I/O).

    Creates the missing parent directories (mode 0750) and opens the file and its head
    file for writing (creating them, mode 0640, as the sink would). Returns the absolute
    path written to, or ``None`` for the ``redis`` and ``none`` sinks (a Redis stream is
    probed by readiness: the gateway starts without Redis and reconnects).
    """
    if settings.sink != "jsonl":
        return None
    path, head = audit_paths(settings)
    for target, flags in ((path, os.O_WRONLY | os.O_APPEND), (head, os.O_RDWR)):
        try:
            target.parent.mkdir(mode=AUDIT_DIR_MODE, parents=True, exist_ok=True)
            fd = os.open(target, flags | os.O_CREAT | os.O_CLOEXEC, AUDIT_FILE_MODE)
        except OSError as exc:
            raise AuditSinkError(
                f"audit.path {target}: cannot write: {exc.strerror or exc} "
                f"(uid {os.getuid()}, cwd {Path.cwd()}); set [audit] path to a writable "
                f"file or fix the directory's owner"
            ) from exc
        os.close(fd)
    return str(path)


def _writable(settings: AuditSettings) -> str | None:
    path, head = audit_paths(settings)
    for target in (path, head):
        if target.exists():
            if not os.access(target, os.W_OK):
                return f"not writable: {target}"
        elif not os.access(target.parent, os.W_OK | os.X_OK):
            return f"cannot create: {target}"
    return None


async def probe_audit(settings: AuditSettings) -> str | None:
    """The audit sink's problem, if any (``None``: writable). JSONL only; the Redis sink
    shares the store's health and ``none`` keeps nothing."""
    if settings.sink != "jsonl":
        return None
    try:
        async with asyncio.timeout(AUDIT_PROBE_TIMEOUT_S):
            return await asyncio.to_thread(_writable, settings)
    except TimeoutError:
        return f"no answer within {AUDIT_PROBE_TIMEOUT_S}s from the file system"


async def probe_store_lists(store: Store) -> tuple[int, str | None]:
    """How many lists the store holds, and the problem when it holds none."""
    try:
        async with asyncio.timeout(LISTS_PROBE_TIMEOUT_S):
            lists = await store.lists_status()
    except (StoreUnavailable, TimeoutError) as exc:
        return 0, f"down: {exc or 'timeout'}"
    if not lists:
        return 0, "empty: no list in the store (never imported, or lost by a Redis restart)"
    return len(lists), None


__all__ = [
    "AuditSinkError",
    "audit_paths",
    "prepare_audit_sink",
    "probe_audit",
    "probe_store_lists",
]
