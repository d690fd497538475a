"""Attack: ``Redirect`` a live, allowed call into the outbound context with a blocked
number as ``Exten``.

Redirect used to be relayed as is: the carrier context (``_9X. -> Dial``) dialled the
blocked number and the audit trail only named the allowed one. Now a Redirect target
must be one of the account's targets: an agent target is relayed, a dial target is a
new call -- screened (and audited) with the account's default campaign -- and anything
else is refused. Against a real Asterisk 22; proof is the carrier context's own
``DgCarrier`` event (entered, with the number it dials).
"""

from __future__ import annotations

import pytest

from tests.fixtures.ami_attack import WAIT_S, AttackRig, next_number

pytestmark = pytest.mark.e2e


async def _live_call(rig: AttackRig, number: str) -> str:
    """An allowed call, answered and held in ``agents``; its channel name."""
    resp = await rig.dialer.action({
        "Action": "Originate", "Channel": f"Local/9{number}@carrier", "Context": "agents",
        "Exten": "s", "Priority": "1", "Async": "true", "Timeout": "10000",
        "Variable": ["CAMPAIGN=ami-promo", "__DG_HOLD_S=20"],
    }, as_list=False)
    assert resp.get("Response") == "Success", resp
    # the Originate's own half (;1) enters "agents" once the callee answered
    event = await rig.watcher.wait_for(
        lambda e: e.get("Event") == "Newexten" and e.get("Context") == "agents"
        and str(e.get("Channel", "")).startswith(f"Local/9{number}@carrier-"),
        timeout_s=WAIT_S)
    return str(event.get("Channel"))


async def _redirect(rig: AttackRig, channel: str, context: str, exten: str) -> object:
    return await rig.dialer.action({
        "Action": "Redirect", "Channel": channel, "Context": context, "Exten": exten,
        "Priority": "1",
    }, as_list=False)


async def test_redirect_into_the_carrier_with_a_blocked_number_is_screened(
        attack_rig: AttackRig) -> None:
    allowed, blocked = next_number(), next_number()
    await attack_rig.consent(allowed)
    channel = await _live_call(attack_rig, allowed)
    resp = await _redirect(attack_rig, channel, "carrier", f"9{blocked}")
    assert resp.get("Response") == "Error"  # type: ignore[attr-defined]
    assert resp.get("Message") == (  # type: ignore[attr-defined]
        "Redirect blocked by dialer-gateway: no_consent")
    await attack_rig.settle()
    assert attack_rig.user_events("DgCarrier", blocked) == []
    # the decision is audited under the number the carrier would have dialled
    (record,) = [r for r in attack_rig.audit_records()
                 if r["context"].get("action") == "redirect"]
    assert (record["number"], record["verdict"], record["reason"]) == (
        "+33" + blocked[1:], "BLOCK", "no_consent")
    assert record["context"]["callee_from"] == "exten"
    await attack_rig.admin.action({"Action": "Hangup", "Channel": channel}, as_list=False)


async def test_redirect_into_the_carrier_with_an_allowed_number_is_relayed(
        attack_rig: AttackRig) -> None:
    first, second = next_number(), next_number()
    await attack_rig.consent(first, second)
    channel = await _live_call(attack_rig, first)
    resp = await _redirect(attack_rig, channel, "carrier", f"9{second}")
    assert resp.get("Response") == "Success", resp  # type: ignore[attr-defined]
    await attack_rig.wait_user_event("DgCarrier", second)


@pytest.mark.parametrize(("context", "exten"), [("attack-callee", "{n}"),
                                                 ("from-loop", "{n}"),
                                                 ("carrier", "{n}")])  # no 9: no pattern
async def test_redirect_anywhere_else_is_refused(attack_rig: AttackRig, context: str,
                                                 exten: str) -> None:
    allowed, blocked = next_number(), next_number()
    await attack_rig.consent(allowed)
    channel = await _live_call(attack_rig, allowed)
    resp = await _redirect(attack_rig, channel, context, exten.format(n=blocked))
    assert resp.get("Response") == "Error"  # type: ignore[attr-defined]
    assert str(resp.get("Message")).startswith(  # type: ignore[attr-defined]
        "Redirect refused by dialer-gateway: destination not allowed")
    await attack_rig.settle()
    assert attack_rig.user_events("DgSinkReached", blocked) == []
    assert attack_rig.user_events("DgLoopReached", blocked) == []
    await attack_rig.admin.action({"Action": "Hangup", "Channel": channel}, as_list=False)


async def test_transfers_are_refused_by_default(attack_rig: AttackRig) -> None:
    allowed, blocked = next_number(), next_number()
    await attack_rig.consent(allowed)
    channel = await _live_call(attack_rig, allowed)
    for action in ("BlindTransfer", "Atxfer"):
        resp = await attack_rig.dialer.action({
            "Action": action, "Channel": channel, "Context": "carrier",
            "Exten": f"9{blocked}"}, as_list=False)
        assert resp.get("Message") == "Permission denied", (action, resp)
    resp = await attack_rig.dialer.action({
        "Action": "Bridge", "Channel1": channel, "Channel2": channel}, as_list=False)
    assert resp.get("Message") == "Permission denied"
    await attack_rig.settle()
    assert attack_rig.user_events("DgCarrier", blocked) == []
    await attack_rig.admin.action({"Action": "Hangup", "Channel": channel}, as_list=False)
