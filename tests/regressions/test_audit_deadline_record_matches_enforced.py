"""Attack: with a disk stall past ``write_timeout_s``, 29 of 30 calls were answered
``BLOCK store_unavailable`` while their records said ``ALLOW ok``, and the attempts
counted against the frequency cap.

Now a record is what was enforced: a write that missed its deadline is either never
written (not started) or superseded by a record that says BLOCK (same decision id,
``supersedes``, ``audit_fault`` with the verdict the call would have had); the
attempt reservation is released. The disk stall is a fault wrapper around the real
JSONL sink (a real disk cannot stall on demand); the Redis stall is real (CLIENT PAUSE).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync

from gateway.audit import AuditSettings, AuditTrail, open_audit_trail
from gateway.core.model import Attempt, Reason, Verdict
from gateway.service import Service
from gateway.store.base import Store
from gateway.store.factory import open_store
from gateway.store.memory import MemoryStore
from tests.fixtures.redis_servers import RedisServerFactory
from tests.fixtures.stalling_disk import StallingDisk
from tests.test_service import LEGAL_NOW, attempts_recorded, policy, with_consent

CALLS = 30
NUMBERS = [f"+3361234{i:04d}" for i in range(CALLS)]


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[StallingDisk]:
    d = StallingDisk()
    monkeypatch.setattr("gateway.audit.trail.JsonlSink", d.sink_class())
    yield d
    d.released.set()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "memory":
        s: Store = MemoryStore()
    else:
        s = open_store(request.getfixturevalue("redis_url"),
                       key_prefix=request.getfixturevalue("key_prefix"))
    yield s  # type: ignore[misc]
    await s.close()


async def screen_all(trail: AuditTrail, store: Store) -> list[Any]:
    await with_consent(store, *NUMBERS)
    # a generous decision budget: the only fault under test is the audit write
    svc = Service(policy=policy(), store=store, audit=trail, clock=lambda: LEGAL_NOW,
                  budget_s=10.0)
    return list(await asyncio.gather(*(
        svc.screen(Attempt(number=n, campaign_id="spring", source="agi")) for n in NUMBERS)))


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def enforced_by_id(recs: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for rec in recs:  # the last record of a decision id is what was enforced
        out[rec["id"]] = (rec["verdict"], rec["reason"])
    return out


async def test_disk_stall_records_say_block_and_attempts_are_not_counted(
        tmp_path: Path, disk: StallingDisk, store: Store) -> None:
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(AuditSettings(path=str(path), instance_id="gw-a",
                                           write_timeout_s=0.2))
    results = await screen_all(trail, store)
    assert {(r.verdict, r.reason) for r in results} == {(Verdict.BLOCK, Reason.STORE_UNAVAILABLE)}
    for number in NUMBERS:  # not placed: not counted against the cap
        assert await attempts_recorded(store, number) == 0

    disk.released.set()  # the disk comes back: the late writes land
    await disk.drained()
    recs = records(path)
    enforced = enforced_by_id(recs)
    assert enforced == {r.decision_id: ("BLOCK", "store_unavailable") for r in results}
    superseding = [r for r in recs if r.get("supersedes")]
    assert len(superseding) == CALLS
    for rec in superseding:
        assert rec["supersedes"] == rec["id"]
        assert rec["audit_fault"] == {"kind": "deadline", "would_have": {
            "verdict": "ALLOW", "reason": "ok", "shadow": False, "fail_open": False}}
        assert rec["engine"] == {"verdict": "ALLOW", "reason": "ok"}
    # the write that was in progress landed as ALLOW, and a later record supersedes it
    originals = [r for r in recs if not r.get("supersedes")]
    assert len(originals) <= 1
    for rec in originals:
        later = recs[recs.index(rec) + 1:]
        assert any(s["supersedes"] == rec["id"] and s["verdict"] == "BLOCK" for s in later)

    report = await trail.verify()
    assert report.ok, report.problems
    assert report.superseding_total == CALLS
    assert {(s["verdict"], s["reason"], s["audit_fault"]) for s in report.superseding} == {
        ("BLOCK", "store_unavailable", "deadline")}
    out = io.StringIO()
    await trail.export(out, number=NUMBERS[0], fmt="csv")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[-1]["verdict"] == "BLOCK" and rows[-1]["supersedes"] == rows[-1]["id"]
    assert rows[-1]["would_have_verdict"] == "ALLOW"
    await trail.close()


async def test_a_write_landing_just_in_time_stands(tmp_path: Path, disk: StallingDisk) -> None:
    """No stall: every record is ALLOW and nothing is superseded (the control case)."""
    disk.released.set()
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(AuditSettings(path=str(path), instance_id="gw-a",
                                           write_timeout_s=5.0))
    store = MemoryStore()
    results = await screen_all(trail, store)
    await trail.close()
    assert {r.verdict for r in results} == {Verdict.ALLOW}
    assert not [r for r in records(path) if r.get("supersedes")]
    assert await attempts_recorded(store, NUMBERS[0]) == 1


async def test_redis_stream_stall_records_say_block(
        tmp_path: Path, redis_server_factory: RedisServerFactory, redis_url: str,
        key_prefix: str) -> None:
    """A real stall of the audit Redis (CLIENT PAUSE WRITE) past write_timeout_s.

    The deadline is 1 s, not 0.2: the sink reads a deadline that fired while its own
    loop ran late for half of it as saturation (``timeout``), and a loaded CI host once
    lagged a 30-call burst's loop for 100 ms (the answer was ``BLOCK timeout``, right
    for what the sink saw). 500 ms of lag is far past what this test's burst causes."""
    audit_server = redis_server_factory.start()
    settings = AuditSettings(sink="redis", redis_url=audit_server.url, stream_key="dg:audit",
                             instance_id="gw-a", write_timeout_s=1.0,
                             anchor_path=str(tmp_path / "anchor" / "a.anchor"))
    trail = open_audit_trail(settings)
    store = open_store(redis_url, key_prefix=key_prefix)
    admin = redis_sync.Redis.from_url(audit_server.url)
    try:
        admin.client_pause(30_000, all=False)  # writes wait (up to 30 s or UNPAUSE)
        try:
            results = await screen_all(trail, store)
        finally:
            admin.client_unpause()
        assert {(r.verdict, r.reason) for r in results} == {
            (Verdict.BLOCK, Reason.STORE_UNAVAILABLE)}
        for number in NUMBERS:
            assert await attempts_recorded(store, number) == 0
        await trail.close()  # flushes the superseding records still queued
        stream = admin.xrange("dg:audit")
        recs = [json.loads(fields[b"r"]) for _id, fields in stream]
        assert enforced_by_id(recs) == {
            r.decision_id: ("BLOCK", "store_unavailable") for r in results}
        assert all(r.get("supersedes") == r["id"] for r in recs if r["verdict"] == "BLOCK")
        reader = open_audit_trail(settings)
        report = await reader.verify()
        await reader.close()
        assert report.ok, report.problems
    finally:
        admin.close()
        await store.close()


async def test_fail_open_campaign_places_the_call_and_says_so(
        tmp_path: Path, disk: StallingDisk) -> None:
    """Fail-open: the call goes through without proof; the record that lands says
    fail_open, and the attempt counts (the call was placed)."""
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(AuditSettings(path=str(path), instance_id="gw-a",
                                           write_timeout_s=0.2))
    store = MemoryStore()
    await with_consent(store, NUMBERS[0])
    svc = Service(policy=policy(fail_mode="open"), store=store, audit=trail,
                  clock=lambda: LEGAL_NOW, budget_s=10.0)
    result = await svc.screen(Attempt(number=NUMBERS[0], campaign_id="spring", source="agi"))
    assert (result.verdict, result.reason, result.fail_open) == (Verdict.ALLOW, Reason.OK, True)
    assert await attempts_recorded(store, NUMBERS[0]) == 1
    disk.released.set()
    await disk.drained()
    await trail.close()
    last = records(path)[-1]
    assert (last["id"], last["verdict"], last["fail_open"]) == (result.decision_id, "ALLOW", True)
    assert last["supersedes"] == result.decision_id
    assert last["audit_fault"]["kind"] == "deadline"
