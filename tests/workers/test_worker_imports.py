"""A worker runs the supervisor's code, whatever lies in the working directory.

The supervisor starts each worker as ``python -m gateway.worker_main``; ``-m`` puts the
working directory first on ``sys.path``, before the standard library and the installed
packages. A service started from a directory holding a ``gateway/`` folder (an older
checkout) or a ``json.py`` (a file dropped in the state directory, systemd's
``WorkingDirectory``) ran that code in every worker, not the supervisor's.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest

import gateway
from gateway.supervisor import interpreter_options, worker_command
from tests.workers.support import serve, wait_for, workers_in

DECOY = """
from pathlib import Path
Path({marker!r}).write_text("imported by a worker")
raise ImportError("a decoy in the working directory was imported")
"""


def plant(cwd: Path) -> list[Path]:
    """Decoys of the gateway package and of a standard-library module in ``cwd``; the
    markers each writes when imported."""
    markers = [cwd / "decoy-gateway.imported", cwd / "decoy-json.imported"]
    (cwd / "gateway").mkdir()
    (cwd / "gateway" / "__init__.py").write_text(DECOY.format(marker=str(markers[0])))
    (cwd / "gateway" / "worker_main.py").write_text(DECOY.format(marker=str(markers[0])))
    (cwd / "json.py").write_text(DECOY.format(marker=str(markers[1])))
    return markers


def test_workers_ignore_code_in_the_working_directory(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    markers = plant(tmp_path)
    with contextlib.contextmanager(serve)(tmp_path, redis_url, key_prefix, "demo") as served:
        ready = served.until("READY")[-1]
        assert ready["READY"] == "1"
        pids = wait_for(lambda: workers_in(tmp_path) if len(workers_in(tmp_path)) == 2
                        else None, "two workers running")
        doc = served.readyz()
        assert doc["ready"] is True, doc
        assert sorted(w["pid"] for w in doc["workers"]) == sorted(pids)
        assert [m.name for m in markers if m.exists()] == []
        assert "decoy" not in served.log_text()


def test_only_an_uninstalled_source_tree_is_handed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """``-P`` always; the supervisor's package directory through PYTHONPATH only when it
    came from the entry ``-P`` drops (``python -m gateway`` run in a source tree)."""
    root = str(Path(gateway.__file__).resolve().parent.parent)
    command, _ = worker_command()
    assert command == [sys.executable, *interpreter_options(), "-P", "-m", "gateway.worker_main"]
    monkeypatch.setattr(sys, "path", [root, *sys.path[1:]])  # `python -m gateway` there
    assert worker_command()[1] == root
    monkeypatch.setattr(sys, "path", [str(Path(sys.executable).parent), *sys.path[1:]])
    assert worker_command()[1] is None  # the console script: found as installed


def test_workers_run_with_the_supervisors_interpreter_options(
        tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    """A supervisor started as ``python -s -O -X utf8 -m gateway``: each worker has the
    same options (without them, ``-s`` or ``-I`` on the supervisor left the workers
    importing from the user's site-packages, ``~/.local`` in the unit's home and
    ``WorkingDirectory``). The supervisor finds the package as it was installed or
    through the test's ``PYTHONPATH``, never through the working directory."""
    options = ("-s", "-O", "-X", "utf8")
    with contextlib.contextmanager(serve)(tmp_path, redis_url, key_prefix, "demo",
                                          python=options) as served:
        assert served.until("READY")[-1]["READY"] == "1"
        pids = wait_for(lambda: workers_in(tmp_path) if len(workers_in(tmp_path)) == 2
                        else None, "two workers running")
        for pid in pids:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            start = argv.index("-m")
            assert {"-O", "-s", "-Xutf8"} <= set(argv[1:start]), argv
            assert argv[start - 1:start + 2] == ["-P", "-m", "gateway.worker_main"], argv
        assert served.readyz()["ready"] is True

