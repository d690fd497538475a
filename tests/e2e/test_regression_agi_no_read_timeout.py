"""Regression: Asterisk's AGI has no read timeout (why the samples set AGIEXITONHANGUP).

A FastAGI peer that accepts and never answers holds the channel for as long as it
keeps the socket open -- even past ``TIMEOUT(absolute)`` -- unless the dialplan
sets ``AGIEXITONHANGUP=yes``: the absolute timeout hangs the channel up, but
``AGI()`` then keeps waiting on the socket of the dead channel. This test shows
both behaviours side by side, ordered by events rather than by timing: the
unprotected call's timeout expires no later than the protected one's, yet it is
still up after the protected call was rejected, and goes only when the peer closes.
"""

from __future__ import annotations

import asyncio

from tests.e2e.agi_stubs import StalledGateway
from tests.e2e.ami_harness import AmiClient, CallResult, new_tag, originate, wait_calls_done
from tests.e2e.asterisk_server import AsteriskServer

UNPROTECTED = """\
exten => _[+0-9].,1,Set(TIMEOUT(absolute)=1)
 same => n,AGI(${GW_AGI}/screen,${EXTEN},${CAMPAIGN})
 same => n,Set(TIMEOUT(absolute)=0)
 same => n,GotoIf($["${AGISTATUS}" != "SUCCESS"]?blocked)
 same => n,GotoIf($["${GW_VERDICT}" = "ALLOW"]?dial)
 same => n(blocked),Hangup(21)
 same => n(dial),UserEvent(DgDialStep,Tag: ${DG_TAG},Number: ${GW_E164})
exten => T,1,Hangup(21)
"""


async def test_stalled_gateway_holds_channel_without_agiexitonhangup(
    asterisk: AsteriskServer, ami_admin: AmiClient, ami_events: AmiClient,
) -> None:
    asterisk.add_context("e2e-screen-unprotected", UNPROTECTED)
    stalled = StalledGateway()
    await stalled.start()
    try:
        asterisk.set_global("GW_AGI", stalled.url)
        asterisk.set_global("GW_AGI_TIMEOUT_S", "1")
        held = CallResult(tag=new_tag("held"), number="0600000001")
        await originate(ami_admin, held.number, "e2e-screen-unprotected", tag=held.tag,
                        campaign="c1")
        async with asyncio.timeout(10):
            await stalled.accepted.wait()  # its 1 s timeout is running from here on
        protected = CallResult(tag=new_tag("prot"), number="0600000002")
        await originate(ami_admin, protected.number, "e2e-screen-inline", tag=protected.tag,
                        campaign="c1")
        await wait_calls_done(ami_events, [protected], timeout_s=20)
        assert protected.screen_hangup_cause == "21"

        # the unprotected call's timeout expired first, yet its leg is still up
        assert held.tag not in ami_events.leg_hangups
        channels = asterisk.command("core show channels concise")
        assert f"Local/{held.number}@e2e-screen-unprotected" in channels, channels
    finally:
        await stalled.stop()  # the peer closes: only now does AGI() return
    await wait_calls_done(ami_events, [held], timeout_s=20)
    assert not held.reached_dial
    assert held.screen_hangup_cause == "21"
