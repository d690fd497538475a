"""JSON-lines sink: roundtrip, tail truncation, rotation, failures within the deadline."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from gateway.audit import AuditSettings, AuditUnavailable, open_audit_trail
from gateway.audit.jsonl import iter_lines, read_heads
from tests.audit.helpers import make_record

OUTER_DEADLINE_S = 5.0  # a hang fails the test instead of stalling it


def settings(path: Path, **kw: object) -> AuditSettings:
    base: dict[str, object] = {"sink": "jsonl", "path": str(path), "instance_id": "gw-a",
                               "write_timeout_s": 0.5}
    base.update(kw)
    return AuditSettings(**base)  # type: ignore[arg-type]


async def test_append_verify_roundtrip(tmp_path: Path) -> None:
    trail = open_audit_trail(settings(tmp_path / "audit.jsonl", fsync=True))
    hashes = [await trail.append(make_record(i)) for i in range(5)]
    assert len(set(hashes)) == 5
    report = await trail.verify()
    await trail.close()
    assert report.ok, report.problems
    assert report.records == 5
    assert read_heads(str(tmp_path / "audit.jsonl.head"))["gw-a"].hash == hashes[-1]


async def test_records_join_the_chain_of_the_trail_instance(tmp_path: Path) -> None:
    trail = open_audit_trail(settings(tmp_path / "audit.jsonl", instance_id="gw-z"))
    await trail.append(make_record(0, instance="built-elsewhere"))
    report = await trail.verify()
    await trail.close()
    assert report.ok, report.problems
    assert list(report.chains) == ["gw-z"]


async def test_chain_continues_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    first = open_audit_trail(settings(path))
    await first.append(make_record(0))
    await first.close()
    second = open_audit_trail(settings(path))
    await second.append(make_record(1))
    report = await second.verify()
    await second.close()
    assert report.ok, report.problems
    assert report.chains["gw-a"].last_seq == 1


async def test_truncated_tail_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(settings(path))
    for i in range(4):
        await trail.append(make_record(i))
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))
    report = await trail.verify()
    await trail.close()
    # the head file and the anchor file both say seq 3
    assert [(p.kind, p.anchor) for p in report.problems] == [
        ("truncated_tail", f"head file {path}.head"),
        ("truncated_tail", f"anchor file {tmp_path}/anchor/audit.jsonl.anchor")]


async def test_removed_middle_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(settings(path))
    for i in range(4):
        await trail.append(make_record(i))
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:1] + lines[2:]))
    report = await trail.verify()
    await trail.close()
    assert [(p.kind, p.position) for p in report.problems] == [
        ("gap", f"{path}:2")]


async def test_rotation_by_rename_keeps_one_chain_across_files(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(settings(path))
    await trail.append(make_record(0))
    await trail.append(make_record(1))
    os.rename(path, tmp_path / "audit.jsonl.1")  # what logrotate (no copytruncate) does
    await trail.append(make_record(2))
    both = await trail.verify([str(tmp_path / "audit.jsonl.1"), str(path)])
    alone = await trail.verify(allow_trimmed_prefix=True)
    strict_alone = await trail.verify()
    await trail.close()
    assert both.ok, both.problems
    assert both.records == 3
    assert alone.ok and alone.records == 1
    assert [p.kind for p in strict_alone.problems] == ["missing_prefix"]


async def test_lost_head_file_is_recovered_from_the_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(settings(path))
    await trail.append(make_record(0))
    await trail.close()
    os.unlink(str(path) + ".head")
    trail = open_audit_trail(settings(path))
    await trail.append(make_record(1))
    report = await trail.verify()
    await trail.close()
    assert report.ok, report.problems
    assert report.chains["gw-a"].last_seq == 1


async def test_lost_head_file_with_a_line_nested_past_the_parser_depth(tmp_path: Path) -> None:
    """The scan that rebuilds a lost head file read such a line with json.loads, whose
    RecursionError (not a ValueError) stopped the gateway's start-up."""
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(settings(path))
    await trail.append(make_record(0))
    await trail.close()
    os.unlink(str(path) + ".head")
    with path.open("a") as f:
        f.write('{"v": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    trail = open_audit_trail(settings(path))
    await trail.append(make_record(1))
    await trail.close()
    assert read_heads(str(path) + ".head")["gw-a"].seq == 1


async def test_torn_last_line_is_repaired_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(settings(path))
    await trail.append(make_record(0))
    await trail.close()
    path.write_bytes(path.read_bytes() + b'{"v":1,"id":"torn')  # a crash mid-write
    trail = open_audit_trail(settings(path))
    await trail.append(make_record(1))
    report = await trail.verify()
    await trail.close()
    assert report.ok, report.problems
    assert report.chains["gw-a"].last_seq == 1  # the next record follows the last whole one
    (quarantine,) = [n for n in os.listdir(tmp_path) if n.startswith("audit.jsonl.torn-")]
    assert (tmp_path / quarantine).read_bytes() == b'{"v":1,"id":"torn'


async def test_second_writer_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    first = open_audit_trail(settings(path))
    second = open_audit_trail(settings(path, instance_id="gw-b"))
    await first.append(make_record(0))
    with pytest.raises(AuditUnavailable, match="locked"):
        await second.append(make_record(0, instance="gw-b"))
    await first.close()
    await second.close()


async def test_unwritable_directory_raises_audit_unavailable(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    logdir.mkdir()
    trail = open_audit_trail(settings(logdir / "audit.jsonl",
                                      head_path=str(tmp_path / "audit.head")))
    await trail.append(make_record(0))
    shutil.rmtree(logdir)
    (tmp_path / "logs").write_text("not a directory")
    async with asyncio.timeout(OUTER_DEADLINE_S):
        with pytest.raises(AuditUnavailable, match="audit file"):
            await trail.append(make_record(1))
    await trail.close()


async def test_full_disk_raises_audit_unavailable(tmp_path: Path) -> None:
    trail = open_audit_trail(settings(Path("/dev/full"), head_path=str(tmp_path / "h")))
    async with asyncio.timeout(OUTER_DEADLINE_S):
        with pytest.raises(AuditUnavailable, match="No space"):
            await trail.append(make_record(0))
    await trail.close()


async def test_blocked_write_raises_within_the_deadline(tmp_path: Path) -> None:
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)  # opening it for writing blocks until a reader comes: a hung disk
    trail = open_audit_trail(settings(fifo, head_path=str(tmp_path / "h"),
                                      write_timeout_s=0.2))
    try:
        async with asyncio.timeout(OUTER_DEADLINE_S):
            with pytest.raises(AuditUnavailable, match="exceeded"):
                await trail.append(make_record(0))
    finally:
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # releases the writer thread
        await trail.close()
        os.close(reader)


async def test_backlog_limit_refuses_instead_of_queueing(tmp_path: Path) -> None:
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    trail = open_audit_trail(settings(fifo, head_path=str(tmp_path / "h"),
                                      write_timeout_s=0.05, max_pending=1))
    try:
        with pytest.raises(AuditUnavailable, match="exceeded"):
            await trail.append(make_record(0))  # still blocked in the thread: 1 pending
        with pytest.raises(AuditUnavailable, match="backlog"):
            await trail.append(make_record(1))
    finally:
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        await trail.close()
        os.close(reader)


def test_reader_bounds_line_length(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"x" * 100 + b"\n" + b"{}\n")
    lines = list(iter_lines(str(path), max_line_bytes=10))
    assert lines == [(f"{path}:1", b"x" * 10), (f"{path}:2", b"{}")]


async def test_a_failed_write_that_cannot_be_cut_back_is_superseded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Faults a real disk cannot give on demand: the head write fails after the whole
    line is down (ENOSPC), and the cut-back fails too (EIO). The record may stand in the
    file, so the call is blocked, a superseding record follows it, and the chain goes on
    without a duplicate seq."""
    import errno

    from gateway.audit.jsonl import JsonlSink

    faults = {"head": False, "truncate": False}
    write_heads, ftruncate = JsonlSink._write_heads, os.ftruncate

    def failing_heads(self: JsonlSink, heads: Any) -> None:
        if faults["head"]:
            faults["head"] = False
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write_heads(self, heads)

    def failing_truncate(fd: int, size: int) -> None:
        if faults["truncate"]:
            faults["truncate"] = False
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        ftruncate(fd, size)

    monkeypatch.setattr(JsonlSink, "_write_heads", failing_heads)
    monkeypatch.setattr(os, "ftruncate", failing_truncate)
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(settings(path))
    await trail.append(make_record(0))
    faults.update(head=True, truncate=True)
    with pytest.raises(AuditUnavailable) as info:
        await trail.append(make_record(1))
    assert info.value.fault == "uncertain"
    await trail.append(make_record(2))
    report = await trail.verify()
    await trail.close()
    assert report.ok, report.problems
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["seq"], r["id"], r["verdict"], r.get("supersedes")) for r in recs] == [
        (0, "d-gw-a-0", "ALLOW", None),
        (1, "d-gw-a-1", "ALLOW", None),  # whole, could not be cut back ...
        (2, "d-gw-a-1", "BLOCK", "d-gw-a-1"),  # ... so superseded: what was enforced
        (3, "d-gw-a-2", "ALLOW", None),
    ]
