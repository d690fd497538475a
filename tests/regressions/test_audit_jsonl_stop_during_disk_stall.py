"""Attack (hostile review): ``systemctl stop`` while the audit disk hangs. A call's ALLOW
record is being written when its deadline passes; the call is answered ``BLOCK
store_unavailable`` and a superseding record is queued behind the stalled write. The
JSONL sink's close gave up after 1 s and *cancelled* everything queued, the superseding
record included, while the stalled write(2) itself completed when the disk answered: the
trail ended on ALLOW for a blocked call. Now nothing queued is cancelled at close.
The stall is a fault wrapper around the real sink (a real disk cannot stall on demand).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.audit import AuditSettings, open_audit_trail
from gateway.core.model import Attempt, Verdict
from gateway.service import Service
from gateway.store.memory import MemoryStore
from tests.fixtures.stalling_disk import StallingDisk
from tests.test_service import LEGAL_NOW, policy, with_consent

NUMBER = "+33612340000"


async def test_the_superseding_record_lands_after_a_stop_during_a_disk_stall(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = StallingDisk()
    monkeypatch.setattr("gateway.audit.trail.JsonlSink", disk.sink_class())
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(AuditSettings(path=str(path), instance_id="gw-a",
                                           write_timeout_s=0.2))
    store = await with_consent(MemoryStore(), NUMBER)
    service = Service(policy=policy(), store=store, audit=trail, clock=lambda: LEGAL_NOW)
    try:
        result = await service.screen(Attempt(number=NUMBER, campaign_id="spring"))
        assert result.verdict is Verdict.BLOCK  # no proof in time, no call
        assert await service.drain(1.0) == 0
        await trail.close()  # stopped while the disk hangs: close gives up waiting
    finally:
        disk.released.set()  # the disk answers again
    # every write still queued runs in order, then the writer thread ends
    await asyncio.to_thread(disk.sink._executor.shutdown, wait=True)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["verdict"], r.get("supersedes")) for r in records] == [
        ("ALLOW", None), ("BLOCK", records[0]["id"])]
