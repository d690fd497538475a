"""Headless Chromium for the report tests (Debian's ``chromium``, ``make chromium``).

Missing chromium: the tests skip, unless ``CI=true`` or
``DIALER_GATEWAY_REQUIRE_CHROMIUM=1`` (``make test`` sets it), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
RUN_DEADLINE_S = 90
REPO = Path(__file__).resolve().parents[2]
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
    # no name resolves: a page that tried to fetch anything would fail to
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


def artifacts_dir() -> Path:
    path = Path(os.environ.get("DIALER_GATEWAY_TEST_ARTIFACTS", REPO / "build" / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_chromium() -> str:
    if CHROMIUM is not None:
        return CHROMIUM
    why = "chromium is not installed (make chromium)"
    if os.environ.get("CI") == "true" or os.environ.get("DIALER_GATEWAY_REQUIRE_CHROMIUM") == "1":
        pytest.fail(why + " (required: CI=true or DIALER_GATEWAY_REQUIRE_CHROMIUM=1)")
    pytest.skip(why)


@dataclass(frozen=True, slots=True)
class Rendered:
    dom: str
    console: list[str]  # console messages (uncaught errors included)


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    binary = require_chromium()
    with tempfile.TemporaryDirectory(prefix="dg-chromium-") as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=RUN_DEADLINE_S,
                              check=False)


def dump_dom(page: Path) -> Rendered:
    done = _run(["--dump-dom", page.resolve().as_uri()])
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Rendered(done.stdout, console)


def screenshot(page: Path, png: Path, *, width: int = 1200, height: int = 2400) -> None:
    done = _run([f"--screenshot={png}", f"--window-size={width},{height}",
                 "--hide-scrollbars", page.resolve().as_uri()])
    assert done.returncode == 0, done.stderr[-2000:]
