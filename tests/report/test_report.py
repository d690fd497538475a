"""The compliance report: figures against an independent count of a real trail, the
CLI, language, bounded structures, a broken chain."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.report.hll import HyperLogLog
from tests.report.trail import DAYS, START, decisions, expected, records, write_trail


class Figures(HTMLParser):
    """``data-figure`` -> ``data-value`` of the page, plus the charts and their bars."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.charts: list[str] = []
        self.bars: dict[str, int] = {}
        self.tags: set[str] = set()
        self.attrs_seen: list[dict[str, str | None]] = []
        self.chain_ok: str | None = None
        self._chart: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        self.attrs_seen.append(a)
        if tag == "svg" and "chart" in (a.get("class") or ""):
            self._chart = a.get("id") or ""
            self.charts.append(self._chart)
            self.bars[self._chart] = 0
        if tag == "rect" and a.get("class") == "bar" and self._chart is not None:
            self.bars[self._chart] += 1
        if a.get("data-figure"):
            self.figures[a["data-figure"] or ""] = a.get("data-value") or ""
        if a.get("id") == "chain-result":
            self.chain_ok = a.get("data-ok")

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._chart = None


def parse(html: str) -> Figures:
    f = Figures()
    f.feed(html)
    return f


def check_figures(f: Figures, want: dict[str, object]) -> None:
    for key in ("decisions", "allow", "block", "night_stopped", "night_placed", "shadow",
                "shadow_would_block", "fail_open", "frequency_blocks", "superseded",
                "superseding"):
        assert f.figures[key] == str(want[key]), key
    assert f.figures["basis:consent"] == str(want["basis_consent"])
    assert f.figures["basis:contract"] == str(want["basis_contract"])
    for (day, verdict), count in want["per_day"].items():  # type: ignore[attr-defined]
        assert f.figures[f"day:{day}:{verdict}"] == str(count)
    for reason, count in want["reasons"].items():  # type: ignore[attr-defined]
        assert f.figures[f"reason:{reason}"] == str(count)
    cap = int(f.figures["attempts_limit"])
    ranks = want["ranks"]
    for rank, count in ranks.items():  # type: ignore[attr-defined]
        if rank <= cap:
            assert f.figures[f"rank:{rank}"] == str(count)
    over = sum(c for r, c in ranks.items() if r > cap)  # type: ignore[attr-defined]
    assert f.figures.get("rank:over", "0") == str(over)
    assert f.figures["over_cap"] == str(over)
    distinct = int(f.figures["distinct_numbers"])
    assert abs(distinct - int(want["distinct_numbers"])) <= 1  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def trail_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trail") / "audit.jsonl"
    asyncio.run(write_trail(path))
    return path


pytestmark = pytest.mark.usefixtures("clean_cli_env")  # tests/fixtures/cli_env.py


def config_for(tmp_path: Path, trail: Path) -> Path:
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[audit]\nsink = "jsonl"\npath = "{trail}"\n', encoding="utf-8")
    return cfg


def build(tmp_path: Path, trail: Path, *extra: str) -> tuple[int, str]:
    out = tmp_path / "report.html"
    code = main(["--config", str(config_for(tmp_path, trail)), "report", "--from",
                 START.date().isoformat(), "--to", "2026-12-03", "--out", str(out), *extra])
    return code, out.read_text(encoding="utf-8") if out.exists() else ""


def test_figures_match_an_independent_count(tmp_path: Path, trail_file: Path) -> None:
    code, html = build(tmp_path, trail_file)
    assert code == 0
    f = parse(html)
    want = expected(trail_file)
    # the trail exercises every section: night stops, shadow placing at night, the cap
    assert want["night_stopped"] and want["night_placed"] and want["frequency_blocks"]
    assert want["shadow_would_block"] and want["basis_contract"]
    # the disk stalls: late originals superseded, and superseding records standing alone
    assert want["superseded"] >= 1 and want["superseding"] > want["superseded"]
    assert want["reasons"]["store_unavailable"] >= 1
    check_figures(f, want)
    assert f.chain_ok == "true"
    assert int(f.figures["chain_records"]) == want["records"] > want["decisions"]
    assert want["decisions"] == len({r["id"] for r in records(trail_file)})
    recs = records(trail_file)
    assert recs[0]["id"] in html and recs[-1]["id"] in html
    # abandon: the last trace line of the demo campaign, and the pack's 3 % limit
    assert f.figures["campaign:demo:abandon_limit"] == "0.03"
    assert float(f.figures["campaign:demo:abandon_max"]) == pytest.approx(0.1)
    assert set(f.charts) >= {"chart-per-day", "chart-reasons", "chart-hours", "chart-attempts"}
    assert f.bars["chart-per-day"] == 2 * DAYS and f.bars["chart-hours"] == 48


def test_self_contained_no_network(tmp_path: Path, trail_file: Path) -> None:
    _, html = build(tmp_path, trail_file)
    f = parse(html)
    assert "script" not in f.tags and "link" not in f.tags and "img" not in f.tags
    for attrs in f.attrs_seen:
        for name in ("src", "href"):
            assert attrs.get(name) is None
    urls = set(re.findall(r"(?:https?:)?//[\w.-]+", html))
    assert urls <= {"http://www.w3.org"}  # the SVG namespace name, never fetched
    assert "@import" not in html and "url(" not in html


def test_french_by_default_english_on_request(tmp_path: Path, trail_file: Path) -> None:
    _, fr = build(tmp_path, trail_file)
    _, en = build(tmp_path, trail_file, "--lang", "en")
    assert '<html lang="fr">' in fr and "Motifs de blocage" in fr
    assert '<html lang="en">' in en and "Block reasons" in en and "Motifs" not in en
    assert parse(fr).figures == parse(en).figures


def test_period_and_campaign_filters(tmp_path: Path, trail_file: Path) -> None:
    out = tmp_path / "one.html"
    assert main(["--config", str(config_for(tmp_path, trail_file)), "report", "--from",
                 "2026-12-01", "--to", "2026-12-01", "--campaign", "night-shadow",
                 "--out", str(out)]) == 0
    f = parse(out.read_text(encoding="utf-8"))
    recs = [r for r in decisions(trail_file) if r["campaign"] == "night-shadow"
            and r["ts"].startswith("2026-12-01")]
    assert int(f.figures["decisions"]) == len(recs) == 5
    assert int(f.figures["shadow"]) == 5
    assert int(f.figures["chain_records"]) == len(records(trail_file))  # verified whole


def test_broken_chain_is_reported_and_exit_1(tmp_path: Path, trail_file: Path) -> None:
    lines = trail_file.read_text(encoding="utf-8").splitlines(keepends=True)
    tampered = tmp_path / "audit.jsonl"
    lines[5] = lines[5].replace('"verdict":"BLOCK"', '"verdict":"ALLOW"', 1) \
        if '"verdict":"BLOCK"' in lines[5] else lines[5].replace('"ALLOW"', '"BLOCK"', 1)
    tampered.write_text("".join(lines), encoding="utf-8")
    code, html = build(tmp_path, tampered)
    assert code == 1
    f = parse(html)
    assert f.chain_ok == "false" and int(f.figures["chain_problems"]) >= 1


@pytest.mark.parametrize("argv", [
    ["--from", "2026-12-03", "--to", "2026-12-01"],
    ["--from", "yesterday", "--to", "2026-12-01"],
    ["--from", "2026-12-01", "--to", "2026-12-01", "--tz", "Mars/Olympus"],
    ["--from", "2000-01-01", "--to", "2026-12-01"],
])
def test_bad_arguments(tmp_path: Path, trail_file: Path, argv: list[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["--config", str(config_for(tmp_path, trail_file)), "report", *argv,
                 "--out", str(out)]) == 2
    assert not out.exists()


def test_hyperloglog_is_close_and_bounded() -> None:
    hll = HyperLogLog()
    for i in range(50_000):
        hll.add(f"+3361{i:07d}")
    assert abs(hll.count() - 50_000) / 50_000 < 0.05
    assert len(hll.registers) == 4096
    small = HyperLogLog()
    for i in range(10):
        small.add(str(i))
        small.add(str(i))
    assert small.count() == 10


def test_report_from_the_redis_stream(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    """The same trail written to a Redis stream: same figures as from its JSONL twin."""
    from gateway.audit import AuditSettings

    stream = f"{key_prefix}:audit"
    asyncio.run(write_trail(tmp_path / "unused", AuditSettings(
        sink="redis", redis_url=redis_url, stream_key=stream, instance_id="gw-r")))
    twin = tmp_path / "twin.jsonl"
    asyncio.run(write_trail(twin, stalls=False))
    cfg = tmp_path / "redis.toml"
    cfg.write_text(f'[audit]\nsink = "redis"\nredis_url = "{redis_url}"\n'
                   f'stream_key = "{stream}"\n', encoding="utf-8")
    out = tmp_path / "r.html"
    assert main(["--config", str(cfg), "report", "--from", START.date().isoformat(),
                 "--to", "2026-12-03", "--out", str(out)]) == 0
    f = parse(out.read_text(encoding="utf-8"))
    check_figures(f, expected(twin))
    assert f.chain_ok == "true" and f.figures["chain_records"] == str(expected(twin)["records"])
