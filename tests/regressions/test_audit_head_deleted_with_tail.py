"""Attack: deleting the JSONL trail's last records together with its ``.head`` file
passed ``audit verify`` (ok, 37 records).

The expected head is also kept in an anchor file in another directory and in the
``audit.anchor`` log line; verify checks the trail against every one of them and says
which check failed. Real files, real deletions; ``audit verify`` run as the CLI does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import structlog

from gateway.audit import AuditSettings, ChainHead, VerifyReport, open_audit_trail
from gateway.cli import main
from tests.audit.helpers import make_record

RECORDS = 40
KEPT = 37


def settings(tmp_path: Path, **kw: object) -> AuditSettings:
    base: dict[str, object] = {"path": str(tmp_path / "trail" / "audit.jsonl"),
                               "instance_id": "gw-a", "write_timeout_s": 5.0,
                               "anchor_path": str(tmp_path / "anchors" / "audit.anchor")}
    base.update(kw)
    (tmp_path / "trail").mkdir(exist_ok=True)
    return AuditSettings(**base)  # type: ignore[arg-type]


async def write_trail(s: AuditSettings, n: int = RECORDS, start: int = 0) -> None:
    trail = open_audit_trail(s)
    try:
        for i in range(start, start + n):
            await trail.append(make_record(i))
    finally:
        await trail.close()


def cut_tail(path: Path, keep: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:keep]))
    os.unlink(str(path) + ".head")


async def verify(s: AuditSettings, **kw: object) -> VerifyReport:
    trail = open_audit_trail(s)
    try:
        return await trail.verify(**kw)  # type: ignore[arg-type]
    finally:
        await trail.close()


def kinds(report: object) -> list[tuple[str, str | None]]:
    return [(p.kind, p.anchor) for p in report.problems]  # type: ignore[attr-defined]


async def test_tail_and_head_deleted_fail_verify_on_the_anchor_file(tmp_path: Path) -> None:
    s = settings(tmp_path)
    await write_trail(s)
    cut_tail(Path(s.path), KEPT)
    report = await verify(s)
    assert not report.ok
    anchor = f"anchor file {s.anchor_path}"
    assert kinds(report) == [("truncated_tail", anchor), ("head_missing", anchor)]
    assert report.records == KEPT
    assert f"head seq {RECORDS - 1}" in report.problems[0].detail or \
        f"seq {RECORDS - 1}" in report.problems[0].detail


async def test_whole_trail_and_head_deleted_fail_verify(tmp_path: Path) -> None:
    s = settings(tmp_path)
    await write_trail(s)
    os.truncate(s.path, 0)  # emptied (or deleted) where the anchor says 40 records
    os.unlink(s.path + ".head")
    report = await verify(s)
    anchor = f"anchor file {s.anchor_path}"
    assert kinds(report) == [("chain_missing", anchor), ("head_missing", anchor)]
    os.unlink(s.path)
    assert not (await verify(s)).ok


async def test_cut_then_restart_and_more_writes_still_fails(tmp_path: Path) -> None:
    """The gateway restarts after the cut: it recovers the head from the shortened file
    and chains on; the anchor is never moved back, so verify still reports the cut."""
    s = settings(tmp_path)
    await write_trail(s)
    cut_tail(Path(s.path), KEPT)
    await write_trail(s, n=5, start=100)
    report = await verify(s)
    assert not report.ok
    anchor = f"anchor file {s.anchor_path}"
    assert ("head_mismatch", anchor) in kinds(report)
    assert ("anchor_diverged", anchor) in kinds(report)
    # ... and for good: another restart and more records do not move the anchor on
    await write_trail(s, n=5, start=200)
    again = await verify(s)
    assert ("head_mismatch", anchor) in kinds(again) and ("anchor_diverged", anchor) in kinds(again)


async def test_anchor_file_deleted_too_is_reported(tmp_path: Path) -> None:
    s = settings(tmp_path)
    await write_trail(s)
    cut_tail(Path(s.path), KEPT)
    os.unlink(str(s.anchor_path))
    report = await verify(s)
    assert [k for k, _ in kinds(report)] == ["anchor_missing"]


async def test_log_anchor_catches_a_cut_when_every_file_was_rewritten(tmp_path: Path) -> None:
    """Root on the host rewrote the trail, the head and the anchor file: only the
    ``audit.anchor`` line kept by the log retention is left; given to verify, it fails."""
    s = settings(tmp_path, anchor_interval_s=0.001)
    with structlog.testing.capture_logs() as logs:
        await write_trail(s)
    anchors = [e for e in logs if e["event"] == "audit.anchor"]
    assert anchors and anchors[-1]["seq"] == RECORDS - 1
    last = anchors[-1]
    cut_tail(Path(s.path), KEPT)
    os.unlink(str(s.anchor_path))
    await write_trail(s, n=0)  # restart: a fresh head and anchor from the cut file
    report = await verify(s,
        expected={"gw-a": ChainHead(last["seq"], last["hash"])})
    assert ("truncated_tail", "expected head (given to verify)") in kinds(report)


def test_cli_verify_exits_1_and_names_the_failed_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    s = settings(tmp_path)
    asyncio.run(write_trail(s))
    cut_tail(Path(s.path), KEPT)
    capsys.readouterr()
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[audit]\npath = "{s.path}"\nanchor_path = "{s.anchor_path}"\n')
    code = main(["audit", "verify", "--config", str(cfg)])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["ok"] is False and out["records"] == KEPT
    assert [(p["kind"], p["anchor"]) for p in out["problems"]] == [
        ("truncated_tail", f"anchor file {s.anchor_path}"),
        ("head_missing", f"anchor file {s.anchor_path}")]
