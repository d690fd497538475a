"""Metrics of worker processes, served by the supervisor (prometheus-client multiprocess).

Each worker process is started with ``PROMETHEUS_MULTIPROC_DIR`` naming a private
directory (made by the supervisor at start, removed at stop), so its counters,
histograms and gauges are written to memory-mapped files there. The supervisor's
``/metrics`` is :class:`Exposition`: the workers' aggregate for every family, except the
families the supervisor owns (one configuration per instance, the worker counts).
How each gauge combines across workers is its ``multiprocess_mode`` (gateway.metrics).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Families the supervisor serves from its own registry (one configuration per instance)
OWN_FAMILIES = frozenset({
    "dialer_gateway_build_info", "dialer_gateway_config_reloads",
    "dialer_gateway_config_last_reload_success_timestamp_seconds",
    "dialer_gateway_config_restart_pending", "dialer_gateway_config_info",
    "dialer_gateway_workers", "dialer_gateway_worker_restarts",
})


class Exposition:
    """The supervisor's own families, plus every other family from the workers' files
    (a family no worker wrote yet is shown from the supervisor's registry, empty)."""

    def __init__(self, own: CollectorRegistry, directory: str) -> None:
        self._own = own
        self._workers = MultiProcessCollector(None, directory)  # type: ignore[no-untyped-call]  # untyped in prometheus-client

    def collect(self) -> Iterator[Metric]:
        seen: set[str] = set()
        for family in self._workers.collect():  # type: ignore[no-untyped-call]  # idem
            if family.name not in OWN_FAMILIES:
                seen.add(family.name)
                yield family
        for family in self._own.collect():
            if family.name in OWN_FAMILIES or family.name not in seen:
                yield family


