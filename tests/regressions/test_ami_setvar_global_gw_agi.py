"""Attack: ``Setvar`` of the global ``GW_AGI`` through the proxy.

Relayed by default, it pointed every dialplan-screened call of the PBX at the
attacker's FastAGI server, which answered ALLOW. Now Getvar/Setvar need a ``Channel``
(never a global), a plain variable name (no ``GLOBAL()``/functions), and never touch
``GW_*`` in any case; Originate ``Variable: GW_*`` (a channel variable shadows the
global in the dialplan) is refused too. Against a real Asterisk 22: the global keeps
its value.
"""

from __future__ import annotations

import pytest

from tests.fixtures.ami_attack import AttackRig, next_number

pytestmark = pytest.mark.e2e

EVIL = "agi://127.0.0.1:9/evil"


async def _gw_agi(rig: AttackRig) -> str:
    resp = await rig.admin.action({"Action": "Getvar", "Variable": "GW_AGI"}, as_list=False)
    return str(resp.get("Value"))


@pytest.mark.parametrize("headers", [
    {"Variable": "GW_AGI", "Value": EVIL},
    {"Variable": "gw_agi", "Value": EVIL},
    {"Variable": "GLOBAL(GW_AGI)", "Value": EVIL, "Channel": "Local/x@agents-00000001;1"},
    {"Variable": "GW_AGI", "Value": EVIL, "Channel": "Local/x@agents-00000001;1"},
    {"Variable": "__GW_AGI", "Value": EVIL, "Channel": "Local/x@agents-00000001;1"},
    {"Variable": "GW_AGI", "Value": EVIL, "Channel": ""},
])
async def test_setvar_of_gw_agi_is_refused(attack_rig: AttackRig, headers: dict[str, str]
                                           ) -> None:
    before = await _gw_agi(attack_rig)
    assert before != EVIL
    resp = await attack_rig.dialer.action({"Action": "Setvar", **headers}, as_list=False)
    assert resp.get("Response") == "Error", resp
    assert str(resp.get("Message")).startswith("Setvar refused by dialer-gateway"), resp
    assert await _gw_agi(attack_rig) == before


async def test_getvar_of_a_global_is_refused(attack_rig: AttackRig) -> None:
    resp = await attack_rig.dialer.action({"Action": "Getvar", "Variable": "GW_AGI"},
                                          as_list=False)
    assert str(resp.get("Message")).startswith("Getvar refused by dialer-gateway"), resp


@pytest.mark.parametrize("variable", [f"GW_AGI={EVIL}", f"__GW_AGI={EVIL}",
                                      "GW_VERDICT=ALLOW", "GW_DECISION_ID=forged"])
async def test_originate_variable_gw_is_refused(attack_rig: AttackRig, variable: str) -> None:
    number = next_number()
    await attack_rig.consent(number)
    resp = await attack_rig.dialer.action({
        "Action": "Originate", "Channel": f"Local/9{number}@carrier", "Context": "agents",
        "Exten": "s", "Priority": "1", "Async": "true",
        "Variable": ["CAMPAIGN=ami-promo", variable]}, as_list=False)
    assert str(resp.get("Message")).endswith("GW_* variables are reserved to the gateway")
    await attack_rig.settle()
    assert attack_rig.user_events("DgCarrier", number) == []


async def test_setvar_of_a_channel_variable_still_works(attack_rig: AttackRig) -> None:
    number = next_number()
    await attack_rig.consent(number)
    resp = await attack_rig.dialer.action({
        "Action": "Originate", "Channel": f"Local/9{number}@carrier", "Context": "agents",
        "Exten": "s", "Priority": "1", "Async": "true",
        "Variable": ["CAMPAIGN=ami-promo", "__DG_HOLD_S=20"]}, as_list=False)
    assert resp.get("Response") == "Success", resp
    event = await attack_rig.watcher.wait_for(
        lambda e: e.get("Event") == "Newexten" and e.get("Context") == "agents"
        and str(e.get("Channel", "")).startswith(f"Local/9{number}@carrier-"), timeout_s=30)
    channel = str(event.get("Channel"))
    resp = await attack_rig.dialer.action({"Action": "Setvar", "Channel": channel,
                                           "Variable": "LEAD_ID", "Value": "42"}, as_list=False)
    assert resp.get("Response") == "Success", resp
    resp = await attack_rig.dialer.action({"Action": "Getvar", "Channel": channel,
                                           "Variable": "LEAD_ID"}, as_list=False)
    assert resp.get("Value") == "42", resp
    await attack_rig.admin.action({"Action": "Hangup", "Channel": channel}, as_list=False)
