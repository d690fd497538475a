"""Prometheus metrics (``dialer_gateway_*``, base units, bounded label sets).

Phone numbers never appear in labels. The ``campaign`` label is restricted to the
configured campaigns (anything else is reported as ``unknown``), so a dialer sending
garbage cannot grow the label set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway import __version__
from gateway.audit.anchor import AUDIT_EVENTS
from gateway.core.model import ListInfo, Reason
from gateway.multiproc import use_cached_pid
from gateway.service_api import ScreenResult

# Sub-millisecond resolution: a decision on the memory store takes tens of µs.
DECISION_BUCKETS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
CONTENT_TYPE = CONTENT_TYPE_LATEST
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus-client; no *_created series: they double the series count for nothing
use_cached_pid()  # a worker's values: no getpid() system call per write (gateway.multiproc)
_REASONS = frozenset(r.value for r in Reason)


class Metrics:
    """All the gateway's metrics on one registry (one per App, so tests stay isolated).

    With worker processes (gateway.supervisor) each worker writes its values to
    prometheus-client's multiprocess files and the supervisor serves their aggregate;
    every gauge names how workers combine (``multiprocess_mode``: live* ignore the
    values of dead workers). The configuration gauges and counters are the
    supervisor's own (one configuration per instance).
    """

    def __init__(self, campaigns: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._campaigns = frozenset(campaigns)
        # the labelled children of the per-decision metrics, by labels: a dict look-up a
        # call instead of labels() (its checks, its lock); bounded like the label sets
        self._decision_children: dict[tuple[str, str, str, str], Any] = {}
        self._latency_children: dict[str, Any] = {}
        r = self.registry
        self.build_info = Gauge(
            "dialer_gateway_build_info", "Build information", ["version"], registry=r,
            multiprocess_mode="max",
        )
        self.build_info.labels(__version__).set(1)
        self.decisions = Counter(
            "dialer_gateway_decisions",
            "Screening decisions returned to Asterisk or dialers",
            ["source", "campaign", "verdict", "reason"],
            registry=r,
        )
        self.shadow = Counter(
            "dialer_gateway_shadow_decisions",
            "Decisions in shadow mode (verdict returned ALLOW whatever the engine said)",
            ["campaign", "engine_verdict"],
            registry=r,
        )
        self.fail_open = Counter(
            "dialer_gateway_fail_open_decisions",
            "Calls allowed because the gateway could not decide and the campaign is fail-open",
            ["campaign"],
            registry=r,
        )
        self.house_rule_blocks = Counter(
            "dialer_gateway_house_rule_blocks",
            "Calls blocked by a campaign's house rule (stricter than the pack)",
            ["campaign", "rule"],
            registry=r,
        )
        self.decision_seconds = Histogram(
            "dialer_gateway_decision_duration_seconds",
            "Time to screen one attempt (plan, store read, decide, reserve, audit)",
            ["source"],
            buckets=DECISION_BUCKETS_S,
            registry=r,
        )
        self.store_errors = Counter(
            "dialer_gateway_store_errors",
            "Store failures seen by the hot path",
            ["kind"],
            registry=r,
        )
        self.audit_errors = Counter(
            "dialer_gateway_audit_errors", "Audit records that could not be written", registry=r
        )
        self.audit_events = Counter(
            "dialer_gateway_audit_events",
            "Audit trail events (torn_tail_repaired, anchor_failed, anchor_ahead, "
            "supersede_dropped, supersede_failed, supersede_delayed)",
            ["event"],
            registry=r,
        )
        self.audit_chain_seq = Gauge(
            "dialer_gateway_audit_chain_seq",
            "Sequence number of this instance's audit chain head at the last audit.anchor "
            "log line (an auditor compares it with audit verify); chain = writer instance id",
            ["chain"],
            registry=r, multiprocess_mode="livemax",  # each chain has one writer at a time
        )
        self.store_up = Gauge(
            "dialer_gateway_store_up", "1 when the last store health check passed", registry=r,
            multiprocess_mode="livemin",  # workers: 0 when any live worker lost the store
        )
        # the hot path's lean connections (store/resp.py): client = "store" | "audit"
        self.store_hot_connects = Counter(
            "dialer_gateway_store_hot_connects",
            "Connections the hot path's lean Redis client opened (1 at start; more: it "
            "lost and reopened one); client = store | audit", ["client"], registry=r,
        )
        self.store_hot_connect_failures = Counter(
            "dialer_gateway_store_hot_connect_failures",
            "Connection attempts of the hot path's lean Redis client that failed",
            ["client"], registry=r,
        )
        self.store_hot_connected = Gauge(
            "dialer_gateway_store_hot_connected",
            "1 when the hot path's lean Redis connection is open (sampled by the store "
            "probe)", ["client"], registry=r, multiprocess_mode="livemin",
        )
        self.store_hot_in_flight = Gauge(
            "dialer_gateway_store_hot_requests_in_flight",
            "Requests written on the lean connection and not yet answered (sampled by the "
            "store probe)", ["client"], registry=r, multiprocess_mode="livesum",
        )
        # client: (the lean client last sampled, its connects, its failures)
        self._hot_seen: dict[str, tuple[object, int, int]] = {}
        self.store_lists = Gauge(
            "dialer_gateway_store_lists",
            "Lists held by the store (0: never imported, or lost by a store restart)",
            registry=r, multiprocess_mode="livemin",
        )
        self.audit_up = Gauge(
            "dialer_gateway_audit_up",
            "1 when the audit sink is writable and no write failed since the last check",
            registry=r, multiprocess_mode="livemin",
        )
        self.audit_error_count = 0  # read by the App's probe (write errors between checks)
        # lists: names are operator-configured sources (bounded), never numbers
        self.list_age = Gauge(
            "dialer_gateway_list_age_seconds", "Seconds since the list was last imported",
            ["list"], registry=r, multiprocess_mode="livemax",  # workers: the stalest view
        )
        self.list_entries = Gauge(
            "dialer_gateway_list_entries", "Entries of the list", ["list"], registry=r,
            multiprocess_mode="livemin",
        )
        self.list_max_age = Gauge(
            "dialer_gateway_list_max_age_seconds",
            "Strictest maximum age a pack in force requires of the list (list_stale beyond)",
            ["list"], registry=r, multiprocess_mode="livemin",  # workers: the strictest
        )
        # FastAGI
        self.agi_in_flight = Gauge(
            "dialer_gateway_agi_sessions_in_flight", "FastAGI sessions being served", registry=r,
            multiprocess_mode="livesum",
        )
        self.agi_pending = Gauge(
            "dialer_gateway_agi_connections_pending",
            "FastAGI connections still reading their agi_* environment", registry=r,
            multiprocess_mode="livesum",
        )
        self.agi_sessions = Counter(
            "dialer_gateway_agi_sessions", "FastAGI sessions by outcome", ["outcome"], registry=r
        )
        self.agi_protocol_errors = Counter(
            "dialer_gateway_agi_protocol_errors",
            "FastAGI protocol errors by kind",
            ["kind"],
            registry=r,
        )
        # AMI
        self.ami_upstream_up = Gauge(
            "dialer_gateway_ami_upstream_up",
            "1 while the connection to Asterisk's AMI is logged in",
            ["role"],
            registry=r,
            multiprocess_mode="livemax",  # set by worker 0 only (it runs the AMI link)
        )
        self.ami_proxy_sessions = Gauge(
            "dialer_gateway_ami_proxy_sessions",
            "Dialer sessions connected to the AMI proxy",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.ami_proxy_events = Counter(
            "dialer_gateway_ami_proxy_events",
            "AMI proxy session events (logins, failures, disconnects) by kind",
            ["kind"],
            registry=r,
        )
        self.ami_protocol_errors = Counter(
            "dialer_gateway_ami_protocol_errors",
            "AMI protocol errors by kind",
            ["kind"],
            registry=r,
        )
        self.abandon_ratio = Gauge(
            "dialer_gateway_abandon_ratio",
            "Abandoned / live-answered calls over the policy window",
            ["campaign"],
            registry=r,
            multiprocess_mode="livemax",  # set by worker 0 only (the event consumer)
        )
        self.call_outcomes = Counter(
            "dialer_gateway_call_outcomes",
            "Screened calls classified by the AMI event consumer",
            ["campaign", "outcome"],
            registry=r,
        )

        # Configuration reloads (gateway.reload, docs/operations.md#reload)
        self.config_reloads = Counter(
            "dialer_gateway_config_reloads",
            "Configuration reloads (SIGHUP or POST /-/reload) by result",
            ["result"], registry=r,
        )
        self.config_last_success = Gauge(
            "dialer_gateway_config_last_reload_success_timestamp_seconds",
            "When the configuration in force was loaded (start or last successful reload)",
            registry=r, multiprocess_mode="livemin",
        )
        self.config_restart_pending = Gauge(
            "dialer_gateway_config_restart_pending",
            "1 when the last reload found settings that need a restart (not applied)",
            registry=r, multiprocess_mode="livemax",
        )
        self.config_info = Gauge(
            "dialer_gateway_config_info", "Hash of the configuration and packs in force",
            ["hash"], registry=r, multiprocess_mode="livemax",
        )
        self._config_hash: str | None = None
        for result in ("success", "error"):
            self.config_reloads.labels(result)

        # Pre-create the bounded series at 0 so that increase() sees their first event.
        self.set_campaigns(self._campaigns)
        for kind in ("timeout", "unavailable", "release"):
            self.store_errors.labels(kind)
        for event in AUDIT_EVENTS:
            self.audit_events.labels(event)
        self.ami_protocol_errors.labels("dialer")

    def set_campaigns(self, campaigns: Iterable[str]) -> None:
        """The campaigns that get their own label (at start and after a reload); series
        of a removed campaign stay until restart (their counters are history)."""
        self._campaigns = frozenset(campaigns)
        for campaign in sorted(self._campaigns):
            self.fail_open.labels(campaign)
            for verdict in ("ALLOW", "BLOCK"):
                self.shadow.labels(campaign, verdict)

    def config_loaded(self, digest: str, at: datetime, *, restart_pending: bool) -> None:
        """A configuration is in force (start or successful reload): one info series."""
        if self._config_hash is not None and self._config_hash != digest:
            self.config_info.remove(self._config_hash)
        self._config_hash = digest
        self.config_info.labels(digest).set(1)
        self.config_last_success.set(at.timestamp())
        self.config_restart_pending.set(1 if restart_pending else 0)

    # --- helpers ----------------------------------------------------------------------

    def campaign_label(self, campaign_id: str | None) -> str:
        return campaign_id if campaign_id in self._campaigns else "unknown"

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # --- ServiceObserver ------------------------------------------------------------

    def decision(self, result: ScreenResult, *, source: str, latency_s: float) -> None:
        campaign = self.campaign_label(_campaign_of(result))
        reason = result.reason.value if result.reason.value in _REASONS else "other"
        key = (source, campaign, result.verdict.value, reason)
        counted = self._decision_children.get(key)
        if counted is None:
            counted = self._decision_children[key] = self.decisions.labels(*key)
        counted.inc()
        timed = self._latency_children.get(source)
        if timed is None:
            timed = self._latency_children[source] = self.decision_seconds.labels(source)
        timed.observe(latency_s)
        if result.shadow:
            self.shadow.labels(campaign, result.decision.verdict.value).inc()
        if result.fail_open:
            self.fail_open.labels(campaign).inc()
        if result.decision.house_rule is not None:
            self.house_rule_blocks.labels(campaign, result.decision.house_rule).inc()

    def lists(self, infos: Iterable[ListInfo], now: datetime,
              max_ages: Mapping[str, int]) -> None:
        """Refresh the list gauges from ``Store.lists_status()``."""
        for info in infos:
            self.list_age.labels(info.name).set(max(0.0, (now - info.imported_at)
                                                    .total_seconds()))
            self.list_entries.labels(info.name).set(info.size)
        for name, age in max_ages.items():
            self.list_max_age.labels(name).set(age)

    def store_hot(self, client: str, source: object, *, connects: int, failures: int,
                  connected: bool, in_flight: int) -> None:
        """A sample of a lean connection's state: the counters move by what is new since
        the last sample of the same ``source`` (a client rebuilt counts from zero)."""
        seen_source, seen_connects, seen_failures = self._hot_seen.get(client, (None, 0, 0))
        if seen_source is not source:
            seen_connects = seen_failures = 0
        if connects > seen_connects:
            self.store_hot_connects.labels(client).inc(connects - seen_connects)
        if failures > seen_failures:
            self.store_hot_connect_failures.labels(client).inc(failures - seen_failures)
        self._hot_seen[client] = (source, max(connects, seen_connects),
                                  max(failures, seen_failures))
        self.store_hot_connected.labels(client).set(1 if connected else 0)
        self.store_hot_in_flight.labels(client).set(in_flight)

    def store_error(self, kind: str) -> None:
        self.store_errors.labels(kind).inc()

    def audit_error(self) -> None:
        self.audit_errors.inc()
        self.audit_error_count += 1

    def audit_event(self, name: str) -> None:
        self.audit_events.labels(name).inc()

    def audit_anchor(self, instance: str, seq: int) -> None:
        self.audit_chain_seq.labels(instance).set(seq)


def _campaign_of(result: ScreenResult) -> str | None:
    return result.campaign_id


__all__ = ["CONTENT_TYPE", "DECISION_BUCKETS_S", "Metrics"]
