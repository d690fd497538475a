"""deploy/prometheus/alerts.yml: promtool accepts and tests it; names match the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.support import (
    ALERTS,
    ALERTS_TEST,
    METRIC_NAME,
    OPERATIONS,
    PROMTOOL_TIMEOUT_S,
    anchors,
    exported,
    expr_problems,
    promtool,
)

SEVERITIES = frozenset({"critical", "warning"})


def alert_blocks() -> dict[str, str]:
    """Alert name -> its YAML block (the file is ours: one ``- alert:`` per rule)."""
    text = ALERTS.read_text(encoding="utf-8")
    parts = re.split(r"^ *- alert: *(\S+) *$", text, flags=re.M)
    blocks = {name: body for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    assert len(blocks) == len(parts[1::2]), "an alert name is used twice"
    return blocks


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=ALERTS.parent, capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_S,
        check=False,
    )


def test_promtool_checks_the_rules(promtool_path: str) -> None:
    result = run(promtool_path, "check", "rules", ALERTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_blocks())} rules found" in result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool_path: str) -> None:
    result = run(promtool_path, "test", "rules", ALERTS_TEST.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    text = ALERTS_TEST.read_text(encoding="utf-8")
    firing: set[str] = set()
    quiet: set[str] = set()
    for name, empty in re.findall(r"alertname: *(\w+)\s*\n\s*exp_alerts:( *\[\])?", text):
        (quiet if empty else firing).add(name)
    alerts = set(alert_blocks())
    assert alerts <= firing, f"no firing case for {sorted(alerts - firing)}"
    assert alerts <= quiet, f"no quiet case for {sorted(alerts - quiet)}"
    unknown = (firing | quiet) - alerts
    assert not unknown, f"tests of unknown alerts: {sorted(unknown)}"


def test_every_alert_has_for_severity_and_annotations() -> None:
    blocks = alert_blocks()
    assert len(blocks) >= 14
    for name, block in blocks.items():
        assert re.search(r"^ +for: +\d+[smh]$", block, re.M), f"{name}: no for:"
        severity = re.search(r"^ +severity: +(\w+)$", block, re.M)
        assert severity and severity.group(1) in SEVERITIES, f"{name}: severity"
        for key in ("summary", "description", "runbook_url"):
            assert re.search(rf"^ +{key}: ", block, re.M), f"{name}: no {key}"
        assert name.startswith("DialerGateway"), name


def test_runbook_urls_are_anchors_of_the_operations_runbook() -> None:
    known = anchors(OPERATIONS.read_text(encoding="utf-8"))
    for name, block in alert_blocks().items():
        url = re.search(r'runbook_url: "([^"]+)"', block)
        assert url, f"{name}: runbook_url must be a quoted string"
        path, _, anchor = url.group(1).partition("#")
        assert path == "docs/operations.md", f"{name}: {url.group(1)}"
        assert anchor == name.lower(), f"{name}: anchor {anchor!r} is not the alert name"
        assert anchor in known, f"{name}: docs/operations.md has no heading for #{anchor}"


def test_alert_metric_names_labels_and_values_exist_in_gateway_metrics() -> None:
    series = exported()
    used: set[str] = set()
    for name, block in alert_blocks().items():
        expr = block.split("labels:", 1)[0]
        assert not expr_problems(expr, series), f"{name}: {expr_problems(expr, series)}"
        used |= set(METRIC_NAME.findall(expr))
    assert len(used) >= 10  # the regex found the names at all


def test_the_name_check_catches_a_rename() -> None:
    series = exported()
    assert expr_problems('rate(dialer_gateway_decisions_total{verdict="BLOCK"}[5m])', series) == []
    assert expr_problems("rate(dialer_gateway_decision_total[5m])", series)
    assert expr_problems('dialer_gateway_store_up{campaign="x"}', series)
    assert expr_problems('dialer_gateway_decisions_total{reason="no_such"}', series)
    assert expr_problems("sum by (region) (dialer_gateway_store_up)", series)


def test_missing_promtool_fails_under_ci_and_skips_loudly_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # no promtool beside it
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install .* prometheus"):
        promtool()
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="NOT TESTED: promtool not found"):
        promtool()
