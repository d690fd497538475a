"""Attack: a dial string the proxy reads differently from the channel driver.

The proxy used to take the last ``/`` segment as the number, whereas chan_iax2 reads
``peer/exten/options`` and chan_pjsip takes everything after the first ``/`` as the
URI: ``IAX2/trunk/<blocked>/<allowed>`` and ``PJSIP/trunk/sip:<blocked>@host;x=/<allowed>``
dialled the blocked number after screening the allowed one.

Against a real Asterisk 22 whose PJSIP endpoint and IAX2 peer ``loop`` call back into
itself (context ``from-loop`` reports the extension the driver dialled):

- differential: for every accepted shape, the number the proxy screens is the number
  the channel driver dials (an allowed number reaches ``from-loop`` under exactly that
  number, a blocked one in the same shape never reaches anything);
- the two attack shapes really dial the first number when sent straight to Asterisk,
  and the proxy refuses them without sending anything.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fixtures.ami_attack import AttackRig, next_number

pytestmark = pytest.mark.e2e

Shape = Callable[[str, int], str]

# (dial string for a number, UserEvent that proves the number was dialled)
ACCEPTED: dict[str, tuple[Shape, str]] = {
    "pjsip-user-at-endpoint": (lambda n, p: f"PJSIP/{n}@loop", "DgLoopReached"),
    "pjsip-endpoint-uri": (lambda n, p: f"PJSIP/loop/sip:{n}@127.0.0.1:{p}", "DgLoopReached"),
    "iax2-peer-exten": (lambda n, p: f"IAX2/loop/{n}", "DgLoopReached"),
    "iax2-user-peer-exten": (lambda n, p: f"IAX2/loopuser@loop/{n}", "DgLoopReached"),
    "iax2-exten-context": (lambda n, p: f"IAX2/loop/{n}@from-loop", "DgLoopReached"),
    "local-carrier": (lambda n, p: f"Local/9{n}@carrier", "DgSinkReached"),
    "local-carrier-n": (lambda n, p: f"Local/9{n}@carrier/n", "DgSinkReached"),
}


async def _originate(rig: AttackRig, channel: str, *, direct: bool = False) -> object:
    client = rig.admin if direct else rig.dialer
    return await client.action({
        "Action": "Originate", "Channel": channel, "Context": "agents", "Exten": "s",
        "Priority": "1", "Async": "true", "Timeout": "10000",
        "Variable": "CAMPAIGN=ami-promo",
    }, as_list=False)


@pytest.mark.parametrize("shape", sorted(ACCEPTED))
async def test_screened_number_is_the_dialled_number(attack_rig: AttackRig, shape: str
                                                     ) -> None:
    make, proof = ACCEPTED[shape]
    allowed, blocked = next_number(), next_number()
    await attack_rig.consent(allowed)
    resp = await _originate(attack_rig, make(blocked, attack_rig.sip_port))
    assert resp.get("Response") == "Error", resp  # type: ignore[attr-defined]
    assert resp.get("Message") == (  # type: ignore[attr-defined]
        "Originate blocked by dialer-gateway: no_consent")
    resp = await _originate(attack_rig, make(allowed, attack_rig.sip_port))
    assert resp.get("Response") == "Success", resp  # type: ignore[attr-defined]
    reached = await attack_rig.wait_user_event(proof, allowed)
    assert reached.get("Number") == allowed
    await attack_rig.settle()
    assert attack_rig.user_events(proof, blocked) == []


@pytest.mark.parametrize("shape", ["pjsip-endpoint", "iax2-peer"])
async def test_a_dial_string_without_number_dials_none(attack_rig: AttackRig, shape: str
                                                       ) -> None:
    """``PJSIP/loop`` and ``IAX2/loop`` dial exten ``s``: no number, so screened as raw
    text and blocked (invalid_number); straight to Asterisk they reach ``s``."""
    channel = {"pjsip-endpoint": "PJSIP/loop", "iax2-peer": "IAX2/loop"}[shape]
    before = len(attack_rig.user_events("DgLoopReached", "s"))
    resp = await _originate(attack_rig, channel)
    assert resp.get("Message") == (  # type: ignore[attr-defined]
        "Originate blocked by dialer-gateway: invalid_number")
    assert (await _originate(attack_rig, channel, direct=True)).get(  # type: ignore[attr-defined]
        "Response") == "Success"
    await attack_rig.watcher.wait_until(
        lambda: len(attack_rig.user_events("DgLoopReached", "s")) > before, timeout_s=30)


ATTACKS: dict[str, Shape] = {
    "iax2-options-segment": lambda b, a: f"IAX2/loop/{b}/{a}",
    "pjsip-slash-in-uri-param": lambda b, a: f"PJSIP/loop/sip:{b}@127.0.0.1:{{port}};x=/{a}",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_attack_shape_dials_the_first_number_and_is_refused(
        attack_rig: AttackRig, attack: str) -> None:
    blocked, allowed = next_number(), next_number()
    await attack_rig.consent(allowed)
    channel = ATTACKS[attack](blocked, allowed).replace("{port}", str(attack_rig.sip_port))
    resp = await _originate(attack_rig, channel)
    assert resp.get("Response") == "Error"  # type: ignore[attr-defined]
    assert str(resp.get("Message")).startswith(  # type: ignore[attr-defined]
        "Originate refused by dialer-gateway: Channel not accepted")
    await attack_rig.settle()
    assert attack_rig.user_events("DgLoopReached", blocked) == []
    assert attack_rig.user_events("DgLoopReached", allowed) == []
    # The route is real: straight to Asterisk, the driver dials the FIRST number.
    resp = await _originate(attack_rig, channel, direct=True)
    assert resp.get("Response") == "Success", resp  # type: ignore[attr-defined]
    await attack_rig.wait_user_event("DgLoopReached", blocked)
    assert attack_rig.user_events("DgLoopReached", allowed) == []
