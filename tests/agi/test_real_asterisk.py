"""The FastAGI server against a real Asterisk 22 (sid chroot): MSet really sets GW_*.

Uses the e2e fixtures (tests/fixtures/asterisk.py): the ``e2e-screen-inline`` context
calls ``AGI(${GW_AGI}/screen,${EXTEN},${CAMPAIGN})`` and dials only on ``ALLOW``.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.agi.handlers import ScreenHandler, VariableMode
from gateway.agi.server import AgiSession
from gateway.core.model import Reason, Verdict
from tests.agi.fakes import BrokenScreener, FakeScreener, RecordingObserver, result
from tests.agi.harness import running_server
from tests.e2e.ami_harness import AmiClient, CallResult, screen_call
from tests.e2e.asterisk_server import AsteriskServer

pytestmark = pytest.mark.e2e

CONTEXT = "e2e-screen-inline"


def varsets(call: CallResult) -> dict[str, str]:
    """Last value Asterisk reported for each GW_* variable of the screening leg."""
    out: dict[str, str] = {}
    for e in call.events:
        name = str(e.get("Variable", ""))
        if e.get("Event") == "VarSet" and name.startswith("GW_"):
            out[name] = str(e.get("Value", ""))
    return out


@pytest.mark.parametrize("mode", ["mset", "set_variable"])
async def test_allow_sets_variables_and_dials_the_e164(
    asterisk: AsteriskServer, ami_admin: AmiClient, ami_events: AmiClient, mode: VariableMode
) -> None:
    screener = FakeScreener(result(decision_id="01J0TESTDECISION"))
    observer = RecordingObserver()
    handlers = {"screen": ScreenHandler(screener, variable_mode=mode)}
    async with running_server(handlers=handlers, observer=observer) as server:
        assert server.address is not None
        host, port = server.address
        asterisk.set_global("GW_AGI", f"agi://{host}:{port}")
        asterisk.set_global("GW_AGI_TIMEOUT_S", "10")
        call = await screen_call(ami_admin, ami_events, "0612345678", CONTEXT, campaign="c1")
        assert await observer.wait_ended(1) == ["ok"]
    attempt, context = screener.calls[0]
    assert (attempt.number, attempt.campaign_id) == ("0612345678", "c1")
    assert context["channel"].startswith("Local/0612345678@e2e-screen-inline")
    assert call.dial_step_numbers == ["+33612345678"], asterisk.log_tail()
    assert varsets(call) == {
        "GW_VERDICT": "ALLOW",
        "GW_REASON": "ok",
        "GW_E164": "+33612345678",
        "GW_RETRY_AFTER": "",
        "GW_DECISION_ID": "01J0TESTDECISION",
    }


async def test_block_never_dials(
    asterisk: AsteriskServer, ami_admin: AmiClient, ami_events: AmiClient
) -> None:
    screener = FakeScreener(result(Verdict.BLOCK, Reason.OPPOSITION, retry_after_s=None))
    async with running_server(screener) as server:
        assert server.address is not None
        host, port = server.address
        asterisk.set_global("GW_AGI", f"agi://{host}:{port}")
        call = await screen_call(ami_admin, ami_events, "0612345679", CONTEXT, campaign="c1")
    assert not call.reached_dial, call.events
    assert call.screen_hangup_cause == "21"
    assert varsets(call)["GW_REASON"] == "opposition"


async def test_broken_screener_fails_closed_on_a_real_channel(
    asterisk: AsteriskServer, ami_admin: AmiClient, ami_events: AmiClient
) -> None:
    async with running_server(BrokenScreener()) as server:
        assert server.address is not None
        host, port = server.address
        asterisk.set_global("GW_AGI", f"agi://{host}:{port}")
        call = await screen_call(ami_admin, ami_events, "0612345677", CONTEXT, campaign="c1")
    assert not call.reached_dial, call.events
    assert varsets(call)["GW_VERDICT"] == "BLOCK"
    assert varsets(call)["GW_REASON"] == "store_unavailable"


# The answer's last command is not awaited once Asterisk has confirmed one (handlers.py):
# the line, then our end of stream. Each call logs what the dialplan sees after AGI().
ANSWER_CONTEXT = "e2e-screen-answer"
ANSWER_DIALPLAN = """\
exten => _[+0-9].,1,Set(GW_VERDICT=)
 same => n,AGI(${GW_AGI}/screen,${EXTEN},${CAMPAIGN})
 same => n,Log(NOTICE,dg-answer ${DG_TAG} AGISTATUS=${AGISTATUS} GW_VERDICT=${GW_VERDICT} \
GW_REASON=${GW_REASON} GW_E164=${GW_E164} GW_DECISION_ID=${GW_DECISION_ID})
 same => n,Hangup()
"""


class RecordingHandler:
    """The real ScreenHandler; keeps each session to look at how it ended."""

    def __init__(self, inner: ScreenHandler) -> None:
        self.inner = inner
        self.sessions: list[AgiSession] = []

    async def __call__(self, session: AgiSession) -> None:
        self.sessions.append(session)
        await self.inner(session)


async def load_module(ami: AmiClient, module: str) -> None:
    """ModuleLoad through AMI, once (the CLI's ``module load`` is refused there)."""
    check = {"Action": "ModuleCheck", "Module": module}
    if (await ami.action(check, as_list=False)).get("Response") == "Success":
        return
    load = {"Action": "ModuleLoad", "Module": module, "LoadType": "load"}
    response = await ami.action(load, as_list=False)
    assert response.get("Response") == "Success", response


def log_lines(asterisk: AsteriskServer) -> list[str]:
    path = asterisk.host_dir / "log" / "messages.log"
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


@pytest.mark.parametrize("mode", ["mset", "set_variable"])
async def test_answer_without_awaiting_the_reply_reaches_the_dialplan(
    asterisk: AsteriskServer, ami_admin: AmiClient, ami_events: AmiClient, mode: VariableMode
) -> None:
    """Allowed and blocked calls answered by the line and our end of stream (the reply
    not awaited): Asterisk ran the command, AGISTATUS=SUCCESS, the GW_* variables are
    the dialplan's, and Asterisk logged no WARNING or ERROR for them."""
    await load_module(ami_admin, "app_verbose.so")  # Log()
    asterisk.add_context(ANSWER_CONTEXT, ANSWER_DIALPLAN)
    screener = FakeScreener(result(decision_id="01J0FIRST"))
    observer = RecordingObserver()
    handler = RecordingHandler(ScreenHandler(screener, variable_mode=mode))
    answers = [
        result(decision_id="01J0ALLOWED"),
        result(Verdict.BLOCK, Reason.OPPOSITION, decision_id="01J0BLOCKED"),
    ]
    async with running_server(handlers={"screen": handler}, observer=observer) as server:
        assert server.address is not None
        host, port = server.address
        asterisk.set_global("GW_AGI", f"agi://{host}:{port}")
        # the first answer waits for its reply: Asterisk confirms the command works
        await screen_call(ami_admin, ami_events, "0612345670", ANSWER_CONTEXT, campaign="c1")
        assert await observer.wait_ended(1) == ["ok"]
        assert not handler.sessions[0].half_closed
        before = log_lines(asterisk)
        calls = []
        for number, answer in zip(("0612345671", "0612345672"), answers, strict=True):
            screener.answer = answer
            calls.append(await screen_call(ami_admin, ami_events, number, ANSWER_CONTEXT,
                                           campaign="c1"))
        assert await observer.wait_ended(3) == ["ok", "ok", "ok"]
    assert [s.half_closed for s in handler.sessions] == [False, True, True]
    assert [s.commands_sent for s in handler.sessions[1:]] == [
        1 if mode == "mset" else 5] * 2

    def logged(tag: str) -> list[str]:
        return [line for line in log_lines(asterisk) if f"dg-answer {tag} " in line]

    # the dialplan's own line comes after anything Asterisk logged for the AGI: its
    # logger thread writes in order, a moment after the call
    async with asyncio.timeout(10):
        # polled (ASYNC110): Asterisk's logger thread writes the file, no event to await
        while not all(logged(c.tag) for c in calls):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    allowed, blocked = (logged(c.tag)[0] for c in calls)
    assert allowed.endswith("AGISTATUS=SUCCESS GW_VERDICT=ALLOW GW_REASON=ok "
                            "GW_E164=+33612345678 GW_DECISION_ID=01J0ALLOWED"), allowed
    assert blocked.endswith("AGISTATUS=SUCCESS GW_VERDICT=BLOCK GW_REASON=opposition "
                            "GW_E164=+33612345678 GW_DECISION_ID=01J0BLOCKED"), blocked
    new = log_lines(asterisk)[len(before):]
    complaints = [line for line in new if "] WARNING[" in line or "] ERROR[" in line]
    assert not complaints, "\n".join(new)
