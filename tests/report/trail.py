"""A real audit trail for the report tests: the Service screens calls over a few days
(memory store with the demo data, JSONL audit), so the records are what production
writes. ``expected()`` recomputes the report's figures from the file independently.

Twice the disk stalls past the audit write deadline (a fault wrapper around the real
JSONL sink, as in tests/regressions/test_audit_deadline_record_matches_enforced.py):
those calls are answered by the fail mode and the trail has superseding records —
after a late original that landed, or alone when the original never started."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import gateway.audit.trail as trail_module
from gateway.audit import AuditSettings, open_audit_trail
from gateway.config import DEMO_CAMPAIGN, load_config
from gateway.core.model import Attempt
from gateway.demo import seed
from gateway.service import Service
from gateway.store.memory import MemoryStore
from gateway.wiring import build_policy
from tests.fixtures.stalling_disk import StallingDisk

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2026, 11, 30, tzinfo=PARIS)  # Monday
DAYS = 4
SHADOW = replace(DEMO_CAMPAIGN, id="night-shadow", shadow=True)
NUMBERS = ["06 12 34 56 78", "06 12 34 56 82", "06 00 00 00 01", "not a number",
           "01 99 00 00 01", "06 12 34 56 80"]
STALLS = {(0, 11), (2, 21)}  # (day, hour): the disk stalls while the demo numbers are screened
STALL_TIMEOUT_S = 0.1  # the audit write deadline while stalls are played


async def write_trail(path: Path, settings: AuditSettings | None = None, *,
                      stalls: bool = True) -> None:
    """Screen calls on 4 days: day and night, repeats up to the cap, a shadow campaign.

    ``settings``: another audit sink (the Redis stream); default the JSONL file ``path``,
    with the disk stalls of :data:`STALLS` unless ``stalls`` is false.
    """
    config = load_config(None, env={})
    policy = build_policy(config)
    policy = replace(policy, campaigns={**policy.campaigns, SHADOW.id: SHADOW})
    store = MemoryStore()
    await seed(store, START.astimezone(UTC) - timedelta(days=1))
    disk = StallingDisk(stalled=False) if settings is None and stalls else None
    if disk is not None:
        names = vars(trail_module)  # the trail builds its sink from this name
        real, names["JsonlSink"] = names["JsonlSink"], disk.sink_class()
        try:
            trail = open_audit_trail(AuditSettings(sink="jsonl", path=str(path),
                                                   instance_id="gw-a",
                                                   write_timeout_s=STALL_TIMEOUT_S))
        finally:
            names["JsonlSink"] = real
    else:
        trail = open_audit_trail(settings or AuditSettings(sink="jsonl", path=str(path),
                                                           instance_id="gw-a"))
    clock = {"now": START}
    service = Service(policy=policy, store=store, audit=trail, clock=lambda: clock["now"])
    for day in range(DAYS):
        base = START + timedelta(days=day)
        for hour, minute in ((10, 0), (11, 30), (15, 0), (21, 30), (6, 15)):
            clock["now"] = base.replace(hour=hour, minute=minute)
            stall = disk is not None and (day, hour) in STALLS
            if stall and disk is not None:
                disk.released.clear()
            for number in NUMBERS:
                await service.screen(Attempt(number=number, campaign_id="demo"))
            if stall and disk is not None:
                disk.released.set()  # the disk comes back: the late write lands, superseded
                await disk.drained()
            await service.screen(Attempt(number="06 12 34 56 78", campaign_id=SHADOW.id))
        for i in range(30):  # live answers: the abandon governor has figures
            await store.record_answer(campaign_id="demo", call_id=f"{day}-{i}",
                                      at=base.replace(hour=12), abandoned=i % 10 == 0)
    await trail.close()


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def decisions(path: Path) -> list[dict[str, Any]]:
    """One record per decision id: its last one (what was enforced)."""
    last: dict[str, dict[str, Any]] = {}
    for rec in records(path):
        last[rec["id"]] = rec
    return list(last.values())


def expected(path: Path) -> dict[str, Any]:
    """The figures, straight from the file (no report code)."""
    every = records(path)
    recs = decisions(path)
    per_day: Counter[tuple[str, str]] = Counter()
    reasons: Counter[str] = Counter()
    for r in recs:
        day = datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).astimezone(PARIS).date()
        per_day[(day.isoformat(), r["verdict"])] += 1
        if r["verdict"] == "BLOCK":
            reasons[r["reason"]] += 1
    night = {"outside_hours", "holiday"}
    return {
        "decisions": len(recs),
        "allow": sum(r["verdict"] == "ALLOW" for r in recs),
        "block": sum(r["verdict"] == "BLOCK" for r in recs),
        "per_day": per_day,
        "reasons": reasons,
        "night_stopped": sum(r["verdict"] == "BLOCK" and r["engine"]["reason"] in night
                             for r in recs),
        "night_placed": sum(r["verdict"] == "ALLOW" and r["engine"]["reason"] in night
                            for r in recs),
        "shadow": sum(r["shadow"] for r in recs),
        "shadow_would_block": sum(r["shadow"] and r["engine"]["verdict"] == "BLOCK"
                                  for r in recs),
        "fail_open": sum(r["fail_open"] for r in recs),
        "frequency_blocks": sum(r["verdict"] == "BLOCK" and r["engine"]["reason"] == "frequency_cap"
                                for r in recs),
        "basis_consent": sum(r["verdict"] == "ALLOW" and bool(r["consent_id"]) for r in recs),
        "basis_contract": sum(r["verdict"] == "ALLOW" and not r["consent_id"]
                              and bool(r["contract_id"]) for r in recs),
        "ranks": Counter(r["counters"]["attempts_seen"] + 1 for r in recs
                         if r["verdict"] == "ALLOW"),
        "records": len(every),
        "superseded": len(every) - len(recs),
        "superseding": sum("supersedes" in r for r in recs),
        "first_id": every[0]["id"],
        "last_id": every[-1]["id"],
        "distinct_numbers": len({r["number"] for r in recs if r["number"]}),
    }
