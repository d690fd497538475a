"""Adapters from the edges' observer protocols onto the Prometheus metrics.

The edges (gateway/agi, gateway/ami) never import prometheus_client; they report
through small protocols, and these adapters turn the reports into metrics.
"""

from __future__ import annotations

from typing import Any

from gateway.metrics import Metrics


class AgiMetrics:
    """``gateway.agi.server.AgiObserver`` -> metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self._ended: dict[str, Any] = {}  # outcome -> its counter (a bounded set)

    def session_started(self) -> None:
        return None  # counted at the end, by outcome

    def session_ended(self, outcome: str, duration_s: float) -> None:
        counter = self._ended.get(outcome)
        if counter is None:
            counter = self._ended[outcome] = self._m.agi_sessions.labels(outcome)
        counter.inc()

    def session_rejected(self) -> None:
        self._m.agi_sessions.labels("rejected").inc()

    def protocol_error(self, kind: str) -> None:
        self._m.agi_protocol_errors.labels(kind).inc()

    def sessions_in_flight(self, count: int) -> None:
        self._m.agi_in_flight.set(count)

    def connections_pending(self, count: int) -> None:
        self._m.agi_pending.set(count)


class AmiMetrics:
    """``gateway.ami.observer.AmiObserver`` -> metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def link_state(self, link: str, state: str) -> None:
        self._m.ami_upstream_up.labels(link).set(1 if state == "up" else 0)

    def abandon_ratio(self, campaign_id: str, ratio: float) -> None:
        self._m.abandon_ratio.labels(self._m.campaign_label(campaign_id)).set(ratio)

    def call_classified(self, campaign_id: str, outcome: str) -> None:
        self._m.call_outcomes.labels(self._m.campaign_label(campaign_id), outcome).inc()

    def originate_screened(self, account: str, verdict: str, reason: str) -> None:
        self._m.ami_proxy_events.labels(f"originate_{verdict.lower()}").inc()

    def action_refused(self, account: str, action: str) -> None:
        self._m.ami_proxy_events.labels("action_refused").inc()

    def dialer_sessions(self, count: int) -> None:
        self._m.ami_proxy_sessions.set(count)

    def dialer_disconnected(self, reason: str) -> None:
        self._m.ami_proxy_events.labels(f"disconnect_{reason}").inc()
        if reason == "protocol_error":  # the session reports framing errors this way
            self._m.ami_protocol_errors.labels("dialer").inc()

    def outcome_event(self, outcome: str, applied: bool) -> None:
        self._m.ami_proxy_events.labels("outcome_applied" if applied else "outcome_ignored").inc()
