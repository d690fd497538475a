"""A worker's metric values (prometheus-client multiprocess mode) with a cached pid.

Each case runs in its own interpreter, started as the supervisor starts a worker
(``PROMETHEUS_MULTIPROC_DIR`` set before anything is imported): the value class is
chosen once per process, so this test process must not be the one switched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from gateway.multiproc import MULTIPROC_ENV

ROOT = Path(__file__).resolve().parent.parent


def run_worker_like(directory: Path, body: str) -> Any:
    """Run ``body`` in a fresh interpreter with ``directory`` as the multiprocess
    directory; it prints one JSON line, returned decoded."""
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def aggregate(directory: Path) -> dict[str, float]:
    """What the supervisor's /metrics shows of the workers' files: sample -> value."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(directory))  # type: ignore[no-untyped-call]  # untyped in prometheus-client
    found: dict[str, float] = {}
    for family in registry.collect():
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "pid")
            found[f"{s.name}{{{labels}}}"] = s.value
    return found


def test_a_worker_writes_its_values_without_a_getpid_per_write(tmp_path: Path) -> None:
    # os.getpid is a C function: sys.setprofile sees every call of it ("c_call")
    calls = run_worker_like(tmp_path, """
        import json, os, sys
        from gateway.metrics import Metrics
        from gateway.observers import AgiMetrics
        m = Metrics(["c1"]); agi = AgiMetrics(m)
        seen = []
        def profile(frame, event, arg):
            if event == "c_call" and arg is os.getpid:
                seen.append(1)
        sys.setprofile(profile)
        for n in range(100):
            agi.sessions_in_flight(n)
            agi.session_ended("ok", 0.001)
            m.decision_seconds.labels("agi").observe(0.0003)
        sys.setprofile(None)
        print(json.dumps(len(seen)))
    """)
    assert calls == 0
    found = aggregate(tmp_path)
    assert found['dialer_gateway_agi_sessions_total{outcome=ok}'] == 100
    assert found['dialer_gateway_agi_sessions_in_flight{}'] == 99
    assert found['dialer_gateway_decision_duration_seconds_count{source=agi}'] == 100


def test_a_fork_after_metrics_exist_writes_the_childs_own_file(tmp_path: Path) -> None:
    pids = run_worker_like(tmp_path, """
        import json, os
        from gateway.metrics import Metrics
        from gateway.observers import AgiMetrics
        m = Metrics(["c1"]); agi = AgiMetrics(m)
        for _ in range(3):
            agi.session_ended("ok", 0.001)
        agi.sessions_in_flight(2)
        child = os.fork()
        if child == 0:
            for _ in range(5):
                agi.session_ended("ok", 0.001)
            agi.sessions_in_flight(7)
            os._exit(0)
        _, status = os.waitpid(child, 0)
        assert status == 0, status
        agi.session_ended("ok", 0.001)
        print(json.dumps({"parent": os.getpid(), "child": child}))
    """)
    parent, child = pids["parent"], pids["child"]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert f"counter_{child}.db" in names
    assert f"gauge_livesum_{child}.db" in names

    def one(name: str) -> dict[str, float]:
        alone = tmp_path / "one"
        alone.mkdir(exist_ok=True)
        for stale in alone.iterdir():
            stale.unlink()
        (alone / name).write_bytes((tmp_path / name).read_bytes())
        return aggregate(alone)

    ok = "dialer_gateway_agi_sessions_total{outcome=ok}"
    flight = "dialer_gateway_agi_sessions_in_flight{}"
    # the parent's file holds only the parent's writes, the child's only its own (the
    # library starts a forked child's values afresh), and the aggregate is their sum
    assert one(f"counter_{parent}.db")[ok] == 4
    assert one(f"counter_{child}.db")[ok] == 5
    assert one(f"gauge_livesum_{parent}.db")[flight] == 2
    assert one(f"gauge_livesum_{child}.db")[flight] == 7
    assert aggregate(tmp_path)[ok] == 9


def test_no_switch_once_a_value_of_this_process_exists(tmp_path: Path) -> None:
    # two value classes must never map the same file: the library's class stays
    result = run_worker_like(tmp_path, """
        import json
        from prometheus_client import Counter, CollectorRegistry, values
        Counter("early", "made before gateway.metrics", registry=CollectorRegistry()).inc()
        from gateway import multiproc
        import gateway.metrics
        print(json.dumps([multiproc.use_cached_pid(),
                          getattr(values.ValueClass, "_gateway_cached_pid", False)]))
    """)
    assert result == [False, False]


def test_outside_a_worker_values_stay_in_memory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
    out = subprocess.run(
        [sys.executable, "-c", "from gateway import multiproc, metrics; "
         "from prometheus_client import values; "
         "print(multiproc.use_cached_pid(), values.ValueClass.__name__)"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )
    assert out.stdout.split() == ["False", "MutexValue"]


def test_a_dead_workers_gauges_leave_the_aggregate(tmp_path: Path) -> None:
    # every gauge of a worker combines across workers (no per-process "pid" series): the
    # values of a worker that died (mark_process_dead, as the supervisor does) are gone,
    # and deploy/prometheus/alerts.yml's `on (job, instance, list)` has one series a side
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

    body = """
        import json, os
        from gateway.metrics import Metrics
        m = Metrics(["c1"])
        m.list_age.labels("opposition:bloctel").set({age})
        m.list_entries.labels("opposition:bloctel").set({entries})
        m.list_max_age.labels("opposition:bloctel").set(2592000)
        m.agi_pending.set(3)
        m.audit_chain_seq.labels("gw-w0").set({seq})
        print(json.dumps(os.getpid()))
    """
    dead = run_worker_like(tmp_path, body.format(age=500, entries=7, seq=40))
    run_worker_like(tmp_path, body.format(age=100, entries=9, seq=41))
    mark_process_dead(dead, str(tmp_path))  # type: ignore[no-untyped-call]  # untyped in prometheus-client
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(tmp_path))  # type: ignore[no-untyped-call]  # idem
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in registry.collect() for s in family.samples
               if s.name.startswith(("dialer_gateway_list_", "dialer_gateway_agi_connections",
                                     "dialer_gateway_audit_chain"))}
    bloctel = (("list", "opposition:bloctel"),)
    assert samples == {
        ("dialer_gateway_list_age_seconds", bloctel): 100,
        ("dialer_gateway_list_entries", bloctel): 9,
        ("dialer_gateway_list_max_age_seconds", bloctel): 2592000,
        ("dialer_gateway_agi_connections_pending", ()): 3,
        ("dialer_gateway_audit_chain_seq", (("chain", "gw-w0"),)): 41,
    }
