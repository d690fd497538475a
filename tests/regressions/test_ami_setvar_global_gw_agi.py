"""Attack: ``Setvar`` of the global ``GW_AGI`` through the proxy.

Relayed by default, it pointed every dialplan-screened call of the PBX at the
attacker's FastAGI server, which answered ALLOW. Now Getvar/Setvar need a ``Channel``
(never a global), a plain variable name (no ``GLOBAL()``/functions), and never touch
``GW_*`` in any case; Originate ``Variable: GW_*`` (a channel variable shadows the
global in the dialplan) is refused too; and the shipped subroutine reads the address
with ``GLOBAL()``, so a channel variable could not redirect it anyway. Against a real
Asterisk 22: the global keeps its value, the attacker's FastAGI is never asked.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.agi_stubs import StubGateway, StubVerdict
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


async def test_a_channel_gw_agi_cannot_redirect_the_shipped_subroutine(
        attack_rig: AttackRig) -> None:
    """Belt and braces: even an Originate that reached Asterisk another way with
    ``Variable: GW_AGI=<attacker>`` is screened by the real gateway, because the shipped
    subroutine reads ``${GLOBAL(GW_AGI)}``. The attacker's FastAGI would answer ALLOW."""
    blocked = next_number()
    attacker = StubGateway({blocked: StubVerdict("ALLOW", "ok", "+33" + blocked[1:])})
    await attacker.start()
    try:
        host, port = attack_rig.app.agi_address
        await asyncio.to_thread(attack_rig.asterisk.set_global, "GW_AGI",
                                f"agi://{host}:{port}")
        resp = await attack_rig.admin.action({
            "Action": "Originate", "Channel": f"Local/{blocked}@e2e-screen-gosub",
            "Context": "agents", "Exten": "s", "Priority": "1", "Async": "true",
            "Timeout": "10000",
            "Variable": [f"GW_AGI={attacker.url}", f"__GW_AGI={attacker.url}",
                         "GW_AGI_TIMEOUT_S=0", "CAMPAIGN=ami-promo"]}, as_list=False)
        assert resp.get("Response") == "Success", resp
        await attack_rig.watcher.wait_for(
            lambda e: e.get("Event") == "Hangup" and str(e.get("Channel", "")).startswith(
                f"Local/{blocked}@e2e-screen-gosub-") and str(e.get("Channel")).endswith(";2"),
            timeout_s=30)
        assert attacker.requests == []
        records = [r for r in attack_rig.audit_records() if r["number"] == "+33" + blocked[1:]]
        assert [(r["verdict"], r["reason"]) for r in records] == [("BLOCK", "no_consent")]
        await attack_rig.settle()
        assert [e for e in attack_rig.watcher.events if e.get("Event") == "UserEvent"
                and e.get("UserEvent") == "DgSinkReached"
                and e.get("Number") == "+33" + blocked[1:]] == []
    finally:
        await attacker.stop()
