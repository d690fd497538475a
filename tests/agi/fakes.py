"""In-test Screeners: the server is under test, not the engine."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from gateway.core.model import Attempt, Decision, Reason, Verdict
from gateway.service_api import ScreenResult


def result(
    verdict: Verdict = Verdict.ALLOW,
    reason: Reason = Reason.OK,
    e164: str | None = "+33612345678",
    retry_after_s: int | None = None,
    decision_id: str = "d-0001",
) -> ScreenResult:
    decision = Decision(verdict, reason, e164, retry_after_s, trace=("test",))
    return ScreenResult(verdict, reason, e164, retry_after_s, decision_id, decision)


class FakeScreener:
    """Answers ``answer``; records calls; can hold every call until ``release`` is set."""

    def __init__(self, answer: ScreenResult | None = None, *, hold: bool = False) -> None:
        self.answer = answer or result()
        self.calls: list[tuple[Attempt, dict[str, str]]] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def screen(
        self, attempt: Attempt, *, context: Mapping[str, str] | None = None
    ) -> ScreenResult:
        self.calls.append((attempt, dict(context or {})))
        self.entered.set()
        await self.release.wait()
        return self.answer


class BrokenScreener:
    """Breaks the Screener contract: raises."""

    def __init__(self) -> None:
        self.calls = 0

    async def screen(
        self, attempt: Attempt, *, context: Mapping[str, str] | None = None
    ) -> ScreenResult:
        self.calls += 1
        raise RuntimeError("bug in the service")


class RecordingObserver:
    def __init__(self) -> None:
        self.started = 0
        self.rejected = 0
        self.ended: list[str] = []
        self.errors: list[str] = []
        self.in_flight: list[int] = []
        self.pending: list[int] = []
        self.pending_event = asyncio.Event()
        self.ended_event = asyncio.Event()

    def session_started(self) -> None:
        self.started += 1

    def session_ended(self, outcome: str, duration_s: float) -> None:
        assert duration_s >= 0
        self.ended.append(outcome)
        self.ended_event.set()

    def session_rejected(self) -> None:
        self.rejected += 1

    def protocol_error(self, kind: str) -> None:
        self.errors.append(kind)

    def sessions_in_flight(self, count: int) -> None:
        self.in_flight.append(count)

    def connections_pending(self, count: int) -> None:
        self.pending.append(count)
        self.pending_event.set()

    async def wait_pending(self, count: int, deadline_s: float = 5.0) -> None:
        """Until the server reports ``count`` connections reading their environment."""
        async with asyncio.timeout(deadline_s):
            while not self.pending or self.pending[-1] != count:
                self.pending_event.clear()
                await self.pending_event.wait()

    async def wait_ended(self, count: int, deadline_s: float = 5.0) -> list[str]:
        async with asyncio.timeout(deadline_s):
            while len(self.ended) < count:
                self.ended_event.clear()
                await self.ended_event.wait()
        return self.ended
