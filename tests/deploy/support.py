"""Helpers for the deploy/ tests: where the artefacts are, what the gateway exports."""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase

from gateway.core.model import Reason, Verdict
from gateway.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
DASHBOARD = DEPLOY / "grafana" / "dialer-gateway.json"
OPERATIONS = ROOT / "docs" / "operations.md"
PROMTOOL_TIMEOUT_S = 60.0  # one promtool run (unit tests evaluate a few hundred steps)

METRIC_NAME = re.compile(r"\bdialer_gateway_[a-z0-9_]*[a-z0-9]")
SELECTOR = re.compile(r"\b(dialer_gateway_[a-z0-9_]*[a-z0-9])\s*\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
# Labels every scraped series carries (added by Prometheus) or histogram buckets carry.
TARGET_LABELS = frozenset({"job", "instance"})
# Series of each family type (the text format names counter families without ``_total``
# in the registry, with it on the TYPE line: both are normalised to the bare name below).
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


@dataclass(frozen=True, slots=True)
class Exported:
    """Series names the gateway exports, and the label names of each."""

    labels: dict[str, frozenset[str]]  # series name -> label names (target labels included)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.labels)


def exported() -> Exported:
    """Instantiate ``Metrics(["c"])``, render it, and list every series name it can produce.

    Labelled metrics without children render only their ``# TYPE`` line, so the sample
    names come from the type (counter -> ``_total``, histogram -> ``_bucket``/``_sum``/
    ``_count``); label names come from the metric objects (prometheus_client keeps them in
    ``_labelnames``, its only public-ish spelling).
    """
    metrics = Metrics(["c"])
    text = metrics.render().decode()
    families: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            families[name] = kind
    assert families, "Metrics().render() exported no family: the parser above is wrong"
    label_names: dict[str, tuple[str, ...]] = {}
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            label_names[obj._name] = tuple(obj._labelnames)
    families = {n.removesuffix("_total") if k == "counter" else n: k for n, k in families.items()}
    missing = set(families) - set(label_names)
    assert not missing, f"families without a Metrics attribute: {sorted(missing)}"
    out: dict[str, frozenset[str]] = {}
    for family, kind in families.items():
        for suffix in _SUFFIXES[kind]:
            extra = {"le"} if suffix == "_bucket" else set()
            out[family + suffix] = frozenset(label_names[family]) | TARGET_LABELS | extra
    return Exported(out)


def promtool() -> str:
    """Path of ``promtool``; fails under CI, skips loudly elsewhere."""
    # `make test` extracts promtool into the venv, beside this interpreter
    beside = Path(sys.executable).with_name("promtool")
    if beside.is_file():
        return str(beside)
    path = shutil.which("promtool")
    if path is not None:
        return path
    message = (
        "promtool not found: `make promtool` extracts it from Debian's 'prometheus' package "
        "into the venv (or: apt-get install -y --no-install-recommends prometheus)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " -- required under CI=true")
    pytest.skip("NOT TESTED: " + message)
    raise AssertionError("unreachable")  # pytest.skip raises


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    found = {slug(m.group(1)) for m in re.finditer(r"^#{1,6} +(.+?) *$", markdown, re.M)}
    found |= set(re.findall(r'<a (?:id|name)="([^"]+)"', markdown))
    return found


def expr_problems(expr: str, series: Exported) -> list[str]:
    """Unknown metric names, labels and verdict/reason values in one PromQL expression."""
    problems = [f"unknown metric {m}" for m in METRIC_NAME.findall(expr) if m not in series.names]
    every_label = frozenset().union(*series.labels.values())
    verdicts = {v.value for v in Verdict}
    reasons = {r.value for r in Reason}
    for metric, matchers in SELECTOR.findall(expr):
        for label, _op, value in MATCHER.findall(matchers):
            if label not in series.labels.get(metric, ()):
                problems.append(f"{metric} has no label {label}")
            elif label == "verdict" and value not in verdicts:
                problems.append(f"unknown verdict {value!r}")
            elif label == "reason" and value not in reasons:
                problems.append(f"unknown reason {value!r}")
    for group in GROUPING.findall(expr):
        for label in filter(None, (g.strip() for g in group.split(","))):
            if label not in every_label:
                problems.append(f"no metric has the label {label!r}")
    return problems


@functools.cache
def example_secret_overrides() -> dict[str, dict[str, object]]:
    """The example names /etc/dialer-gateway/{redis.password,ami.secret}: the same files,
    written in a private directory, as configuration overrides."""
    secrets = Path(tempfile.mkdtemp(prefix="dg-example-secrets-"))
    atexit.register(shutil.rmtree, secrets, True)
    (secrets / "redis.password").write_text("example-redis-password\n")
    (secrets / "ami.secret").write_text("example-ami-secret\n")
    return {"store": {"password_file": str(secrets / "redis.password")},
            "ami": {"secret_file": str(secrets / "ami.secret")}}
