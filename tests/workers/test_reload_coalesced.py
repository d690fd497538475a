"""Reload requests that arrive while a reload runs are one reload, not a queue.

Each SIGHUP or POST /-/reload queued a reload of its own behind the running one: 20
SIGHUPs 50 ms apart were 20 reloads one after another (37 s), and a POST sent meanwhile
waited 35 s. Requests waiting now share the next reload, which reads the configuration
after all of them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.config import load_config
from gateway.supervisor import Supervisor

DEADLINE_S = 10.0


def supervisor() -> Supervisor:
    return Supervisor(load_config(None, env={}, overrides={
        "service": {"workers": 2}, "store": {"url": "redis://127.0.0.1:1"}}))  # not reached


async def test_requests_during_a_reload_share_the_next_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sup = supervisor()
    began: list[int] = []
    begun = [asyncio.Event() for _ in range(21)]  # the n-th reload has begun
    gates = [asyncio.Event() for _ in range(21)]  # ... and may end

    async def reload_gated() -> tuple[bool, dict[str, Any]]:
        # the part that reads the file and asks the workers, held until the test opens it
        n = len(began)
        began.append(n)
        begun[n].set()
        await gates[n].wait()
        return True, {"reload": n}

    monkeypatch.setattr(sup, "_reload", reload_gated)
    async with asyncio.timeout(DEADLINE_S):
        first = asyncio.create_task(sup.reload())
        await begun[0].wait()  # the first reload has begun (it holds the lock)
        later = [asyncio.create_task(sup.reload()) for _ in range(20)]  # a SIGHUP storm
        for _ in range(5):
            await asyncio.sleep(0)
        assert began == [0]  # the storm waits ...
        gates[0].set()
        assert await first == (True, {"reload": 0})
        await begun[1].wait()
        gates[1].set()
        results = await asyncio.gather(*later)
    assert began == [0, 1]  # ... and is one more reload, not twenty
    assert results == [(True, {"reload": 1})] * 20


async def test_a_caller_that_gives_up_does_not_cancel_the_reload_others_wait_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sup = supervisor()
    gate = asyncio.Event()

    async def reload_gated() -> tuple[bool, dict[str, Any]]:
        await gate.wait()
        return True, {}

    monkeypatch.setattr(sup, "_reload", reload_gated)
    async with asyncio.timeout(DEADLINE_S):
        gone = asyncio.create_task(sup.reload())
        staying = asyncio.create_task(sup.reload())
        await asyncio.sleep(0)
        gone.cancel()  # an HTTP client that went away
        with pytest.raises(asyncio.CancelledError):
            await gone
        gate.set()
        assert await staying == (True, {})


class _Told:
    def __init__(self) -> None:
        self.states: list[str] = []

    def reloading(self, status: str = "") -> bool:
        self.states.append("RELOADING")
        return True

    def ready(self, status: str = "") -> bool:
        self.states.append("READY")
        return True


async def test_no_reload_once_the_supervisor_is_stopping(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGHUP during the drain ran a reload: systemd, told STOPPING=1, was then told
    RELOADING=1 and READY=1."""
    sup = supervisor()
    told = _Told()
    monkeypatch.setattr(sup, "notifier", told)
    gate, begun = asyncio.Event(), asyncio.Event()
    ran: list[str] = []

    async def reload_gated() -> tuple[bool, dict[str, Any]]:
        ran.append("reload")
        begun.set()
        await gate.wait()
        return True, {}

    monkeypatch.setattr(sup, "_reload", reload_gated)
    async with asyncio.timeout(DEADLINE_S):
        running = asyncio.create_task(sup.reload())
        await begun.wait()
        queued = asyncio.create_task(sup.reload())  # waits for its turn ...
        await asyncio.sleep(0)
        sup.stopping = True  # ... while the stop begins
        ok, doc = await sup.reload()  # and one asked after it
        gate.set()
        assert await running == (True, {})
        queued_ok, queued_doc = await queued
    assert ok is False and "stopping" in doc["error"]
    assert queued_ok is False and "stopping" in queued_doc["error"]
    assert ran == ["reload"] and told.states == ["RELOADING", "READY"]  # the first only
