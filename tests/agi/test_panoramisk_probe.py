"""The probe behind docs/dependencies.md: panoramisk 1.4's FastAGI flaws, shown for real.

Runs bench/probes/panoramisk_fast_agi.py in a subprocess with a hard timeout (the ``eof``
probe freezes its own event loop on purpose). If a future panoramisk fixes a flaw, this
test fails: re-read docs/dependencies.md before trusting it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).resolve().parents[2] / "bench" / "probes" / "panoramisk_fast_agi.py"


@pytest.mark.timeout(60)
def test_every_panoramisk_fast_agi_flaw_is_still_there() -> None:
    proc = subprocess.run(
        [sys.executable, str(PROBE)], capture_output=True, text=True, timeout=45, check=False
    )
    lines = dict(
        line.split(": ", 1) for line in proc.stdout.splitlines()[1:] if ": " in line
    )
    assert set(lines) == {"add_route", "eof", "silent", "unbounded", "usage"}, proc.stdout
    for probe, verdict in lines.items():
        assert verdict.startswith("FLAW"), (probe, verdict, proc.stderr[-2000:])
    assert "asyncio' has no attribute 'coroutine'" in lines["add_route"]
    assert "event loop frozen" in lines["eof"]
    assert proc.returncode == 1
