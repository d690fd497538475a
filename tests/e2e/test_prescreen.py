"""Belt and braces in a real Asterisk 22: an Originate screened by the AMI proxy and
again by the shipped VICIdial carrier sample (verbatim, with the shipped subroutine)
counts as ONE attempt.

With the FR-2026 cap (4 attempts per professional per 30 days): 4 Originates of the
same number through the proxy are each screened twice and all reach the carrier's
``Dial`` with the E.164; the 5th is blocked by the proxy (``frequency_cap``) and never
reaches Asterisk; the store holds exactly 4 attempts; each carrier screen's audit
record links to the proxy's decision and says the attempt was already counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app import App
from gateway.config import load_config
from tests.e2e.ami_harness import AmiClient, event_tag, new_tag
from tests.e2e.gateway_runner import JSONL_AUDIT, LEGAL_INSTANT
from tests.fixtures.ami_attack import (
    DIALER_SECRET,
    DIALER_USER,
    PROXY_CONFIG,
    PROXY_USER,
    WAIT_S,
    AttackAsterisk,
    AttackRig,
    next_number,
)

pytestmark = pytest.mark.e2e

SAMPLE = Path(__file__).resolve().parents[2] / "asterisk" / "vicidial-carrier.conf"
CARRIER = "dialer-gateway-vicidial-example"
CAP = 4  # FR-2026: D.223-9, 4 attempts per professional per 30 days

# The proxy may originate into the sample carrier context; the sample sets its own
# campaign (spring-promo), of the same professional as the proxy's ami-promo.
CONFIG = PROXY_CONFIG.replace(
    'dial_targets = ["carrier,_9X."]',
    f'dial_targets = ["carrier,_9X.", "{CARRIER},_9X."]',
) + """
[campaigns.spring-promo]
professional = "acme"
product_category = "telecom"
automated = true
caller_id = "+33162000001"
"""


def sample_context() -> str:
    """The body of the sample's carrier context, verbatim."""
    text = SAMPLE.read_text(encoding="utf-8")
    return text.split(f"[{CARRIER}]\n", 1)[1]


@pytest.fixture
async def rig(attack_asterisk: AttackAsterisk, tmp_path: Path) -> AsyncIterator[AttackRig]:
    ast = attack_asterisk
    if not ast.running:
        ast.start()
    assert CONFIG != PROXY_CONFIG
    ast.add_context(CARRIER, sample_context())
    ast.set_global("FRTRUNK", "Local")  # VICIdial's "Globals String"; Dial is what counts
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG.format(
        audit_path=tmp_path / "audit.jsonl", host=ast.ami_host, port=ast.ami_port,
        admin=PROXY_USER.username, admin_secret=PROXY_USER.secret,
        dialer=DIALER_USER, dialer_secret=DIALER_SECRET,
        # the runner's base configuration (tests/e2e/gateway_runner.py): memory store
        store_url="memory://", key_prefix="dg", store_timeout_s=0.2,
        store_connect_timeout_s=0.5, store_max_connections=0, agi_extra="",
        audit_sink=JSONL_AUDIT.format(audit_path=tmp_path / "audit.jsonl"),
        audit_write_timeout_s=2.0, budget_ms=1000.0,
    ), encoding="utf-8")
    app = App(load_config(path, env={}), clock=lambda: LEGAL_INSTANT)
    await app.start()
    try:
        assert app.ami is not None and app.ami.upstream is not None
        async with asyncio.timeout(WAIT_S):
            await app.ami.upstream.connected.wait()
        host, port = app.agi_address
        await asyncio.to_thread(ast.set_global, "GW_AGI", f"agi://{host}:{port}")
        address = app.ami_proxy_address
        assert address is not None
        async with AmiClient(ast.ami_host, ast.ami_port, ast.events_user,
                             ast.events_secret) as watcher, \
                AmiClient(ast.ami_host, ast.ami_port, ast.admin_user,
                          ast.admin_secret) as admin, \
                AmiClient(address[0], address[1], DIALER_USER, DIALER_SECRET) as dialer:
            yield AttackRig(app, ast, dialer, admin, watcher, tmp_path / "audit.jsonl")
    finally:
        await app.stop()


def dials(rig: AttackRig, tag: str) -> list[str]:
    """AppData of every Dial the carrier context executed for the call ``tag``."""
    return [str(e.get("AppData")) for e in rig.watcher.events
            if e.get("Event") == "Newexten" and e.get("Context") == CARRIER
            and e.get("Application") == "Dial" and event_tag(e) == tag]


async def originate(rig: AttackRig, number: str, tag: str) -> Any:
    return await rig.dialer.action({
        "Action": "Originate", "Channel": f"Local/9{number}@{CARRIER}",
        "Context": "agents", "Exten": "s", "Priority": "1", "Async": "true",
        "Timeout": "10000", "Variable": [f"__DG_TAG={tag}", "CAMPAIGN=ami-promo"],
    }, as_list=False)


async def test_cap_n_calls_screened_by_proxy_and_carrier_are_all_placed(rig: AttackRig) -> None:
    number = next_number()
    e164 = "+33" + number[1:]
    await rig.consent(number)
    for i in range(CAP):
        tag = new_tag("pre")
        resp = await originate(rig, number, tag)
        assert resp.get("Response") == "Success", (i, resp)
        # the carrier's screen allowed it: Dial of the E.164 the gateway returned
        await rig.watcher.wait_until(lambda t=tag: bool(dials(rig, t)), timeout_s=WAIT_S)
        assert dials(rig, tag) == [f"Local/{e164},,tTo"]
    tag = new_tag("pre")
    resp = await originate(rig, number, tag)
    assert resp.get("Message") == "Originate blocked by dialer-gateway: frequency_cap", resp
    facts = await rig.store.load_facts(
        e164=e164, professional="acme", campaign_id="ami-promo", now=LEGAL_INSTANT,
        attempt_window_s=30 * 86400, abandon_window_s=86400)
    assert len(facts.attempts) == CAP
    await rig.settle()
    assert [e for e in rig.watcher.events if event_tag(e) == tag] == []

    records = [r for r in rig.audit_records() if r["number"] == e164]
    proxy = [r for r in records if r["source"] == "ami"]
    carrier = [r for r in records if r["source"] == "agi"]
    assert [(r["verdict"], r["reason"]) for r in proxy] == (
        [("ALLOW", "ok")] * CAP + [("BLOCK", "frequency_cap")])
    assert [(r["verdict"], r["reason"], r["campaign"]) for r in carrier] == (
        [("ALLOW", "ok", "spring-promo")] * CAP)
    # each carrier screen names the proxy's decision of the same call, counted there
    links = [dict(r["context"]) for r in carrier]
    assert [c["prescreen_decision_id"] for c in links] == [r["id"] for r in proxy[:CAP]]
    assert {c["prescreen"] for c in links} == {"attempt already counted by the prescreen"}
    assert [r["counters"]["attempts_seen"] for r in carrier] == list(range(CAP))
