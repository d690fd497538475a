"""Attack / incident: after a disk-full, a torn record stayed mid-file and ``audit
verify`` failed for good.

Now: a failed append is cut back at once (no partial record left behind); a torn last
line left by a crash is reported by verify as ``torn_tail`` (a warning, not tampering)
and cut off into a quarantine file when the writer next opens the trail. Real files:
a trail truncated mid-record, and a real ENOSPC on a 64 KiB tmpfs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from gateway.audit import AuditSettings, AuditUnavailable, open_audit_trail
from tests.audit.helpers import make_record

TMPFS_BYTES = 64 * 1024


def settings(trail_dir: Path, anchor_dir: Path) -> AuditSettings:
    return AuditSettings(path=str(trail_dir / "audit.jsonl"), instance_id="gw-a",
                         write_timeout_s=5.0, anchor_path=str(anchor_dir / "audit.anchor"))


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def write(path: str, data: bytes, mode: str = "wb") -> None:
    with open(path, mode) as f:
        f.write(data)


def quarantined(directory: Path) -> list[Path]:
    return sorted(directory / n for n in os.listdir(directory) if ".torn-" in n)


async def test_torn_record_is_a_warning_then_repaired_on_start(tmp_path: Path) -> None:
    s = settings(tmp_path, tmp_path / "anchor")
    trail = open_audit_trail(s)
    for i in range(10):
        await trail.append(make_record(i))
    await trail.close()
    # a crash 300 bytes into the 11th record (before its head and anchor update): the
    # real file ends with the first 300 bytes of what that record would have been
    last = read(s.path).splitlines(keepends=True)[-1]
    torn = last[:300]
    write(s.path, torn, "ab")
    reader = open_audit_trail(s)
    report = await reader.verify()  # head and anchor checked too
    await reader.close()
    assert report.ok, report.problems
    assert [w.kind for w in report.warnings] == ["torn_tail"]
    assert report.records == 10

    with structlog.testing.capture_logs() as logs:
        trail = open_audit_trail(s)
        await trail.append(make_record(10))  # the next start: repaired before appending
        report = await trail.verify()
        await trail.close()
    assert report.ok, report.problems
    assert not report.warnings and report.records == 11
    (q,) = quarantined(tmp_path)
    assert q.read_bytes() == torn
    repaired = [e for e in logs if e["event"] == "audit.torn_tail_repaired"]
    assert repaired and repaired[0]["bytes"] == len(torn)


async def test_torn_tail_mid_file_would_be_tampering(tmp_path: Path) -> None:
    """The distinction holds: a partial record followed by more records is not a torn
    tail but a damaged record, and fails verify."""
    s = settings(tmp_path, tmp_path / "anchor")
    trail = open_audit_trail(s)
    for i in range(3):
        await trail.append(make_record(i))
    await trail.close()
    lines = read(s.path).splitlines(keepends=True)
    write(s.path, lines[0] + lines[1][:200] + b"\n" + lines[2])
    reader = open_audit_trail(s)
    report = await reader.verify()
    await reader.close()
    assert not report.ok
    assert "unparseable" in [p.kind for p in report.problems] and not report.warnings


@contextlib.contextmanager
def tiny_tmpfs() -> Iterator[Path | None]:
    """A 64 KiB tmpfs (root only); None when mounting is not possible here."""
    mount_point = Path(tempfile.mkdtemp(prefix="dg-enospc-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0700",
                           "tmpfs", str(mount_point)], capture_output=True, check=False)
    try:
        yield mount_point if done.returncode == 0 else None
    finally:
        if done.returncode == 0:
            # lazy: a test that failed with the trail still open must show its own
            # failure, not a busy mount point
            subprocess.run(["umount", "--lazy", str(mount_point)], check=True)
        mount_point.rmdir()


async def test_real_disk_full_leaves_no_torn_record(tmp_path: Path) -> None:
    with tiny_tmpfs() as disk:
        if disk is None:
            pytest.fail("cannot mount a tmpfs here (need root): run as root to test ENOSPC")
        s = settings(disk, tmp_path / "anchor")
        trail = open_audit_trail(s)
        written = 0
        with structlog.testing.capture_logs() as logs:
            for i in range(TMPFS_BYTES // 100):  # a record is > 1 KiB: the disk fills
                try:
                    await trail.append(make_record(i, context={"pad": "x" * 200}))
                except AuditUnavailable as exc:
                    assert os.strerror(errno.ENOSPC) in str(exc)
                    break
                written += 1
            else:
                pytest.fail("the 64 KiB disk never filled up")
        assert written > 5
        assert any(e["event"] == "audit.write_rolled_back" for e in logs)
        assert read(s.path).endswith(b"\n")  # no partial record left
        report = await trail.verify()
        assert report.ok, report.problems
        assert report.records == written and not report.warnings
        # space comes back (the full file is moved away, as a rotation would): the chain
        # goes on where it stopped, in a new file
        os.unlink(s.path)
        await trail.append(make_record(1000))
        again = await trail.verify(allow_trimmed_prefix=True)
        await trail.close()
        assert again.ok, again.problems
        assert again.chains["gw-a"].first_seq == written


async def test_the_running_gateway_repairs_and_counts_it(tmp_path: Path) -> None:
    """Through the whole app: a torn trail at start, one call over FastAGI, then the
    repair shows in /metrics next to the chain anchor gauge."""
    from gateway.app import App
    from tests.agi_client import agi_screen, http_get
    from tests.test_app import LEGAL_NOW, config

    write(str(tmp_path / "audit.jsonl"), b'{"v":1,"id":"torn-by-a-crash')
    gateway = App(config(tmp_path, service={"instance_id": "gw-t"}), clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        variables = await agi_screen(gateway.agi_address, "06 12 34 56 78", "demo")
        assert variables["GW_VERDICT"] == "ALLOW"
        _, body = await http_get(gateway.http_address, "/metrics")
    finally:
        await gateway.stop()
    text = body.decode()
    assert 'dialer_gateway_audit_events_total{event="torn_tail_repaired"} 1.0' in text
    assert 'dialer_gateway_audit_chain_seq{chain="gw-t"} 0.0' in text
    assert len(quarantined(tmp_path)) == 1
    assert read(str(tmp_path / "audit.jsonl")).count(b"\n") == 1
