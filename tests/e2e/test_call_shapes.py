"""The call shapes the fixture offers to AMI tests really happen in Asterisk."""

from __future__ import annotations

from tests.e2e.ami_harness import AmiClient, event_tag, new_tag, originate
from tests.e2e.asterisk_server import AsteriskServer


async def _run(ami_admin: AmiClient, ami_events: AmiClient, number: str, dest: str,
               hangups: int) -> set[str]:
    tag = new_tag("shape")
    await originate(ami_admin, number, "e2e-callee-answer", tag=tag, campaign="c",
                    dest_context=dest, variables=["__DG_HOLD_S=0.2"])
    await ami_events.wait_until(lambda: sum(
        1 for e in ami_events.by_tag.get(tag, ()) if e.get("Event") == "Hangup") >= hangups,
        timeout_s=20)
    return {str(e.get("Event")) for e in ami_events.by_tag[tag]}


async def test_bridge_agent_destination_bridges_the_callee(
    asterisk: AsteriskServer, ami_admin: AmiClient, ami_events: AmiClient,
) -> None:
    # callee ;1/;2 and agent ;1/;2: four channels hang up
    events = await _run(ami_admin, ami_events, "0611111111", "e2e-bridge-agent", hangups=4)
    assert "BridgeEnter" in events


async def test_hold_destination_answers_without_bridging(
    asterisk: AsteriskServer, ami_admin: AmiClient, ami_events: AmiClient,
) -> None:
    events = await _run(ami_admin, ami_events, "0622222222", "e2e-hold", hangups=2)
    assert "Newstate" in events  # answered
    assert "BridgeEnter" not in events


async def test_events_before_the_tag_are_filed_by_linkedid(
    asterisk: AsteriskServer, ami_admin: AmiClient, ami_events: AmiClient,
) -> None:
    """Newchannel comes before Originate's variables: its DG_TAG is empty."""
    tag = new_tag("early")
    await originate(ami_admin, "0633333333", "e2e-sink", tag=tag, campaign="c")
    await ami_events.wait_until(lambda: sum(
        1 for e in ami_events.by_tag.get(tag, ()) if e.get("Event") == "Hangup") >= 2,
        timeout_s=20)
    newchannels = [e for e in ami_events.by_tag[tag] if e.get("Event") == "Newchannel"]
    assert len(newchannels) >= 2  # the Local ;1 and ;2 halves
    assert all(event_tag(e) == "" for e in newchannels)
