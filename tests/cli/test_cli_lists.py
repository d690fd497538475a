"""``lists show`` on a number held by several lists, ``lists drop``, ``--dry-run``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import redis_config, run, write  # noqa: F401 -- the fixture

NUMBER = "+33612345678"


def test_lists_show_on_a_number_in_several_lists(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path, redis_config: Path) -> None:  # noqa: F811
    cfg = str(redis_config)
    bloctel = write(tmp_path / "bloctel.txt", f"{NUMBER}\n+33612345679\n")
    consents = write(tmp_path / "consents.csv", (
        "number,professional,product_category,collected_at,expires_at,channel,proof_ref\n"
        f"{NUMBER},demo-pro,telecom,2026-09-01T10:00:00Z,2027-08-31T10:00:00Z,web,P-42\n"))
    assert run(capsys, "opposition", "import", str(bloctel), "--source", "bloctel",
               "--config", cfg)[0] == 0
    assert run(capsys, "opposition", "add", "06 12 34 56 78", "--source", "internal",
               "--config", cfg)[0] == 0
    assert run(capsys, "consent", "import", str(consents), "--config", cfg)[0] == 0

    code, out, err = run(capsys, "lists", "show", "06 12 34 56 78", "--json", "--config", cfg)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["e164"] == NUMBER
    by_list = {o["list"]: o for o in doc["oppositions"]}
    assert sorted(by_list) == ["opposition:bloctel", "opposition:internal"]
    assert by_list["opposition:bloctel"]["how"] == "imported snapshot"
    assert by_list["opposition:internal"]["how"] == "added one by one"
    assert all(o["since"] for o in doc["oppositions"])
    (consent,) = doc["professionals"]["demo-pro"]["consents"]
    assert consent["proof_ref"] == "P-42"

    code, out, _ = run(capsys, "lists", "show", NUMBER, "--config", cfg)
    assert code == 0
    assert "on opposition:bloctel since" in out and "on opposition:internal since" in out
    assert "proof P-42" in out

    code, _, err = run(capsys, "lists", "show", "06 12 AB CD EF", "--config", cfg)
    assert code == 2 and "letter 'A'" in err


def test_lists_drop_removes_a_mistyped_list(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path, redis_config: Path) -> None:  # noqa: F811
    cfg = str(redis_config)
    data = write(tmp_path / "b.txt", f"{NUMBER}\n")
    run(capsys, "opposition", "import", str(data), "--source", "blocteel", "--config", cfg)
    code, out, _ = run(capsys, "lists", "drop", "opposition:blocteel", "--config", cfg)
    assert code == 0 and "dropped" in out
    _, out, _ = run(capsys, "lists", "status", "--json", "--config", cfg)
    assert json.loads(out)["lists"] == []
    _, out, _ = run(capsys, "lists", "show", NUMBER, "--json", "--config", cfg)
    assert json.loads(out)["oppositions"] == []
    code, out, _ = run(capsys, "lists", "drop", "blocteel", "--config", cfg)
    assert code == 1 and "no such list" in out


def test_import_dry_run_changes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        redis_config: Path) -> None:  # noqa: F811
    cfg = str(redis_config)
    data = write(tmp_path / "b.txt", f"{NUMBER}\n07 00 12 34 56\n")
    code, out, err = run(capsys, "opposition", "import", str(data), "--source", "bloctel",
                         "--dry-run", "--config", cfg)
    assert code == 0, err
    assert "dry run: 2 rows valid" in out and "nothing changed" in out
    assert "1 numbers are possible but unknown" in err
    _, out, _ = run(capsys, "lists", "status", "--json", "--config", cfg)
    assert json.loads(out)["lists"] == []
