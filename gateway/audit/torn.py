"""Torn tail repair for a JSONL trail (blocking: the writer thread calls it).

A crash, a power loss or a full disk in the middle of an append can leave a partial
last line (no final newline). Appending after it would bury it mid-file, where
``verify`` reports it for ever. Before the first append the writer moves the partial
line to a quarantine file ``<path>.torn-<UTC time>-<offset>`` (kept for inspection,
mode 0640), truncates the trail to its last complete line, and logs
``audit.torn_tail_repaired``. The record in the partial line was never complete, so no
complete record is lost; its head was not updated (the head is written after the line).
"""

from __future__ import annotations

import os
import stat
import time

SCAN_CHUNK_BYTES = 64 * 1024  # read backwards in chunks to find the last newline
MAX_QUARANTINE_BYTES = 16 << 20  # a torn "line" longer than this is cut, not copied whole


def last_newline_end(fd: int, size: int) -> int:
    """Offset just after the last ``\\n`` in the file (0 when there is none)."""
    end = size
    while end > 0:
        start = max(0, end - SCAN_CHUNK_BYTES)
        chunk = os.pread(fd, end - start, start)
        i = chunk.rfind(b"\n")
        if i != -1:
            return start + i + 1
        end = start
    return 0


def repair_torn_tail(fd: int, path: str) -> tuple[str, int] | None:
    """Cut a partial last line off ``fd`` (the writer's descriptor of ``path``) into a
    quarantine file; returns (quarantine path, torn bytes) or None when intact."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return None
    size = st.st_size
    rfd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if os.fstat(rfd).st_ino != st.st_ino or os.pread(rfd, 1, size - 1) == b"\n":
            return None
        keep = last_newline_end(rfd, size)
        torn = os.pread(rfd, min(size - keep, MAX_QUARANTINE_BYTES), keep)
    finally:
        os.close(rfd)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    quarantine = f"{path}.torn-{stamp}-{keep}"
    qfd = os.open(quarantine, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
    try:
        view = memoryview(torn)
        while view:
            view = view[os.write(qfd, view):]
        os.fsync(qfd)
    except OSError:
        # the disk is still full: keep the trail as it is (appends fail closed) and
        # retry on the next append, once space is back
        os.close(qfd)
        os.unlink(quarantine)
        raise
    os.close(qfd)
    os.ftruncate(fd, keep)
    return quarantine, size - keep
