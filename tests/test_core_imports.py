"""The core is pure: stdlib plus two offline data libraries, no clock reads, no file access."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "gateway" / "core"
ALLOWED_THIRD_PARTY = {"phonenumbers", "holidays"}
FORBIDDEN_CALLS = {
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("time", "time"), ("time", "monotonic"), ("time", "perf_counter"), ("time", "time_ns"),
    ("time", "localtime"), ("time", "gmtime"), ("time", "monotonic_ns"),
}
FORBIDDEN_NAMES = {"now", "utcnow", "today", "monotonic", "perf_counter", "time_ns"}
# file access: the modules that reach files or package resources, the builtin `open`, and
# the path/resource methods that read, write or list (packs are read by gateway.packs)
FILE_MODULES = {"pathlib", "os", "io", "shutil", "glob", "tempfile", "fileinput", "mmap",
                "importlib", "pkgutil", "zipfile", "tarfile", "sqlite3", "dbm", "shelve"}
FILE_BUILTINS = {"open"}
FILE_METHODS = {"open", "read_bytes", "read_text", "write_bytes", "write_text", "glob", "rglob",
                "iterdir", "listdir", "scandir", "walk", "files", "is_dir", "is_file", "exists",
                "stat", "load"}


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def imported_roots(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: inside gateway.core by construction
                continue
            found.append((node.lineno, node.module or ""))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
            node.func.id == "__import__"
        ):
            found.append((node.lineno, "__import__"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module"):
            found.append((node.lineno, "importlib.import_module"))
    return found


def allowed(module: str) -> bool:
    root = module.split(".")[0]
    if module == "gateway.core" or module.startswith("gateway.core."):
        return True
    if root in ALLOWED_THIRD_PARTY:
        return True
    if module in {"__import__", "importlib.import_module"}:
        return False
    return root in sys.stdlib_module_names and root not in {"asyncio", "socket", "threading",
                                                            "subprocess", "logging", "time"}


def test_core_has_modules() -> None:
    names = {p.name for p in core_modules()}
    assert {"engine.py", "numbers.py", "policy.py", "model.py", "rules.py"} <= names


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_core_imports_only_stdlib_and_data_libraries(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    bad = [f"{path.name}:{line}: {mod}" for line, mod in imported_roots(tree) if not allowed(mod)]
    assert bad == []


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_core_never_reads_the_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = node.value
            owner_name = (owner.id if isinstance(owner, ast.Name)
                          else owner.attr if isinstance(owner, ast.Attribute) else "")
            if (owner_name, node.attr) in FORBIDDEN_CALLS:
                bad.append(f"{path.name}:{node.lineno}: {owner_name}.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module in {"time", "datetime"}:
            bad += [f"{path.name}:{node.lineno}: from {node.module} import {a.name}"
                    for a in node.names if a.name in FORBIDDEN_NAMES]
    assert bad == []


def file_accesses(tree: ast.AST) -> list[str]:
    """Imports of file-reaching modules, calls of ``open()`` and of file methods."""
    found = []
    for line, module in imported_roots(tree):
        if module.split(".")[0] in FILE_MODULES:
            found.append(f"{line}: import {module}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id in FILE_BUILTINS:
            found.append(f"{node.lineno}: {node.func.id}()")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in FILE_METHODS:
            found.append(f"{node.lineno}: .{node.func.attr}()")
    return found


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_core_never_touches_files(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    assert [f"{path.name}:{hit}" for hit in file_accesses(tree)] == []


def test_the_checker_catches_what_it_must() -> None:
    """The scans above are not vacuous: a forbidden module and clock read are detected."""
    source = "import asyncio\nimport redis\nfrom gateway.store import base\nx = datetime.now()\n"
    tree = ast.parse(source)
    assert [m for _, m in imported_roots(tree) if not allowed(m)] == [
        "asyncio", "redis", "gateway.store"]
    attrs = [(n.value.id, n.attr) for n in ast.walk(tree)
             if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)]
    assert ("datetime", "now") in attrs


def test_the_file_checker_catches_what_it_must() -> None:
    """The file scan is not vacuous: each way the core once read its packs is detected."""
    source = ("from importlib import resources\nfrom pathlib import Path\nimport os.path\n"
              "data = open('p.toml', 'rb').read()\nfiles = sorted(Path('d').glob('*.toml'))\n"
              "raw = resources.files('gateway.core').joinpath('packs').read_bytes()\n"
              "import tomllib\npack = tomllib.loads('a = 1')\n")
    assert sorted(file_accesses(ast.parse(source))) == [
        "1: import importlib", "2: import pathlib", "3: import os.path",
        "4: open()", "5: .glob()", "6: .files()", "6: .read_bytes()"]
