"""The event consumer against a scripted fake Asterisk, a manual clock and real stores."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.ami.codec import AmiMessage
from gateway.ami.events import EventConsumer
from gateway.ami.settings import AmiSettings
from gateway.call_outcomes import CallOutcomesService
from gateway.core.engine import decide
from gateway.core.model import Attempt, Campaign, CampaignStats, Decision, ListInfo, Reason
from gateway.core.policy import Policy
from gateway.packs import builtin_packs
from gateway.service import Service
from gateway.store.base import Store
from gateway.store.factory import open_store
from tests.ami.fake_asterisk import FakeAsterisk

WAIT_S = 5.0
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class ManualClock:
    """A ``gateway.clock.Clock`` whose time moves only when the test says so; its
    ``sleep`` (the consumer's ``Sleep``) wakes the sleepers it reaches."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def __call__(self) -> datetime:
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
UK_CAMPAIGN = Campaign(id="uk", professional="acme", product_category="telecom",
                       jurisdiction="UK", caller_id="+442079460001")
POLICY = Policy(builtin_packs(), campaigns={"spring": CAMPAIGN, "uk": UK_CAMPAIGN})
UK_NUMBER = "+442079460000"


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
        clock=clock, sleep=clock.sleep, observer=observer,
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


# --- Ofcom 2016: abandoned calls and answering machines recorded per number ---------------


async def uk_call(rig: Rig, uid: str, decision: str, *extra: AmiMessage) -> None:
    """An allowed call of the UK campaign to UK_NUMBER that the callee answers."""
    base = rig.consumer.processed
    events = [ev("VarSet", Uniqueid=uid, Variable="CAMPAIGN", Value="uk"),
              ev("VarSet", Uniqueid=uid, Variable="GW_E164", Value=UK_NUMBER),
              ev("VarSet", Uniqueid=uid, Variable="GW_DECISION_ID", Value=decision),
              ev("Newstate", Uniqueid=uid, ChannelState="6", ChannelStateDesc="Up"), *extra]
    for event in events:
        await rig.fake.emit(event)
    async with asyncio.timeout(WAIT_S):
        await rig.consumer.wait_processed(base + len(events))


async def uk_decision(rig: Rig, now: datetime, **campaign: object) -> Decision:
    pol = Policy(builtin_packs(), campaigns={"uk": replace(UK_CAMPAIGN, **campaign)})  # type: ignore[arg-type]
    facts = await rig.store.load_facts(e164=UK_NUMBER, professional="acme", campaign_id="uk",
                                       now=now, attempt_window_s=86400, abandon_window_s=86400)
    facts = replace(facts, lists=(ListInfo("opposition:tps", 1, now, 0),), campaign=CampaignStats())
    return decide(Attempt(number=UK_NUMBER, campaign_id="uk"), facts, pol, now)


async def test_ofcom_2016_no_repeat_call_within_72_hours_of_an_abandoned_call(rig: Rig) -> None:
    """Ofcom persistent-misuse statement (2016): the abandoned call is recorded against the
    number (for the professional) from the AMI events and blocks a repeat call for 72 h."""
    await uk_call(rig, "u1", "d1")
    rig.clock.advance(2.0)  # nobody bridged within 2 s: abandoned
    await rig.observer.until(lambda: rig.observer.ratios)
    facts = await rig.store.load_facts(e164=UK_NUMBER, professional="acme", campaign_id="uk",
                                       now=T0 + timedelta(hours=1), attempt_window_s=0,
                                       abandon_window_s=60)
    assert [(s.reason, s.since) for s in facts.suppressions] == [("abandoned", T0)]
    blocked = await uk_decision(rig, T0 + timedelta(hours=71))
    assert blocked.reason is Reason.REFUSAL_COOLDOWN
    assert any("72 h of an abandoned call" in line for line in blocked.trace)
    assert (await uk_decision(rig, T0 + timedelta(hours=72))).reason is Reason.OK
    live = await uk_decision(rig, T0 + timedelta(hours=71), live_agent_guaranteed=True)
    assert live.reason is Reason.OK
    assert any("live operator" in line for line in live.trace)


async def test_ofcom_2016_24_hours_after_an_answering_machine_amdstatus(rig: Rig) -> None:
    """Asterisk's AMD() sets AMDSTATUS=MACHINE: no repeat call for 24 h (Ofcom 2016)."""
    await uk_call(rig, "u2", "d2",
                  ev("VarSet", Uniqueid="u2", Variable="AMDSTATUS", Value="MACHINE"),
                  ev("Hangup", Uniqueid="u2", Cause="16"))
    await rig.observer.until(lambda: rig.observer.ratios)
    facts = await rig.store.load_facts(e164=UK_NUMBER, professional="acme", campaign_id="uk",
                                       now=T0 + timedelta(hours=1), attempt_window_s=0,
                                       abandon_window_s=60)
    # hung up unbridged: also an abandoned call, whose 72 h pause covers the machine's 24 h
    assert {s.reason for s in facts.suppressions} == {"abandoned"}
    assert (await uk_decision(rig, T0 + timedelta(hours=23))).reason is Reason.REFUSAL_COOLDOWN


async def test_ofcom_2016_machine_detected_on_a_bridged_call_pauses_24_hours(rig: Rig) -> None:
    await uk_call(rig, "u3", "d3",
                  ev("VarSet", Uniqueid="u3", Variable="AMDSTATUS", Value="MACHINE"),
                  ev("BridgeEnter", Uniqueid="u3", BridgeUniqueid="b3", BridgeNumChannels="1"),
                  ev("BridgeEnter", Uniqueid="agent", BridgeUniqueid="b3",
                     BridgeNumChannels="2"))
    await rig.observer.until(lambda: rig.observer.ratios)
    facts = await rig.store.load_facts(e164=UK_NUMBER, professional="acme", campaign_id="uk",
                                       now=T0 + timedelta(hours=1), attempt_window_s=0,
                                       abandon_window_s=60)
    assert [s.reason for s in facts.suppressions] == ["answering_machine"]
    assert (await uk_decision(rig, T0 + timedelta(hours=23))).reason is Reason.REFUSAL_COOLDOWN
    assert (await uk_decision(rig, T0 + timedelta(hours=24))).reason is Reason.OK


async def test_ofcom_2016_gateway_outcome_answering_machine(rig: Rig) -> None:
    await rig.fake.emit(ev("UserEvent", UserEvent="GatewayOutcome", Number=UK_NUMBER,
                           Campaign="uk", Outcome="answering_machine"))
    await rig.observer.until(lambda: rig.observer.outcomes)
    assert rig.observer.outcomes == [("answering_machine", True)]
    assert (await uk_decision(rig, T0 + timedelta(hours=23))).reason is Reason.REFUSAL_COOLDOWN
    assert (await uk_decision(rig, T0 + timedelta(hours=24))).reason is Reason.OK


async def test_french_abandoned_calls_record_nothing_per_number(rig: Rig) -> None:
    """No French rule follows an abandoned call: nothing is stored against the number."""
    base = rig.consumer.processed
    for event in (ev("VarSet", Uniqueid="f1", Variable="GW_E164", Value="+33612345678"),
                  ev("VarSet", Uniqueid="f1", Variable="CAMPAIGN", Value="spring")):
        await rig.fake.emit(event)
    async with asyncio.timeout(WAIT_S):
        await rig.consumer.wait_processed(base + 2)
    await call(rig, "f1", "df1")
    rig.clock.advance(2.0)
    await rig.observer.until(lambda: rig.observer.ratios)
    facts = await rig.store.load_facts(e164="+33612345678", professional="acme",
                                       campaign_id="spring", now=T0 + timedelta(hours=1),
                                       attempt_window_s=0, abandon_window_s=60)
    assert facts.suppressions == ()
