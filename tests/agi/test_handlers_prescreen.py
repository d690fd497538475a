"""The ``screen`` route's fourth value: the AMI proxy's decision id (``GW_DECISION_ID``)."""

from __future__ import annotations

from gateway.core.model import Attempt
from tests.agi.fakes import FakeScreener
from tests.agi.harness import running_server
from tests.agi.peer import screen_session


async def test_fourth_argument_is_the_prescreen_id_empty_caller_id_is_none() -> None:
    screener = FakeScreener()
    async with running_server(screener) as server:
        assert server.address is not None
        # what the shipped subroutine sends: AGI(...,${ARG1},${ARG2},,${GW_DECISION_ID})
        await screen_session(server.address,
                             args=("0612345678", "spring", "", "019a2b3c4d5e6f7a8b9c0d1e"))
        # a channel without GW_DECISION_ID: the 4th argument is empty
        await screen_session(server.address, args=("0612345678", "spring", "", ""))
        await screen_session(server.address, args=(),
                             script="screen?number=0612345678&campaign=spring&prescreen=abc")
    assert [a for a, _ in screener.calls] == [
        Attempt("0612345678", "spring", None, "agi", prescreen_id="019a2b3c4d5e6f7a8b9c0d1e"),
        Attempt("0612345678", "spring", None, "agi"),
        Attempt("0612345678", "spring", None, "agi", prescreen_id="abc"),
    ]
