"""Attack: a value that would smuggle a variable or a command into the answer.

A number ``%0A``-encoded in the query string, or a comma in a value echoed back, must
never reach the wire: MSet splits on commas, res_agi on newlines. We fail closed instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.core.model import Attempt
from gateway.service_api import ScreenResult
from tests.agi.fakes import result
from tests.agi.harness import running_server
from tests.agi.peer import screen_session


class EchoScreener:
    """A (buggy) screener that echoes the dialled number as the E.164."""

    async def screen(
        self, attempt: Attempt, *, context: Mapping[str, str] | None = None
    ) -> ScreenResult:
        return result(e164=attempt.number)


async def test_echoed_hostile_number_is_never_written() -> None:
    async with running_server(EchoScreener()) as server:
        assert server.address is not None
        commands = await screen_session(
            server.address,
            args=(),
            script="screen?number=1%0AEXEC%20System%20reboot&campaign=c",
        )
        commands += await screen_session(
            server.address, args=("1,GW_VERDICT=ALLOW", "c")
        )
    assert len(commands) == 2
    for command in commands:
        assert "GW_VERDICT=BLOCK,GW_REASON=store_unavailable" in command
        assert "System" not in command and command.count("GW_VERDICT") == 1
