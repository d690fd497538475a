"""Attack: an Originate whose ``Application`` dials a number the proxy does not read.

``RetryDial`` (``silence/1,1,1,Local/<blocked>@carrier``), ``Exec``
(``Dial(Local/<blocked>@carrier)``) and ``Dial`` with a dial string the proxy did not
recognise were relayed, whereas the same case in ``Channel`` was blocked. Now only the
account's applications are allowed (never Exec, RetryDial, System, AGI, Originate, ...),
``Dial`` data is parsed like ``Channel`` (an unreadable peer refuses the Originate) and
a second number is refused. Against a real Asterisk 22 (proof: ``DgCarrier`` /
``DgLoopReached`` never seen for the blocked number; controls show the routes dial).
"""

from __future__ import annotations

import pytest

from tests.fixtures.ami_attack import AttackRig, next_number

pytestmark = pytest.mark.e2e

ATTACKS = {
    "retrydial": ("RetryDial", "silence/1,1,1,Local/9{b}@carrier", "application 'retrydial'"),
    "exec-dial": ("Exec", "Dial(Local/9{b}@carrier)", "application 'exec'"),
    "system": ("System", "true", "application 'system'"),
    "agi": ("AGI", "agi://127.0.0.1:9/x", "application 'agi'"),
    "dial-iax2-options": ("Dial", "IAX2/loop/{b}/x", "Dial data not accepted"),
    "dial-quoted": ("Dial", '"Local/9{b}@carrier"', "Dial data not accepted"),
    "dial-predial-gosub": ("Dial", "PJSIP/loop,10,b(carrier^9{b}^1)",
                           "Dial data not accepted"),
    "dial-second-number": ("Dial", "Local/9{b}@carrier", "more than one number"),
    "dial-pjsip-number": ("Dial", "PJSIP/{b}@loop", "more than one number"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_application_that_dials_is_refused(attack_rig: AttackRig, attack: str) -> None:
    app, data, why = ATTACKS[attack]
    allowed, blocked = next_number(), next_number()
    await attack_rig.consent(allowed)
    resp = await attack_rig.dialer.action({
        "Action": "Originate", "Channel": f"Local/9{allowed}@carrier", "Application": app,
        "Data": data.format(b=blocked), "Async": "true", "Timeout": "10000",
        "Variable": "CAMPAIGN=ami-promo",
    }, as_list=False)
    assert resp.get("Response") == "Error", resp
    assert why in str(resp.get("Message")), resp
    await attack_rig.settle()
    for proof in ("DgCarrier", "DgLoopReached"):
        assert attack_rig.user_events(proof, blocked) == []
        assert attack_rig.user_events(proof, allowed) == []


async def test_retrydial_really_dials_when_sent_to_asterisk(attack_rig: AttackRig) -> None:
    """Control: the route is real (straight to Asterisk, the second number is dialled)."""
    first, second = next_number(), next_number()
    resp = await attack_rig.admin.action({
        "Action": "Originate", "Channel": f"Local/9{first}@carrier",
        "Application": "RetryDial", "Data": f"silence/1,1,1,Local/9{second}@carrier",
        "Async": "true", "Timeout": "10000"}, as_list=False)
    assert resp.get("Response") == "Success", resp
    await attack_rig.wait_user_event("DgCarrier", second)


async def test_dial_to_an_agent_is_still_relayed(attack_rig: AttackRig) -> None:
    allowed = next_number()
    await attack_rig.consent(allowed)
    resp = await attack_rig.dialer.action({
        "Action": "Originate", "Channel": f"Local/9{allowed}@carrier", "Application": "Dial",
        "Data": "PJSIP/loop,10", "Async": "true", "Timeout": "10000",
        "Variable": "CAMPAIGN=ami-promo"}, as_list=False)
    assert resp.get("Response") == "Success", resp
    await attack_rig.wait_user_event("DgCarrier", allowed)
