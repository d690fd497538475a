"""What the edges (FastAGI, AMI proxy, CLI) see of the screening service.

The edges only translate protocols: they build an :class:`Attempt`, call
:meth:`Screener.screen` and map the :class:`ScreenResult` back onto their wire. The AMI
event consumer reports what happened to screened calls through :class:`CallOutcomes`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog

from gateway.core.model import Attempt, Decision, Reason, Verdict

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ScreenResult:
    """The answer an edge returns to Asterisk or to the dialer."""

    verdict: Verdict  # what the edge must enforce (ALLOW in shadow mode / fail-open)
    reason: Reason  # GW_REASON: in shadow mode, what would have happened
    e164: str | None
    retry_after_s: int | None
    decision_id: str
    decision: Decision  # the engine's own decision (or the fail-mode one)
    shadow: bool = False
    fail_open: bool = False
    campaign_id: str = ""
    # the service's own bookkeeping, for overruled(): the professional an attempt of this
    # call is reserved for ("" when none; the campaign's at the screen, whatever a reload
    # did since), and the audit record written of it
    reserved_for: str = field(default="", compare=False, repr=False)
    record: Any = field(default=None, compare=False, repr=False)

    @property
    def placed(self) -> bool:
        """Whether an attempt of this call is reserved (overruled() gives it back)."""
        return bool(self.reserved_for)


class Screener(Protocol):
    async def screen(
        self, attempt: Attempt, *, context: Mapping[str, str] | None = None
    ) -> ScreenResult:
        """Decide within the decision budget; never raises for infrastructure faults.

        ``context`` carries edge facts for the audit record (channel, uniqueid,
        dialer account, ...). It never contains secrets.
        """
        ...

    def overruled(self, result: ScreenResult, *, reason: Reason) -> None:
        """The edge could not wait for ``result`` and answered ``BLOCK reason`` instead
        (its own deadline passed, or its session went away): the decision's audit record
        is superseded by one that says so and its attempt is given back. Returns at once
        (the work runs in the background); never raises."""
        ...


# screens still running after their edge answered without them (see screen_or_none)
_LATE: set[asyncio.Task[ScreenResult]] = set()


def late_screens() -> set[asyncio.Task[ScreenResult]]:
    """The screens of this process still running after their edge answered without them
    (a copy: what a shutdown waits for, see Service.drain)."""
    return set(_LATE)


async def screen_or_none(
    screener: Screener, attempt: Attempt, *, context: Mapping[str, str], deadline_s: float
) -> ScreenResult | None:
    """``screener.screen()`` within the edge's own deadline, or None when it passed (the
    edge then answers ``BLOCK timeout``).

    The screen is never cancelled half-way: cancelled in the middle of its audit write, a
    record saying ALLOW could land with nothing after it saying the call was blocked, and
    its attempt would count against the cap. It runs on in the background and, once it
    has a result that is not what the edge answered, the screener is told
    (:meth:`Screener.overruled`). The same if the edge's own task is cancelled.
    """
    loop = asyncio.get_running_loop()
    # The edge waits on a future of its own, which the screen's last step (_screen_then_wake),
    # its deadline (a plain timer) or its cancellation ends without touching the task:
    # what asyncio.timeout and asyncio.shield did, for one future and one timer a call (the
    # screen runs on either way). Woken by the screen itself, not by a done callback of its
    # task: one loop turn less between the decision and the answer.
    waiter: asyncio.Future[None] = loop.create_future()
    task = loop.create_task(_screen_then_wake(screener, attempt, context, waiter))
    timer = loop.call_later(deadline_s, _wake, waiter)
    try:
        await waiter
    except asyncio.CancelledError:
        _overrule_when_done(screener, task)
        raise
    finally:
        timer.cancel()
    if task.done():  # the screen's last step woke the edge (or ended with the deadline)
        return task.result()  # a bug in the screener raises here, as it did awaited
    _overrule_when_done(screener, task)
    return None


async def _screen_then_wake(screener: Screener, attempt: Attempt, context: Mapping[str, str],
                            waiter: asyncio.Future[None]) -> ScreenResult:
    """The screen's task: the screen, then (in its last step, however it ends) the edge
    is woken. The task is done before the edge runs again: a result, an exception (a
    bug) or a cancellation (the loop's own teardown) is there for it to take."""
    try:
        return await screener.screen(attempt, context=context)
    finally:
        _wake(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # not when the edge has gone (cancelled) or was woken already
        waiter.set_result(None)


def _overrule_when_done(screener: Screener, task: asyncio.Task[ScreenResult]) -> None:
    _LATE.add(task)

    def done(t: asyncio.Task[ScreenResult]) -> None:
        _LATE.discard(t)
        if t.cancelled():
            return  # no decision: nothing was recorded as allowed
        error = t.exception()
        if error is not None:  # the Screener never raises by contract: a bug, never silent
            log.error("screen.late_failed", error=f"{type(error).__name__}: {error}")
            return
        overruled = getattr(screener, "overruled", None)  # test doubles may not have it
        if overruled is not None:
            overruled(t.result(), reason=Reason.TIMEOUT)

    task.add_done_callback(done)


@dataclass(frozen=True, slots=True)
class CallReport:
    """One screened call as the AMI event consumer saw it end (or get classified)."""

    call_id: str  # the decision id (GW_DECISION_ID)
    campaign_id: str
    at: datetime  # answer instant for answered calls
    e164: str | None = None  # the dialled number (GW_E164) when the events carried it


class CallOutcomes(Protocol):
    """What the AMI event consumer sees of the service: it reports, the service records.

    The consumer never reads packs or writes the store itself; every instant is given
    by the caller. Methods raise ``StoreUnavailable`` when the store cannot take a
    record (the consumer logs it and carries on).
    """

    def agent_delay_s(self, campaign_id: str | None, at: datetime) -> float:
        """Seconds an answered call may wait for an agent before it counts as abandoned."""
        ...

    async def record_bridged(self, call: CallReport) -> None:
        """A live-answered call bridged to an agent in time."""
        ...

    async def record_abandoned(self, call: CallReport) -> None:
        """A live-answered call not bridged in time: counted against the campaign and,
        when the number is known, recorded against the number for its professional."""
        ...

    async def record_machine(self, call: CallReport) -> None:
        """An answering machine was detected on the call (AMD)."""
        ...

    async def record_outcome(
        self, *, number: str, campaign_id: str, outcome: str, at: datetime
    ) -> str:
        """An agent's outcome (refused, revoked, wrong_number, do_not_call,
        answering_machine); returns a bounded label of what was done."""
        ...

    async def campaign_abandon_ratio(self, campaign_id: str, at: datetime) -> float:
        """Abandoned / answered calls of the campaign over its pack's window."""
        ...
