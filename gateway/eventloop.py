"""The event loop ``serve`` runs on: uvloop when it is installed, else asyncio's own.

``pip install dialer-gateway[uvloop]`` installs it; uninstalling it is the way back.
The supervisor and every worker process choose the same way (docs/operations.md,
docs/benchmarks.md for what it buys). The CLI's other commands keep asyncio's loop:
they are short and mostly wait on files or the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_name", "run"]

T = TypeVar("T")


def _factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]  # the optional extra
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name() -> str:
    """``"uvloop"`` or ``"asyncio"``: what :func:`run` uses here."""
    return "asyncio" if _factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """:func:`asyncio.run` on the chosen loop."""
    with asyncio.Runner(loop_factory=_factory()) as runner:
        return runner.run(main)
