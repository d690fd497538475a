"""The FastAGI server against a real Asterisk 22 (sid chroot): MSet really sets GW_*.

Uses the e2e fixtures (tests/fixtures/asterisk.py): the ``e2e-screen-inline`` context
calls ``AGI(${GW_AGI}/screen,${EXTEN},${CAMPAIGN})`` and dials only on ``ALLOW``.
"""

from __future__ import annotations

import pytest

from gateway.agi.handlers import ScreenHandler, VariableMode
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
