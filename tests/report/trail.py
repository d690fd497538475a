"""A real audit trail for the report tests: the Service screens calls over a few days
(memory store with the demo data, JSONL audit), so the records are what production
writes. ``expected()`` recomputes the report's figures from the file independently."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.audit import AuditSettings, open_audit_trail
from gateway.config import DEMO_CAMPAIGN, load_config
from gateway.core.model import Attempt
from gateway.demo import seed
from gateway.service import Service
from gateway.store.memory import MemoryStore
from gateway.wiring import build_policy

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2026, 11, 30, tzinfo=PARIS)  # Monday
DAYS = 4
SHADOW = replace(DEMO_CAMPAIGN, id="night-shadow", shadow=True)
NUMBERS = ["06 12 34 56 78", "06 12 34 56 82", "06 00 00 00 01", "not a number",
           "01 99 00 00 01", "06 12 34 56 80"]


async def write_trail(path: Path, settings: AuditSettings | None = None) -> None:
    """Screen calls on 4 days: day and night, repeats up to the cap, a shadow campaign.

    ``settings``: another audit sink (the Redis stream); default the JSONL file ``path``.
    """
    config = load_config(None, env={})
    policy = build_policy(config)
    policy = replace(policy, campaigns={**policy.campaigns, SHADOW.id: SHADOW})
    store = MemoryStore()
    await seed(store, START.astimezone(UTC) - timedelta(days=1))
    trail = open_audit_trail(settings or AuditSettings(sink="jsonl", path=str(path),
                                                       instance_id="gw-a"))
    clock = {"now": START}
    service = Service(policy=policy, store=store, audit=trail, clock=lambda: clock["now"])
    for day in range(DAYS):
        base = START + timedelta(days=day)
        for hour, minute in ((10, 0), (11, 30), (15, 0), (21, 30), (6, 15)):
            clock["now"] = base.replace(hour=hour, minute=minute)
            for number in NUMBERS:
                await service.screen(Attempt(number=number, campaign_id="demo"))
            await service.screen(Attempt(number="06 12 34 56 78", campaign_id=SHADOW.id))
        for i in range(30):  # live answers: the abandon governor has figures
            await store.record_answer(campaign_id="demo", call_id=f"{day}-{i}",
                                      at=base.replace(hour=12), abandoned=i % 10 == 0)
    await trail.close()


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def expected(path: Path) -> dict[str, Any]:
    """The figures, straight from the file (no report code)."""
    recs = records(path)
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
        "first_id": recs[0]["id"],
        "last_id": recs[-1]["id"],
        "distinct_numbers": len({r["number"] for r in recs if r["number"]}),
    }
