"""An audit trail for the documented `audit verify` / `audit export` commands to read.

Written by the real service (memory store, no demo data) with the sandbox's configuration,
so the records, the chain and the head file are what a gateway writes: one decision for
"06 12 34 56 78" on campaign fr-telecom-optin at each instant below. ``rotated``: the file
is renamed (as logrotate does) after each of the first two, giving
audit.jsonl-20260501, audit.jsonl-20260601 and audit.jsonl in the working directory.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

from gateway.config import load_config
from gateway.core.model import Attempt
from gateway.service import Service
from gateway.store.factory import open_store
from gateway.wiring import build_policy, open_audit_trail_for

INSTANTS = (datetime(2026, 5, 12, 8, 0, tzinfo=UTC), datetime(2026, 6, 9, 8, 0, tzinfo=UTC),
            datetime(2026, 9, 14, 8, 0, tzinfo=UTC))
ROTATED = ("audit.jsonl-20260501", "audit.jsonl-20260601")


async def _write(config_path: Path, work: Path, *, rotated: bool) -> None:
    cfg = load_config(config_path, env={}, overrides={
        "store": {"url": "memory://", "password_file": ""}, "ami": {"enabled": False},
        "demo": {"seed": False}})
    trail, closers = await open_audit_trail_for(cfg, cfg.service.instance_id or "gw1")
    store = open_store("memory://")
    path = Path(cfg.audit.path)
    try:
        for n, at in enumerate(INSTANTS):
            service = Service(policy=build_policy(cfg), store=store, audit=trail,
                              clock=lambda at=at: at)
            await service.screen(Attempt(number="06 12 34 56 78", campaign_id="fr-telecom-optin",
                                         caller_id=None, source="agi"))
            if rotated and n < len(ROTATED):
                os.rename(path, work / ROTATED[n])  # a rename, as logrotate does
    finally:
        await trail.close()
        for close in closers:
            await close()
        await store.close()
    (work / "audit.jsonl").symlink_to(path)


def write_trail(config_path: Path, work: Path, *, rotated: bool) -> None:
    asyncio.run(_write(config_path, work, rotated=rotated))
