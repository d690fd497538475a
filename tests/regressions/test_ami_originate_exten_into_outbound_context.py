"""Attack: ``Originate`` with an allowed ``Channel`` and ``Context``/``Exten`` pointing at
the outbound context: both numbers were dialled, only the Channel's was screened.

Now Context/Exten must be one of the account's targets; a dial target there is a
callee, screened like a Channel, and an Originate that would dial two numbers is
refused. Against a real Asterisk 22 (proof: the carrier context's ``DgCarrier``).
"""

from __future__ import annotations

import pytest

from tests.fixtures.ami_attack import AttackRig, next_number

pytestmark = pytest.mark.e2e


async def _originate(rig: AttackRig, channel: str, context: str, exten: str) -> object:
    return await rig.dialer.action({
        "Action": "Originate", "Channel": channel, "Context": context, "Exten": exten,
        "Priority": "1", "Async": "true", "Timeout": "10000", "Variable": "CAMPAIGN=ami-promo",
    }, as_list=False)


async def test_allowed_channel_and_blocked_exten_in_the_carrier_is_refused(
        attack_rig: AttackRig) -> None:
    allowed, blocked = next_number(), next_number()
    await attack_rig.consent(allowed)
    resp = await _originate(attack_rig, f"Local/9{allowed}@carrier", "carrier", f"9{blocked}")
    assert resp.get("Message") == (  # type: ignore[attr-defined]
        "Originate refused by dialer-gateway: Originate dials more than one number")
    await attack_rig.settle()
    assert attack_rig.user_events("DgCarrier", allowed) == []
    assert attack_rig.user_events("DgCarrier", blocked) == []


async def test_exten_in_a_context_outside_the_account_is_refused(attack_rig: AttackRig
                                                                 ) -> None:
    allowed, blocked = next_number(), next_number()
    await attack_rig.consent(allowed)
    resp = await _originate(attack_rig, f"PJSIP/{allowed}@loop", "attack-callee", blocked)
    assert str(resp.get("Message")).startswith(  # type: ignore[attr-defined]
        "Originate refused by dialer-gateway: destination in context 'attack-callee'")
    await attack_rig.settle()
    assert attack_rig.user_events("DgSinkReached", blocked) == []
    assert attack_rig.user_events("DgLoopReached", allowed) == []


async def test_click_to_call_screens_the_exten(attack_rig: AttackRig) -> None:
    """Agent leg in Channel (no number), customer in Exten: the Exten is the callee."""
    allowed, blocked = next_number(), next_number()
    await attack_rig.consent(allowed)
    resp = await _originate(attack_rig, "PJSIP/loop", "carrier", f"9{blocked}")
    assert resp.get("Message") == (  # type: ignore[attr-defined]
        "Originate blocked by dialer-gateway: no_consent")
    resp = await _originate(attack_rig, "PJSIP/loop", "carrier", f"9{allowed}")
    assert resp.get("Response") == "Success", resp  # type: ignore[attr-defined]
    await attack_rig.wait_user_event("DgCarrier", allowed)
    assert attack_rig.user_events("DgCarrier", blocked) == []
