"""The event loop ``serve`` runs on: ``[service] event_loop``.

``"auto"`` (the default): uvloop when it is installed (``pip install
dialer-gateway[uvloop]``), else asyncio's own loop; ``"asyncio"``: asyncio's own loop,
even with uvloop installed; ``"uvloop"``: uvloop, and the configuration is refused when
it is not installed. uvloop costs 4-9 % less CPU per call and lowers the p99 at 1,000
calls/s (docs/benchmarks.md, "sixth round"). It stayed opt-in until the AGI server
accepted its connections itself on uvloop, as asyncio's loop does: uvloop's libuv
accepts one connection per turn of the loop, which let the kernel's accept queue
overflow at twice a worker's capacity (docs/benchmarks.md, "uvloop under overload"). The
supervisor and every worker process run on the same choice (docs/operations.md).
The CLI's other commands keep asyncio's loop (the functions' default here): they are
short and mostly wait on files or the store.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:  # imported by run(): the configuration's check (installed()) needs none
    import asyncio

__all__ = ["CHOICES", "installed", "loop_name", "run"]

T = TypeVar("T")
Choice = Literal["auto", "asyncio", "uvloop"]
CHOICES: tuple[Choice, ...] = ("auto", "asyncio", "uvloop")


def installed() -> bool:
    """Whether uvloop can be imported here (without importing it)."""
    return importlib.util.find_spec("uvloop") is not None


def _factory(choice: Choice) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if choice == "asyncio":
        return None
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]  # the optional extra
    except ImportError:
        if choice == "uvloop":  # the configuration check refuses it first
            raise RuntimeError("service.event_loop = \"uvloop\": uvloop is not installed "
                               "(pip install dialer-gateway[uvloop])") from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name(choice: Choice = "asyncio") -> str:
    """``"uvloop"`` or ``"asyncio"``: what :func:`run` uses here for ``choice``."""
    return "asyncio" if _factory(choice) is None else "uvloop"


def run(main: Coroutine[Any, Any, T], choice: Choice = "asyncio") -> T:
    """:func:`asyncio.run` on the loop ``choice`` names."""
    import asyncio

    with asyncio.Runner(loop_factory=_factory(choice)) as runner:
        return runner.run(main)
