"""The ``screen`` route: how the Attempt is built and what is answered, failures included."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from structlog.testing import capture_logs

from gateway.agi.handlers import ScreenHandler
from gateway.core.model import Attempt, Reason, Verdict
from gateway.service_api import ScreenResult
from tests.agi.fakes import BrokenScreener, FakeScreener, RecordingObserver, result
from tests.agi.harness import running_server
from tests.agi.peer import screen_session

FAIL_CLOSED = (
    'EXEC "MSet" "GW_VERDICT=BLOCK,GW_REASON=store_unavailable,GW_E164=,'
    'GW_RETRY_AFTER=,GW_DECISION_ID="'
)


async def test_query_string_gives_number_and_campaign() -> None:
    screener = FakeScreener()
    async with running_server(screener) as server:
        assert server.address is not None
        await screen_session(
            server.address,
            args=(),
            script="screen?number=%2B33612345678&campaign=spring-promo&caller_id=+33162000001",
        )
    attempt, _ = screener.calls[0]
    assert attempt == Attempt("+33612345678", "spring-promo", "+33162000001", "agi")


async def test_arguments_win_over_the_query_string_and_third_gives_caller_id() -> None:
    screener = FakeScreener()
    async with running_server(screener) as server:
        assert server.address is not None
        await screen_session(
            server.address,
            args=("06 12 34 56 78", "spring-promo", "+33162000001"),
            script="screen?number=0700000000&campaign=other",
        )
    attempt, context = screener.calls[0]
    assert attempt == Attempt("06 12 34 56 78", "spring-promo", "+33162000001", "agi")
    assert "agi_callerid" not in context and "callerid" not in context


async def test_missing_arguments_are_screened_as_empty_not_crashed() -> None:
    screener = FakeScreener(result(Verdict.BLOCK, Reason.INVALID_NUMBER, e164=None))
    async with running_server(screener) as server:
        assert server.address is not None
        commands = await screen_session(server.address, args=())
    assert screener.calls[0][0] == Attempt("", "", None, "agi")
    assert commands == [
        'EXEC "MSet" "GW_VERDICT=BLOCK,GW_REASON=invalid_number,GW_E164=,'
        'GW_RETRY_AFTER=,GW_DECISION_ID=d-0001"'
    ]


async def test_screener_that_raises_fails_closed_and_logs() -> None:
    screener = BrokenScreener()
    with capture_logs() as logs:
        async with running_server(screener) as server:
            assert server.address is not None
            commands = await screen_session(server.address)
    assert screener.calls == 1
    assert commands == [FAIL_CLOSED]
    failed = [e for e in logs if e["event"] == "agi.screen_failed"]
    assert len(failed) == 1
    assert failed[0]["number"] == "0612345678"  # under the key the redaction processor knows


class SlowScreener:
    async def screen(
        self, attempt: Attempt, *, context: Mapping[str, str] | None = None
    ) -> ScreenResult:
        await asyncio.Future()  # never answers
        raise AssertionError("unreachable")


async def test_screener_past_its_deadline_answers_block_timeout() -> None:
    handlers = {"screen": ScreenHandler(SlowScreener(), deadline_s=0.05)}
    async with running_server(handlers=handlers) as server:
        assert server.address is not None
        commands = await screen_session(server.address)
    assert commands == [
        'EXEC "MSet" "GW_VERDICT=BLOCK,GW_REASON=timeout,GW_E164=,'
        'GW_RETRY_AFTER=,GW_DECISION_ID="'
    ]


async def test_result_with_a_comma_is_never_written_and_fails_closed() -> None:
    screener = FakeScreener(result(decision_id="a,GW_VERDICT=ALLOW"))
    with capture_logs() as logs:
        async with running_server(screener) as server:
            assert server.address is not None
            commands = await screen_session(server.address)
    assert commands == [FAIL_CLOSED]
    assert any(e["event"] == "agi.unsafe_result" for e in logs)


async def test_set_variable_mode_sends_five_commands() -> None:
    handlers = {"screen": ScreenHandler(FakeScreener(), variable_mode="set_variable")}
    async with running_server(handlers=handlers) as server:
        assert server.address is not None
        commands = await screen_session(server.address, reply=b"200 result=1\n")
    assert commands == [
        'SET VARIABLE "GW_VERDICT" "ALLOW"',
        'SET VARIABLE "GW_REASON" "ok"',
        'SET VARIABLE "GW_E164" "+33612345678"',
        'SET VARIABLE "GW_RETRY_AFTER" ""',
        'SET VARIABLE "GW_DECISION_ID" "d-0001"',
    ]


async def test_exec_failure_result_is_logged() -> None:
    observer = RecordingObserver()
    with capture_logs() as logs:
        async with running_server(observer=observer) as server:
            assert server.address is not None
            commands = await screen_session(server.address, reply=b"200 result=-2\n")
            await observer.wait_ended(1)
    assert len(commands) == 1
    failed = [e for e in logs if e["event"] == "agi.set_variables_failed"]
    assert failed and failed[0]["result"] == "-2"
