"""The dialer session sees its proxy through a small context (``ProxyContext``), not the
proxy module: no import circle. That ``AmiProxy`` offers the context is checked by mypy."""

from __future__ import annotations

import ast
from pathlib import Path

import gateway.ami.session as session_module


def test_the_session_module_does_not_import_the_proxy() -> None:
    tree = ast.parse(Path(session_module.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names}
    assert "gateway.ami.proxy" not in imported
    assert "gateway.ami.upstream" in imported  # the scan sees the module's real imports

