"""The one place where the pure core meets I/O.

``Service.screen``: plan (pure) -> load facts from the store (one round trip) ->
decide (pure) -> reserve the attempt atomically (only for calls actually placed) ->
audit -> report. It enforces the decision budget and the campaign's fail mode, and
never raises for infrastructure faults: a call that cannot be decided in time is
blocked (``timeout`` / ``store_unavailable``) unless its campaign is fail-open.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from gateway import service_api
from gateway.audit.enforced import enforced_after_failure
from gateway.audit.errors import AuditUnavailable
from gateway.audit.record import build_record
from gateway.clock import Clock
from gateway.clock import utc_now as utc_now  # re-exported: what callers imported
from gateway.core.brief import decide_brief, plan_many
from gateway.core.engine import Plan, decide, plan
from gateway.core.model import (
    Attempt,
    Campaign,
    Decision,
    FailMode,
    Prescreen,
    Reason,
    Verdict,
)
from gateway.core.policy import Policy
from gateway.live import LivePolicy, live
from gateway.service_api import ScreenResult
from gateway.store.base import (
    OPERATION_DEADLINE,
    FactsQuery,
    Store,
    StoreBusy,
    StoreUnavailable,
)
from gateway.store.prescreen import DEFAULT_PRESCREEN_TTL_S, valid_id

if TYPE_CHECKING:
    from gateway.audit.trail import AuditTrail  # the trail is given, never opened, here

log = structlog.get_logger(__name__)
_debug_enabled = logging.getLogger(__name__).isEnabledFor  # cached by logging, per level


def default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


# Decision ids: a random prefix drawn once per process (a restart draws a new one) and a
# counter: no os.urandom call per decision (about 50 µs each on a small VM).
_ID_PREFIX = secrets.token_hex(3)
_ID_COUNTER = itertools.count(secrets.randbelow(1 << 24))


def new_decision_id(now: datetime) -> str:
    """Time-ordered, unique across instances and restarts: 12 hex of epoch ms, 6 hex of a
    per-process random prefix, 6 hex of a per-process counter (24 hex in all)."""
    return f"{int(now.timestamp() * 1000):012x}{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFF:06x}"


class ServiceObserver(Protocol):
    def decision(self, result: ScreenResult, *, source: str, latency_s: float) -> None: ...

    def store_error(self, kind: str) -> None: ...

    def audit_error(self) -> None: ...


class NullServiceObserver:
    def decision(self, result: ScreenResult, *, source: str, latency_s: float) -> None:
        return None

    def store_error(self, kind: str) -> None:
        return None

    def audit_error(self) -> None:
        return None


class Service:
    """Screening service shared by the FastAGI server and the AMI proxy."""

    def __init__(
        self,
        *,
        policy: Policy | LivePolicy,
        store: Store,
        audit: AuditTrail | None,
        budget_s: float = 0.25,
        instance_id: str | None = None,
        observer: ServiceObserver | None = None,
        clock: Clock = utc_now,
        prescreen_ttl_s: int = DEFAULT_PRESCREEN_TTL_S,
    ) -> None:
        self.live = live(policy)  # a reload swaps it; each call reads it once
        self.store = store
        self.audit = audit
        self.budget_s = budget_s
        self._background: set[asyncio.Task[None]] = set()  # releases of overruled calls
        # The audit chain is per writer instance: records and chain must agree on it.
        self.instance_id = (
            audit.settings.instance_id if audit is not None else instance_id
        ) or default_instance_id()
        self.observer: ServiceObserver = observer or NullServiceObserver()
        self.clock = clock
        self.prescreen_ttl_s = prescreen_ttl_s

    @property
    def policy(self) -> Policy:
        return self.live.current

    # --- dry run (CLI `check`) ----------------------------------------------------

    async def evaluate(self, attempt: Attempt, now: datetime) -> Decision:
        """The engine's decision at ``now``: reserves nothing, audits nothing."""
        policy = self.policy
        planned = plan(attempt, policy, now)
        if isinstance(planned, Decision):
            return planned
        decision, _ = await self._decide(attempt, planned, now, policy, consume=False)
        return decision

    async def evaluate_many(self, attempts: Sequence[Attempt], now: datetime, *,
                            explain: bool = True) -> list[Decision]:
        """:meth:`evaluate` for a batch at one instant (bulk scrubbing), in order.

        The same plan and decide as a call, under one policy snapshot; the facts of
        the whole batch come from one :meth:`Store.load_facts_many` read. Reserves
        nothing, audits nothing. ``explain=False``: :func:`decide_brief` (the same
        verdict, reason, next legal instant, zones and allowing record; no trace).
        """
        policy = self.policy
        planned = plan_many(attempts, policy, now)
        queries = [
            FactsQuery(p.e164, p.campaign.professional, p.campaign.id,
                       p.attempt_window_s, p.pack.abandon.window_s)  # as _decide reads
            for p in planned if isinstance(p, Plan)
        ]
        facts = iter(await self.store.load_facts_many(queries, now=now))
        judge = decide if explain else decide_brief
        return [
            p if isinstance(p, Decision) else judge(a, next(facts), policy, now, p)
            for a, p in zip(attempts, planned, strict=True)
        ]

    async def _decide(
        self, attempt: Attempt, planned: Plan, now: datetime, policy: Policy, *, consume: bool
    ) -> tuple[Decision, Prescreen | None]:
        """Load the facts the plan needs (one store round trip) and decide.

        ``consume``: present the attempt's prescreen id (the read consumes the token).
        """
        prescreen_id = attempt.prescreen_id if consume and valid_id(attempt.prescreen_id) else None
        facts = await self.store.load_facts(
            e164=planned.e164,
            professional=planned.campaign.professional,
            campaign_id=planned.campaign.id,
            now=now,
            attempt_window_s=planned.attempt_window_s,
            abandon_window_s=planned.pack.abandon.window_s,
            prescreen_id=prescreen_id,
        )
        return decide(attempt, facts, policy, now, planned), facts.prescreen

    # --- the hot path ----------------------------------------------------------------

    async def screen(
        self, attempt: Attempt, *, context: Mapping[str, str] | None = None
    ) -> ScreenResult:
        started = time.perf_counter()
        now = self.clock()
        decision_id = new_decision_id(now)
        policy = self.policy  # one snapshot for the whole call, even across a reload
        campaign = policy.campaigns.get(attempt.campaign_id)
        # Pure and fast: an undialable number or an unknown campaign needs no store.
        planned = plan(attempt, policy, now)
        decision: Decision
        placed: bool | None
        prescreened: list[Prescreen] = []  # the proxy's token, once consumed and matched
        if isinstance(planned, Decision):
            decision, placed = planned, False
        else:
            deadline = asyncio.get_running_loop().time() + self.budget_s
            token = OPERATION_DEADLINE.set(deadline)  # store waits end with the budget
            try:
                async with asyncio.timeout_at(deadline):
                    decision, placed = await self._decide_and_reserve(
                        attempt, planned, now, decision_id, policy, prescreened
                    )
            except (TimeoutError, StoreBusy) as exc:
                # StoreBusy: every store connection was busy: saturated, not down
                self.observer.store_error("timeout")
                log.warning(
                    "decision.timeout", campaign=attempt.campaign_id, budget_s=self.budget_s,
                    saturated=isinstance(exc, StoreBusy),
                )
                decision, placed = self._failure(planned, Reason.TIMEOUT), None
            except StoreUnavailable as exc:
                self.observer.store_error("unavailable")
                log.warning(
                    "decision.store_unavailable", campaign=attempt.campaign_id, error=str(exc)
                )
                decision, placed = self._failure(planned, Reason.STORE_UNAVAILABLE), None
            finally:
                OPERATION_DEADLINE.reset(token)

        result = self._result(decision, campaign, decision_id, placed, attempt.campaign_id,
                              reserved=bool(placed) and not prescreened)
        latency_s = time.perf_counter() - started
        result = await self._audit(result, attempt, campaign, now, latency_s,
                                   _prescreen_context(attempt, prescreened, context or {}))
        if placed and result.verdict is Verdict.BLOCK:
            await self._release(result)
            result = dataclasses.replace(result, reserved_for="")  # given back already
        self.observer.decision(
            result, source=attempt.source, latency_s=time.perf_counter() - started
        )
        # The audit record is the record of each decision: no line per call at info level
        # (a quarter of the CPU per call); operators can turn it on with level = "debug".
        # Checked here: a dropped structlog call still runs its processor chain.
        if _debug_enabled(logging.DEBUG):
            log.debug(
                "decision.made",
                decision_id=decision_id,
                campaign=attempt.campaign_id,
                e164=result.e164,
                verdict=result.verdict.value,
                reason=result.reason.value,
                shadow=result.shadow,
                fail_open=result.fail_open,
                latency_ms=round(latency_s * 1000, 3),
            )
        return result

    async def _decide_and_reserve(
        self, attempt: Attempt, planned: Plan, now: datetime, decision_id: str, policy: Policy,
        token: list[Prescreen],
    ) -> tuple[Decision, bool]:
        """Returns the decision and whether the call will be placed (attempt recorded)."""
        decision, prescreen = await self._decide(attempt, planned, now, policy, consume=True)
        shadow = planned.campaign.shadow
        if prescreen is not None:
            # The AMI proxy's screen of this very call counted the attempt (and the store
            # left it out of the facts): every rule was checked again, nothing is counted.
            token.append(prescreen)
            decision = dataclasses.replace(decision, trace=(
                *decision.trace,
                f"prescreen: attempt already counted by the AMI proxy's decision "
                f"{prescreen.decision_id} ({prescreen.at.isoformat()}); not counted again",
            ))
            return decision, decision.allowed or shadow
        if not decision.allowed and not shadow:
            return decision, False
        # The call will be placed: it counts against the cap (attempts, not connects).
        # In shadow mode it is placed whatever the engine said, so it is always recorded.
        reservation = await self.store.reserve_attempt(
            e164=planned.e164,
            professional=planned.campaign.professional,
            campaign_id=planned.campaign.id,
            now=now,
            window_s=decision.attempt_window_s or planned.pack.frequency.window_s,
            limit=None if shadow else decision.attempts_limit,
            attempt_id=decision_id,
            day_since=decision.day_since,
            day_limit=None if shadow else decision.day_limit,
            prescreen_ttl_s=self.prescreen_ttl_s if attempt.issue_prescreen else None,
            caps=() if shadow else decision.other_caps,
        )
        if decision.allowed and not reservation.ok:
            # Lost the race against a concurrent check for the last attempt of the window.
            decision = dataclasses.replace(
                decision,
                verdict=Verdict.BLOCK,
                reason=Reason.FREQUENCY_CAP,
                attempts_seen=reservation.count,
                trace=(
                    *decision.trace,
                    f"frequency: the atomic reservation found {reservation.count} attempts "
                    f"in the window (limit {decision.attempts_limit}): blocked",
                ),
            )
            return decision, False
        return decision, True

    def _failure(self, planned: Plan, reason: Reason) -> Decision:
        """No decision in time: BLOCK (the fail mode is applied by :meth:`_result`).

        The number was valid and the pack known, so the E.164 number and zones are kept:
        a fail-open campaign still dials the normalised number.
        """
        what = (
            "the decision budget ran out"
            if reason is Reason.TIMEOUT
            else "the store is unreachable"
        )
        return Decision(
            verdict=Verdict.BLOCK,
            reason=reason,
            e164=planned.e164,
            retry_after_s=None,
            trace=(
                f"{what} ({self.budget_s * 1000:.0f} ms budget); "
                f"fail mode {planned.campaign.fail_mode.value}",
            ),
            pack_id=planned.pack.id,
            pack_hash=planned.pack.content_hash,
            zones=planned.zones,
        )

    def _result(
        self,
        decision: Decision,
        campaign: Campaign | None,
        decision_id: str,
        placed: bool | None,
        campaign_id: str,
        *,
        reserved: bool = False,
    ) -> ScreenResult:
        """``reserved``: an attempt of this decision is counted (overruled() gives it
        back); not the AMI proxy's, for a prescreened call."""
        shadow = bool(campaign and campaign.shadow)
        verdict, fail_open = decision.verdict, False
        if placed is None and campaign is not None and campaign.fail_mode is FailMode.OPEN:
            verdict, fail_open = Verdict.ALLOW, True
        elif shadow and decision.reason not in (Reason.CAMPAIGN_UNKNOWN, Reason.INVALID_NUMBER):
            # Shadow: computed, audited and counted, but the call goes through. An
            # undialable number stays blocked: there is nothing to dial.
            verdict = Verdict.ALLOW
        return ScreenResult(
            verdict=verdict,
            reason=decision.reason,
            e164=decision.e164,
            retry_after_s=decision.retry_after_s,
            decision_id=decision_id,
            decision=decision,
            shadow=shadow,
            fail_open=fail_open,
            campaign_id=campaign_id,
            reserved_for=campaign.professional if reserved and campaign is not None else "",
        )

    async def _audit(
        self,
        result: ScreenResult,
        attempt: Attempt,
        campaign: Campaign | None,
        now: datetime,
        latency_s: float,
        context: Mapping[str, str],
    ) -> ScreenResult:
        if self.audit is None:
            return result
        record = build_record(
            decision_id=result.decision_id,
            now=now,
            attempt=attempt,
            decision=result.decision,
            returned_verdict=result.verdict,
            returned_reason=result.reason,
            shadow=result.shadow,
            fail_open=result.fail_open,
            latency_s=latency_s,
            context=context,
            campaign=campaign,
            professional=campaign.professional if campaign else None,
            instance_id=self.instance_id,
        )
        result = _with_record(result, record)  # overruled() supersedes it
        try:
            await self.audit.append(record)
        except AuditUnavailable as exc:
            if exc.saturated:  # the sink is up, the gateway saturated: a budget overrun
                self.observer.store_error("timeout")
                log.warning("audit.write_late", decision_id=result.decision_id,
                            error=str(exc), fault=exc.fault)
            else:
                self.observer.audit_error()
                log.error("audit.write_failed", decision_id=result.decision_id,
                          error=str(exc), fault=exc.fault)
            # No proof, no call: the campaign's fail mode decides (the same rule writes
            # the superseding record when the first one may land late); a sink that was
            # up while the gateway was saturated makes it `timeout`, not store_unavailable.
            verdict, reason, fail_open = enforced_after_failure(
                result.verdict.value, str(campaign.fail_mode) if campaign else None,
                saturated=exc.saturated)
            if reason is not None:
                return dataclasses.replace(
                    result, verdict=Verdict(verdict), reason=Reason(reason), shadow=False)
            if fail_open:
                return dataclasses.replace(result, fail_open=True)
        return result

    async def drain(self, timeout_s: float) -> int:
        """At shutdown, before the audit trail closes: wait (at most ``timeout_s``) for the
        screens their edges stopped waiting for, and for the releases they started, so
        that their superseding records are written. Returns how many were still running."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s

        async def unfinished(tasks: set[asyncio.Task[Any]]) -> int:
            if tasks:
                _, tasks = await asyncio.wait(tasks, timeout=max(0.0, deadline - loop.time()))
            return len(tasks)

        # the late screens first: the releases are started when they end
        left = await unfinished(service_api.late_screens()) or await unfinished(
            set(self._background))
        if left:
            log.error("service.drain_incomplete", still_running=left)
        return left

    def overruled(self, result: ScreenResult, *, reason: Reason) -> None:
        """The edge answered ``BLOCK reason`` without waiting for ``result`` (see
        :func:`gateway.service_api.screen_or_none`): a superseding record says what was
        enforced, and a reserved attempt is given back (the call was not placed)."""
        if result.verdict is Verdict.BLOCK:
            return  # blocked either way: the record's own reason stands, nothing reserved
        log.warning("decision.overruled", decision_id=result.decision_id,
                    campaign=result.campaign_id, verdict=result.verdict.value,
                    reason=result.reason.value, enforced=f"BLOCK {reason.value}")
        if self.audit is not None and result.record is not None:
            self.audit.overrule(result.record, verdict=Verdict.BLOCK.value, reason=reason.value)
        if result.placed:
            task = asyncio.get_running_loop().create_task(
                self._release(result), name="release-overruled")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _release(self, result: ScreenResult) -> None:
        """The attempt was reserved but the call is not placed (its audit record could not
        be written): give it back, so it does not count against the cap. The professional
        and campaign are the screen's, not those of a policy reloaded since."""
        if not result.reserved_for or result.e164 is None:
            return
        try:
            async with asyncio.timeout(self.budget_s):
                await self.store.release_attempt(
                    e164=result.e164, professional=result.reserved_for,
                    campaign_id=result.campaign_id, attempt_id=result.decision_id)
        except (TimeoutError, StoreUnavailable) as exc:
            self.observer.store_error("release")
            log.warning("attempt.release_failed", decision_id=result.decision_id,
                        error=str(exc) or type(exc).__name__)


def _with_record(result: ScreenResult, record: Any) -> ScreenResult:
    """``dataclasses.replace(result, record=record)`` at a third of its cost (a call:
    replace() walks the fields each time); tests/test_service.py holds it to replace()."""
    return ScreenResult(
        result.verdict, result.reason, result.e164, result.retry_after_s, result.decision_id,
        result.decision, result.shadow, result.fail_open, result.campaign_id,
        result.reserved_for, record)


def _prescreen_context(
    attempt: Attempt, token: list[Prescreen], context: Mapping[str, str]
) -> Mapping[str, str]:
    """The audit record links a screen to the AMI proxy's screen of the same call."""
    if attempt.prescreen_id is None:
        return context
    linked = dict(context)
    linked["prescreen_decision_id"] = attempt.prescreen_id[:64]
    linked["prescreen"] = (
        "attempt already counted by the prescreen" if token
        else "no valid token (unknown, used, expired, another number or not read): a new attempt"
    )
    return linked
