"""Metrics of worker processes, served by the supervisor (prometheus-client multiprocess).

Each worker process is started with ``PROMETHEUS_MULTIPROC_DIR`` naming a private
directory (made by the supervisor at start, removed at stop), so its counters,
histograms and gauges are written to memory-mapped files there. The supervisor's
``/metrics`` is :class:`Exposition`: the workers' aggregate for every family, except the
families the supervisor owns (one configuration per instance, the worker counts).
How each gauge combines across workers is its ``multiprocess_mode`` (gateway.metrics).

prometheus-client checks for a fork at every value write with ``os.getpid()``, a
system call; a worker writes its values with :func:`use_cached_pid` instead: the pid
read once, and again in a forked child (``os.register_at_fork``), so a child still
writes its own files (docs/benchmarks.md, metric writes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, values
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

_pid = os.getpid()


def _forked() -> None:
    global _pid  # the one cached value, refreshed in a forked child
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def process_id() -> int:
    """This process's pid, without a system call (refreshed after a fork)."""
    return _pid


def use_cached_pid() -> bool:
    """Make the multiprocess values of this process identify it by :func:`process_id`.

    Does nothing (False) outside a worker (no ``PROMETHEUS_MULTIPROC_DIR``), or when a
    value of this process exists already (a file of its pid in the directory): two
    value classes must never map the same file. Idempotent. Files keep their names
    (``<kind>_<pid>.db``), so ``mark_process_dead`` and the aggregation are unchanged.
    """
    if getattr(values.ValueClass, "_gateway_cached_pid", False):
        return True
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return False
    suffix = f"_{os.getpid()}.db"
    try:
        if any(name.endswith(suffix) for name in os.listdir(directory)):
            return False
    except OSError:
        return False  # prometheus-client reports a missing directory its own way
    value_class = values.MultiProcessValue(process_identifier=process_id)  # type: ignore[no-untyped-call]  # untyped in prometheus-client
    value_class._gateway_cached_pid = True
    values.ValueClass = value_class
    return True


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


