"""Attack: an audit trail altered by hand, or holding hostile strings, given to
``dialer-gateway report`` (hostile review of issue 13).

A record whose containers (engine, counters, lists, trace, local times) were replaced by
other JSON types, or whose instant is at the end of the calendar, made the report crash
with a traceback: the DPO got no page at all instead of one saying the chain is broken.
Strings from the trail (campaigns, reasons, lists, instances, ids) land escaped."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.audit.chain import GENESIS_PREV, seal
from gateway.cli import main
from tests.report.test_report import parse
from tests.report.trail import START, write_trail

pytestmark = pytest.mark.usefixtures("clean_cli_env")  # tests/fixtures/cli_env.py


@pytest.fixture(scope="module")
def trail_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    path = tmp_path_factory.mktemp("trail") / "audit.jsonl"
    asyncio.run(write_trail(path, stalls=False))
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def report(tmp_path: Path, lines: list[str], *period: str) -> tuple[int, str]:
    trail = tmp_path / "audit.jsonl"
    trail.write_text("".join(lines), encoding="utf-8")
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[audit]\nsink = "jsonl"\npath = "{trail}"\n', encoding="utf-8")
    out = tmp_path / "report.html"
    code = main(["--config", str(cfg), "report", "--from",
                 *(period or (START.date().isoformat(), "--to", "2026-12-03")),
                 "--out", str(out)])
    return code, out.read_text(encoding="utf-8") if out.exists() else ""


ALTERATIONS = {
    "engine": "BLOCK", "counters": [4, 4], "lists": 7, "trace": 5, "local_times": ["10:00"],
    "ts": "9999-12-31T23:59:59Z",
}


@pytest.mark.parametrize("key", list(ALTERATIONS))
def test_altered_record_is_a_broken_chain_not_a_crash(tmp_path: Path, trail_lines: list[str],
                                                      key: str) -> None:
    lines = list(trail_lines)
    rec = json.loads(lines[3])
    rec[key] = ALTERATIONS[key]
    lines[3] = json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n"
    code, html = report(tmp_path, lines)
    assert code == 1 and html
    f = parse(html)
    assert f.chain_ok == "false" and int(f.figures["chain_problems"]) >= 1
    assert f.figures["unreadable"] == "1"
    assert int(f.figures["chain_records"]) == len(lines)


def test_big_list_age_is_shown_not_a_crash(tmp_path: Path, trail_lines: list[str]) -> None:
    lines = list(trail_lines)
    rec = json.loads(lines[0])
    rec["lists"][0]["age_s"] = 10**20
    lines[0] = json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n"
    code, html = report(tmp_path, lines)
    assert code == 1
    assert f"{10**20} s" in html and parse(html).chain_ok == "false"


def test_period_ending_on_the_last_day_of_the_calendar(tmp_path: Path,
                                                       trail_lines: list[str]) -> None:
    code, html = report(tmp_path, trail_lines, "9999-12-30", "--to", "9999-12-31")
    assert code == 0
    f = parse(html)
    assert f.figures["decisions"] == "0" and f.chain_ok == "true"


HOSTILE = '</td></script><script>alert(1)</script><img src=x onerror=alert(2)>' \
          '<svg onload=alert(3)>"\'&'


def test_hostile_strings_are_escaped(tmp_path: Path, trail_lines: list[str]) -> None:
    """A chain sealed over records whose every string is markup: the page holds no
    element, attribute or URL that did not come from the report's own template."""
    lines, prev = [], GENESIS_PREV
    for seq, line in enumerate(trail_lines[:12]):
        rec = json.loads(line)
        rec.update(campaign=f"c{seq % 2}{HOSTILE}", reason=HOSTILE, verdict="BLOCK",
                   id=f"{seq}{HOSTILE}", instance=HOSTILE, professional=HOSTILE,
                   source=HOSTILE, engine={"verdict": "BLOCK", "reason": HOSTILE},
                   lists=[{"name": HOSTILE, "version": 1, "age_s": 5}],
                   trace=[HOSTILE, "abandon: 1/2 answered calls"])
        text, prev = seal(rec, seq=seq, prev=prev)
        lines.append(text + "\n")
    code, html = report(tmp_path, lines)
    f = parse(html)
    assert f.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p",
                      "table", "thead", "tbody", "tr", "th", "td", "svg", "line", "text",
                      "rect", "ul", "li"}
    assert "script" not in f.tags and "img" not in f.tags
    assert not any(name.startswith("on") for attrs in f.attrs_seen for name in attrs)
    assert "<script" not in html and "<img" not in html and "<svg onload" not in html
    assert int(f.figures["decisions"]) == 12 and int(f.figures["reason:" + HOSTILE]) == 12
    assert code in (0, 1)  # chain verdict aside (the records are re-sealed by hand)


@pytest.mark.parametrize("key", ["supersedes", "engine"])
def test_line_nested_past_the_parser_depth_is_a_broken_chain(
        tmp_path: Path, trail_lines: list[str], key: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """json.loads raises RecursionError, not ValueError, on arrays nested deeper than
    the interpreter's recursion limit: both the report and ``audit verify`` died on it."""
    lines = list(trail_lines)
    lines.insert(5, f'{{"{key}": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    code, html = report(tmp_path, lines)
    assert code == 1
    f = parse(html)
    assert f.chain_ok == "false" and f.figures["unreadable"] == "1"
    assert int(f.figures["chain_records"]) == len(lines)
    cfg = tmp_path / "gw.toml"
    assert main(["--config", str(cfg), "audit", "verify"]) == 1
    assert "unparseable" in capsys.readouterr().out


def test_lone_surrogates_in_a_resealed_trail_are_a_page_not_a_crash(
        tmp_path: Path, trail_lines: list[str]) -> None:
    """A chain re-sealed by hand over records whose number and strings hold lone
    surrogates (``"\\udc80"`` in the JSON: what ``surrogateescape`` makes of bytes that
    are not UTF-8). The distinct-number count hashed the number with a strict
    ``encode()``, and the page was written as strict UTF-8: UnicodeEncodeError, a
    traceback and no page."""
    lines, prev = [], GENESIS_PREV
    for seq, line in enumerate(trail_lines[:12]):
        rec = json.loads(line)
        rec.update(number=f"\udc80+3361234{seq:04d}", campaign="c\udcff", reason="r\udcfe",
                   verdict="BLOCK", instance="gw\udc80", id=f"{seq}\udc81")
        text, prev = seal(rec, seq=seq, prev=prev)
        lines.append(text + "\n")
    code, html = report(tmp_path, lines)
    assert code == 0
    f = parse(html)
    assert f.chain_ok == "true" and int(f.figures["decisions"]) == 12
    assert abs(int(f.figures["distinct_numbers"]) - 12) <= 1
    assert "c\\udcff" in html  # the campaign, as the escape of what cannot be written


def test_audit_verify_names_a_record_id_holding_a_lone_surrogate(
        tmp_path: Path, trail_lines: list[str]) -> None:
    """``audit verify`` of a trail altered by hand whose record id holds a lone surrogate
    (``"\\udc80"`` in the JSON): the report printed it as it was, and standard output in
    a UTF-8 locale (strict) raised UnicodeEncodeError: a traceback instead of the report
    that says the chain is broken. Run as a process, its output strict UTF-8."""
    lines = list(trail_lines[:3])
    rec = json.loads(lines[1])
    rec["id"] = "x\udc80"  # and not re-sealed: a hash mismatch to report
    lines[1] = json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n"
    trail = tmp_path / "audit.jsonl"
    trail.write_text("".join(lines), encoding="utf-8")
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[audit]\nsink = "jsonl"\npath = "{trail}"\nanchor_path = ""\n',
                   encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_GATEWAY_")}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "audit", "verify", "--config", str(cfg)],
        env={**env, "PYTHONIOENCODING": "utf-8:strict"}, capture_output=True, timeout=60,
        check=False)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert [(p["kind"], p["record_id"]) for p in report["problems"]] == [
        ("hash_mismatch", "x\udc80")]
