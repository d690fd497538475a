"""The running gateway: starts every part, probes it, reloads it, stops it.

``App(config)`` owns the store, the policy, the audit trail, the metrics, the
screening service and the edges (FastAGI server, ops HTTP endpoint, AMI proxy and
event consumer when enabled). The store, the audit trail, the policy and the service
are built by :mod:`gateway.wiring`, as for every CLI command; ``App`` keeps the
lifecycle: listeners, probes, reload, signals. ``run(config)`` is ``dialer-gateway serve``: start,
tell systemd it is ready (``gateway.sdnotify``), reload on SIGHUP
(``gateway.reload``), wait for SIGTERM/SIGINT, stop gracefully (stop accepting, let
calls in flight finish up to ``agi.shutdown_grace_s``, close the store and the audit).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import resource
import signal
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from gateway import wiring
from gateway.agi.handlers import DEFAULT_SCREEN_DEADLINE_S, ScreenHandler
from gateway.agi.server import AgiServer
from gateway.audit import AuditSettings, AuditTrail
from gateway.clock import Clock, utc_now
from gateway.config import Config, parse_hostport
from gateway.core.nanp import load_geodata
from gateway.core.policy import Policy
from gateway.health import prepare_audit_sink, probe_audit, probe_store_lists
from gateway.http import OpsHttpServer
from gateway.live import LivePolicy
from gateway.logs import configure_logging
from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.observers import AgiMetrics, AmiMetrics
from gateway.reload import (
    ReloadError,
    ReloadResult,
    changed_settings,
    config_digest,
    effective_config,
    prepare,
    restart_needed,
)
from gateway.sdnotify import Notifier
from gateway.service import Service
from gateway.store.base import Store, StoreUnavailable
from gateway.workers import WorkerRole, worker_audit

if TYPE_CHECKING:  # imported at start only when an AMI edge is enabled
    from gateway.ami.runtime import AmiRuntime

log = structlog.get_logger(__name__)

# the FastAGI screen deadline: decision budget + audit write deadline + this margin
SCREEN_DEADLINE_MARGIN_S = 0.25
READY_PING_TIMEOUT_S = 0.5  # /readyz: how long the store may take to answer PING
LATE_SCREENS_DRAIN_S = 3.0  # at stop: screens their edges stopped waiting for may end
STORE_WARM_UP_TIMEOUT_S = 5.0  # at start, before listening: connect, load scripts, read lists
PROBE_STOP_RETRY_S = 0.5  # stop(): the probe is cancelled again after this
STORE_PROBE_INTERVAL_S = 5.0  # how often dialer_gateway_store_up is refreshed


class App:
    """Every part of one gateway instance, wired together."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        clock: Clock = utc_now,
        notifier: Notifier | None = None,
        worker: WorkerRole | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.worker = worker  # inside a worker process (gateway.worker_main): its role
        self.instance_id = (worker.chain if worker is not None
                            else wiring.instance_id(config))
        self.metrics = Metrics(config.campaigns)
        self.live = LivePolicy(wiring.build_policy(config))  # the reference a reload swaps
        load_geodata()  # now, not in the first US call's decision budget (≈ 0.2 s)
        self.notifier = notifier or Notifier({})
        self.config_hash = config_digest(config, self.live.current)
        self.metrics.config_loaded(self.config_hash, clock(), restart_pending=False)
        self._reload_lock = asyncio.Lock()
        self._injected_store = store
        self.store: Store | None = store
        self.audit: AuditTrail | None = None
        self.service: Service | None = None
        self.agi: AgiServer | None = None
        self._screen_handler: ScreenHandler | None = None
        self.http: OpsHttpServer | None = None
        self.ami: AmiRuntime | None = None  # when an AMI edge is enabled
        self.api: Any = None  # gateway.api.server.ApiServer when [api] enabled
        self._audit_closers: list[Callable[[], Awaitable[None]]] = []
        self._probe: asyncio.Task[None] | None = None
        self.store_probed = asyncio.Event()  # set after each background store probe
        self.audit_path: str | None = None  # the JSONL file written to (absolute)
        self._audit_problem: str | None = None  # from the last background probe
        self._audit_errors_seen = 0
        self._started = False
        self.started = asyncio.Event()

    @property
    def audit_settings(self) -> AuditSettings:
        """``[audit]``; in a worker, its own JSONL file (gateway.workers.worker_audit)."""
        return worker_audit(self.config.audit,
                            None if self.worker is None else self.worker.index)

    @property
    def policy(self) -> Policy:
        return self.live.current

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
        # No proof, no call: a sink that cannot be written stops the start (AuditSinkError)
        # before the store is opened or anything listens.
        self.audit_path = await asyncio.to_thread(prepare_audit_sink, self.audit_settings)
        if self.store is None:
            self.store = wiring.open_store(
                cfg, max_connections=wiring.store_max_connections(cfg))
        await self._warm_store()
        await wiring.seed_demo(self.store, cfg, self.clock())
        if cfg.audit.sink != "none":
            self.audit, self._audit_closers = await wiring.open_audit_trail_for(
                dataclasses.replace(cfg, audit=self.audit_settings), self.instance_id)
            self.audit.hooks.event = self.metrics.audit_event
            self.audit.hooks.anchor = self.metrics.audit_anchor
        self.service = wiring.build_service(
            cfg, self.live, self.store, audit=self.audit, instance_id=self.instance_id,
            observer=self.metrics, clock=self.clock,
        )
        self._screen_handler = ScreenHandler(
            self.service, deadline_s=agi_screen_deadline_s(self.service.budget_s, cfg))
        self.agi = AgiServer(
            {"screen": self._screen_handler},
            cfg.agi.settings,
            observer=AgiMetrics(self.metrics),
        )
        host, port = parse_hostport(cfg.agi.listen, key="agi.listen")
        await self._start_agi(host, port)
        if self.worker is None:  # a worker's ops endpoint is the supervisor's
            await self._start_http()
        if (cfg.ami.enabled or cfg.ami_proxy.enabled) and (
                self.worker is None or self.worker.runs_singletons):
            from gateway.ami.runtime import AmiRuntime
            from gateway.call_outcomes import CallOutcomesService

            self.ami = AmiRuntime(
                ami=cfg.ami.settings,
                proxy=cfg.ami_proxy.settings,
                consumer_enabled=cfg.ami.enabled,
                screener=self.service,
                outcomes=CallOutcomesService(self.service),
                observer=AmiMetrics(self.metrics),
                clock=self.clock,
            )
            await self.ami.start()
        if cfg.api.enabled and (self.worker is None or self.worker.runs_singletons):
            from gateway.api.server import ApiServer  # aiohttp only when the API is on

            self.api = ApiServer(self.service, cfg.api, self.clock)
            await self.api.start()
        self._probe = asyncio.create_task(self._probe_store(), name="store-probe")
        self._started = True
        self.started.set()
        log.info(
            "gateway.started",
            instance=self.instance_id,
            agi=f"{self.agi_address[0]}:{self.agi_address[1]}",
            http=None if self.http is None else f"{self.http_address[0]}:{self.http_address[1]}",
            store=cfg.store.__repr__(),
            audit=self.audit_path or cfg.audit.sink,
            campaigns=sorted(cfg.campaigns),
            packs=[f"{p.id}@{p.content_hash[:12]}" for p in self.policy.packs],
            config_hash=self.config_hash,
            event_loop=type(asyncio.get_running_loop()).__module__.partition(".")[0],
        )

    async def _warm_store(self) -> None:
        """Warm the store up before anything listens, within a bounded time; a store
        that does not answer does not stop the start (calls fail closed, /readyz says
        why, the probe keeps trying)."""
        assert self.store is not None  # noqa: S101 - opened just before
        try:
            async with asyncio.timeout(STORE_WARM_UP_TIMEOUT_S):
                await self.store.warm_up()
        except (StoreUnavailable, TimeoutError) as exc:
            log.warning("store.warm_up_failed", error=str(exc) or type(exc).__name__)
        except Exception:  # e.g. an unreadable list entry: /readyz says so
            log.exception("store.warm_up_failed")

    async def _start_agi(self, host: str, port: int) -> None:
        assert self.agi is not None  # noqa: S101 - built just before
        if self.worker is None:
            await self.agi.start(host, port)
        elif self.worker.listen_fd is not None:  # the supervisor's socket, inherited
            sock = socket.socket(fileno=self.worker.listen_fd)
            await self.agi.start(host, port, sock=sock)
        else:
            await self.agi.start(host, self.worker.listen_port or port, reuse_port=True)

    async def _start_http(self) -> None:
        self.http = OpsHttpServer(
            render_metrics=self.metrics.render,
            metrics_content_type=CONTENT_TYPE,
            ready=self.ready,
            reload=self.reload_response,
        )
        host, port = parse_hostport(self.config.http.listen, key="http.listen")
        await self.http.start(host, port)

    async def stop(self) -> None:
        """Stop accepting, drain calls in flight, then close the store and the audit."""
        log.info("gateway.stopping", instance=self.instance_id)
        if self._probe is not None:
            probe, self._probe = self._probe, None
            # cancelled again until it ends: a cancellation swallowed under it (seen in the
            # store PING of the first probe, a stop right after the start) left the probe in
            # its 5 s sleep and the worker's stop waiting on it until the supervisor's SIGKILL
            while not probe.done():
                probe.cancel()
                await asyncio.wait({probe}, timeout=PROBE_STOP_RETRY_S)
            if not probe.cancelled() and probe.exception() is not None:
                log.error("store.probe_failed", error=repr(probe.exception()))
        if self.api is not None:
            await self.api.close()
        if self.ami is not None:
            await self.ami.stop()
        if self.agi is not None:
            await self.agi.close(self.config.agi.settings.shutdown_grace_s)
        if self.http is not None:
            await self.http.close()
        if self.service is not None:  # late screens' superseding records, before close
            await self.service.drain(LATE_SCREENS_DRAIN_S)
        if self.audit is not None:
            await self.audit.close()
            for close in self._audit_closers:
                await close()
        if self.store is not None and self._injected_store is None:
            await self.store.close()
        self._started = False
        log.info("gateway.stopped", instance=self.instance_id)

    # --- reload -------------------------------------------------------------------------

    async def reload(self) -> ReloadResult:
        """Re-read the configuration, campaigns, packs and proxy accounts; switch to them
        at once, or keep everything as it is when anything is wrong (docs/operations.md)."""
        async with self._reload_lock:
            self.notifier.reloading()
            try:
                result = await self._reload()
            except Exception as exc:  # a bug must not leave systemd waiting in "reloading"
                log.exception("config.reload_crashed", source=self.config.source)
                self.metrics.config_reloads.labels("error").inc()
                result = ReloadResult(ok=False, digest=self.config_hash,
                                      error=f"internal error: {type(exc).__name__}")
            self.notifier.ready(self.status_line(result))
            return result

    async def _reload(self) -> ReloadResult:
        running = self.config
        try:
            prepared = await prepare(running.source, wiring.build_policy)
            if prepared.config.logging != running.logging:
                lg = prepared.config.logging
                configure_logging(lg.level, lg.format, lg.number_redaction,  # type: ignore[arg-type]  # checked by load_config
                                  lg.hash_key)
        except (ReloadError, ValueError) as exc:
            self.metrics.config_reloads.labels("error").inc()
            log.error("config.reload_failed", source=running.source, error=str(exc),
                      config_hash=self.config_hash)
            return ReloadResult(ok=False, digest=self.config_hash, error=str(exc),
                                campaigns=tuple(sorted(running.campaigns)))
        restart = restart_needed(running, prepared.config)
        effective = effective_config(running, prepared.config)
        changed = changed_settings(running, effective, self.live.current, prepared.policy)
        # Everything below is synchronous: no call can see half of it.
        self.live.swap(prepared.policy)
        self.config = effective
        self.metrics.set_campaigns(effective.campaigns)
        if self.service is not None:
            self.service.budget_s = effective.service.decision_budget_ms / 1000.0
            self.service.prescreen_ttl_s = effective.ami_proxy.settings.prescreen_ttl_s
            if self._screen_handler is not None:  # the edge's backstop follows the budget
                self._screen_handler.deadline_s = agi_screen_deadline_s(
                    self.service.budget_s, effective)
        closed = tuple(self.ami.reconfigure(effective.ami_proxy.settings)) if self.ami else ()
        self.config_hash = config_digest(effective, prepared.policy)
        self.metrics.config_reloads.labels("success").inc()
        self.metrics.config_loaded(self.config_hash, self.clock(), restart_pending=bool(restart))
        log.info("config.reloaded", source=running.source, config_hash=self.config_hash,
                 changed=list(changed), campaigns=sorted(effective.campaigns),
                 packs=[f"{p.id}@{p.content_hash[:12]}" for p in prepared.policy.packs],
                 closed_dialer_sessions=list(closed))
        if restart:
            log.warning("config.restart_needed", settings=list(restart),
                        detail="these settings were not applied: restart the gateway")
        return ReloadResult(ok=True, digest=self.config_hash, changed=changed,
                            restart_needed=restart, closed_sessions=closed,
                            campaigns=tuple(sorted(effective.campaigns)))

    async def reload_response(self) -> tuple[bool, dict[str, Any]]:
        """``POST /-/reload`` of the ops endpoint."""
        result = await self.reload()
        return result.ok, result.to_dict()

    def status_line(self, result: ReloadResult | None = None) -> str:
        """The STATUS= text systemd shows (``systemctl status``)."""
        text = f"serving: {len(self.config.campaigns)} campaigns, config {self.config_hash}"
        if result is not None and not result.ok:
            text += f"; last reload FAILED: {result.error}"
        elif result is not None and result.restart_needed:
            text += "; restart needed for " + ", ".join(result.restart_needed)
        return text

    async def _probe_store(self) -> None:
        """Keep ``store_up``, ``store_lists`` and ``audit_up`` current even when nobody
        polls /readyz."""
        while True:
            if await self._store_ok() is None:
                await self._refresh_list_metrics()
            await self._audit_ok(background=True)
            self.store_probed.set()
            await asyncio.sleep(STORE_PROBE_INTERVAL_S)

    async def _audit_ok(self, *, background: bool = False) -> str | None:
        """The audit sink is writable and (background probe) no write failed since the
        previous probe; updates ``dialer_gateway_audit_up``."""
        problem = await probe_audit(self.audit_settings)
        if background:
            errors = self.metrics.audit_error_count - self._audit_errors_seen
            self._audit_errors_seen = self.metrics.audit_error_count
            if problem is None and errors:
                problem = f"failing: {errors} write error(s) since the last check"
            self._audit_problem = problem
        else:
            problem = problem or self._audit_problem
        self.metrics.audit_up.set(0 if problem else 1)
        return problem

    async def _refresh_list_metrics(self) -> None:
        """List age/entries gauges and the strictest max age the packs in force require."""
        try:
            if self.store is None:
                return
            async with asyncio.timeout(READY_PING_TIMEOUT_S):
                infos = await self.store.lists_status()
        except (StoreUnavailable, TimeoutError) as exc:
            log.warning("metrics.lists_failed", error=str(exc))
            return
        now = self.clock()
        max_ages: dict[str, int] = {}
        for pack in self.policy.packs:
            settings = pack.opposition
            for name in settings.required_lists:
                max_ages[name] = min(max_ages.get(name, settings.max_list_age_s),
                                     settings.max_list_age_s)
        self.metrics.lists(infos, now, max_ages)

    def _sample_hot_connections(self) -> None:
        """The lean connections' state as metrics (``dialer_gateway_store_hot_*``)."""
        for client, owner in (("store", self.store), ("audit", self.audit)):
            lean = owner.hot_connection() if owner is not None else None
            if lean is not None:
                self.metrics.store_hot(
                    client, lean, connects=lean.connects, failures=lean.connect_failures,
                    connected=lean.connected, in_flight=lean.in_flight)

    async def _store_ok(self) -> str | None:
        """PING the store within its deadline; update the gauge; the problem, if any."""
        try:
            if self.store is None:
                raise StoreUnavailable("no store")
            async with asyncio.timeout(READY_PING_TIMEOUT_S):
                await self.store.ping()
        except (StoreUnavailable, TimeoutError) as exc:
            self.metrics.store_up.set(0)
            self._sample_hot_connections()
            return f"down: {exc}" if str(exc) else "down: timeout"
        self.metrics.store_up.set(1)
        self._sample_hot_connections()
        count, problem = await probe_store_lists(self.store)
        self.metrics.store_lists.set(count)
        return problem

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        """``/readyz``: store reachable and holding its lists, audit sink writable, packs
        loaded, AMI links up when enabled."""
        details: dict[str, Any] = {"packs": len(self.policy.packs)}
        ok = self._started and bool(self.policy.packs)
        problem = await self._store_ok()
        details["store"] = problem or "up"
        ok = ok and problem is None
        audit_problem = await self._audit_ok()
        details["audit"] = audit_problem or "up"
        ok = ok and audit_problem is None
        if self.ami is not None:
            ami_ok, ami_details = self.ami.health()
            details["ami"] = ami_details
            ok = ok and ami_ok
        return ok, details


def agi_screen_deadline_s(budget_s: float, cfg: Config) -> float:
    """The FastAGI handler's own deadline: it only backs the Service's budget up, so it
    is never shorter than the budget plus the audit write (docs/behavior.md)."""
    return max(DEFAULT_SCREEN_DEADLINE_S,
               budget_s + cfg.audit.write_timeout_s + SCREEN_DEADLINE_MARGIN_S)


def raise_open_files_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to its hard limit (one fd per FastAGI connection,
    idle ones included, plus the store's pool); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("gateway.nofile_not_raised", soft=soft, hard=hard, error=str(exc))
    log.info("gateway.nofile", limit=soft)
    return soft


# gen-0 threshold of the cyclic garbage collector in a serving process (Python's: 700)
GC_YOUNG_THRESHOLD = 10_000


def prepare_collector() -> None:
    """Set the cyclic garbage collector up for a long-running server, once started.

    - What the start built (modules, config, policy, store client) lives as long as the
      process: frozen out of the full collections (``gc.freeze()``), whose pause grows
      with the objects they walk and holds the event loop (bench/field.py, 5,000 idle
      connections churning: full collections of up to 0.6 s, 0.2 s once frozen). Objects
      frozen are never collected: for the serving process only.
    - A young generation of GC_YOUNG_THRESHOLD objects instead of 700: the objects of a
      call or of a connection mostly die before a collection sees them, fewer survive
      into the older generations, and full collections become rare (the same churn: 14
      full collections in 10 s before, none after, 22 % less CPU, the loop's lag p99
      17 ms instead of 42-48 ms). The price: each full collection, every 35 s or so
      under that churn, frees more garbage at once (0.3-0.55 s on a shared host), and
      the RSS settles higher (docs/benchmarks.md, "Idle connections")."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


async def run(config: Config, *, started: Callable[[App], None] | None = None) -> None:
    """``dialer-gateway serve``: run until SIGTERM or SIGINT, then stop gracefully;
    SIGHUP reloads the configuration; systemd is told READY/RELOADING/STOPPING."""
    raise_open_files_limit()
    notifier = Notifier()
    app = App(config, notifier=notifier)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[None]] = set()

    async def reload_on_signal() -> None:
        await app.started.wait()  # a SIGHUP during start-up is served once started
        await app.reload()

    def on_hup() -> None:
        log.info("gateway.reload_requested", signal="SIGHUP")
        task = asyncio.create_task(reload_on_signal(), name="reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, on_hup)  # before start: never die of a HUP
    await app.start()
    prepare_collector()
    try:
        # Ready once the store was probed, the packs loaded and every listener bound. A
        # store that is down does not hold readiness back: calls are answered (blocked,
        # fail-closed) and /readyz says not ready until it is back.
        problem = await app._store_ok()
        notifier.ready(f"{app.status_line()}; store {problem or 'up'}")
        if started is not None:
            started(app)
        await stop.wait()
        log.info("gateway.signal", at=datetime.now(UTC).isoformat())
        notifier.stopping()
    finally:
        for task in list(reloads):
            task.cancel()
        await app.stop()
