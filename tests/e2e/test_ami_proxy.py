"""The AMI proxy and event consumer in the real App, in front of a real Asterisk.

The dialer is panoramisk's ``Manager`` (a third-party AMI client) logged into the
proxy. What Asterisk did is proven by Asterisk's own events, seen by a separate
read-only client logged straight into Asterisk.
"""



from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.ami.events import EventConsumer
from gateway.app import App
from gateway.config import load_config
from gateway.core.model import CampaignStats
from gateway.store.base import ImportMode, Store
from tests.e2e.ami_harness import AmiClient, event_tag, new_tag
from tests.e2e.asterisk_server import AsteriskServer
from tests.e2e.gateway_runner import CONFIG_TOML, consent_rows

NOW = datetime(2026, 12, 1, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))  # a legal Tuesday
DIALER_USER, DIALER_SECRET = "dialer", "dialer-pw"
WAIT_S = 30.0
_numbers = itertools.count(10)


def next_number() -> str:
    """A fresh French mobile number per call (frequency caps are per number)."""
    return f"06120000{next(_numbers):02d}"


# The runner's base configuration (memory store, loopback listeners, JSONL audit with
# the e2e write timeout), then the AMI parts of this module.
CONFIG = CONFIG_TOML + """
[policy]
packs_dir = "{packs}"

[ami]
enabled = true
host = "{host}"
port = {port}
username = "{admin}"
secret = "{admin_secret}"
events_username = "{events}"
events_secret = "{events_secret}"
reconnect_initial_s = 0.2
reconnect_max_s = 1.0

[ami_proxy]
enabled = true
listen = "127.0.0.1:0"

[ami_proxy.accounts.{dialer}]
secret = "{dialer_secret}"
campaign_variable = "CAMPAIGN"
default_campaign = "ami-promo"
campaigns = ["ami-promo", "ami-abandon"]
# the callee contexts dial (answer) the number they get; the agent side does not
dial_targets = ["e2e-sink,_X.", "e2e-callee-abandon,_X.", "e2e-ami-hold,_X.",
                "e2e-ami-ring,_X."]
agent_targets = ["e2e-park,s", "e2e-ami-agent-side,s"]

[campaigns.ami-promo]
professional = "acme"
product_category = "telecom"
automated = true
caller_id = "+33162000001"

[campaigns.ami-abandon]
professional = "acme"
product_category = "telecom"
automated = true
caller_id = "+33162000001"
"""


# A callee that answers and stays on the line for 5 s.
HOLD_CONTEXT = "exten => _[+0-9].,1,Answer()\n same => n,Wait(5)\n same => n,Hangup(16)\n"
# The agent side of an Originate (its Context/Exten): bridges the callee to an agent.
AGENT_SIDE_CONTEXT = "exten => s,1,Dial(Local/agent@e2e-agent,10)\n same => n,Hangup(16)\n"
# A callee that rings and never answers.
RING_CONTEXT = "exten => _[+0-9].,1,Wait(60)\n same => n,Hangup(16)\n"


@dataclass
class Rig:
    app: App
    dialer: AmiClient
    watcher: AmiClient
    asterisk: AsteriskServer

    @property
    def store(self) -> Store:
        assert self.app.store is not None
        return self.app.store

    @property
    def consumer(self) -> EventConsumer:
        assert self.app.ami is not None and self.app.ami.consumer is not None
        consumer: EventConsumer = self.app.ami.consumer
        return consumer

    async def consent(self, *numbers: str) -> None:
        rows = consent_rows(["+33" + n[1:] for n in numbers], NOW)
        await self.store.import_consents(rows, mode=ImportMode.MERGE, now=NOW)

    async def originate(self, number: str, callee_context: str, *, campaign: str,
                        tag: str, agent_context: str = "e2e-park") -> Any:
        return await self.dialer.action({
            "Action": "Originate",
            "Channel": f"Local/{number}@{callee_context}",
            "Context": agent_context, "Exten": "s", "Priority": "1",
            "Async": "true", "Timeout": "20000",
            "Variable": [f"__DG_TAG={tag}", f"CAMPAIGN={campaign}"],
        }, as_list=False)

    async def stats(self, campaign: str) -> CampaignStats:
        facts = await self.store.load_facts(
            e164="", professional="acme", campaign_id=campaign, now=NOW + timedelta(hours=1),
            attempt_window_s=0, abandon_window_s=86400)
        return facts.campaign

    async def wait_answered(self, campaign: str, count: int) -> CampaignStats:
        """Until the consumer counted ``count`` answered calls (event-driven, deadline)."""
        async with asyncio.timeout(WAIT_S):
            while (stats := await self.stats(campaign)).answered < count:
                await self.consumer.wait_processed(self.consumer.processed + 1)
        return stats


def _packs_dir(tmp: Path) -> Path:
    """FR-2026 with ``min_answered = 3`` so that three abandoned calls trip the limit."""
    text = resources.files("gateway.core").joinpath("packs/fr-2026.toml").read_text("utf-8")
    assert "min_answered = 20" in text
    out = tmp / "packs"
    out.mkdir()
    (out / "fr-2026.toml").write_text(text.replace("min_answered = 20", "min_answered = 3"),
                                      encoding="utf-8")
    return out


@pytest.fixture
async def rig(asterisk: AsteriskServer, tmp_path: Path) -> AsyncIterator[Rig]:
    if not asterisk.running:
        asterisk.start()
    asterisk.add_context("e2e-ami-hold", HOLD_CONTEXT)
    asterisk.add_context("e2e-ami-agent-side", AGENT_SIDE_CONTEXT)
    asterisk.add_context("e2e-ami-ring", RING_CONTEXT)
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG.format(
        audit_path=tmp_path / "audit.jsonl", packs=_packs_dir(tmp_path),
        host=asterisk.ami_host, port=asterisk.ami_port,
        admin=asterisk.admin_user, admin_secret=asterisk.admin_secret,
        events=asterisk.events_user, events_secret=asterisk.events_secret,
        dialer=DIALER_USER, dialer_secret=DIALER_SECRET,
    ), encoding="utf-8")
    app = App(load_config(path, env={}), clock=lambda: NOW)
    await app.start()
    try:
        assert app.ami is not None
        async with asyncio.timeout(WAIT_S):
            await app.ami.upstream.connected.wait()
        address = app.ami_proxy_address
        assert address is not None
        async with AmiClient(asterisk.ami_host, asterisk.ami_port, asterisk.events_user,
                             asterisk.events_secret) as watcher, \
                AmiClient(address[0], address[1], DIALER_USER, DIALER_SECRET) as dialer:
            yield Rig(app, dialer, watcher, asterisk)
    finally:
        await app.stop()


def tagged(rig: Rig, tag: str, name: str | None = None) -> list[Any]:
    return [e for e in rig.watcher.events
            if event_tag(e) == tag and (name is None or e.get("Event") == name)]


async def wait_hangups(rig: Rig, tag: str, count: int = 2) -> None:
    await rig.watcher.wait_until(lambda: len(tagged(rig, tag, "Hangup")) >= count,
                                 timeout_s=WAIT_S)


async def test_blocked_originate_never_reaches_asterisk_allowed_one_rings(rig: Rig) -> None:
    blocked_number, allowed_number = next_number(), next_number()
    await rig.consent(allowed_number)
    blocked_tag, allowed_tag = new_tag("blk"), new_tag("ok")
    resp = await rig.originate(blocked_number, "e2e-sink", campaign="ami-promo", tag=blocked_tag)
    assert resp.get("Response") == "Error"
    assert resp.get("Message") == "Originate blocked by dialer-gateway: no_consent"
    resp = await rig.originate(allowed_number, "e2e-sink", campaign="ami-promo", tag=allowed_tag)
    assert resp.get("Response") == "Success", resp
    await wait_hangups(rig, allowed_tag)
    sink = [e for e in tagged(rig, allowed_tag, "UserEvent")
            if e.get("UserEvent") == "DgSinkReached"]
    assert [e.get("Number") for e in sink] == [allowed_number]
    decision = [e for e in rig.watcher.events
                if e.get("Event") == "VarSet" and e.get("Variable") == "GW_DECISION_ID"
                and str(e.get("Channel")).startswith(f"Local/{allowed_number}@")]
    assert decision, "the allowed Originate carried GW_DECISION_ID"
    # Asterisk's own events: nothing ever happened for the blocked Originate.
    assert tagged(rig, blocked_tag) == []


async def test_abandoned_calls_push_the_campaign_over_the_limit(rig: Rig) -> None:
    numbers = [next_number() for _ in range(4)]
    await rig.consent(*numbers)
    for n in numbers[:3]:
        tag = new_tag("ab")
        resp = await rig.originate(n, "e2e-callee-abandon", campaign="ami-abandon", tag=tag)
        assert resp.get("Response") == "Success", resp
        await wait_hangups(rig, tag)
    stats = await rig.wait_answered("ami-abandon", 3)
    assert (stats.answered, stats.abandoned) == (3, 3)
    tag = new_tag("ab")
    resp = await rig.originate(numbers[3], "e2e-callee-abandon", campaign="ami-abandon", tag=tag)
    assert resp.get("Message") == "Originate blocked by dialer-gateway: abandon_rate"
    # the other campaign is not affected
    other = next_number()
    await rig.consent(other)
    resp = await rig.originate(other, "e2e-sink", campaign="ami-promo", tag=new_tag("ok"))
    assert resp.get("Response") == "Success", resp


async def test_bridged_call_is_not_abandoned(rig: Rig) -> None:
    number = next_number()
    await rig.consent(number)
    tag = new_tag("br")
    # the agent side (Context) bridges the answered callee to an agent
    resp = await rig.originate(number, "e2e-ami-hold", campaign="ami-promo", tag=tag,
                               agent_context="e2e-ami-agent-side")
    assert resp.get("Response") == "Success", resp
    stats = await rig.wait_answered("ami-promo", 1)
    assert (stats.answered, stats.abandoned) == (1, 0)


async def test_refusal_user_event_blocks_the_next_call_to_that_number(
    rig: Rig, ami_admin: AmiClient
) -> None:
    number = next_number()
    await rig.consent(number)
    tag = new_tag("rf")
    assert (await rig.originate(number, "e2e-sink", campaign="ami-promo", tag=tag)
            ).get("Response") == "Success"
    await wait_hangups(rig, tag)
    before = rig.consumer.processed
    resp = await ami_admin.action({"Action": "UserEvent", "UserEvent": "GatewayOutcome",
                                   "Number": number, "Campaign": "ami-promo",
                                   "Outcome": "refused"}, as_list=False)
    assert resp.get("Response") == "Success"
    async with asyncio.timeout(WAIT_S):
        while not (await rig.store.load_facts(
                e164="+33" + number[1:], professional="acme", campaign_id="ami-promo",
                now=NOW, attempt_window_s=0, abandon_window_s=60)).suppressions:
            await rig.consumer.wait_processed(max(before, rig.consumer.processed) + 1)
    resp = await rig.originate(number, "e2e-sink", campaign="ami-promo", tag=new_tag("rf"))
    assert resp.get("Message") == "Originate blocked by dialer-gateway: refusal_cooldown"


async def test_asterisk_restart_no_replay_consumer_reconnects(rig: Rig) -> None:
    number = next_number()
    await rig.consent(number, after := next_number())
    tag = new_tag("rs")
    ami = rig.app.ami
    assert ami is not None and ami.upstream is not None
    connections = (ami.upstream.connections, rig.consumer.connections)
    # a synchronous Originate to a callee that never answers: in flight at the restart
    pending = asyncio.ensure_future(rig.dialer.action({
        "Action": "Originate", "Channel": f"Local/{number}@e2e-ami-ring",
        "Context": "e2e-park", "Exten": "s", "Priority": "1", "Timeout": "60000",
        "Variable": [f"__DG_TAG={tag}", "CAMPAIGN=ami-promo"],
    }, as_list=False))
    # the callee leg runs its dialplan (Newchannel comes before the tag variable is set)
    await rig.watcher.wait_until(lambda: bool(tagged(rig, tag)), timeout_s=WAIT_S)
    await asyncio.to_thread(rig.asterisk.restart)
    async with asyncio.timeout(WAIT_S):
        resp = await pending
    # Asterisk's own "Originate failed" when it hangs the channel up on its way down,
    # or the proxy's "... not sent again" when the connection drops first.
    assert resp.get("Response") == "Error", resp
    async with asyncio.timeout(WAIT_S):
        while ami.upstream.connections <= connections[0] or ami.upstream.state != "up":
            await ami.upstream.state_change()
        while rig.consumer.connections <= connections[1] or rig.consumer.state != "up":
            await rig.consumer.state_change()
    seen_before = len(tagged(rig, tag))
    # after the restart: a new call works, and the old Originate was never replayed
    async with AmiClient(rig.asterisk.ami_host, rig.asterisk.ami_port,
                         rig.asterisk.events_user, rig.asterisk.events_secret) as fresh:
        tag2 = new_tag("rs")
        resp = await rig.dialer.action({
            "Action": "Originate", "Channel": f"Local/{after}@e2e-sink",
            "Context": "e2e-park", "Exten": "s", "Priority": "1", "Async": "true",
            "Variable": [f"__DG_TAG={tag2}", "CAMPAIGN=ami-promo"],
        }, as_list=False)
        assert resp.get("Response") == "Success", resp
        await fresh.wait_until(
            lambda: sum(1 for e in fresh.events
                        if event_tag(e) == tag2 and e.get("Event") == "Hangup") >= 2,
            timeout_s=WAIT_S)
        assert [e for e in fresh.events if event_tag(e) == tag] == []
    assert len(tagged(rig, tag)) == seen_before
