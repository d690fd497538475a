"""Attack: abuse the belt-and-braces prescreen to dial beyond the frequency cap.

The carrier context's FastAGI screen does not count an attempt the AMI proxy already
counted, when the dialplan presents the proxy's decision id (4th AGI argument,
``GW_DECISION_ID``). Whoever can put a value in that argument (a channel variable)
could try a forged id, reuse a real one for a second call, or use the id of one
number's call for another number or another professional. None of that may spare a
count: the id is only a claim; the store's one-shot token, bound to the number and the
professional and expiring, decides. Over the real FastAGI wire, real Service, memory
store and a real redis-server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from gateway.core.model import Attempt, Campaign, ConsentRecord
from gateway.core.policy import Policy
from gateway.packs import builtin_packs
from gateway.service import Service
from gateway.store.base import ImportMode, Store
from gateway.store.factory import open_store
from gateway.store.memory import MemoryStore
from gateway.store.prescreen import DEFAULT_PRESCREEN_TTL_S
from tests.agi.harness import running_server
from tests.agi.peer import screen_session
from tests.test_service import CAMPAIGN, E164, LEGAL_NOW, NUMBER, PRO, consent

OTHER = "+33612345679"
CAP = 4


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        s: Store = MemoryStore()
    else:
        s = open_store(request.getfixturevalue("redis_url"),
                       key_prefix=request.getfixturevalue("key_prefix"), socket_timeout_s=2.0)
    await s.import_consents([consent(E164), consent(OTHER), rival_consent(E164)],
                            mode=ImportMode.REPLACE, now=LEGAL_NOW)
    yield s
    await s.close()


def rival_consent(e164: str) -> ConsentRecord:
    """A consent of the same number for another professional ("other")."""
    return dataclasses.replace(consent(e164), id=f"c-other-{e164}", professional="other")


class Rig:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.now: datetime = LEGAL_NOW
        other = Campaign(id="rival", professional="other", product_category="telecom",
                         sector="telecom", automated=True, caller_id="+33162000001")
        self.service = Service(
            policy=Policy(packs=builtin_packs(), campaigns={CAMPAIGN.id: CAMPAIGN,
                                                            other.id: other}),
            store=store, audit=None, budget_s=5.0, clock=lambda: self.now)

    async def proxy(self, number: str = NUMBER, campaign: str = "spring") -> str:
        result = await self.service.screen(
            Attempt(number, campaign, source="ami", issue_prescreen=True))
        assert result.reason.value == "ok", result.decision.trace
        return result.decision_id

    async def carrier(self, address: tuple[str, int], prescreen_id: str,
                      number: str = NUMBER, campaign: str = "spring") -> str:
        """GW_REASON of the carrier's FastAGI screen, over the wire."""
        commands = await screen_session(address, args=(number, campaign, "", prescreen_id))
        assert len(commands) == 1, commands
        return commands[0].split("GW_REASON=", 1)[1].split(",", 1)[0]

    async def attempts(self, e164: str = E164, professional: str = PRO) -> int:
        facts = await self.store.load_facts(
            e164=e164, professional=professional, campaign_id="spring", now=self.now,
            attempt_window_s=30 * 86400, abandon_window_s=86400)
        return len(facts.attempts)


async def test_forged_ids_are_counted_and_never_pass_the_cap(store: Store) -> None:
    rig = Rig(store)
    async with running_server(rig.service) as server:
        assert server.address is not None
        forged = ["0" * 24, "01a230f089c0d2cc87b33440", "x}{y", "GW_VERDICT=ALLOW",
                  "a" * 200]
        reasons = [await rig.carrier(server.address, f) for f in forged]
    # each forged "prescreened" call was counted: four placed, then the cap
    assert reasons == ["ok"] * CAP + ["frequency_cap"]
    assert await rig.attempts() == CAP


async def test_a_real_id_spares_one_count_once(store: Store) -> None:
    rig = Rig(store)
    async with running_server(rig.service) as server:
        assert server.address is not None
        decision_id = await rig.proxy()
        assert await rig.carrier(server.address, decision_id) == "ok"
        assert await rig.attempts() == 1  # the proxy's, not a second
        # reused for a second call to the same number: a new attempt, counted
        assert await rig.carrier(server.address, decision_id) == "ok"
        assert await rig.attempts() == 2
        # ... until the cap: a reused id never spares a count
        assert await rig.carrier(server.address, decision_id) == "ok"
        assert await rig.carrier(server.address, decision_id) == "ok"
        assert await rig.carrier(server.address, decision_id) == "frequency_cap"
    assert await rig.attempts() == CAP


async def test_an_id_for_one_number_or_professional_does_not_cover_another(
        store: Store) -> None:
    rig = Rig(store)
    async with running_server(rig.service) as server:
        assert server.address is not None
        decision_id = await rig.proxy()
        # the id of the call to E164 presented for OTHER: OTHER's attempt is counted
        assert await rig.carrier(server.address, decision_id, "06 12 34 56 79") == "ok"
        assert await rig.attempts(OTHER) == 1
        # another professional's campaign: its own attempt is counted
        assert await rig.carrier(server.address, decision_id, campaign="rival") == "ok"
        assert await rig.attempts(professional="other") == 1
        # that read spent the token: the rightful screen now counts too (fail-safe)
        assert await rig.carrier(server.address, decision_id) == "ok"
    assert await rig.attempts() == 2


async def test_an_expired_id_is_counted(store: Store) -> None:
    rig = Rig(store)
    async with running_server(rig.service) as server:
        assert server.address is not None
        decision_id = await rig.proxy()
        rig.now = LEGAL_NOW + timedelta(seconds=DEFAULT_PRESCREEN_TTL_S + 1)
        assert await rig.carrier(server.address, decision_id) == "ok"
    assert await rig.attempts() == 2
