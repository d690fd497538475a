"""deploy/grafana/dialer-gateway.json: valid, templated, and only uses exported metrics."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.support import (
    DASHBOARD,
    METRIC_NAME,
    PROMTOOL_TIMEOUT_S,
    exported,
    expr_problems,
)

DS = "${DS_PROMETHEUS}"
# Grafana variables -> something promtool can parse
GRAFANA_VARS = {
    "$__rate_interval": "5m",
    "$__range": "1h",
    '"$instance"': '".*"',
    '"$campaign"': '".*"',
}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows keep their panels inside
    return out


def targets(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(p["title"], t) for p in panels(dashboard) for t in p.get("targets", [])]


def test_dashboard_header(dashboard: dict[str, Any]) -> None:
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] == "dialer-gateway"
    assert dashboard["title"]


def test_datasource_is_a_template_variable(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    ds = variables["DS_PROMETHEUS"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": DS}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DS, panel["title"]
    # no datasource uid of someone's Grafana left behind
    uids = set(re.findall(r'"uid": "([^"]+)"', DASHBOARD.read_text(encoding="utf-8")))
    assert uids <= {DS, "dialer-gateway", "-- Grafana --"}, uids


def test_campaign_and_instance_variables_come_from_label_values(
    dashboard: dict[str, Any],
) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    for name in ("campaign", "instance"):
        var = variables[name]
        assert var["type"] == "query" and var["datasource"]["uid"] == DS
        query = var["query"]["query"]
        assert re.fullmatch(rf"label_values\((dialer_gateway_\w+), {name}\)", query), query
        metric = query.split("(", 1)[1].split(",", 1)[0]
        assert name in exported().labels[metric]
        assert var["multi"] and var["includeAll"] and var["allValue"] == ".*"


def test_panels_have_unique_ids_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(dashboard):
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_targets_are_complete(dashboard: dict[str, Any]) -> None:
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]


def test_dashboard_uses_only_exported_metrics_and_labels(dashboard: dict[str, Any]) -> None:
    series = exported()
    for title, target in targets(dashboard):
        problems = expr_problems(target["expr"], series)
        assert not problems, f"{title}: {problems}"
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            assert not expr_problems(var["query"]["query"], series), var["name"]


def test_every_exported_metric_has_a_panel(dashboard: dict[str, Any]) -> None:
    used = {m for _, t in targets(dashboard) for m in METRIC_NAME.findall(t["expr"])}
    # a histogram is on the dashboard through its _bucket series
    missing = {n for n in exported().names - used if not n.endswith(("_sum", "_count"))}
    assert not missing, f"metrics without a panel on the dashboard: {sorted(missing)}"


def _panel(dashboard: dict[str, Any], words: str) -> dict[str, Any]:
    found = [p for p in panels(dashboard) if words.lower() in p["title"].lower()]
    assert len(found) == 1, f"expected one panel titled ...{words}..., got {len(found)}"
    return found[0]


def _thresholds(panel: dict[str, Any]) -> list[float]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [s["value"] for s in steps if s["value"] is not None]


def test_budget_and_abandon_lines(dashboard: dict[str, Any]) -> None:
    latency = _panel(dashboard, "latency")
    assert _thresholds(latency) == [0.25]
    assert latency["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"
    quantiles = {q for t in latency["targets"]
                 for q in re.findall(r"histogram_quantile\(([\d.]+)", t["expr"])}
    assert quantiles == {"0.5", "0.95", "0.99"}
    abandon = _panel(dashboard, "abandon ratio")
    assert _thresholds(abandon) == [0.03]
    assert abandon["fieldConfig"]["defaults"]["unit"] == "percentunit"
    reasons = _panel(dashboard, "by reason")
    assert reasons["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"


def test_promql_of_every_panel_parses(promtool_path: str, tmp_path: Path) -> None:
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    exprs = [t["expr"] for _, t in targets(json.loads(DASHBOARD.read_text("utf-8")))]
    for i, expr in enumerate(exprs):
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, f"unsubstituted Grafana variable in {expr}"
        lines += [f"      - record: dashboard:panel_{i}", f"        expr: {json.dumps(expr)}"]
    rules = tmp_path / "dashboard-rules.yml"
    rules.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = subprocess.run(
        [promtool_path, "check", "rules", str(rules)],
        capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_S, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout
