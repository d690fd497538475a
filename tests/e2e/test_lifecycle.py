"""Reload under load, and the AMI proxy while Asterisk is down, against the real Asterisk.

- Reload under load: a burst of FastAGI screening calls (tests/agi_client.py) and a
  dialer (panoramisk's Manager) logged into the AMI proxy, originating through the
  real Asterisk, while the configuration is reloaded several times over
  ``POST /-/reload``. Nothing is dropped: every FastAGI call is answered ALLOW, the
  dialer's one session is never closed, and a campaign added by a reload is used.
- Asterisk down: a dialer Login is refused with ``Asterisk is unreachable`` while
  Asterisk is stopped and accepted again once it is back.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.ami.session import UPSTREAM_DOWN_MESSAGE
from gateway.app import App
from gateway.config import load_config
from gateway.store.base import ImportMode
from tests.agi_client import agi_screen
from tests.ami.helpers import Dialer
from tests.e2e.ami_harness import AmiClient, event_tag, new_tag
from tests.e2e.asterisk_server import AsteriskServer
from tests.e2e.gateway_runner import (
    CAMPAIGN_TOML,
    CONFIG_TOML,
    LEGAL_INSTANT,
    PRODUCT_CATEGORY,
    PROFESSIONAL,
    consent_rows,
)
from tests.lifecycle.support import write

DIALER_USER, DIALER_SECRET = "dialer", "dialer-pw"
WAIT_S = 30.0
BURST_CALLS = 300  # FastAGI screening sessions at least, before, during and after the reloads
IN_FLIGHT = 50  # of them at once
NUMBER_POOL = 2000  # consented numbers; a call never reuses one (frequency caps)
RELOADS = 5
_numbers = itertools.count(100)

AMI_TOML = """
[ami]
host = "{host}"
port = {port}
username = "{admin}"
secret = "{admin_secret}"
reconnect_initial_s = 0.2
reconnect_max_s = 1.0

[ami_proxy]
enabled = true
listen = "127.0.0.1:0"

[ami_proxy.accounts.{dialer}]
secret = "{dialer_secret}"
campaign_variable = "CAMPAIGN"
default_campaign = "e2e-promo"
campaigns = {campaigns}
dial_targets = ["e2e-sink,_X."]
agent_targets = ["e2e-park,s"]
"""


def next_number() -> str:
    return f"0612{next(_numbers):06d}"


@dataclass
class Rig:
    app: App
    asterisk: AsteriskServer
    conf: Path
    tmp: Path

    def write_config(self, *campaigns: str) -> None:
        a = self.asterisk
        text = CONFIG_TOML.format(audit_path=self.tmp / "audit.jsonl")
        text += AMI_TOML.format(host=a.ami_host, port=a.ami_port, admin=a.admin_user,
                                admin_secret=a.admin_secret, dialer=DIALER_USER,
                                dialer_secret=DIALER_SECRET,
                                campaigns=json.dumps(list(campaigns)))
        text += "".join(CAMPAIGN_TOML.format(campaign=c, professional=PROFESSIONAL,
                                             category=PRODUCT_CATEGORY) for c in campaigns)
        write(self.conf, text)

    async def consent(self, *numbers: str) -> None:
        assert self.app.store is not None
        rows = consent_rows(["+33" + n[1:] for n in numbers], LEGAL_INSTANT)
        await self.app.store.import_consents(rows, mode=ImportMode.MERGE, now=LEGAL_INSTANT)

    async def post_reload(self) -> dict[str, Any]:
        host, port = self.app.http_address
        async with asyncio.timeout(WAIT_S):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"POST /-/reload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            raw = await reader.read()
            writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), raw
        doc: dict[str, Any] = json.loads(body)
        return doc


@pytest.fixture
async def rig(asterisk: AsteriskServer, tmp_path: Path) -> AsyncIterator[Rig]:
    if not asterisk.running:
        asterisk.start()
    r = Rig(app=None, asterisk=asterisk, conf=tmp_path / "gateway.toml", tmp=tmp_path)  # type: ignore[arg-type]
    r.write_config("e2e-promo")
    r.app = App(load_config(r.conf, env={}), clock=lambda: LEGAL_INSTANT)
    await r.app.start()
    try:
        assert r.app.ami is not None
        async with asyncio.timeout(WAIT_S):
            await r.app.ami.upstream.connected.wait()
        yield r
    finally:
        await r.app.stop()


async def originate(dialer: AmiClient, number: str, campaign: str, tag: str) -> Any:
    return await dialer.action({
        "Action": "Originate", "Channel": f"Local/{number}@e2e-sink",
        "Context": "e2e-park", "Exten": "s", "Priority": "1", "Async": "true",
        "Timeout": "20000", "Variable": [f"__DG_TAG={tag}", f"CAMPAIGN={campaign}"],
    }, as_list=False)


async def test_reload_under_load_drops_nothing_and_uses_the_new_campaign(rig: Rig) -> None:
    pool = [next_number() for _ in range(NUMBER_POOL)]  # one fresh number per call (caps)
    late_number, early_number = next_number(), next_number()
    await rig.consent(*pool, late_number, early_number)
    address = rig.app.ami_proxy_address
    assert address is not None and rig.app.ami is not None and rig.app.ami.proxy is not None
    a = rig.asterisk
    async with AmiClient(a.ami_host, a.ami_port, a.events_user, a.events_secret) as watcher, \
            AmiClient(address[0], address[1], DIALER_USER, DIALER_SECRET) as dialer:
        (session,) = rig.app.ami.proxy.sessions
        # before: the "late" campaign does not exist
        refused = await originate(dialer, early_number, "late", new_tag("early"))
        assert refused.get("Message") == ("Originate refused by dialer-gateway: "
                                          "campaign 'late' not allowed for this account")

        numbers = iter(pool)
        reloads_done = asyncio.Event()
        in_flight_at_reload: list[int] = []
        in_flight = 0

        async def caller() -> list[dict[str, str]]:
            """Calls back to back until the reloads are over and its share is done."""
            nonlocal in_flight
            out: list[dict[str, str]] = []
            while not reloads_done.is_set() or len(out) < BURST_CALLS // IN_FLIGHT:
                in_flight += 1
                try:
                    out.append(await agi_screen(rig.app.agi_address, next(numbers), "e2e-promo"))
                finally:
                    in_flight -= 1
            return out

        async def reloads() -> list[dict[str, Any]]:
            done = []
            for k in range(RELOADS):
                campaigns = ["e2e-promo", *(f"extra-{i}" for i in range(k + 1))]
                if k == RELOADS - 1:
                    campaigns.append("late")
                rig.write_config(*campaigns)
                in_flight_at_reload.append(in_flight)
                done.append(await rig.post_reload())
                # the dialer's session answers between reloads
                pong = await dialer.action({"Action": "Ping"}, as_list=False)
                assert pong.get("Ping") == "Pong"
            reloads_done.set()
            return done

        callers = [asyncio.create_task(caller()) for _ in range(IN_FLIGHT)]
        await asyncio.sleep(0)  # the callers are connecting
        reload_results = await reloads()
        async with asyncio.timeout(WAIT_S * 2):
            answered = [v for batch in await asyncio.gather(*callers) for v in batch]

        assert min(in_flight_at_reload) > 0, in_flight_at_reload  # reloads under load
        assert [r["result"] for r in reload_results] == ["success"] * RELOADS
        assert all(r["restart_needed"] == [] for r in reload_results)
        verdicts = [(v["GW_VERDICT"], v["GW_REASON"]) for v in answered]
        print(f"reload under load: {len(verdicts)} FastAGI calls, in flight at each of the "
              f"{RELOADS} reloads: {in_flight_at_reload}")
        assert len(verdicts) >= BURST_CALLS
        assert verdicts == [("ALLOW", "ok")] * len(verdicts)
        assert rig.app.ami.proxy.sessions == {session}  # the same dialer session, never closed

        # after: the campaign added by the last reload is used for a real call
        tag = new_tag("late")
        resp = await originate(dialer, late_number, "late", tag)
        assert resp.get("Response") == "Success", resp
        sink = await watcher.wait_for(
            lambda e: e.get("Event") == "UserEvent" and e.get("UserEvent") == "DgSinkReached"
            and event_tag(e) == tag, timeout_s=WAIT_S)
        assert sink.get("Number") == late_number
    records = [json.loads(line) for line in
               (rig.tmp / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    late = [r["verdict"] for r in records if r["campaign"] == "late"]
    # before the reload "late" was no campaign of the account: refused before screening
    # (no audit record); after it, the account's new campaign is screened and used
    assert late == ["ALLOW"]


async def test_dialer_login_refused_while_asterisk_is_down(rig: Rig) -> None:
    address = rig.app.ami_proxy_address
    assert address is not None and rig.app.ami is not None
    upstream = rig.app.ami.upstream
    assert upstream is not None
    rig.asterisk.stop()
    try:
        async with asyncio.timeout(WAIT_S):
            while upstream.state == "up":
                await upstream.state_change()
        refused = await Dialer.connect(address[1])
        try:
            resp = await refused.login(DIALER_USER, DIALER_SECRET)
            assert (resp.response, resp.get("Message")) == ("Error", UPSTREAM_DOWN_MESSAGE)
            assert await refused.closed()
        finally:
            await refused.close()
    finally:
        rig.asterisk.start()
    async with asyncio.timeout(WAIT_S):
        while upstream.state != "up":
            await upstream.state_change()
    d = await Dialer.connect(address[1])
    try:
        assert (await d.login(DIALER_USER, DIALER_SECRET)).response == "Success"
        await d.send(Action="CoreStatus", ActionID="cs")
        status = await d.response()
        assert (status.response, status.action_id) == ("Success", "cs")  # real Asterisk
        assert status.get("CoreStartupTime")
    finally:
        await d.close()
