"""What a CLI command imports: ``check`` must not load the servers, Redis or the reports.

The start-up time itself is measured by ``bench/startup.py`` (docs/benchmarks.md, CLI
start-up); this test holds the structure that makes it short. Each case runs in a fresh
interpreter (the suite's own process has imported everything already).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SUBPROCESS_DEADLINE_S = 60
AT = "2026-12-01T10:30:00+01:00"  # a Tuesday, inside the French windows

# Modules a `check` on the embedded default (memory store, no audit sink) never needs.
NOT_FOR_CHECK = [
    "redis",  # the memory store; no Redis audit sink
    "prometheus_client",  # metrics are the servers'
    "aiohttp",  # the HTTP API server
    "panoramisk",  # the AMI event consumer
    "http.server",  # the ops HTTP endpoint
    "phonenumbers.geocoder",  # 0.2 s of data, for US numbers only (gateway.core.nanp)
    "gateway.app",
    "gateway.agi.handlers",
    "gateway.ami.proxy",
    "gateway.api.server",
    "gateway.http",
    "gateway.metrics",
    "gateway.supervisor",
    "gateway.report",
    "gateway.cli.scrub_cmds",
    "gateway.audit.redis_sink",
    "gateway.store.redis",
]

PROBE = """
import contextlib, io, json, sys
from gateway.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "output": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def run_probe(tmp_path: Path, source: str, *args: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_GATEWAY_")}
    proc = subprocess.run(
        [sys.executable, "-c", source, *args], capture_output=True, text=True, env=env,
        cwd=tmp_path, timeout=SUBPROCESS_DEADLINE_S, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.splitlines()[-1])
    return result


def test_check_decides_without_the_servers_redis_or_reports(tmp_path: Path) -> None:
    result = run_probe(tmp_path, PROBE, "check", "0612345678", "--campaign", "demo",
                       "--at", AT)
    assert result["code"] == 0
    decision = json.loads(str(result["output"]))
    assert decision["verdict"] == "ALLOW"  # the whole decision ran: policy, store, engine
    modules = set(result["modules"])  # type: ignore[call-overload]  # a JSON list of str
    assert "gateway.service" in modules and "gateway.core.engine" in modules
    loaded = sorted(name for name in NOT_FOR_CHECK if name in modules)
    assert loaded == [], f"dialer-gateway check imported {loaded}"


def test_the_geocoding_data_loads_with_the_first_us_number(tmp_path: Path) -> None:
    source = """
import json, sys
from gateway.core import nanp
before = "phonenumbers.geocoder" in sys.modules
states = nanp.us_states("+13055550123")
print(json.dumps({"before": before, "states": states,
                  "after": "phonenumbers.geocoder" in sys.modules}))
"""
    result = run_probe(tmp_path, source)
    assert result == {"before": False, "states": ["FL"], "after": True}


def test_serve_loads_the_geocoding_data_before_the_first_call(tmp_path: Path) -> None:
    """The lazy import must not land in a call's decision budget: App loads it up front."""
    source = """
import json, sys
from gateway.app import App
from gateway.config import load_config
App(load_config(None))
print(json.dumps({"modules": sorted(sys.modules)}))
"""
    result = run_probe(tmp_path, source)
    assert "phonenumbers.geocoder" in result["modules"]  # type: ignore[operator]
