"""Composition root: builds every part from the configuration, runs them, stops them.

``App(config)`` owns the store, the policy, the audit trail, the metrics, the
screening service and the edges (FastAGI server, ops HTTP endpoint, AMI proxy and
event consumer when enabled). ``run(config)`` is ``dialer-gateway serve``: start,
wait for SIGTERM/SIGINT, stop gracefully (stop accepting, let calls in flight
finish up to ``agi.shutdown_grace_s``, close the store and the audit trail).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from gateway.agi.handlers import ScreenHandler
from gateway.agi.server import AgiServer
from gateway.audit import AuditTrail, open_audit_trail
from gateway.config import Config, parse_hostport
from gateway.core.policy import Policy, builtin_packs, load_packs_dir
from gateway.http import OpsHttpServer
from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.observers import AgiMetrics, AmiMetrics
from gateway.service import Service, default_instance_id, utc_now
from gateway.store.base import Store, StoreUnavailable
from gateway.store.factory import make_redis_client, open_store

log = structlog.get_logger(__name__)

READY_PING_TIMEOUT_S = 0.5  # /readyz: how long the store may take to answer PING
STORE_PROBE_INTERVAL_S = 5.0  # how often dialer_gateway_store_up is refreshed


def build_policy(config: Config) -> Policy:
    """Built-in packs, overridden (same id) or extended by ``policy.packs_dir``."""
    packs = {p.id: p for p in builtin_packs()}
    if config.policy.packs_dir:
        for pack in load_packs_dir(Path(config.policy.packs_dir)):
            packs[pack.id] = pack
    return Policy(
        packs=tuple(packs.values()),
        campaigns=dict(config.campaigns),
        default_region=config.policy.default_region,
    )


def open_audit_trail_for(
    config: Config, instance_id: str
) -> tuple[AuditTrail, list[Callable[[], Awaitable[None]]]]:
    """The audit trail of ``config``; a Redis stream works on plain, Sentinel or Cluster.

    On a Cluster the stream and its heads key must share a slot: a stream key without a
    hash tag is wrapped in one (``dg:audit`` -> ``{dg:audit}``). Returns the trail and
    what closes the client it was given (the trail does not own an injected client).
    """
    settings = dataclasses.replace(config.audit, instance_id=instance_id)
    if settings.sink != "redis":
        return open_audit_trail(settings), []
    url = settings.redis_url or config.store.url
    if url.startswith("redis+cluster") and "{" not in settings.stream_key:
        settings = dataclasses.replace(settings, stream_key="{" + settings.stream_key + "}")
    client, extra_close = make_redis_client(
        url,
        socket_timeout_s=settings.write_timeout_s,
        connect_timeout_s=settings.write_timeout_s,
        decode_responses=False,
    )
    return open_audit_trail(settings, redis_client=client), [client.aclose, *extra_close]


class App:
    """Every part of one gateway instance, wired together."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self.clock = clock
        self.instance_id = config.service.instance_id or default_instance_id()
        self.metrics = Metrics(config.campaigns)
        self.policy = build_policy(config)
        self._injected_store = store
        self.store: Store | None = store
        self.audit: AuditTrail | None = None
        self.service: Service | None = None
        self.agi: AgiServer | None = None
        self.http: OpsHttpServer | None = None
        self.ami: Any = None  # gateway.ami.runtime.AmiRuntime when enabled
        self._audit_closers: list[Callable[[], Awaitable[None]]] = []
        self._probe: asyncio.Task[None] | None = None
        self.store_probed = asyncio.Event()  # set after each background store probe
        self._started = False

    # --- addresses (tests, logs) -------------------------------------------------------

    @property
    def agi_address(self) -> tuple[str, int]:
        if self.agi is None or self.agi.address is None:
            raise RuntimeError("App not started")
        return self.agi.address

    @property
    def http_address(self) -> tuple[str, int]:
        if self.http is None:
            raise RuntimeError("App not started")
        return self.http.address

    @property
    def ami_proxy_address(self) -> tuple[str, int] | None:
        return None if self.ami is None else self.ami.proxy_address

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        if self.store is None:
            self.store = open_store(
                cfg.store.url,
                socket_timeout_s=cfg.store.socket_timeout_s,
                connect_timeout_s=cfg.store.connect_timeout_s,
                key_prefix=cfg.store.key_prefix,
            )
        if cfg.demo.seed and cfg.store.url.startswith("memory:"):
            from gateway.demo import seed  # only the embedded default carries demo data

            await seed(self.store, self.clock())
        if cfg.audit.sink != "none":
            self.audit, self._audit_closers = open_audit_trail_for(cfg, self.instance_id)
            self.audit.hooks.event = self.metrics.audit_event
            self.audit.hooks.anchor = self.metrics.audit_anchor
        self.service = Service(
            policy=self.policy,
            store=self.store,
            audit=self.audit,
            budget_s=cfg.service.decision_budget_ms / 1000.0,
            instance_id=self.instance_id,
            observer=self.metrics,
            clock=self.clock,
        )
        self.agi = AgiServer(
            {"screen": ScreenHandler(self.service)},
            cfg.agi.settings,
            observer=AgiMetrics(self.metrics),
        )
        host, port = parse_hostport(cfg.agi.listen, key="agi.listen")
        await self.agi.start(host, port)
        self.http = OpsHttpServer(
            render_metrics=self.metrics.render,
            metrics_content_type=CONTENT_TYPE,
            ready=self.ready,
        )
        host, port = parse_hostport(cfg.http.listen, key="http.listen")
        await self.http.start(host, port)
        if cfg.ami.enabled or cfg.ami_proxy.enabled:
            from gateway.ami.runtime import AmiRuntime

            self.ami = AmiRuntime(
                ami=cfg.ami.settings,
                proxy=cfg.ami_proxy.settings,
                consumer_enabled=cfg.ami.enabled,
                screener=self.service,
                store=self.store,
                policy=self.policy,
                observer=AmiMetrics(self.metrics),
                clock=self.clock,
            )
            await self.ami.start()
        self._probe = asyncio.create_task(self._probe_store(), name="store-probe")
        self._started = True
        log.info(
            "gateway.started",
            instance=self.instance_id,
            agi=f"{self.agi_address[0]}:{self.agi_address[1]}",
            http=f"{self.http_address[0]}:{self.http_address[1]}",
            store=cfg.store.__repr__(),
            campaigns=sorted(cfg.campaigns),
            packs=[f"{p.id}@{p.content_hash[:12]}" for p in self.policy.packs],
        )

    async def stop(self) -> None:
        """Stop accepting, drain calls in flight, then close the store and the audit."""
        log.info("gateway.stopping", instance=self.instance_id)
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
        if self.ami is not None:
            await self.ami.stop()
        if self.agi is not None:
            await self.agi.close(self.config.agi.settings.shutdown_grace_s)
        if self.http is not None:
            await self.http.close()
        if self.audit is not None:
            await self.audit.close()
            for close in self._audit_closers:
                await close()
        if self.store is not None and self._injected_store is None:
            await self.store.close()
        self._started = False
        log.info("gateway.stopped", instance=self.instance_id)

    async def _probe_store(self) -> None:
        """Keep ``dialer_gateway_store_up`` current even when nobody polls /readyz."""
        while True:
            await self._store_ok()
            self.store_probed.set()
            await asyncio.sleep(STORE_PROBE_INTERVAL_S)

    async def _store_ok(self) -> str | None:
        """PING the store within its deadline; update the gauge; the problem, if any."""
        try:
            if self.store is None:
                raise StoreUnavailable("no store")
            async with asyncio.timeout(READY_PING_TIMEOUT_S):
                await self.store.ping()
        except (StoreUnavailable, TimeoutError) as exc:
            self.metrics.store_up.set(0)
            return f"down: {exc}" if str(exc) else "down: timeout"
        self.metrics.store_up.set(1)
        return None

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        """``/readyz``: store reachable, packs loaded, AMI links up when enabled."""
        details: dict[str, Any] = {"packs": len(self.policy.packs)}
        ok = self._started and bool(self.policy.packs)
        problem = await self._store_ok()
        details["store"] = problem or "up"
        ok = ok and problem is None
        if self.ami is not None:
            ami_ok, ami_details = self.ami.health()
            details["ami"] = ami_details
            ok = ok and ami_ok
        return ok, details


async def run(config: Config, *, started: Callable[[App], None] | None = None) -> None:
    """``dialer-gateway serve``: run until SIGTERM or SIGINT, then stop gracefully."""
    app = App(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await app.start()
    try:
        if started is not None:
            started(app)
        await stop.wait()
        log.info("gateway.signal", at=datetime.now(UTC).isoformat())
    finally:
        await app.stop()
