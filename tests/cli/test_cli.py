"""The ``dialer-gateway`` command line: in-process ``main()`` and the installed script."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.cli import main
from gateway.config import load_config
from gateway.core.model import Attempt
from gateway.service import Service
from gateway.store.memory import MemoryStore
from gateway.wiring import audit_trail, build_policy

AT = "2026-12-01T10:30:00+01:00"  # a Tuesday, inside the French windows
CHECK_KEYS = {
    "verdict", "reason", "e164", "retry_after_s", "campaign", "at", "zones", "local_times",
    "pack_id", "pack_hash", "consent_id", "contract_id", "list_versions", "attempts_seen",
    "attempts_limit", "house_rule", "trace", "dry_run",
}
SCRIPT = Path(sys.executable).with_name("dialer-gateway")
SUBPROCESS_DEADLINE_S = 60


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("DIALER_GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # relative default paths (audit file) land in tmp
    # main() configures logging process-wide (as the console script must): restore it
    structlog_config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    structlog.configure(**structlog_config)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def check_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run(capsys, "check", *argv)
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def redis_config(tmp_path: Path, redis_url: str, key_prefix: str) -> Path:
    return write(tmp_path / "gateway.toml", f"""
[store]
url = "{redis_url}"
key_prefix = "{key_prefix}"
socket_timeout_s = 5.0
connect_timeout_s = 5.0

[audit]
path = "{tmp_path / 'audit.jsonl'}"
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --- check on the embedded default (demo data) ------------------------------------------


def test_check_prints_the_decision_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    doc = check_json(capsys, "06 12 34 56 78", "--campaign", "demo", "--at", AT)
    assert set(doc) == CHECK_KEYS
    assert (doc["verdict"], doc["reason"], doc["e164"]) == ("ALLOW", "ok", "+33612345678")
    assert doc["consent_id"] == "demo-c1" and doc["dry_run"] is True
    assert doc["zones"] == ["Europe/Paris"]
    assert doc["local_times"] == ["2026-12-01T10:30:00+01:00"]
    assert doc["pack_id"] and len(doc["pack_hash"]) == 64
    assert {lv["name"] for lv in doc["list_versions"]} >= {"consents", "opposition:bloctel"}
    assert all(isinstance(t, str) for t in doc["trace"]) and doc["trace"]


# The examples of docs/cli.md: keep them true.
DEMO_CASES = [
    ("06 12 34 56 78", None, AT, "ALLOW", "ok"),
    ("06 12 34 56 79", None, AT, "BLOCK", "consent_revoked"),
    ("06 12 34 56 80", None, AT, "BLOCK", "consent_expired"),
    ("06 12 34 56 81", None, AT, "BLOCK", "opposition"),
    ("06 12 34 56 82", None, AT, "BLOCK", "opposition"),
    ("06 12 34 56 84", None, AT, "BLOCK", "no_consent"),
    ("01 99 00 00 01", None, AT, "ALLOW", "ok"),
    ("06 12 34 56 78", None, "2026-12-05T10:30:00+01:00", "BLOCK", "outside_hours"),
    ("0262 20 12 34", None, AT, "BLOCK", "caller_id_forbidden"),
    ("0262 20 12 34", "09 47 80 00 01", AT, "BLOCK", "outside_hours"),
    ("0262 20 12 34", "09 47 80 00 01", "2026-12-01T07:30:00+01:00", "ALLOW", "ok"),
    ("0590 12 34 56", "09 47 50 00 01", AT, "BLOCK", "outside_hours"),
    ("0590 12 34 56", "09 47 50 00 01", "2026-12-01T16:30:00+01:00", "ALLOW", "ok"),
    ("06 12 34 56 85", None, AT, "BLOCK", "opposition"),
    ("0692 12 34 56", "09 47 80 00 01", "2026-12-01T09:30:00+01:00", "ALLOW", "ok"),
    ("06 12 34 56 83", None, "2026-12-05T21:30:00+01:00", "ALLOW", "ok"),  # agreed slot
    ("12345", None, AT, "BLOCK", "invalid_number"),
]


@pytest.mark.parametrize(("number", "caller_id", "at", "verdict", "reason"), DEMO_CASES)
def test_demo_answers(capsys: pytest.CaptureFixture[str], number: str, caller_id: str | None,
                      at: str, verdict: str, reason: str) -> None:
    extra = ["--caller-id", caller_id] if caller_id else []
    doc = check_json(capsys, number, "--campaign", "demo", "--at", at, *extra)
    assert (doc["verdict"], doc["reason"]) == (verdict, reason), doc["trace"]


def test_check_contract_and_two_zone_number(capsys: pytest.CaptureFixture[str]) -> None:
    doc = check_json(capsys, "01 99 00 00 01", "--campaign", "demo", "--at", AT)
    assert doc["contract_id"] == "DEMO-CTR-0001" and doc["consent_id"] is None
    doc = check_json(capsys, "0692123456", "--campaign", "demo", "--at", AT)
    assert doc["zones"] == ["Indian/Mayotte", "Indian/Reunion"]
    assert len(doc["local_times"]) == 2


def test_check_unknown_campaign_is_a_decision(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", "0612345678", "--campaign", "nope", "--at", AT)
    assert code == 0
    assert json.loads(out)["reason"] == "campaign_unknown"
    assert "not configured" in err


def test_check_needs_an_offset(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", "0612345678", "--campaign", "demo",
                         "--at", "2026-12-01T10:30:00")
    assert code == 2 and out == ""
    assert "--at" in err and "offset" in err


@pytest.mark.parametrize("at", ["9999-12-31T23:00:00+00:00", "0001-01-01T00:00:00+00:00"])
def test_check_at_the_ends_of_the_calendar_is_a_usage_error(
        capsys: pytest.CaptureFixture[str], at: str) -> None:
    """The zone arithmetic overflowed: a traceback, and exit 1 instead of 2."""
    code, out, err = run(capsys, "check", "0612345678", "--campaign", "demo", "--at", at)
    assert code == 2 and out == ""
    assert "--at" in err and "outside 2000-2199" in err


def test_check_without_demo_seed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = write(tmp_path / "nodemo.toml", "[demo]\nseed = false\n")
    doc = check_json(capsys, "--config", str(cfg), "0612345678", "--campaign", "demo",
                     "--at", AT)
    assert doc["reason"] == "no_consent"


# --- config check ---------------------------------------------------------------------


def test_config_check_default(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "check")
    assert code == 0
    doc = json.loads(out)
    assert doc["store"]["url"] == "memory://" and "demo" in doc["campaigns"]


def test_config_check_redacts_secrets(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    cfg = write(tmp_path / "s.toml", '[ami]\nsecret = "s3cr3t-value"\n'
                '[store]\nurl = "redis://user:hunter2@127.0.0.1:6379/0"\n')
    code, out, _ = run(capsys, "config", "check", "--config", str(cfg))
    assert code == 0
    assert "s3cr3t-value" not in out and "hunter2" not in out
    assert '"***"' in out and json.loads(out)["store"]["url"].startswith("redis://user:***@")


@pytest.mark.parametrize(("text", "named"), [
    ("[store]\nurll = 'memory://'\n", "store.urll"),
    ("[agi]\nlisten = 'nowhere'\n", "agi.listen"),
    ("[store\n", "invalid TOML"),
    ("[campaigns.x]\nprofessional = 'a'\n", "campaigns.x.product_category"),
])
def test_config_check_bad_file_names_the_key(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path, text: str, named: str) -> None:
    cfg = write(tmp_path / "bad.toml", text)
    code, out, err = run(capsys, "--config", str(cfg), "config", "check")
    assert code == 2 and out == ""
    assert named in err and str(cfg) in err


def test_config_from_environment(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "env.toml", "[demo]\nseed = false\n")
    monkeypatch.setenv("DIALER_GATEWAY_CONFIG", str(cfg))
    code, out, _ = run(capsys, "config", "check")
    assert code == 0 and json.loads(out)["demo"]["seed"] is False


# --- usage errors -----------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    [],
    ["frobnicate"],
    ["check", "0612345678"],
    ["consent", "import", "x.csv", "--mode", "sideways"],
    ["opposition", "import", "x.csv"],
    ["audit", "export", "--format", "xml"],
])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert "error" in err


def test_bad_source_and_number(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "opposition", "add", "0612345678", "--source", "Bad Name")
    assert code == 2 and "--source" in err
    code, _, err = run(capsys, "opposition", "add", "not-a-number")
    assert code == 2 and "not a possible phone number" in err


def test_store_unavailable_exits_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = write(tmp_path / "down.toml", f"[store]\nurl = \"redis://127.0.0.1:{free_port()}/0\"\n"
                "connect_timeout_s = 1.0\nsocket_timeout_s = 1.0\n")
    for argv in (["lists", "status"], ["check", "0612345678", "--campaign", "demo"],
                 ["opposition", "add", "0612345678"]):
        code, out, err = run(capsys, "--config", str(cfg), *argv)
        assert code == 3, err
        assert "unavailable" in err and out == ""


# --- lists against a real redis-server --------------------------------------------------

CONSENTS = """number,professional,product_category,collected_at,expires_at,channel,proof_ref
06 12 34 56 78,demo-pro,telecom,2026-09-01T10:00:00+02:00,2027-08-31T10:00:00+02:00,web,p1
"""


def test_imports_lists_and_single_changes_on_redis(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, redis_config: Path) -> None:
    cfg = ["--config", str(redis_config)]
    consents = write(tmp_path / "consents.csv", CONSENTS)
    code, out, err = run(capsys, *cfg, "consent", "import", str(consents), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["list"], report["rows_read"], report["imported"], report["mode"]) == (
        "consents", 1, 1, "merge")
    assert "warning" not in err

    doc = check_json(capsys, *cfg, "0612345678", "--campaign", "demo", "--at", AT)
    assert (doc["verdict"], doc["attempts_seen"]) == ("ALLOW", 0)
    doc = check_json(capsys, *cfg, "0612345678", "--campaign", "demo", "--at", AT)
    assert doc["attempts_seen"] == 0  # check is a dry run: nothing reserved
    assert not (tmp_path / "audit.jsonl").exists()  # ... and nothing audited

    code, out, _ = run(capsys, *cfg, "opposition", "add", "06 12 34 56 78", "--json")
    assert code == 0 and json.loads(out)["e164"] == "+33612345678"
    assert check_json(capsys, *cfg, "0612345678", "--campaign", "demo",
                      "--at", AT)["reason"] == "opposition"
    code, out, _ = run(capsys, *cfg, "opposition", "remove", "+33612345678", "--json")
    assert code == 0 and json.loads(out)["removed"] is True
    code, out, _ = run(capsys, *cfg, "opposition", "remove", "+33612345678")
    assert code == 0 and "was not on internal" in out

    code, out, _ = run(capsys, *cfg, "consent", "revoke", "0612345678", "--professional",
                       "demo-pro", "--at", "2026-11-30T10:00:00+01:00", "--json")
    assert code == 0 and json.loads(out)["withdrawn"] == 1
    assert check_json(capsys, *cfg, "0612345678", "--campaign", "demo",
                      "--at", AT)["reason"] == "consent_revoked"

    bloctel = write(tmp_path / "bloctel.txt", "# snapshot\n0612345679\n06 12 34 56 80\n")
    code, out, err = run(capsys, *cfg, "opposition", "import", str(bloctel),
                         "--source", "bloctel")
    assert code == 0, err
    assert "opposition:bloctel: imported 2 of 2 rows" in out

    code, out, _ = run(capsys, *cfg, "lists", "status", "--json")
    assert code == 0
    status = {entry["name"]: entry for entry in json.loads(out)["lists"]}
    assert status["opposition:bloctel"]["size"] == 2
    assert status["consents"]["size"] == 1 and status["consents"]["version"] >= 1
    assert len(status["consents"]["content_hash"]) == 64

    code, out, _ = run(capsys, *cfg, "lists", "status")
    assert code == 0 and "opposition:bloctel" in out


def test_bad_file_changes_nothing_and_names_the_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, redis_config: Path) -> None:
    cfg = ["--config", str(redis_config)]
    good = write(tmp_path / "good.txt", "0612345678\n")
    assert run(capsys, *cfg, "opposition", "import", str(good), "--source", "bloctel")[0] == 0
    _, before, _ = run(capsys, *cfg, "lists", "status", "--json")
    bad = write(tmp_path / "bad.csv", "number,registered_at\n0612345679,2026-01-01T00:00:00Z\n"
                "0612345680,2026-01-01T00:00:00\n")
    code, out, err = run(capsys, *cfg, "opposition", "import", str(bad), "--source", "bloctel")
    assert code == 2 and out == ""
    assert "line 3, column registered_at" in err and "nothing imported" in err
    _, after, _ = run(capsys, *cfg, "lists", "status", "--json")
    strip = [{k: v for k, v in e.items() if k != "age_s"} for e in json.loads(before)["lists"]]
    assert [{k: v for k, v in e.items() if k != "age_s"}
            for e in json.loads(after)["lists"]] == strip


def test_import_on_memory_store_warns(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    consents = write(tmp_path / "c.csv", CONSENTS)
    code, out, err = run(capsys, "consent", "import", str(consents))
    assert code == 0
    assert "will not persist" in err
    assert "consents: imported 1 of 1 rows" in out


def test_import_missing_file_and_stdin(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    code, _, err = run(capsys, "contract", "import", str(tmp_path / "missing.csv"))
    assert code == 2 and "cannot read" in err
    code, _, err = run(capsys, "contract", "import", "-")
    assert code == 2 and "standard input" in err


# --- audit ----------------------------------------------------------------------------


async def _write_audit(config_path: Path) -> None:
    config = load_config(config_path)
    store = MemoryStore()
    async with audit_trail(config) as trail:
        service = Service(policy=build_policy(config), store=store, audit=trail, budget_s=5.0,
                          clock=lambda: datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
        for number in ("0612345678", "0612345679", "garbage"):
            await service.screen(Attempt(number=number, campaign_id="demo"))
    await store.close()


async def test_audit_verify_and_export(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    cfg = write(tmp_path / "a.toml", f'[audit]\npath = "{audit}"\n')
    await _write_audit(cfg)
    capsys.readouterr()  # the service's own logs (structlog defaults print to stdout)
    assert len(audit.read_text().splitlines()) == 3

    code, out, err = await _in_thread(capsys, "audit", "verify", "--config", str(cfg))
    assert code == 0, err
    assert json.loads(out)["ok"] is True and json.loads(out)["records"] == 3

    code, out, err = await _in_thread(capsys, "audit", "export", "--config", str(cfg),
                                      "--number", "06 12 34 56 79", "--format", "csv")
    assert code == 0, err
    rows = out.strip().splitlines()
    assert len(rows) == 2 and rows[0].startswith("ts,") and "+33612345679" in rows[1]
    assert "exported 1 of 3 records" in err

    lines = audit.read_text().splitlines()
    lines[1] = lines[1].replace('"BLOCK"', '"ALLOW"')
    audit.write_text("\n".join(lines) + "\n")
    code, out, _ = await _in_thread(capsys, "audit", "verify", "--config", str(cfg))
    assert code == 1 and json.loads(out)["ok"] is False


async def _in_thread(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """main() runs its own event loop: call it off this test's loop."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- the installed console script ---------------------------------------------------------


def test_installed_console_script(tmp_path: Path) -> None:
    assert SCRIPT.exists(), f"{SCRIPT} missing: install the project (make test does pip -e)"
    done = subprocess.run(
        [str(SCRIPT), "check", "+33612345678", "--campaign", "demo", "--at", AT],
        capture_output=True, text=True, timeout=SUBPROCESS_DEADLINE_S, check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert set(doc) == CHECK_KEYS and doc["verdict"] == "ALLOW"
    bad = write(tmp_path / "bad.toml", "[http]\nlisten = 12\n")
    done = subprocess.run([str(SCRIPT), "config", "check", "--config", str(bad)],
                          capture_output=True, text=True, timeout=SUBPROCESS_DEADLINE_S,
                          check=False)
    assert done.returncode == 2 and "http.listen" in done.stderr


async def test_serve_starts_and_stops_on_sigterm(tmp_path: Path) -> None:
    assert SCRIPT.exists(), f"{SCRIPT} missing: install the project (make test does pip -e)"
    cfg = write(tmp_path / "serve.toml", f"""
[agi]
listen = "127.0.0.1:0"
[http]
listen = "127.0.0.1:0"
[logging]
format = "json"
[audit]
path = "{tmp_path / 'audit.jsonl'}"
""")
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT), "serve", "--config", str(cfg),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    events: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(SUBPROCESS_DEADLINE_S):
            while not any(e.get("event") == "gateway.started" for e in events):
                line = await proc.stderr.readline()
                assert line, f"serve exited early: {events}"
                events.append(json.loads(line))
            started = next(e for e in events if e["event"] == "gateway.started")
            host, _, port = started["agi"].rpartition(":")
            _reader, writer = await asyncio.open_connection(host, int(port))  # accepting
            writer.close()
            await writer.wait_closed()
            proc.terminate()
            _out, rest = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert started["campaigns"] == ["demo"]
    assert b"gateway.stopped" in rest


async def test_audit_verify_on_a_redis_stream(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path, redis_url: str,
                                              key_prefix: str) -> None:
    cfg = write(tmp_path / "r.toml", f"""
[store]
url = "{redis_url}"
key_prefix = "{key_prefix}"
[audit]
sink = "redis"
stream_key = "{key_prefix}:audit"
write_timeout_s = 5.0
""")
    await _write_audit(cfg)
    capsys.readouterr()
    code, out, err = await _in_thread(capsys, "audit", "verify", "--config", str(cfg))
    assert code == 0, err
    assert json.loads(out)["records"] == 3
    code, out, err = await _in_thread(capsys, "audit", "export", "--config", str(cfg),
                                      "--campaign", "demo")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 3
