"""The AMI event consumer: abandoned-call accounting and agents' outcome events.

It logs into Asterisk's AMI with a read-only account on the project's own client
(:mod:`gateway.ami.link`: it sends nothing but Challenge/Login, so there is nothing
to replay), reconnects with backoff and jitter, and reports its state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime

import structlog

from gateway.ami.calls import CallOutcome, CallTracker, Classified
from gateway.ami.clock import Clock, SystemClock
from gateway.ami.codec import AmiMessage
from gateway.ami.link import AmiLink, AmiLinkError, Backoff, LinkFactory, connect_with_retry
from gateway.ami.observer import AmiObserver, NullObserver
from gateway.ami.outcomes import apply_outcome, is_outcome_event
from gateway.ami.settings import AmiSettings
from gateway.core.pack import AbandonSettings
from gateway.core.policy import Policy
from gateway.live import LivePolicy, live
from gateway.store.base import Store, StoreUnavailable

log = structlog.get_logger(__name__)

_DEFAULT_ABANDON = AbandonSettings()
# Events the consumer looks at (everything else is dropped before the queue).
INTERESTING = frozenset({"varset", "newstate", "bridgeenter", "bridgeleave", "hangup",
                         "userevent"})


async def _open_link(settings: AmiSettings) -> AmiLink:
    return await AmiLink.open(settings, events=True)


class EventConsumer:
    def __init__(
        self,
        settings: AmiSettings,
        *,
        store: Store,
        policy: Policy | LivePolicy,
        clock: Clock | None = None,
        observer: AmiObserver | None = None,
        decisions: Mapping[str, str] | None = None,
        link_factory: LinkFactory = _open_link,
        stamp: Callable[[], datetime] | None = None,
    ) -> None:
        self._s = settings
        self._store = store
        self._live = live(policy)  # a configuration reload swaps it
        self._clock: Clock = clock or SystemClock()
        # Instants written to the store (outcomes, answers); default: the timer clock.
        self._stamp = stamp or self._clock.now
        self._separate_stamp = stamp is not None
        self._observer: AmiObserver = observer or NullObserver()
        self._decisions = decisions if decisions is not None else {}
        self._factory = link_factory
        self._queue: asyncio.Queue[AmiMessage] = asyncio.Queue(settings.event_queue_limit)
        self._wake = asyncio.Event()
        self.tracker = CallTracker(agent_delay_s=self._agent_delay,
                                   campaign_of=self._decisions.get)
        self.state = "connecting"
        self.connections = 0
        self.dropped_events = 0
        self.processed = 0  # events and timers handled (tests wait on it)
        self._progress = asyncio.Condition()
        self._state_changed = asyncio.Event()

    async def state_change(self) -> None:
        """Return at the next change of ``state`` (callers bound it with a deadline)."""
        await self._state_changed.wait()

    # --- policy lookups -----------------------------------------------------------------

    @property
    def _policy(self) -> Policy:
        return self._live.current

    def _abandon(self, campaign_id: str | None, at: datetime) -> AbandonSettings:
        campaign = self._policy.campaigns.get(campaign_id or "")
        jurisdiction = campaign.jurisdiction if campaign else self._policy.default_region
        pack = self._policy.pack_for(jurisdiction, at)
        return pack.abandon if pack is not None else _DEFAULT_ABANDON

    def _agent_delay(self, campaign_id: str | None, at: datetime) -> float:
        return self._abandon(campaign_id, at).agent_delay_s

    # --- task root ------------------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._connection_loop())
            tg.create_task(self._process_loop())
            tg.create_task(self._timer_loop())

    def _set_state(self, state: str) -> None:
        self.state = state
        self._state_changed.set()
        self._state_changed = asyncio.Event()
        self._observer.link_state("consumer", state)

    async def _connection_loop(self) -> None:
        backoff = Backoff(self._s)
        while True:
            link = await connect_with_retry(
                self._factory, self._s, backoff, role="consumer", set_state=self._set_state
            )
            self.connections += 1
            self._set_state("up")
            log.info("ami.consumer_up", host=self._s.host, port=self._s.port)
            try:
                while True:
                    self._enqueue(await link.read())
            except AmiLinkError as exc:
                log.warning("ami.consumer_lost", error=str(exc))
            finally:
                await link.close()
                self._set_state("down")
            await asyncio.sleep(backoff.delay())

    def _enqueue(self, msg: AmiMessage) -> None:
        if (msg.event or "").lower() not in INTERESTING:
            return
        try:
            self._queue.put_nowait(msg)
        except asyncio.QueueFull:
            self.dropped_events += 1
            log.warning("ami.consumer_queue_full", dropped=self.dropped_events)

    async def _process_loop(self) -> None:
        while True:
            msg = await self._queue.get()
            try:
                await self.handle(msg)
            except StoreUnavailable as exc:
                log.warning("ami.consumer_store_unavailable", error=str(exc))
            except Exception:  # task root: one bad event must not stop the accounting
                log.exception("ami.consumer_event_failed", event_name=msg.event)

    async def _timer_loop(self) -> None:
        while True:
            self._wake.clear()
            deadline = self.tracker.next_deadline()
            waiters: list[asyncio.Task[object]] = [asyncio.create_task(self._wait_wake())]
            if deadline is not None:
                delta = (deadline - self._clock.now()).total_seconds()
                waiters.append(asyncio.create_task(self._sleep(delta)))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
                # asyncio.wait never raises the waiters' CancelledError, so a
                # cancellation of this task itself is never swallowed here.
                await asyncio.wait(waiters)
            try:
                await self._record_all(self.tracker.due(self._clock.now()))
            except StoreUnavailable as exc:
                log.warning("ami.consumer_store_unavailable", error=str(exc))
            await self._progressed()

    async def _wait_wake(self) -> object:
        return await self._wake.wait()

    async def _sleep(self, seconds: float) -> object:
        await self._clock.sleep(seconds)
        return None

    # --- handling (public for tests and for replaying captured events) ----------------------

    async def handle(self, msg: AmiMessage) -> None:
        now = self._clock.now()
        try:
            if is_outcome_event(msg):
                result = await apply_outcome(msg, store=self._store, policy=self._policy,
                                             now=self._stamp())
                self._observer.outcome_event(result, applied=result in (
                    "refused", "revoked", "wrong_number", "do_not_call"))
                return
            before = self.tracker.next_deadline()
            classified = self.tracker.on_event(msg, now)
            if self.tracker.next_deadline() != before:
                self._wake.set()
            await self._record_all(classified)
        finally:
            await self._progressed()

    async def _progressed(self) -> None:
        async with self._progress:
            self.processed += 1
            self._progress.notify_all()

    async def wait_processed(self, count: int) -> None:
        """Until ``processed >= count`` (callers bound it with their own deadline)."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.processed >= count)

    async def _record_all(self, classified: list[Classified]) -> None:
        for c in classified:
            await self._record(c)

    async def _record(self, c: Classified) -> None:
        campaign_id = c.campaign_id or ""
        self._observer.call_classified(campaign_id, str(c.outcome))
        log.info("ami.call_classified", decision_id=c.call_id, campaign=campaign_id,
                 outcome=str(c.outcome))
        if not c.outcome.answered:
            return
        if not c.campaign_id:
            log.warning("ami.call_without_campaign", decision_id=c.call_id)
            return
        at = self._stamp() if self._separate_stamp else c.at
        await self._store.record_answer(campaign_id=c.campaign_id, call_id=c.call_id,
                                        at=at, abandoned=c.outcome is CallOutcome.ABANDONED)
        await self._export_ratio(c.campaign_id, at)

    async def _export_ratio(self, campaign_id: str, at: datetime) -> None:
        campaign = self._policy.campaigns.get(campaign_id)
        settings = self._abandon(campaign_id, at)
        # The store has no campaign-only read: load_facts with no number gives the
        # shared campaign counters (all instances) in the same round trip as the engine.
        facts = await self._store.load_facts(
            e164="", professional=campaign.professional if campaign else "",
            campaign_id=campaign_id, now=at, attempt_window_s=0,
            abandon_window_s=settings.window_s,
        )
        stats = facts.campaign
        ratio = stats.abandoned / stats.answered if stats.answered else 0.0
        self._observer.abandon_ratio(campaign_id, ratio)
