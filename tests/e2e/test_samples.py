"""The shipped samples (asterisk/*.conf) work, verbatim, in a real Asterisk.

A second Asterisk runs the sample extensions.conf as users copy it (plus the
VICIdial carrier example, included the way VICIdial includes its generated
carrier file), in front of the real gateway. Dial(PJSIP/...) fails there (no
PJSIP in the test Asterisk); what counts is that Asterisk *executes* Dial with the
E.164 the gateway returned, and never for a blocked number.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.e2e.ami_harness import AmiClient, CallResult, screen_call
from tests.e2e.asterisk_server import AsteriskServer, chroot_root
from tests.e2e.gateway_runner import RunningGateway, running_gateway

SAMPLES = Path(__file__).resolve().parents[2] / "asterisk"
CAMPAIGNS = ("spring-promo", "summer-promo")
ALLOWED = "+33612345678"
OPPOSED = "+33698765432"


def dial_data(call: CallResult) -> list[str]:
    return [str(e.get("AppData")) for e in call.dial_apps]


@pytest.fixture(scope="module")
def sample_asterisk(asterisk: AsteriskServer) -> Iterator[AsteriskServer]:
    """Depends on ``asterisk`` only for its availability checks (skip/fail)."""
    extensions = (SAMPLES / "extensions.conf").read_text(encoding="utf-8")
    extensions += '\n#include "vicidial-carrier.conf"\n'
    extensions += "\n[e2e-park]\nexten => s,1,Hangup(16)\n"  # where Originate's answer goes
    server = AsteriskServer(chroot_root(), extensions=extensions, extra_files={
        "vicidial-carrier.conf": (SAMPLES / "vicidial-carrier.conf").read_text(encoding="utf-8"),
    })
    try:
        server.start()
        server.set_global("FRTRUNK", "PJSIP/fr-trunk")  # VICIdial's "Globals String"
        yield server
    finally:
        server.cleanup()


@pytest.fixture
async def gw(sample_asterisk: AsteriskServer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with running_gateway(tmp_path, campaigns=CAMPAIGNS) as gateway:
        await gateway.consent(ALLOWED, OPPOSED)
        await gateway.oppose(OPPOSED)
        sample_asterisk.set_global("GW_AGI", gateway.agi_url)
        yield gateway


@pytest.fixture
async def clients(sample_asterisk: AsteriskServer) -> AsyncIterator[tuple[AmiClient, AmiClient]]:
    s = sample_asterisk
    async with AmiClient(s.ami_host, s.ami_port, s.admin_user, s.admin_secret) as admin, \
            AmiClient(s.ami_host, s.ami_port, s.events_user, s.events_secret) as events:
        yield admin, events


def test_samples_load_without_errors(sample_asterisk: AsteriskServer) -> None:
    for context in ("dialer-gateway-screen", "outbound-spring-promo", "outbound-summer-promo",
                    "dialer-gateway-vicidial-example"):
        shown = sample_asterisk.command(f"dialplan show {context}")
        assert f"'{context}'" in shown, shown
    assert sample_asterisk.command("dialplan show globals") is not None


@pytest.mark.parametrize(("context", "campaign"), [
    ("outbound-spring-promo", "spring-promo"), ("outbound-summer-promo", "summer-promo")])
async def test_sample_contexts_dial_allowed_e164_only(
    gw: RunningGateway, clients: tuple[AmiClient, AmiClient], context: str, campaign: str,
) -> None:
    admin, events = clients
    allowed = await screen_call(admin, events, "0612345678", context, campaign="ignored")
    blocked = await screen_call(admin, events, "0698765432", context, campaign="ignored")
    assert dial_data(allowed) == [f"PJSIP/{ALLOWED}@trunk,45"], allowed.events
    assert dial_data(blocked) == []
    assert blocked.screen_hangup_cause == "21"
    # the context's own CAMPAIGN reached the gateway
    assert {r["campaign"] for r in gw.audit_records()} == {campaign}


async def test_vicidial_carrier_strips_prefix_and_dials_e164(
    gw: RunningGateway, clients: tuple[AmiClient, AmiClient],
) -> None:
    admin, events = clients
    allowed = await screen_call(admin, events, "90612345678", "dialer-gateway-vicidial-example",
                                campaign="ignored")
    blocked = await screen_call(admin, events, "90698765432", "dialer-gateway-vicidial-example",
                                campaign="ignored")
    assert dial_data(allowed) == [f"PJSIP/fr-trunk/{ALLOWED},,tTo"], allowed.events
    assert dial_data(blocked) == []
    assert blocked.screen_hangup_cause == "21"
    records = gw.audit_records()
    # the gateway saw the number without VICIdial's 9 prefix
    assert [(r["number_input"], r["campaign"], r["verdict"]) for r in records] == [
        ("0612345678", "spring-promo", "ALLOW"), ("0698765432", "spring-promo", "BLOCK")]
