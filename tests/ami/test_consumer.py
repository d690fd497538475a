"""The event consumer against a scripted fake Asterisk, a manual clock and real stores."""



from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from gateway.ami.codec import AmiMessage
from gateway.ami.events import EventConsumer
from gateway.ami.settings import AmiSettings
from gateway.call_outcomes import CallOutcomesService
from gateway.core.model import Campaign, CampaignStats
from gateway.core.policy import Policy, builtin_packs
from gateway.service import Service
from gateway.store.base import Store
from gateway.store.factory import open_store
from tests.ami.fake_asterisk import FakeAsterisk

WAIT_S = 5.0
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class ManualClock:
    """Time moves only when the test says so; sleepers wake when it reaches them."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        target = self._now + timedelta(seconds=seconds)
        if target <= self._now:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((target, fut))
        await fut

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        for target, fut in list(self._sleepers):
            if target <= self._now:
                self._sleepers.remove((target, fut))
                if not fut.done():
                    fut.set_result(None)


@dataclass
class RecordingObserver:
    ratios: list[tuple[str, float]] = field(default_factory=list)
    classified: list[tuple[str, str]] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    outcomes: list[tuple[str, bool]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _poke(self) -> None:
        self.changed.set()

    def link_state(self, link: str, state: str) -> None:
        self.states.append(f"{link}:{state}")
        self._poke()

    def abandon_ratio(self, campaign_id: str, ratio: float) -> None:
        self.ratios.append((campaign_id, ratio))
        self._poke()

    def call_classified(self, campaign_id: str, outcome: str) -> None:
        self.classified.append((campaign_id, outcome))
        self._poke()

    def originate_screened(self, account: str, verdict: str, reason: str) -> None:
        pass

    def dialer_sessions(self, count: int) -> None:
        pass

    def dialer_disconnected(self, reason: str) -> None:
        pass

    def outcome_event(self, outcome: str, applied: bool) -> None:
        self.outcomes.append((outcome, applied))
        self._poke()

    async def until(self, predicate: object) -> None:
        assert callable(predicate)
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


CAMPAIGN = Campaign(id="spring", professional="acme", product_category="telecom")
POLICY = Policy(builtin_packs(), campaigns={"spring": CAMPAIGN})


@dataclass
class Rig:
    fake: FakeAsterisk
    consumer: EventConsumer
    clock: ManualClock
    observer: RecordingObserver
    store: Store


@pytest.fixture(params=["memory", "redis"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    url = "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")
    store = open_store(url)
    fake = FakeAsterisk(username="events", secret="ro")
    await fake.start()
    clock = ManualClock(T0)
    observer = RecordingObserver()
    consumer = EventConsumer(
        AmiSettings(port=fake.port, username="events", secret="ro",
                    reconnect_initial_s=0.01, reconnect_max_s=0.05),
        outcomes=CallOutcomesService(Service(policy=POLICY, store=store, audit=None)),
        clock=clock, observer=observer,
    )
    task = asyncio.create_task(consumer.run())
    try:
        await fake.wait_for(lambda: fake.logins == 1)
        yield Rig(fake, consumer, clock, observer, store)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await fake.stop()
        await store.close()


def ev(name: str, **kw: str) -> AmiMessage:
    return AmiMessage.of(("Event", name), *kw.items())


async def call(rig: Rig, uid: str, decision: str) -> None:
    """An allowed Originate of campaign 'spring' that the callee answers."""
    base = rig.consumer.processed
    await rig.fake.emit(ev("VarSet", Uniqueid=uid, Variable="CAMPAIGN", Value="spring"))
    await rig.fake.emit(ev("VarSet", Uniqueid=uid, Variable="GW_DECISION_ID", Value=decision))
    await rig.fake.emit(ev("Newstate", Uniqueid=uid, ChannelState="6", ChannelStateDesc="Up"))
    async with asyncio.timeout(WAIT_S):
        await rig.consumer.wait_processed(base + 3)


async def stats(store: Store) -> CampaignStats:
    return await store.campaign_stats(campaign_id="spring", now=T0 + timedelta(hours=1),
                                      abandon_window_s=86400)


async def test_abandoned_and_bridged_calls_feed_the_shared_ratio(rig: Rig) -> None:
    await call(rig, "u1", "d1")
    rig.clock.advance(2.0)  # nobody bridged within the pack's 2 s: abandoned
    await rig.observer.until(lambda: len(rig.observer.ratios) == 1)
    assert rig.observer.ratios[-1] == ("spring", 1.0)
    await call(rig, "u2", "d2")
    await rig.fake.emit(ev("BridgeEnter", Uniqueid="u2", BridgeUniqueid="b", BridgeNumChannels="1"))
    await rig.fake.emit(ev("BridgeEnter", Uniqueid="agent", BridgeUniqueid="b",
                           BridgeNumChannels="2"))
    await rig.observer.until(lambda: len(rig.observer.ratios) == 2)
    assert rig.observer.ratios[-1] == ("spring", 0.5)
    assert await stats(rig.store) == CampaignStats(answered=2, abandoned=1)
    assert ("spring", "abandoned") in rig.observer.classified
    assert ("spring", "bridged") in rig.observer.classified


async def test_refusal_event_starts_a_suppression(rig: Rig) -> None:
    await rig.fake.emit(ev("UserEvent", UserEvent="GatewayOutcome", Number="06 12 34 56 78",
                           Campaign="spring", Outcome="refused"))
    await rig.observer.until(lambda: rig.observer.outcomes)
    assert rig.observer.outcomes == [("refused", True)]
    facts = await rig.store.load_facts(e164="+33612345678", professional="acme",
                                       campaign_id="spring", now=T0, attempt_window_s=0,
                                       abandon_window_s=60)
    (s,) = facts.suppressions
    assert (s.professional, s.reason, s.until) == ("acme", "refused", None)


async def test_wrong_number_goes_on_the_internal_opposition_list(rig: Rig) -> None:
    await rig.fake.emit(ev("UserEvent", UserEvent="GatewayOutcome", Number="+33612345678",
                           Campaign="whatever", Outcome="wrong_number"))
    await rig.observer.until(lambda: rig.observer.outcomes)
    facts = await rig.store.load_facts(e164="+33612345678", professional="other",
                                       campaign_id="x", now=T0, attempt_window_s=0,
                                       abandon_window_s=60)
    assert [o.source for o in facts.oppositions] == ["internal"]


async def test_bogus_outcome_events_change_nothing(rig: Rig) -> None:
    await rig.fake.emit(ev("UserEvent", UserEvent="GatewayOutcome", Number="not a number",
                           Campaign="spring", Outcome="refused"))
    await rig.fake.emit(ev("UserEvent", UserEvent="GatewayOutcome", Number="0612345678",
                           Campaign="spring", Outcome="allow_again"))
    await rig.observer.until(lambda: len(rig.observer.outcomes) == 2)
    assert rig.observer.outcomes == [("invalid_number", False), ("unknown_outcome", False)]


async def test_consumer_reconnects_after_an_asterisk_restart(rig: Rig) -> None:
    await rig.fake.stop()
    await rig.observer.until(lambda: "consumer:down" in rig.observer.states)
    await rig.fake.start()
    await rig.fake.wait_for(lambda: rig.fake.logins == 2)
    await call(rig, "u9", "d9")  # events flow again on the new connection
    rig.clock.advance(5)
    await rig.observer.until(lambda: rig.observer.ratios)
    assert rig.consumer.connections == 2
    assert rig.fake.actions("Originate") == []  # the consumer never sends actions
