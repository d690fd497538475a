"""JSON-lines audit sink: one canonical record per line, appended by one writer thread.

File I/O may block (a full disk, a slow or network file system, ``fsync``), so it
never runs on the event loop: a single worker thread owns the file, the head file and
the chain state, and the loop waits for it with a deadline. When the deadline passes
the caller gets :class:`AuditUnavailable`; a write already in progress still completes
in the thread, so the chain stays consistent (its record lands late, never twice).

Next to ``path`` a *head file* (``path + ".head"`` by default) keeps, per instance,
the last ``seq`` and ``hash`` written, so that ``verify`` detects a removed tail. The
writer holds an exclusive ``flock`` on it: one writing process per file.

Rotation: rename the file (``logrotate`` without ``copytruncate``); before each write
the writer compares the path's inode with its open file and reopens when they differ.
The chain continues across files; verify the files in order, or a single file with
``allow_trimmed_prefix``.

A write that misses its deadline while the writer thread kept completing other writes
(it was queued behind them) is *saturation*, not a failing disk
(``AuditUnavailable.saturated``: the call is answered ``timeout``). The event loop's lag
is no evidence here: the thread writes without it (and a record that landed as the
deadline passed stands).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import json
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import structlog

from gateway.audit.anchor import AnchorFile, AnchorLog, AuditHooks, read_anchor_file
from gateway.audit.chain import ChainHead, next_link, seal
from gateway.audit.enforced import FAULT_DEADLINE, FAULT_UNCERTAIN
from gateway.audit.errors import AuditUnavailable
from gateway.audit.torn import repair_torn_tail

log = structlog.get_logger(__name__)

HEAD_FILE_BLOCK_BYTES = 4096  # the head file is rewritten in place, padded to blocks
MAX_READ_LINE_BYTES = 1 << 20  # readers: longer lines are reported, not loaded


def default_head_path(path: str) -> str:
    return path + ".head"


def read_heads(head_path: str) -> dict[str, ChainHead]:
    """The per-instance heads kept in a head file ({} when there is none)."""
    try:
        with open(head_path, "rb") as f:
            text = f.read().decode("ascii").strip()
    except FileNotFoundError:
        return {}
    if not text:
        return {}
    data = json.loads(text)
    return {str(k): ChainHead.decode(str(v)) for k, v in data.items()}


def iter_lines(paths: str | Sequence[str], *, max_line_bytes: int = MAX_READ_LINE_BYTES,
               keep_newline: bool = False) -> Iterator[tuple[str, bytes]]:
    """Stream ``(position, raw line)`` from one or several files, in memory bounded by
    ``max_line_bytes`` (an over-long line is yielded truncated, so verify reports it).
    ``keep_newline``: lines keep their final ``\n`` (a torn last line has none)."""
    for path in [paths] if isinstance(paths, str) else paths:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                # a device (/dev/full, /dev/zero) reads forever: a trail is a regular file
                raise OSError(f"{path}: not a regular file")
            lineno = 0
            while True:
                line = f.readline(max_line_bytes + 1)
                if not line:
                    break
                lineno += 1
                if len(line) > max_line_bytes and not line.endswith(b"\n"):
                    while True:  # skip the rest of the over-long line
                        rest = f.readline(max_line_bytes)
                        if not rest or rest.endswith(b"\n"):
                            break
                    line = line[:max_line_bytes]
                if line.strip():
                    yield f"{path}:{lineno}", line if keep_newline else line.rstrip(b"\n")


class JsonlSink:
    """Appends sealed records to ``path`` (see the module docstring)."""

    def __init__(self, *, path: str, head_path: str | None, instance: str, fsync: bool,
                 write_timeout_s: float, max_pending: int, anchor_path: str | None = None,
                 anchor_interval_s: float = 60.0, hooks: AuditHooks | None = None) -> None:
        self.path = path
        self.anchor_path = anchor_path
        self._hooks = hooks or AuditHooks()
        # no fsync for the anchor: written after the record (and its fsync), it can only
        # lag behind the durable trail after a power loss, never run ahead of it
        self._anchor = AnchorFile(anchor_path, fsync=False) if anchor_path else None
        self._anchor_path_text = anchor_path or ""
        self._anchor_error = ""
        self._anchor_log = AnchorLog(anchor_interval_s, self._hooks, path)
        self._superseding = 0  # superseding records queued (bounded by max_pending)
        self.head_path = head_path or default_head_path(path)
        self._instance = instance
        self._fsync = fsync
        self._timeout_s = write_timeout_s
        self._max_pending = max_pending
        self._pending = 0
        self._written = 0  # records the writer thread completed (read by the loop)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="audit-jsonl")
        # state below is touched by the writer thread only
        self._fd: int | None = None
        self._ino: tuple[int, int] | None = None
        self._head_fd: int | None = None
        self._heads: dict[str, ChainHead] | None = None
        self._fd_torn = False
        self._closed = False

    async def append(self, body: Mapping[str, Any]) -> str:
        if self._closed:
            raise AuditUnavailable("audit trail is closed")
        if self._pending >= self._max_pending:
            raise AuditUnavailable(f"audit file backlog over {self._max_pending} writes")
        self._pending += 1
        loop = asyncio.get_running_loop()
        written = self._written
        cfut = self._executor.submit(self._write, body)
        cfut.add_done_callback(lambda _f: _call_soon(loop, self._done))
        try:
            async with asyncio.timeout(self._timeout_s):
                return await asyncio.wrap_future(cfut)
        except TimeoutError as exc:
            if cfut.done() and not cfut.cancelled() and cfut.exception() is None:
                return cfut.result()  # landed as the deadline passed: the record stands
            # not started: cancelled (never lands); started: lands late, then superseded
            saturated = self._written > written
            raise AuditUnavailable(f"audit file write exceeded {self._timeout_s}s",
                                   fault=FAULT_DEADLINE, saturated=saturated) from exc

    def _done(self) -> None:
        self._pending -= 1

    def supersede(self, body: Mapping[str, Any]) -> None:
        """Queue a superseding record behind every write already queued (no deadline:
        the call has been answered; it lands when the disk does)."""
        if self._closed or self._superseding >= self._max_pending:
            log.error("audit.supersede_dropped", path=self.path, decision_id=body.get("id"))
            self._hooks.event("supersede_dropped")
            return
        self._superseding += 1
        loop = asyncio.get_running_loop()
        cfut = self._executor.submit(self._write, body)
        cfut.add_done_callback(lambda f: _call_soon(loop, lambda: self._superseded(f, body)))

    def _superseded(self, cfut: concurrent.futures.Future[str], body: Mapping[str, Any]) -> None:
        self._superseding -= 1
        exc = None if cfut.cancelled() else cfut.exception()
        if cfut.cancelled() or exc is not None:
            log.error("audit.supersede_failed", path=self.path, decision_id=body.get("id"),
                      error=str(exc) if exc else "cancelled at close")
            self._hooks.event("supersede_failed")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(max(self._timeout_s, 1.0)):
                await loop.run_in_executor(self._executor, self._close_files)
        except TimeoutError:
            log.error("audit.close_timeout", path=self.path)
        # nothing queued is cancelled: a superseding record queued behind a write stalled
        # on the disk must land after it, whenever the disk answers (the interpreter
        # joins the writer thread at exit); appends whose caller gave up were cancelled
        # by then (not started: they never land)
        self._executor.shutdown(wait=False, cancel_futures=False)

    async def heads(self) -> dict[str, ChainHead]:
        return await asyncio.to_thread(read_heads, self.head_path)

    # --- writer thread ------------------------------------------------------------

    def _write(self, body: Mapping[str, Any]) -> str:
        fd: int | None = None
        start: int | None = None
        try:
            fd, heads = self._ensure_open()
            old = heads.get(self._instance)
            seq, prev = next_link(old)
            line, digest = seal(body, seq=seq, prev=prev)
            data = (line + "\n").encode("ascii")
            start = os.fstat(fd).st_size
            _write_all(fd, data)
            if self._fsync:
                os.fsync(fd)
            head = ChainHead(seq, digest)
            self._write_heads({**heads, self._instance: head})
        except OSError as exc:
            landed = fd is not None and start is not None and not self._cut_back(
                fd, start, heads, old)
            # a record that could not be cut back may be whole in the file: superseded
            raise AuditUnavailable(f"audit file {self.path}: {exc.strerror or exc}",
                                   fault=FAULT_UNCERTAIN if landed else None) from exc
        heads[self._instance] = head
        self._written += 1  # the writer thread is the only one to write it
        self._write_anchor(head)
        return digest

    def _cut_back(self, fd: int, start: int, heads: dict[str, ChainHead],
                  old: ChainHead | None) -> bool:
        """A failed write (disk full...) leaves no partial record: truncate to where it
        began and put the old head back. If even that fails (returns False), the next
        write reopens the file, repairs a torn tail and re-reads the head from it."""
        try:
            os.ftruncate(fd, start)
            self._write_heads(heads)
        except OSError as exc:
            log.error("audit.cut_back_failed", path=self.path, error=str(exc))
            self._fd_torn = True
            return False
        log.warning("audit.write_rolled_back", path=self.path, offset=start,
                    head_seq=None if old is None else old.seq)
        return True

    def _write_anchor(self, head: ChainHead) -> None:
        if self._anchor is not None:
            try:
                self._anchor.write(self._instance, head)
            except (OSError, ValueError) as exc:
                if str(exc) != self._anchor_error:  # once per distinct error, not per record
                    log.error("audit.anchor_failed", anchor=self._anchor.path, error=str(exc))
                self._anchor_error = str(exc)
                self._hooks.event("anchor_failed")
            else:
                self._anchor_error = ""
        self._anchor_log.maybe_emit(self._instance, head)

    def _ensure_open(self) -> tuple[int, dict[str, ChainHead]]:
        if self._heads is None:
            self._heads = self._open_head()
        if self._fd is not None:
            try:
                st = os.stat(self.path)
                current: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except FileNotFoundError:
                current = None
            if current == self._ino and not self._fd_torn:
                return self._fd, self._heads
            log.info("audit.file_reopened", path=self.path)  # rotated (renamed) or deleted
            os.close(self._fd)
            self._fd = None
            if self._fd_torn and current == self._ino:
                # a failed write could not be cut back: the file may hold a whole record
                # the head never got; take the head from the file (after the repair)
                fd = self._open_and_repair()
                found = _scan_head(self.path, self._instance)
                kept = self._heads.get(self._instance)
                if found is not None and (kept is None or found.seq > kept.seq):
                    log.warning("audit.head_recovered", path=self.path, seq=found.seq)
                    self._heads[self._instance] = found
                    self._write_heads(self._heads)
                return fd, self._heads
        return self._open_and_repair(), self._heads

    def _open_and_repair(self) -> int:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        st = os.fstat(fd)
        self._fd, self._ino = fd, (st.st_dev, st.st_ino)
        self._repair(fd)
        return fd

    def _repair(self, fd: int) -> None:
        """A torn last line (crash or disk full mid-record) is cut off into a quarantine
        file before anything is appended after it."""
        self._fd_torn = True  # until repaired (a failed repair is retried next time)
        torn = repair_torn_tail(fd, self.path)
        self._fd_torn = False
        if torn is not None:
            quarantine, size = torn
            log.warning("audit.torn_tail_repaired", path=self.path, bytes=size,
                        quarantine=quarantine)
            self._hooks.event("torn_tail_repaired")

    def _open_head(self) -> dict[str, ChainHead]:
        fd = os.open(self.head_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise AuditUnavailable(
                f"{self.head_path} is locked: another process writes this audit file") from exc
        self._head_fd = fd
        heads = read_heads(self.head_path)
        if self._instance not in heads and os.path.isfile(self.path):
            recovered = _scan_head(self.path, self._instance)
            if recovered is not None:
                log.warning("audit.head_recovered", path=self.path, seq=recovered.seq)
                heads[self._instance] = recovered
        self._check_anchor(heads.get(self._instance))
        return heads

    def _check_anchor(self, head: ChainHead | None) -> None:
        """At start: an anchor ahead of the head means records were removed (verify
        reports it; the writer carries on so calls are not all blocked)."""
        anchored = None
        if self._anchor is not None:
            try:
                anchored = (read_anchor_file(self._anchor.path) or {}).get(self._instance)
            except (OSError, ValueError) as exc:
                log.error("audit.anchor_unreadable", anchor=self._anchor.path, error=str(exc))
        if anchored is not None and (head is None or anchored.seq > head.seq):
            log.error("audit.anchor_ahead", path=self.path, anchor=self._anchor_path_text,
                      anchor_seq=anchored.seq, head_seq=None if head is None else head.seq)
            self._hooks.event("anchor_ahead")
        if head is not None:
            self._anchor_log.maybe_emit(self._instance, head, force=True)

    def _write_heads(self, heads: Mapping[str, ChainHead]) -> None:
        if self._head_fd is None:
            raise OSError("head file not open")
        text = json.dumps({k: v.encode() for k, v in sorted(heads.items())},
                          separators=(",", ":")).encode("ascii")
        size = -(-(len(text) + 1) // HEAD_FILE_BLOCK_BYTES) * HEAD_FILE_BLOCK_BYTES
        os.pwrite(self._head_fd, text.ljust(size - 1) + b"\n", 0)
        if self._fsync:
            os.fsync(self._head_fd)

    def _close_files(self) -> None:
        head = (self._heads or {}).get(self._instance)
        if head is not None:  # the last head, in the log, whatever the interval
            self._anchor_log.maybe_emit(self._instance, head, force=True)
        if self._anchor is not None:
            self._anchor.close()
        for fd in (self._fd, self._head_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._head_fd = None


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Any) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:  # the loop is closed: nobody counts pending writes any more
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _scan_head(path: str, instance: str) -> ChainHead | None:
    """Last record of ``instance`` in ``path`` (when the head file was lost)."""
    head: ChainHead | None = None
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # a device as the trail (a test's /dev/full): nothing to scan
    except OSError:
        return None
    for _, raw in iter_lines(path):
        try:
            rec = json.loads(raw)
        except (ValueError, RecursionError):  # a line nested past the parser's depth
            continue
        if isinstance(rec, dict) and rec.get("instance") == instance \
                and type(rec.get("seq")) is int and isinstance(rec.get("hash"), str):
            head = ChainHead(rec["seq"], rec["hash"])
    return head
