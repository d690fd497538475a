"""``gateway.eventloop``: serve's loop is uvloop when installed, asyncio's own otherwise."""

from __future__ import annotations

import asyncio
import importlib.util

from gateway import eventloop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


def test_run_uses_uvloop_exactly_when_it_is_installed() -> None:
    installed = importlib.util.find_spec("uvloop") is not None
    assert eventloop.loop_name() == ("uvloop" if installed else "asyncio")
    assert eventloop.run(_loop_module()) == eventloop.loop_name()


def test_run_returns_the_coroutine_result_and_closes_its_loop() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> int:
        loops.append(asyncio.get_running_loop())
        return 42

    assert eventloop.run(main()) == 42
    assert loops[0].is_closed()
