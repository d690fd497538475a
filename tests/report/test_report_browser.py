"""The report in a real headless Chromium: renders without console errors, the charts
are drawn, the figures in the rendered DOM match an independent count of the trail."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import main
from tests.report.browser import artifacts_dir, dump_dom, screenshot
from tests.report.test_report import check_figures, parse
from tests.report.trail import START, expected, write_trail

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("DIALER_GATEWAY_") and name != "DIALER_GATEWAY_REQUIRE_CHROMIUM":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


def make_report(tmp_path: Path, lang: str) -> tuple[Path, Path]:
    trail = tmp_path / "audit.jsonl"
    asyncio.run(write_trail(trail))
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[audit]\nsink = "jsonl"\npath = "{trail}"\n', encoding="utf-8")
    out = tmp_path / f"report-{lang}.html"
    assert main(["--config", str(cfg), "report", "--from", START.date().isoformat(),
                 "--to", "2026-12-03", "--lang", lang, "--out", str(out)]) == 0
    return trail, out


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_report_renders_in_chromium(tmp_path: Path, lang: str) -> None:
    trail, page = make_report(tmp_path, lang)
    rendered = dump_dom(page)
    assert rendered.console == []
    f = parse(rendered.dom)
    check_figures(f, expected(trail))
    assert f.chain_ok == "true"
    for chart in ("chart-per-day", "chart-reasons", "chart-hours", "chart-attempts"):
        assert f.bars[chart] > 0, chart
    png = artifacts_dir() / f"report-{lang}.png"
    png.unlink(missing_ok=True)
    screenshot(page, png)
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 20_000


def test_console_errors_are_seen(tmp_path: Path) -> None:
    """The harness itself: a page with a failing script does show up as a console error."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><script>nope()</script></body></html>",
                    encoding="utf-8")
    rendered = dump_dom(page)
    assert any("nope is not defined" in line for line in rendered.console)
