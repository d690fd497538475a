"""Names of a package imported from its submodules when first asked for (PEP 562).

A package whose ``__init__`` imported every submodule to re-export its names would load
them all for a command that needs one (``dialer-gateway check``: docs/benchmarks.md, CLI
start-up; tests/test_cli_imports.py). Such a package names its exports and the
submodule of each, and gets its module ``__getattr__`` and ``__dir__`` here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any


def lazy_exports(package: str, modules: Mapping[str, str], names: Sequence[str],
                 namespace: MutableMapping[str, Any],
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``modules`` maps each exported name to
    the submodule that defines it; ``names`` is the package's ``__all__`` and
    ``namespace`` its ``globals()``, where a name is kept once imported (the next lookup
    does not come back here)."""

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *names])

    return __getattr__, __dir__
