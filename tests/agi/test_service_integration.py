"""FastAGI through the real Service (memory store, built-in packs, fixed legal instant)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.agi.handlers import ScreenHandler
from gateway.core.model import Campaign, ConsentRecord
from gateway.core.policy import Policy
from gateway.packs import builtin_packs
from gateway.service import Service
from gateway.store.base import ImportMode, OppositionRow
from gateway.store.memory import MemoryStore
from tests.agi.harness import running_server
from tests.agi.peer import screen_session

NOW = datetime(2026, 12, 1, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))  # a legal Tuesday
CAMPAIGN = Campaign(
    id="it-promo", professional="acme", product_category="telecom", sector="telecom",
    automated=True, caller_id="+33162000001",
)
MSET = re.compile(
    r'EXEC "MSet" "GW_VERDICT=(?P<verdict>\w+),GW_REASON=(?P<reason>\w+),'
    r'GW_E164=(?P<e164>[+0-9]*),GW_RETRY_AFTER=(?P<retry>[0-9]*),'
    r'GW_DECISION_ID=(?P<id>[A-Za-z0-9_.:-]*)"\Z'
)


@contextlib.asynccontextmanager
async def gateway() -> AsyncIterator[tuple[tuple[str, int], MemoryStore]]:
    store = MemoryStore()
    await store.import_consents(
        [ConsentRecord(
            id="c1", e164="+33612345678", professional="acme", product_category="telecom",
            collected_at=NOW - timedelta(days=30), expires_at=NOW + timedelta(days=300),
            channel="web-form", proof_ref="form-1",
        )],
        mode=ImportMode.MERGE, now=NOW,
    )
    await store.import_opposition(
        "internal", [OppositionRow(e164="+33612345679")], mode=ImportMode.MERGE, now=NOW
    )
    service = Service(
        policy=Policy(packs=builtin_packs(), campaigns={CAMPAIGN.id: CAMPAIGN}),
        store=store, audit=None, budget_s=0.5, instance_id="it", clock=lambda: NOW,
    )
    try:
        async with running_server(handlers={"screen": ScreenHandler(service)}) as server:
            assert server.address is not None
            yield server.address, store
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("args", "verdict", "reason", "e164"),
    [
        (("06 12 34 56 78", "it-promo"), "ALLOW", "ok", "+33612345678"),
        (("0612345679", "it-promo"), "BLOCK", "opposition", "+33612345679"),
        (("0612345670", "it-promo"), "BLOCK", "no_consent", "+33612345670"),
        (("0612345678", "nope"), "BLOCK", "campaign_unknown", None),
        (("not a number", "it-promo"), "BLOCK", "invalid_number", ""),
    ],
)
async def test_screen_through_the_real_service(
    args: tuple[str, str], verdict: str, reason: str, e164: str | None
) -> None:
    async with gateway() as (address, _):
        commands = await screen_session(address, args=args)
    assert len(commands) == 1
    match = MSET.match(commands[0])
    assert match is not None, commands[0]
    assert (match["verdict"], match["reason"]) == (verdict, reason)
    if e164 is not None:
        assert match["e164"] == e164
    assert match["id"], "every answered call carries its decision id"
