"""Packaging: ``python -m build`` on a clean clone gives an sdist and a wheel (built from
the sdist, so the sdist is complete); the wheel, installed into a fresh virtualenv outside
the checkout, answers ``--version`` and ``serve`` runs on its packaged defaults (built-in
packs, demo data) from a directory that is not the checkout, where the default audit path
``var/audit.jsonl`` is created.

Slow (a build and a pip install, about a minute), but real.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from gateway import __version__
from gateway.packs import builtin_packs
from tests.agi_client import agi_screen
from tests.field.test_fresh_clone import SLOT_NUMBER, clone, read_until_started

BUILD_TIMEOUT_S = 600.0
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 20.0


def run(*args: str, cwd: Path, timeout: float = BUILD_TIMEOUT_S) -> str:
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.timeout(2 * BUILD_TIMEOUT_S)  # a build and a pip install on a loaded machine
async def test_wheel_and_sdist_install_and_serve_outside_the_checkout(tmp_path: Path) -> None:
    checkout = clone(tmp_path)
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--outdir", str(dist), ".", cwd=checkout)
    (sdist,) = dist.glob("dialer_gateway-*.tar.gz")
    (wheel,) = dist.glob("dialer_gateway-*-py3-none-any.whl")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("gateway/core/packs/fr-2026.toml", "gateway/demo/consents.csv",
                   "docs/operations.md", "deploy/systemd/dialer-gateway.service",
                   "deploy/gateway.toml.example", "asterisk/extensions.conf", "Makefile"):
        assert needed in names, f"{needed} missing from {sdist.name}"
    wheel_names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("gateway/core/packs/fr-2026.toml", "gateway/demo/consents.csv",
                   "gateway/py.typed", "gateway/__main__.py"):
        assert needed in wheel_names, f"{needed} missing from {wheel.name}"

    venv = tmp_path / "venv"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run(sys.executable, "-m", "venv", str(venv), cwd=elsewhere)
    run(str(venv / "bin" / "pip"), "install", "--quiet", str(wheel), cwd=elsewhere)
    exe = venv / "bin" / "dialer-gateway"
    assert run(str(exe), "--version", cwd=elsewhere).strip() == f"dialer-gateway {__version__}"

    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DIALER_GATEWAY_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(DIALER_GATEWAY_AGI_LISTEN="127.0.0.1:0", DIALER_GATEWAY_HTTP_LISTEN="127.0.0.1:0",
               DIALER_GATEWAY_LOGGING_FORMAT="json")
    proc = await asyncio.create_subprocess_exec(
        str(exe), "serve", cwd=elsewhere, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    lines: list[dict[str, object]] = []
    try:
        started = await read_until_started(proc, lines, START_DEADLINE_S)
        assert started["audit"] == str(elsewhere / "var" / "audit.jsonl")
        # every pack of the checkout is in the wheel, by id and content hash
        assert sorted(started["packs"]) == sorted(  # type: ignore[arg-type]
            f"{p.id}@{p.content_hash[:12]}" for p in builtin_packs())
        host, _, port = str(started["agi"]).rpartition(":")
        variables = await agi_screen((host, int(port)), SLOT_NUMBER, "demo")
        assert (variables["GW_VERDICT"], variables["GW_REASON"]) == ("ALLOW", "ok"), variables
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGTERM)
        async with asyncio.timeout(STOP_DEADLINE_S):
            await proc.wait()
    assert proc.returncode == 0
    (record,) = [json.loads(ln) for ln in
                 (elsewhere / "var" / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert record["id"] == variables["GW_DECISION_ID"]
