"""The real gateway, in process, for the e2e tests.

:func:`running_gateway` starts the gateway (memory store, built-in policy packs,
one campaign) with its FastAGI server on 127.0.0.1:0 and yields a
:class:`RunningGateway`; lists are imported through the store API. The clock is
fixed at a legal instant (a Tuesday 10:30 in Paris) so that verdicts do not depend
on when the suite runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.agi.handlers import ScreenHandler
from gateway.agi.server import AgiServer, AgiSettings
from gateway.core.model import Campaign, ConsentRecord
from gateway.core.policy import Policy, builtin_packs
from gateway.service import Service
from gateway.store.base import ImportMode, OppositionRow
from gateway.store.memory import MemoryStore

# Tuesday 1 Dec 2026, 10:30 in Paris: FR-2026 pack (opt-in), inside the windows.
LEGAL_INSTANT = datetime(2026, 12, 1, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))

CAMPAIGN = Campaign(
    id="e2e-promo", professional="acme", product_category="telecom", sector="telecom",
    automated=True, caller_id="+33162000001", jurisdiction="FR",
)


@dataclass
class RunningGateway:
    service: Service
    store: MemoryStore
    agi: AgiServer
    now: datetime

    @property
    def agi_url(self) -> str:
        assert self.agi.address is not None
        host, port = self.agi.address
        return f"agi://{host}:{port}"

    async def consent(self, *e164s: str, campaign: Campaign = CAMPAIGN) -> None:
        rows = [ConsentRecord(
            id=f"proof-{e164}", e164=e164, professional=campaign.professional,
            product_category=campaign.product_category,
            collected_at=self.now - timedelta(days=30),
            expires_at=self.now + timedelta(days=300), channel="web-form",
            proof_ref=f"form-{e164}") for e164 in e164s]
        await self.store.import_consents(rows, mode=ImportMode.MERGE, now=self.now)

    async def oppose(self, *e164s: str, source: str = "internal") -> None:
        await self.store.import_opposition(
            source, [OppositionRow(e164=e) for e in e164s], mode=ImportMode.MERGE, now=self.now)


@contextlib.asynccontextmanager
async def running_gateway(
    *, campaigns: tuple[Campaign, ...] = (CAMPAIGN,), now: datetime = LEGAL_INSTANT,
    budget_s: float = 0.25,
) -> AsyncIterator[RunningGateway]:
    store = MemoryStore()
    clock: Callable[[], datetime] = lambda: now  # noqa: E731 -- a one-line fixed clock
    service = Service(
        policy=Policy(packs=builtin_packs(), campaigns={c.id: c for c in campaigns}),
        store=store, audit=None, budget_s=budget_s, instance_id="e2e", clock=clock)
    settings = AgiSettings()
    agi = AgiServer({"screen": ScreenHandler(service)}, settings)
    await agi.start("127.0.0.1", 0)
    try:
        yield RunningGateway(service=service, store=store, agi=agi, now=now)
    finally:
        await agi.close(settings.shutdown_grace_s)
        await store.close()
