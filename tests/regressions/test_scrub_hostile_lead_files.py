"""Attack: hostile lead files and careless arguments given to ``dialer-gateway scrub``
(hostile review of issue 13): each is a usage error (exit 2, nothing written) or a row
reported INVALID, never a traceback, and the lead file itself is never replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main

pytestmark = pytest.mark.usefixtures("clean_cli_env")  # tests/fixtures/cli_env.py


def leads(tmp_path: Path, text: str = "id,phone\n1,06 12 34 56 78\n") -> Path:
    path = tmp_path / "leads.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00",
                                "2200-01-01T00:00:00Z"])
def test_at_outside_the_calendar_is_a_usage_error(tmp_path: Path, at: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.csv"
    assert main(["scrub", str(leads(tmp_path)), "--campaign", "demo", "--at", at,
                 "--out", str(out)]) == 2
    assert "outside 2000-2199" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("header, problem", [
    ('number,"' + "x" * 200_000 + '"', "unreadable header row: field larger than"),
    ("number" + ",c" * 1000, "the header has 1001 columns (at most 1000)"),
])
def test_header_unreadable_or_too_wide_is_a_usage_error(
        tmp_path: Path, header: str, problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.csv"
    assert main(["scrub", str(leads(tmp_path, f"{header}\n0612345678\n")), "--campaign",
                 "demo", "--out", str(out)]) == 2
    assert problem in capsys.readouterr().err
    assert not out.exists()
