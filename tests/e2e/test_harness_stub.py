"""The harness and the fail-closed dialplan, proven with a scripted FastAGI peer.

These tests do not need the gateway: a stub answers fixed verdicts. They prove
that the dialplan contexts (the shipped subroutine and the inline contract) dial
exactly when GW_VERDICT=ALLOW, and that the harness sees it through Asterisk's own
AMI events.
"""

from __future__ import annotations

import pytest

from tests.e2e.agi_stubs import StubGateway, StubVerdict
from tests.e2e.ami_harness import AmiClient, screen_call
from tests.e2e.asterisk_server import AsteriskServer

CONTEXTS = ("e2e-screen-inline", "e2e-screen-gosub")

TABLE = {
    "0612345678": StubVerdict("ALLOW", "ok", "+33612345678"),
    "0698765432": StubVerdict("BLOCK", "opposition", "+33698765432"),
    # an ALLOW without a number to dial is not a decision the dialplan can act on
    "0611111111": StubVerdict("ALLOW", "ok", ""),
}


@pytest.fixture
async def stub(asterisk: AsteriskServer):  # type: ignore[no-untyped-def]
    gw = StubGateway(TABLE)
    await gw.start()
    asterisk.set_global("GW_AGI", gw.url)
    asterisk.set_global("GW_AGI_TIMEOUT_S", "10")
    yield gw
    await gw.stop()


@pytest.mark.parametrize("context", CONTEXTS)
async def test_stub_allow_reaches_dial_step_with_e164(
    stub: StubGateway, ami_admin: AmiClient, ami_events: AmiClient, context: str,
) -> None:
    call = await screen_call(ami_admin, ami_events, "0612345678", context, campaign="c1")
    assert call.dial_step_numbers == ["+33612345678"]
    assert call.sink_numbers == ["+33612345678"]
    assert call.screen_hangup_cause != "21"
    assert stub.requests[-1]["agi_arg_1"] == "0612345678"
    assert stub.requests[-1]["agi_arg_2"] == "c1"
    assert stub.requests[-1]["agi_network_script"] == "screen"


@pytest.mark.parametrize("context", CONTEXTS)
async def test_stub_block_never_dials_and_rejects(
    stub: StubGateway, ami_admin: AmiClient, ami_events: AmiClient, context: str,
) -> None:
    call = await screen_call(ami_admin, ami_events, "0698765432", context, campaign="c1")
    assert not call.reached_dial, call.events
    assert call.screen_hangup_cause == "21"
    assert stub.requests[-1]["agi_arg_1"] == "0698765432"


async def test_shipped_subroutine_rejects_allow_without_number(
    stub: StubGateway, ami_admin: AmiClient, ami_events: AmiClient,
) -> None:
    """The shipped subroutine also refuses an ALLOW that carries no GW_E164.

    (The inline README form trusts the gateway to always set GW_E164 with
    ALLOW; the subroutine does not.)
    """
    call = await screen_call(ami_admin, ami_events, "0611111111", "e2e-screen-gosub",
                             campaign="c1")
    assert not call.reached_dial, call.events
    assert call.screen_hangup_cause == "21"


@pytest.mark.parametrize("context", CONTEXTS)
async def test_verdict_preset_by_originator_is_not_trusted(
    stub: StubGateway, ami_admin: AmiClient, ami_events: AmiClient, context: str,
) -> None:
    """A dialer that sets GW_VERDICT=ALLOW itself on a blocked number gains nothing."""
    call = await screen_call(ami_admin, ami_events, "0698765432", context, campaign="c1",
                             variables=["GW_VERDICT=ALLOW", "GW_E164=+33698765432"])
    assert not call.reached_dial
    assert call.screen_hangup_cause == "21"
