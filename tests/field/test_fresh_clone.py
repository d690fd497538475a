"""The field tier: what a new user does first, on a fresh clone of this repository's HEAD.

``make run`` (the Makefile target itself) starts the gateway on its embedded default from
the clone's directory, where ``var/`` does not exist; one FastAGI screen of the demo
campaign must be answered ALLOW, its audit record written in the clone's
``var/audit.jsonl``, /readyz must say ready, and no log line may be at error level.

The number screened is the demo consent with a slot agreed around the seeding instant
(docs/cli.md), so the call is lawful whatever the hour the suite runs at.

The clone reuses this checkout's virtualenv (``make run VENV=...``, with the venv stamp
marked old so make never reinstalls into it); ``make run`` starts ``python -m gateway``
from the clone's directory, so the clone's code runs. Set DIALER_GATEWAY_FIELD_FRESH_VENV=1
to let ``make run`` build the clone its own virtualenv instead (several minutes).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agi_client import agi_screen, http_get

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE_S = 60.0  # make, the interpreter, the demo seed
FRESH_VENV_DEADLINE_S = 900.0
STOP_DEADLINE_S = 20.0
SLOT_NUMBER = "06 12 34 56 83"  # demo-c8: agreed slot from 1 h before to 2 h after seeding


def clone(tmp_path: Path) -> Path:
    target = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(target)],
                   check=True, timeout=120)
    assert not (target / "var").exists()
    return target


def make_command(venv: Path) -> list[str]:
    if os.environ.get("DIALER_GATEWAY_FIELD_FRESH_VENV") == "1":
        return ["make", "run"]
    return ["make", "-o", str(venv / ".installed"), "run", f"VENV={venv}"]


async def read_until_started(proc: asyncio.subprocess.Process, lines: list[dict[str, object]],
                             deadline_s: float) -> dict[str, object]:
    assert proc.stdout is not None
    async with asyncio.timeout(deadline_s):
        while raw := await proc.stdout.readline():
            text = raw.decode(errors="replace").strip()
            if not text.startswith("{"):
                continue  # make's own echo of the command
            event = json.loads(text)
            lines.append(event)
            if event.get("event") == "gateway.started":
                return event
    raise AssertionError(f"make run ended before gateway.started: {lines}")


@pytest.mark.timeout(FRESH_VENV_DEADLINE_S + 120)
async def test_fresh_clone_make_run_allows_a_demo_call_and_audits_it(tmp_path: Path) -> None:
    checkout = await asyncio.to_thread(clone, tmp_path)
    venv = Path(sys.prefix)
    which = await asyncio.to_thread(
        subprocess.run, [str(venv / "bin" / "python"), "-c", "import gateway; "
                         "print(gateway.__file__)"], cwd=checkout, capture_output=True,
        text=True, check=True, timeout=60)
    assert which.stdout.strip() == str(checkout / "gateway" / "__init__.py")  # the clone's code
    env = {**os.environ, "DIALER_GATEWAY_AGI_LISTEN": "127.0.0.1:0",
           "DIALER_GATEWAY_HTTP_LISTEN": "127.0.0.1:0", "DIALER_GATEWAY_LOGGING_FORMAT": "json"}
    env.pop("DIALER_GATEWAY_CONFIG", None)
    proc = await asyncio.create_subprocess_exec(
        *make_command(venv), cwd=checkout, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    lines: list[dict[str, object]] = []
    try:
        fresh = os.environ.get("DIALER_GATEWAY_FIELD_FRESH_VENV") == "1"
        started = await read_until_started(
            proc, lines, FRESH_VENV_DEADLINE_S if fresh else START_DEADLINE_S)
        agi_host, _, agi_port = str(started["agi"]).rpartition(":")
        http_host, _, http_port = str(started["http"]).rpartition(":")
        assert started["audit"] == str(checkout / "var" / "audit.jsonl")

        variables = await agi_screen((agi_host, int(agi_port)), SLOT_NUMBER, "demo")
        assert (variables["GW_VERDICT"], variables["GW_REASON"]) == ("ALLOW", "ok"), variables
        status, body = await http_get((http_host, int(http_port)), "/readyz")
        assert status == 200, body
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGTERM)  # make and the gateway: a graceful stop
        assert proc.stdout is not None
        async with asyncio.timeout(STOP_DEADLINE_S):
            rest = await proc.stdout.read()
            await proc.wait()
    lines += [json.loads(ln) for ln in rest.decode(errors="replace").splitlines()
              if ln.startswith("{")]
    records = [json.loads(ln) for ln in
               (checkout / "var" / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == [variables["GW_DECISION_ID"]]
    assert records[0]["verdict"] == "ALLOW"
    errors = [e for e in lines if e.get("level") in ("error", "critical")]
    assert not errors, errors
    assert any(e.get("event") == "gateway.stopped" for e in lines), lines[-5:]
