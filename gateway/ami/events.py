"""The AMI event consumer: abandoned-call accounting and agents' outcome events.

It logs into Asterisk's AMI with a read-only account on the project's own client
(:mod:`gateway.ami.link`: it sends nothing but Challenge/Login, so there is nothing
to replay), reconnects with backoff and jitter, and reports its state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog

from gateway.ami.calls import CallOutcome, CallTracker, Classified
from gateway.ami.codec import AmiMessage
from gateway.ami.link import AmiLink, AmiLinkError, Backoff, LinkFactory, connect_with_retry
from gateway.ami.observer import AmiObserver, NullObserver
from gateway.ami.outcomes import is_outcome_event, outcome_event
from gateway.ami.settings import AmiSettings
from gateway.clock import Clock, Sleep, utc_now
from gateway.service_api import CallOutcomes, CallReport
from gateway.store.base import StoreUnavailable

log = structlog.get_logger(__name__)

#: Outcome labels that recorded something (for the ``applied`` metric label).
_APPLIED = frozenset({"refused", "revoked", "wrong_number", "do_not_call",
                      "answering_machine"})
# Events the consumer looks at (everything else is dropped before the queue).
INTERESTING = frozenset({"varset", "newstate", "bridgeenter", "bridgeleave", "hangup",
                         "userevent"})


async def _open_link(settings: AmiSettings) -> AmiLink:
    return await AmiLink.open(settings, events=True)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(max(0.0, seconds))


class EventConsumer:
    def __init__(
        self,
        settings: AmiSettings,
        *,
        outcomes: CallOutcomes,
        clock: Clock = utc_now,
        sleep: Sleep = _sleep,
        observer: AmiObserver | None = None,
        decisions: Mapping[str, str] | None = None,
        link_factory: LinkFactory = _open_link,
        stamp: Clock | None = None,
    ) -> None:
        self._s = settings
        self._outcomes = outcomes
        # The timers' clock and how to wait on it (a test moves both by hand).
        self._clock = clock
        self._sleep_for = sleep
        # Instants written to the store (outcomes, answers); default: the timer clock.
        self._stamp = stamp or clock
        self._separate_stamp = stamp is not None
        self._observer: AmiObserver = observer or NullObserver()
        self._decisions = decisions if decisions is not None else {}
        self._factory = link_factory
        self._queue: asyncio.Queue[AmiMessage] = asyncio.Queue(settings.event_queue_limit)
        self._wake = asyncio.Event()
        self.tracker = CallTracker(agent_delay_s=outcomes.agent_delay_s,
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
                delta = (deadline - self._clock()).total_seconds()
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
                await self._record_all(self.tracker.due(self._clock()))
            except StoreUnavailable as exc:
                log.warning("ami.consumer_store_unavailable", error=str(exc))
            await self._progressed()

    async def _wait_wake(self) -> object:
        return await self._wake.wait()

    async def _sleep(self, seconds: float) -> object:
        await self._sleep_for(seconds)
        return None

    # --- handling (public for tests and for replaying captured events) ----------------------

    async def handle(self, msg: AmiMessage) -> None:
        now = self._clock()
        try:
            if is_outcome_event(msg):
                event = outcome_event(msg)
                result = await self._outcomes.record_outcome(
                    number=event.number, campaign_id=event.campaign_id,
                    outcome=event.outcome, at=self._stamp())
                self._observer.outcome_event(result, applied=result in _APPLIED)
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
        report = CallReport(call_id=c.call_id, campaign_id=c.campaign_id, at=at, e164=c.e164)
        if c.machine and c.outcome is not CallOutcome.ABANDONED:
            # an abandoned call is recorded as such: its pause (UK 72 h) covers the 24 h
            # after an answering machine, and one record per number and instant is kept
            await self._outcomes.record_machine(report)
        if c.outcome is CallOutcome.ABANDONED:
            await self._outcomes.record_abandoned(report)
        else:
            await self._outcomes.record_bridged(report)
        ratio = await self._outcomes.campaign_abandon_ratio(c.campaign_id, at)
        self._observer.abandon_ratio(c.campaign_id, ratio)
