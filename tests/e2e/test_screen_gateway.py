"""The real gateway behind a real Asterisk: the FastAGI contract, end to end.

Asterisk runs the shipped screening subroutine (and the inline README
form); the gateway is ``gateway.app.App`` started from a TOML file (memory store,
built-in French packs, JSONL audit) with lists imported through the store API.
Every assertion is about Asterisk's own AMI events, seen by an independent client,
and about the gateway's audit trail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.ami_harness import (
    AmiClient,
    CallResult,
    new_tag,
    originate,
    screen_call,
    wait_calls_done,
)
from tests.e2e.asterisk_server import AsteriskServer
from tests.e2e.gateway_runner import CAMPAIGN_ID, running_gateway

CONTEXTS = ("e2e-screen-gosub", "e2e-screen-inline")
BURST_CALLS = 200
BURST_DEADLINE_S = 120.0


def varsets(call: CallResult) -> dict[str, str]:
    """Last value of each GW_* variable Asterisk reported for the call."""
    out: dict[str, str] = {}
    for e in call.events:
        name = str(e.get("Variable", ""))
        if e.get("Event") == "VarSet" and name.startswith("GW_"):
            out[name] = str(e.get("Value", ""))
    return out


def e164_of(national: str) -> str:
    return "+33" + national[1:]


@pytest.mark.parametrize("context", CONTEXTS)
async def test_allowed_call_reaches_dial_step_with_e164(
    asterisk: AsteriskServer, ami_admin: AmiClient, ami_events: AmiClient, tmp_path: Path,
    context: str,
) -> None:
    async with running_gateway(tmp_path) as gw:
        await gw.consent("+33612345678")
        asterisk.set_global("GW_AGI", gw.agi_url)
        call = await screen_call(ami_admin, ami_events, "06 12 34 56 78".replace(" ", ""),
                                 context, campaign=CAMPAIGN_ID)
    assert call.dial_step_numbers == ["+33612345678"], call.events
    assert call.sink_numbers == ["+33612345678"]
    got = varsets(call)
    assert (got["GW_VERDICT"], got["GW_REASON"], got["GW_E164"]) == ("ALLOW", "ok",
                                                                      "+33612345678")
    records = gw.audit_records()
    assert [(r["id"], r["verdict"], r["number"], r["consent_id"]) for r in records] == [
        (got["GW_DECISION_ID"], "ALLOW", "+33612345678", "proof-+33612345678")]


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize(("number", "campaign", "reason"), [
    ("0698765432", CAMPAIGN_ID, "opposition"),  # consented, but on the internal list
    ("0611223344", CAMPAIGN_ID, "no_consent"),
    ("0123", CAMPAIGN_ID, "invalid_number"),
    ("0612345678", "no-such-campaign", "campaign_unknown"),
])
async def test_blocked_call_never_dials_and_hangs_up_21(
    asterisk: AsteriskServer, ami_admin: AmiClient, ami_events: AmiClient, tmp_path: Path,
    context: str,
    number: str, campaign: str, reason: str,
) -> None:
    async with running_gateway(tmp_path) as gw:
        await gw.consent("+33612345678", "+33698765432")
        await gw.oppose("+33698765432")
        asterisk.set_global("GW_AGI", gw.agi_url)
        call = await screen_call(ami_admin, ami_events, number, context, campaign=campaign)
    assert not call.reached_dial, call.events
    assert call.screen_hangup_cause == "21"
    got = varsets(call)
    assert (got["GW_VERDICT"], got["GW_REASON"]) == ("BLOCK", reason)


@pytest.mark.parametrize("context", CONTEXTS)
async def test_stopped_gateway_never_dials(
    asterisk: AsteriskServer, ami_admin: AmiClient, ami_events: AmiClient, tmp_path: Path,
    context: str,
) -> None:
    async with running_gateway(tmp_path) as gw:
        await gw.consent("+33612345678")
        url = gw.agi_url
        # a first call proves the address worked while the gateway ran
        asterisk.set_global("GW_AGI", url)
        before = await screen_call(ami_admin, ami_events, "0612345678", context,
                                   campaign=CAMPAIGN_ID)
    call = await screen_call(ami_admin, ami_events, "0612345678", context, campaign=CAMPAIGN_ID)
    assert before.dial_step_numbers == ["+33612345678"]
    assert not call.reached_dial, call.events
    assert call.screen_hangup_cause == "21"
    assert [e.get("Value") for e in call.events
            if e.get("Event") == "VarSet" and e.get("Variable") == "AGISTATUS"] == ["FAILURE"]


async def test_burst_of_200_calls_gets_200_correct_verdicts(
    asterisk: AsteriskServer, ami_admin: AmiClient, ami_events: AmiClient, tmp_path: Path,
) -> None:
    allowed = [f"061{i:07d}" for i in range(BURST_CALLS // 2)]
    opposed = [f"062{i:07d}" for i in range(BURST_CALLS // 4)]
    unconsented = [f"063{i:07d}" for i in range(BURST_CALLS // 4)]
    expected = {n: ("ALLOW", "ok") for n in allowed}
    expected |= {n: ("BLOCK", "opposition") for n in opposed}
    expected |= {n: ("BLOCK", "no_consent") for n in unconsented}
    # interleave so allowed and blocked calls are in flight together
    numbers = [n for trio in zip(allowed[::2], allowed[1::2], opposed, unconsented,
                                 strict=True) for n in trio]
    assert len(numbers) == BURST_CALLS
    async with running_gateway(tmp_path) as gw:
        await gw.consent(*(e164_of(n) for n in allowed + opposed))
        await gw.oppose(*(e164_of(n) for n in opposed))
        asterisk.set_global("GW_AGI", gw.agi_url)
        calls = [CallResult(tag=new_tag("burst"), number=n) for n in numbers]
        for call in calls:
            await originate(ami_admin, call.number, "e2e-screen-gosub", tag=call.tag,
                            campaign=CAMPAIGN_ID)
        await wait_calls_done(ami_events, calls, timeout_s=BURST_DEADLINE_S)
    wrong = []
    for call in calls:
        verdict, reason = expected[call.number]
        got = varsets(call)
        dialled_right = (call.sink_numbers == [e164_of(call.number)] if verdict == "ALLOW"
                         else not call.reached_dial and call.screen_hangup_cause == "21")
        if (got.get("GW_VERDICT"), got.get("GW_REASON")) != (verdict, reason) or not dialled_right:
            wrong.append((call.number, got, call.sink_numbers, call.screen_hangup_cause))
    assert wrong == [], f"{len(wrong)} wrong verdicts, first: {wrong[:3]}"
    # every decision Asterisk acted on is in the audit trail, once
    audited = {r["id"]: r["verdict"] for r in gw.audit_records()}
    assert len(audited) == BURST_CALLS
    assert {varsets(c)["GW_DECISION_ID"]: varsets(c)["GW_VERDICT"] for c in calls} == audited
