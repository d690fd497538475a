"""Attack (hostile review): an ALLOW decided too late for its edge is overruled and its
attempt given back, but the release looked the campaign up in the policy in force *then*.
A reload between the screen and its late end (campaign removed, or its professional
changed) skipped the release or removed the attempt from the wrong key: a call never
placed stayed counted against the cap. The release now uses the screen's own campaign.
The slow decision is a fault wrapper on the real memory store (a saturated store)."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.core.model import Attempt
from gateway.core.policy import Policy
from gateway.live import LivePolicy
from gateway.service import Service
from gateway.service_api import screen_or_none
from gateway.store.memory import MemoryStore
from tests.test_service import LEGAL_NOW, attempts_recorded, policy, with_consent

NUMBER = "+33612340000"


async def test_a_late_allow_is_given_back_even_after_a_reload_removed_its_campaign() -> None:
    store = await with_consent(MemoryStore(), NUMBER)
    live = LivePolicy(policy())
    gate = asyncio.Event()
    real_load = store.load_facts

    async def slow_load(**kw: Any) -> Any:
        await gate.wait()
        return await real_load(**kw)

    store.load_facts = slow_load  # type: ignore[method-assign]
    service = Service(policy=live, store=store, audit=None, clock=lambda: LEGAL_NOW,
                      budget_s=10.0)
    answered = await screen_or_none(service, Attempt(number=NUMBER, campaign_id="spring"),
                                    context={}, deadline_s=0.05)
    assert answered is None  # the edge answered BLOCK timeout
    old = live.current
    live.swap(Policy(packs=old.packs, campaigns={}, default_region=old.default_region))
    gate.set()  # the decision ends: ALLOW, reserved, overruled
    assert await service.drain(5.0) == 0  # what a stop waits for: late screens, releases
    assert await attempts_recorded(store, NUMBER) == 0  # never placed: given back
