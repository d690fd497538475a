"""Attack (found under saturation): the FastAGI screen deadline (and the AMI proxy's
``screen_timeout_s``) cancelled the screen in the middle of its audit write. Asterisk was
answered ``BLOCK timeout``, but the record that landed said ``ALLOW ok``, nothing after it
said otherwise, and the attempt counted against the frequency cap.

Now the edge never cancels a screen: it answers ``BLOCK timeout`` at its deadline and the
screen finishes in the background; once it has a result that is not what was answered, a
superseding record (``audit_fault.kind = "edge_deadline"``) says what was enforced and the
attempt is given back. The stalled disk is the same fault wrapper around the real JSONL
sink as in test_audit_deadline_record_matches_enforced.py (a real disk cannot stall on
demand); the FastAGI session is a real one over loopback.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from gateway import service_api
from gateway.agi.handlers import ScreenHandler
from gateway.audit import AuditSettings, open_audit_trail
from gateway.core.model import Attempt, Reason, Verdict
from gateway.service import Service
from gateway.service_api import ScreenResult, screen_or_none
from gateway.store.memory import MemoryStore
from tests.agi.harness import running_server
from tests.agi_client import agi_screen
from tests.fixtures.stalling_disk import StallingDisk
from tests.regressions.test_audit_deadline_record_matches_enforced import (  # noqa: F401
    disk,
    records,
)
from tests.test_service import LEGAL_NOW, attempts_recorded, policy, with_consent

NUMBER = "+33612340000"
DEADLINE_S = 10.0  # every wait of the test ends by then


async def settled(service: Service) -> None:
    """The late screens have ended, and so have the releases they started."""
    async with asyncio.timeout(DEADLINE_S):
        await asyncio.gather(*service_api._LATE, return_exceptions=True)
        await asyncio.gather(*service._background, return_exceptions=True)


async def test_the_record_says_what_asterisk_was_answered(
        tmp_path: Path, disk: StallingDisk) -> None:  # noqa: F811
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(AuditSettings(path=str(path), instance_id="gw-a",
                                           write_timeout_s=DEADLINE_S))
    store = await with_consent(MemoryStore(), NUMBER)
    service = Service(policy=policy(), store=store, audit=trail, clock=lambda: LEGAL_NOW,
                      budget_s=DEADLINE_S)
    # the edge gives up long before the audit write (stalled) or the budget would
    handler = ScreenHandler(service, deadline_s=0.2)
    try:
        async with running_server(handlers={"screen": handler}) as server:
            assert server.address is not None
            answered = await agi_screen(server.address, "06 12 34 00 00", "spring")
            assert (answered["GW_VERDICT"], answered["GW_REASON"]) == ("BLOCK", "timeout")
            # meanwhile the decision was ALLOW and its attempt reserved
            assert await attempts_recorded(store, NUMBER) == 1
            disk.released.set()  # the disk comes back: the ALLOW record lands
            await settled(service)
            await disk.drained()
    finally:
        await trail.close()
    recs = records(path)
    assert [(r["verdict"], r["reason"], r.get("supersedes")) for r in recs] == [
        ("ALLOW", "ok", None), ("BLOCK", "timeout", recs[0]["id"])]
    assert recs[1]["audit_fault"] == {
        "kind": "edge_deadline",
        "would_have": {"verdict": "ALLOW", "reason": "ok", "shadow": False,
                       "fail_open": False}}
    assert "the edge answered before the decision was complete" in recs[1]["trace"][-1]
    assert await attempts_recorded(store, NUMBER) == 0  # the call was never placed
    report = await open_audit_trail(AuditSettings(path=str(path), instance_id="gw-a")).verify()
    assert report.ok and report.superseding_total == 1, report.problems


class Gate:
    """A screener whose screen ends when the test says so; it notes what it is told."""

    def __init__(self, result: ScreenResult) -> None:
        self.open = asyncio.Event()
        self.entered = asyncio.Event()
        self.result = result
        self.overruled_with: list[tuple[str, Reason]] = []

    async def screen(self, attempt: Attempt, *, context: object = None) -> ScreenResult:
        self.entered.set()
        await self.open.wait()
        return self.result

    def overruled(self, result: ScreenResult, *, reason: Reason) -> None:
        self.overruled_with.append((result.decision_id, reason))


def allow() -> ScreenResult:
    from gateway.core.model import Decision

    decision = Decision(verdict=Verdict.ALLOW, reason=Reason.OK, e164=NUMBER,
                        retry_after_s=None, trace=())
    return ScreenResult(verdict=Verdict.ALLOW, reason=Reason.OK, e164=NUMBER,
                        retry_after_s=None, decision_id="d-1", decision=decision)


async def late_screens_end() -> None:
    async with asyncio.timeout(DEADLINE_S):
        await asyncio.gather(*service_api._LATE, return_exceptions=True)


@pytest.mark.parametrize("ending", ["deadline", "edge_cancelled"])
async def test_a_screen_the_edge_left_is_reported_once_it_ends(ending: str) -> None:
    gate = Gate(allow())
    attempt = Attempt(number=NUMBER, campaign_id="spring")
    edge = asyncio.ensure_future(screen_or_none(
        gate, attempt, context={}, deadline_s=0.05 if ending == "deadline" else DEADLINE_S))
    if ending == "deadline":
        assert await edge is None  # the edge answers BLOCK timeout now
    else:
        await gate.entered.wait()  # the screen is under way
        edge.cancel()
        with pytest.raises(asyncio.CancelledError):
            await edge
    assert gate.overruled_with == []  # the screen is still running, not cancelled
    gate.open.set()
    await late_screens_end()
    assert gate.overruled_with == [("d-1", Reason.TIMEOUT)]


async def test_a_screen_in_time_is_not_overruled() -> None:
    gate = Gate(replace(allow(), decision_id="d-2"))
    gate.open.set()
    result = await screen_or_none(gate, Attempt(number=NUMBER, campaign_id="spring"),
                                  context={}, deadline_s=DEADLINE_S)
    assert result is not None and result.decision_id == "d-2"
    assert gate.overruled_with == []
    assert service_api.late_screens() == set()  # nothing left running for the drain


async def test_a_screen_ended_by_a_bug_or_a_cancellation_wakes_the_edge_at_once() -> None:
    """The screen's task wakes its edge in its last step however it ends: a screener bug
    is raised to the edge (which fails closed) and a cancellation of the screen's task
    (the loop's teardown) ends the edge's wait too, at once, not at its deadline (the
    edge's deadline here is longer than the test's own), and nothing is overruled."""
    class Broken(Gate):
        async def screen(self, attempt: Attempt, *, context: object = None) -> ScreenResult:
            await super().screen(attempt, context=context)
            raise RuntimeError("bug in the screener")

    attempt = Attempt(number=NUMBER, campaign_id="spring")
    broken = Broken(allow())
    broken.open.set()
    async with asyncio.timeout(DEADLINE_S):
        with pytest.raises(RuntimeError, match="bug in the screener"):
            await screen_or_none(broken, attempt, context={}, deadline_s=DEADLINE_S * 2)
    gate = Gate(allow())
    edge = asyncio.ensure_future(screen_or_none(gate, attempt, context={},
                                                deadline_s=DEADLINE_S * 2))
    await gate.entered.wait()
    (screen,) = {t for t in asyncio.all_tasks()
                 if t.get_coro().__qualname__ == "_screen_then_wake"}  # type: ignore[union-attr]
    screen.cancel()
    async with asyncio.timeout(DEADLINE_S):
        with pytest.raises(asyncio.CancelledError):
            await edge
    assert edge.cancelled()
    assert broken.overruled_with == gate.overruled_with == []
    assert service_api.late_screens() == set()


async def test_shutdown_waits_for_the_late_screens_before_closing_the_trail(
        tmp_path: Path, disk: StallingDisk) -> None:  # noqa: F811
    """App.stop drains the service (Service.drain) before it closes the audit trail: a
    late screen whose ALLOW record lands during the shutdown still gets its superseding
    record (closing first dropped it: the trail ended on ALLOW for a blocked call)."""
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(AuditSettings(path=str(path), instance_id="gw-a",
                                           write_timeout_s=DEADLINE_S))
    store = await with_consent(MemoryStore(), NUMBER)
    service = Service(policy=policy(), store=store, audit=trail, clock=lambda: LEGAL_NOW,
                      budget_s=DEADLINE_S)
    answered = await screen_or_none(service, Attempt(number=NUMBER, campaign_id="spring"),
                                    context={}, deadline_s=0.2)
    assert answered is None  # the edge answered BLOCK timeout; the screen goes on
    draining = asyncio.ensure_future(service.drain(DEADLINE_S))  # the stop begins
    disk.released.set()  # the stalled write lands meanwhile
    assert await draining == 0  # nothing left running
    await trail.close()
    recs = records(path)
    assert [(r["verdict"], r.get("supersedes")) for r in recs] == [
        ("ALLOW", None), ("BLOCK", recs[0]["id"])]
    assert await attempts_recorded(store, NUMBER) == 0


async def test_a_late_block_is_left_as_recorded(tmp_path: Path) -> None:
    """A late result that is a BLOCK already says what was enforced (the call was not
    placed either way): no superseding record, its own reason stands."""
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(AuditSettings(path=str(path), instance_id="gw-a"))
    service = Service(policy=policy(), store=MemoryStore(), audit=trail,
                      clock=lambda: LEGAL_NOW)
    result = await service.screen(Attempt(number=NUMBER, campaign_id="spring"))
    assert (result.verdict, result.reason) == (Verdict.BLOCK, Reason.NO_CONSENT)
    service.overruled(result, reason=Reason.TIMEOUT)
    assert await service.drain(DEADLINE_S) == 0
    await trail.close()
    assert [r["reason"] for r in records(path)] == ["no_consent"]
