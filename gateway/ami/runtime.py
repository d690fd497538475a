"""Composition of the AMI edges for gateway.app: upstream link, proxy, event consumer."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from gateway.ami.events import EventConsumer
from gateway.ami.observer import AmiObserver, NullObserver
from gateway.ami.proxy import AmiProxy
from gateway.ami.settings import AmiSettings, ProxySettings
from gateway.ami.upstream import Upstream
from gateway.clock import Clock, utc_now
from gateway.service_api import CallOutcomes, Screener

log = structlog.get_logger(__name__)

# A crashed AMI loop (upstream link, event consumer) is started again after this pause,
# for as long as the gateway runs (docs/behavior.md); each crash is logged
# (ami.task_crashed). The loops reconnect with their own backoff: this only stops a bug
# that crashes at once from spinning.
TASK_RESTART_DELAY_S = 1.0


class AnchoredClock:
    """A :data:`~gateway.clock.Clock`: the app's clock, made to advance with real
    (monotonic) time even when frozen.

    ``clock() = max(app_clock(), anchor + monotonic elapsed)``: with a real clock this is
    the real clock; with a clock fixed for tests, timers (the 2 s agent delay) still fire.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._anchor = clock()
        self._t0 = time.monotonic()

    def __call__(self) -> datetime:
        moved = self._anchor + timedelta(seconds=time.monotonic() - self._t0)
        return max(self._clock(), moved)


class AmiRuntime:
    def __init__(
        self,
        *,
        ami: AmiSettings,
        proxy: ProxySettings,
        consumer_enabled: bool,
        screener: Screener,
        outcomes: CallOutcomes,
        observer: AmiObserver | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._observer: AmiObserver = observer or NullObserver()
        self.upstream: Upstream | None = None
        self.proxy: AmiProxy | None = None
        self.consumer: EventConsumer | None = None
        self._proxy_settings = proxy
        self._tasks: list[asyncio.Task[None]] = []
        if proxy.enabled:
            self.upstream = Upstream(ami, observer=self._observer)
            self.proxy = AmiProxy(proxy, upstream=self.upstream, screener=screener,
                                  observer=self._observer)
        if consumer_enabled:
            events = ami
            if ami.events_username:
                events = dataclasses.replace(ami, username=ami.events_username,
                                             secret=ami.events_secret)
            self.consumer = EventConsumer(
                events, outcomes=outcomes,
                clock=AnchoredClock(clock) if clock is not None else utc_now,
                stamp=clock,
                observer=self._observer,
                decisions=self.proxy.recent_decisions if self.proxy is not None else None,
            )

    @property
    def proxy_address(self) -> tuple[str, int] | None:
        if self.proxy is None:
            return None
        return (self._proxy_settings.host, self.proxy.port)

    def reconfigure(self, proxy: ProxySettings) -> list[str]:
        """Reloaded proxy settings (accounts, limits); see AmiProxy.reconfigure."""
        if self.proxy is None:
            return []
        self._proxy_settings = proxy
        return self.proxy.reconfigure(proxy)

    async def start(self) -> None:
        if self.upstream is not None:
            self._tasks.append(asyncio.create_task(self._root("upstream", self.upstream.run)))
        if self.consumer is not None:
            self._tasks.append(asyncio.create_task(self._root("consumer", self.consumer.run)))
        if self.proxy is not None:
            await self.proxy.start()

    async def _root(self, name: str, run: Callable[[], Any]) -> None:
        while True:
            try:
                await run()
            except Exception:  # task root: log and start the loop again
                log.exception("ami.task_crashed", task=name)
                await asyncio.sleep(TASK_RESTART_DELAY_S)

    async def stop(self) -> None:
        if self.proxy is not None:
            await self.proxy.close()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._tasks.clear()

    def health(self) -> tuple[bool, dict[str, Any]]:
        details: dict[str, Any] = {}
        ok = True
        if self.upstream is not None:
            details["upstream"] = self.upstream.state
            details["dialers"] = len(self.proxy.sessions) if self.proxy else 0
            ok = ok and self.upstream.state == "up"
        if self.consumer is not None:
            details["consumer"] = self.consumer.state
            ok = ok and self.consumer.state == "up"
        return ok, details
