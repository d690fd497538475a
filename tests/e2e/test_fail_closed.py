"""Fail-closed: no decision from the gateway means no call.

The gateway is down (connection refused) or hung (accepts, never answers). In
both cases Asterisk's own events must show that the dial step was never reached
and that the screening leg was rejected with cause 21.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.agi_stubs import StalledGateway, refused_address
from tests.e2e.ami_harness import AmiClient, screen_call
from tests.e2e.asterisk_server import AsteriskServer

CONTEXTS = ("e2e-screen-inline", "e2e-screen-gosub")
STALL_BOUND_S = "2"  # GW_AGI_TIMEOUT_S for the stalled gateway


@pytest.mark.parametrize("context", CONTEXTS)
async def test_gateway_down_connection_refused_never_dials(
    asterisk: AsteriskServer, ami_admin: AmiClient, ami_events: AmiClient, context: str,
) -> None:
    async with refused_address() as url:
        asterisk.set_global("GW_AGI", url)
        asterisk.set_global("GW_AGI_TIMEOUT_S", "10")
        call = await screen_call(ami_admin, ami_events, "0612345678", context, campaign="c1")
    assert not call.reached_dial, call.events
    assert call.screen_hangup_cause == "21"
    agi_status = [e for e in call.events if e.get("Event") == "VarSet"
                  and e.get("Variable") == "AGISTATUS"]
    assert [e.get("Value") for e in agi_status] == ["FAILURE"]


@pytest.mark.parametrize("context", CONTEXTS)
async def test_gateway_stalled_past_dialplan_timeout_never_dials(
    asterisk: AsteriskServer, ami_admin: AmiClient, ami_events: AmiClient, context: str,
) -> None:
    stalled = StalledGateway()
    await stalled.start()
    try:
        asterisk.set_global("GW_AGI", stalled.url)
        asterisk.set_global("GW_AGI_TIMEOUT_S", STALL_BOUND_S)
        call = await screen_call(ami_admin, ami_events, "0612345678", context, campaign="c1",
                                 timeout_s=20)
        async with asyncio.timeout(1):
            await stalled.accepted.wait()  # Asterisk did connect: it was the read that hung
    finally:
        await stalled.stop()
    assert not call.reached_dial, call.events
    assert call.screen_hangup_cause == "21"
    # the T (absolute timeout) extension is what rejected the call
    assert any(e.get("Event") == "Newexten" and e.get("Extension") == "T"
               for e in call.events), call.events
