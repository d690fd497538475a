"""What a CLI command imports: ``check`` must not load the servers, Redis or the reports.

The start-up time itself is measured by ``bench/startup.py`` (docs/benchmarks.md, CLI
start-up); this test holds the structure that makes it short. Each case runs in a fresh
interpreter (the suite's own process has imported everything already).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import scrub
from gateway.cli import scrub_args
from gateway.cli.parser import IMPORT_MODES
from gateway.store.base import ImportMode

SUBPROCESS_DEADLINE_S = 60
PACKS = Path(__file__).resolve().parent.parent / "gateway" / "core" / "packs"
AT = "2026-12-01T10:30:00+01:00"  # a Tuesday, inside the French windows

# Modules a `check` on the embedded default (memory store, no audit sink) never needs.
NOT_FOR_CHECK = [
    "redis",  # the memory store; no Redis audit sink
    "prometheus_client",  # metrics are the servers'
    "aiohttp",  # the HTTP API server
    "panoramisk",  # the AMI event consumer
    "http.server",  # the ops HTTP endpoint
    "phonenumbers.geocoder",  # 0.2 s of data, for US numbers only (gateway.core.nanp)
    "gateway.app",
    "gateway.agi.handlers",
    "gateway.ami.proxy",
    "gateway.api.server",
    "gateway.http",
    "gateway.metrics",
    "gateway.supervisor",
    "gateway.report",
    "gateway.cli.scrub_cmds",
    "gateway.scrub",  # the parser spells the one value it needed from it
    "holidays.countries",  # the package imports all ~250 countries (gateway.packs)
    "gateway.audit.redis_sink",
    "gateway.store.redis",
    # a dry-run decision writes no audit record: the configuration needs the settings only
    "gateway.audit.trail",
    "gateway.audit.jsonl",
    "gateway.audit.anchor",
    "gateway.audit.chain",
    "gateway.audit.export",
    # the demo seed checks its rows by the row rules, without the two-pass import
    "gateway.importer.run",
    "gateway.importer.fastlist",
    "gateway.importer.fastconsent",
    "gateway.importer.progress",
    "multiprocessing",  # the bulk list pass's process pool, for large files
    "concurrent.futures.process",
    "concurrent.futures.thread",  # no worker thread either (asyncio.to_thread)
    "gateway.agi.protocol",  # the configuration takes the codec's limits from agi.limits
]

PROBE = """
import contextlib, io, json, sys
from gateway.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "output": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def run_probe(tmp_path: Path, source: str, *args: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_GATEWAY_")}
    proc = subprocess.run(
        [sys.executable, "-c", source, *args], capture_output=True, text=True, env=env,
        cwd=tmp_path, timeout=SUBPROCESS_DEADLINE_S, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.splitlines()[-1])
    return result


def test_check_decides_without_the_servers_redis_or_reports(tmp_path: Path) -> None:
    result = run_probe(tmp_path, PROBE, "check", "0612345678", "--campaign", "demo",
                       "--at", AT)
    assert result["code"] == 0
    decision = json.loads(str(result["output"]))
    assert decision["verdict"] == "ALLOW"  # the whole decision ran: policy, store, engine
    modules = set(result["modules"])  # type: ignore[call-overload]  # a JSON list of str
    assert "gateway.service" in modules and "gateway.core.engine" in modules
    loaded = sorted(name for name in NOT_FOR_CHECK if name in modules)
    assert loaded == [], f"dialer-gateway check imported {loaded}"


def test_the_geocoding_data_loads_with_the_first_us_number(tmp_path: Path) -> None:
    source = """
import json, sys
from gateway.core import nanp
before = "phonenumbers.geocoder" in sys.modules
states = nanp.us_states("+13055550123")
print(json.dumps({"before": before, "states": states,
                  "after": "phonenumbers.geocoder" in sys.modules}))
"""
    result = run_probe(tmp_path, source)
    assert result == {"before": False, "states": ["FL"], "after": True}


def test_serve_loads_the_geocoding_data_before_the_first_call(tmp_path: Path) -> None:
    """The lazy import must not land in a call's decision budget: App loads it up front."""
    source = """
import json, sys
from gateway.app import App
from gateway.config import load_config
App(load_config(None))
print(json.dumps({"modules": sorted(sys.modules)}))
"""
    result = run_probe(tmp_path, source)
    assert "phonenumbers.geocoder" in result["modules"]  # type: ignore[operator]


# `check` as the whole process (the console script): the collector is off while it runs,
# and what it made is frozen before the exit, whose last collection then skips it
GC_PROBE = """
import contextlib, gc, io, json, sys
from gateway.cli import main
during = []  # per collection: had the check's configuration been imported yet?
gc.callbacks.append(lambda phase, info: phase == "start" and during.append(
    "gateway.config" in sys.modules))
sys.argv = ["dialer-gateway", *sys.argv[1:]]
as_process = sys.argv[1] == "process"
del sys.argv[1]
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main() if as_process else main(sys.argv[1:])
print(json.dumps({"code": code, "output": out.getvalue(), "enabled": gc.isenabled(),
                  "frozen": gc.get_freeze_count(), "during": during.count(True)}))
"""


def test_check_as_the_process_runs_without_the_collector_and_freezes_before_exit(
    tmp_path: Path,
) -> None:
    result = run_probe(tmp_path, GC_PROBE, "process", "check", "0612345678", "--campaign",
                       "demo", "--at", AT)
    assert result["code"] == 0
    assert json.loads(str(result["output"]))["verdict"] == "ALLOW"
    assert result["during"] == 0  # no collection once the command's imports began
    assert int(str(result["frozen"])) > 10_000  # the modules' objects, frozen
    assert result["enabled"] is True  # as it was before


def test_check_called_with_its_arguments_keeps_the_callers_collector(tmp_path: Path) -> None:
    """``main(argv)``, as the tests call it in their own process: nothing frozen, the
    collector on throughout."""
    result = run_probe(tmp_path, GC_PROBE, "library", "check", "0612345678", "--campaign",
                       "demo", "--at", AT)
    assert result["code"] == 0
    assert json.loads(str(result["output"]))["verdict"] == "ALLOW"
    assert int(str(result["during"])) > 0
    assert (result["frozen"], result["enabled"]) == (0, True)


# `python -X dev` is how a leak is looked for: a socket or transport left in a reference
# cycle is only finalized, and its ResourceWarning printed, by the exit's collection, which
# skips frozen objects. Under -X dev, check keeps its collector and freezes nothing.
DEV_PROBE = """
import gc, socket, sys
from gateway.cli import commands, main
real = commands.HANDLERS["check"]
async def leaky(args, config):  # a leak check might have: a socket nobody closes, in a cycle
    class Holder: pass
    holder = Holder()
    holder.me, holder.sock = holder, socket.socket()
    return await real(args, config)
commands.HANDLERS["check"] = leaky
sys.argv = ["dialer-gateway", *sys.argv[1:]]
code = main()
print("frozen", gc.get_freeze_count(), file=sys.stderr)
sys.exit(code)
"""


def test_check_under_dev_mode_still_shows_a_leaked_socket(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_GATEWAY_")}
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-c", DEV_PROBE, "check", "0612345678", "--campaign",
         "demo", "--at", AT], capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=SUBPROCESS_DEADLINE_S, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "ALLOW"
    assert "frozen 0" in proc.stderr
    assert "ResourceWarning: unclosed <socket.socket" in proc.stderr, proc.stderr


# What `--version` and `--help` never need: they print from the parser alone.
NOT_FOR_THE_PARSER = [
    "asyncio", "holidays", "phonenumbers", "structlog", "gateway.config", "gateway.core",
    "gateway.store", "gateway.audit", "gateway.scrub", "gateway.importer", "gateway.wiring",
    "gateway.cli.commands",
]

PARSER_PROBE = """
import contextlib, io, json, sys
from gateway.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main(sys.argv[1:])
    except SystemExit as exc:  # argparse's --version and --help exit
        code = exc.code
print(json.dumps({"code": code, "output": out.getvalue(), "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["check", "--help"]])
def test_version_and_help_start_without_the_config_core_or_asyncio(
    tmp_path: Path, argv: list[str]
) -> None:
    result = run_probe(tmp_path, PARSER_PROBE, *argv)
    assert result["code"] == 0
    assert "dialer-gateway" in str(result["output"])
    modules = set(result["modules"])  # type: ignore[call-overload]  # a JSON list of str
    loaded = sorted(m for m in NOT_FOR_THE_PARSER
                    if any(n == m or n.startswith(f"{m}.") for n in modules))
    assert loaded == [], f"dialer-gateway {' '.join(argv)} imported {loaded}"


def test_the_parser_spells_the_values_of_the_modules_it_does_not_import() -> None:
    assert IMPORT_MODES == tuple(mode.value for mode in ImportMode)
    assert scrub_args.DEFAULT_BATCH_ROWS == scrub.DEFAULT_BATCH_ROWS


def test_a_french_check_loads_the_data_of_france_only(
    tmp_path: Path,
) -> None:
    result = run_probe(tmp_path, PROBE, "check", "0612345678", "--campaign", "demo",
                       "--at", AT)
    assert result["code"] == 0
    decision = json.loads(str(result["output"]))
    assert decision["pack_id"] == "FR-2026"
    modules = set(result["modules"])  # type: ignore[call-overload]  # a JSON list of str
    # the package `holidays.countries` imports every country (docs/benchmarks.md)
    assert sorted(m for m in modules if m.startswith("holidays.countries")) == [
        "holidays.countries.france"]
    # phonenumbers loads a region's metadata when it is first asked for: France's and
    # its overseas territories' (the opposition import of the demo data reads them)
    regions = {m.rsplit("_", 1)[1] for m in modules
               if m.startswith("phonenumbers.data.region_")}
    assert "FR" in regions
    assert regions <= {"FR", "GP", "RE", "YT", "BL", "MF", "GF", "MQ", "PM"}


# --- a broken built-in pack: `check` of another jurisdiction does not read it, the
# commands that read every pack refuse it ------------------------------------------

PACKS_PROBE = """
import contextlib, io, json, sys
from pathlib import Path
from gateway import packs
packs._builtin_root = lambda: Path(sys.argv[1])  # the built-in packs read from there
from gateway.cli import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = main(sys.argv[2:])
print(json.dumps({"code": code, "output": out.getvalue(), "error": err.getvalue()}))
"""
BROKEN = "us-wy.toml"  # a US state layer: read by `check` for a US campaign only
US_CONFIG = """
[campaigns.us-test]
professional = "acme"
product_category = "telecom"
jurisdiction = "US"
caller_id = "+12025550100"
"""


@pytest.fixture
def broken_packs(tmp_path: Path) -> Path:
    root = tmp_path / "packs"
    shutil.copytree(PACKS, root, ignore=shutil.ignore_patterns("__pycache__"))
    text = (root / BROKEN).read_text(encoding="utf-8")
    assert "\n[pack]\n" in text
    (root / BROKEN).write_text(text.replace("\n[pack]\n", "\n[pack]\nwindows_tz = 1\n", 1),
                               encoding="utf-8")
    return root


def broken_message() -> str:
    return f"dialer-gateway: error: builtin:{BROKEN}: [pack] windows_tz: unknown key\n"


def test_check_of_another_jurisdiction_does_not_read_the_broken_pack(
    tmp_path: Path, broken_packs: Path,
) -> None:
    result = run_probe(tmp_path, PACKS_PROBE, str(broken_packs), "check", "0612345678",
                       "--campaign", "demo", "--at", AT)
    assert result["code"] == 0, result["error"]
    assert json.loads(str(result["output"]))["verdict"] == "ALLOW"


@pytest.mark.parametrize("argv", [["config", "check"], ["serve"]], ids=["config", "serve"])
def test_the_commands_that_read_every_pack_refuse_the_broken_one(
    tmp_path: Path, broken_packs: Path, argv: list[str],
) -> None:
    result = run_probe(tmp_path, PACKS_PROBE, str(broken_packs), *argv)
    last = str(result["error"]).splitlines(keepends=True)[-1]  # serve logs its start first
    assert (result["code"], last) == (2, broken_message())
    assert result["output"] == ""


def test_check_of_the_broken_packs_jurisdiction_refuses_it(
    tmp_path: Path, broken_packs: Path,
) -> None:
    config = tmp_path / "us.toml"
    config.write_text(US_CONFIG, encoding="utf-8")
    result = run_probe(tmp_path, PACKS_PROBE, str(broken_packs), "check", "+12125550123",
                       "--campaign", "us-test", "--config", str(config), "--at", AT)
    assert (result["code"], result["error"]) == (2, broken_message())


def test_check_still_refuses_a_looser_house_rule_of_another_jurisdiction(
    tmp_path: Path,
) -> None:
    """The packs of every campaign with house rules are read: its rules are checked
    against them at every start, as by ``serve``."""
    config = tmp_path / "two.toml"
    config.write_text(US_CONFIG + "abandon_limit = 0.5\n" + """
[campaigns.fr]
professional = "acme"
product_category = "telecom"
""", encoding="utf-8")
    result = run_probe(tmp_path, PACKS_PROBE, str(PACKS), "check", "0612345678",
                       "--campaign", "fr", "--config", str(config), "--at", AT)
    assert (result["code"], result["error"]) == (2, (
        "dialer-gateway: error: campaigns.us-test.abandon_limit: 50.00% is not below the "
        "pack US-FEDERAL's limit 3.00%\n"))


# --- the packages that name their exports lazily (PEP 562) -------------------------


@pytest.mark.parametrize("package", ["gateway.audit", "gateway.importer"])
def test_a_lazy_package_names_each_export_from_its_module(package: str) -> None:
    """Every name of ``__all__`` resolves, to the object its module defines."""
    module = importlib.import_module(package)
    lazy: dict[str, str] = module._MODULES
    assert sorted(lazy) == sorted(module.__all__)
    for name, source in lazy.items():
        defining = importlib.import_module(f"{package}.{source}")
        assert getattr(module, name) is getattr(defining, name), name
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018 -- the lookup itself is the test
