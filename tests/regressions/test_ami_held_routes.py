"""Routes that held before the default-deny rework, kept as regressions.

Every Channel form of a blocked number (PJSIP, SIP, IAX2, DAHDI, Local, ``/n``, letter
case, a tab, repeated headers) is blocked or refused and never reaches Asterisk;
``Application: Dial`` with a number is refused; a second ``Login`` changes nothing;
``Command``, ``UpdateConfig``, ``DBPut`` are denied.
"""

from __future__ import annotations

import pytest

from gateway.core.model import Reason
from tests.ami.helpers import harness

BLOCKED = "0699999999"


@pytest.mark.parametrize("channel", [
    f"PJSIP/{BLOCKED}@trunk",
    f"pjsip/{BLOCKED}@trunk",
    f"PJSIP/trunk/sip:{BLOCKED}@carrier.example",
    f"SIP/trunk/{BLOCKED}",
    f"SIP/{BLOCKED}@trunk",
    f"IAX2/trunk/{BLOCKED}",
    f"IAX2/user:pw@trunk/{BLOCKED}",
    f"DAHDI/g1/{BLOCKED}",
    f"Local/9{BLOCKED}@default",
    f"Local/9{BLOCKED}@default/n",
    f"LOCAL/9{BLOCKED}@default/n",
])
async def test_channel_forms_of_a_blocked_number_are_blocked(channel: str) -> None:
    async with harness() as h:
        h.screener.blocked[BLOCKED] = Reason.OPPOSITION
        d = await h.dialer()
        await d.send(Action="Originate", Channel=channel, Context="default", Exten="8365",
                     Priority="1", ActionID="o")
        resp = await d.response()
        assert resp.get("Message") == "Originate blocked by dialer-gateway: opposition"
        assert h.fake.actions("Originate") == []


@pytest.mark.parametrize("raw", [
    f"Action: Originate\nChannel: PJSIP/\t{BLOCKED}@trunk\nContext: default\nExten: 8365\n\n",
    f"Action: Originate\nChannel: PJSIP/0612345678@trunk\nChannel: PJSIP/{BLOCKED}@trunk\n"
    "Context: default\nExten: 8365\n\n",
    f"Action: Originate\nChannel: Local/9{BLOCKED}@elsewhere\nContext: default\n"
    "Exten: 8365\n\n",
    f"Action: Originate\nChannel: PJSIP/0612345678@trunk\nApplication: Dial\n"
    f"Data: PJSIP/{BLOCKED}@trunk\n\n",
])
async def test_odd_forms_are_refused_before_screening(raw: str) -> None:
    async with harness() as h:
        d = await h.dialer()
        await d.send_raw(raw.encode())
        resp = await d.response()
        assert resp.response == "Error"
        assert str(resp.get("Message")).startswith("Originate refused by dialer-gateway")
        assert h.screener.attempts == []
        assert h.fake.actions("Originate") == []


async def test_second_login_changes_nothing() -> None:
    async with harness() as h:
        d = await h.dialer()
        await d.send(Action="Login", Username="admin", Secret="whatever", ActionID="L2")
        assert (await d.response()).get("Message") == "Already authenticated"
        await d.send(Action="Command", Command="core stop now", ActionID="c")
        assert (await d.response()).get("Message") == "Permission denied"


@pytest.mark.parametrize(("action", "headers"), [
    ("Command", {"Command": "channel originate Local/0699999999@default application Wait 1"}),
    ("UpdateConfig", {"SrcFilename": "extensions.conf", "DstFilename": "extensions.conf",
                      "Action-000000": "Append", "Cat-000000": "default"}),
    ("DBPut", {"Family": "gw", "Key": "k", "Val": "v"}),
    ("GetConfig", {"Filename": "manager.conf"}),
    ("ModuleLoad", {"Module": "app_system.so", "LoadType": "load"}),
])
async def test_dangerous_actions_are_denied(action: str, headers: dict[str, str]) -> None:
    async with harness() as h:
        d = await h.dialer()
        await d.send(("Action", action), *headers.items(), ("ActionID", "x"))
        assert (await d.response()).get("Message") == "Permission denied"
        assert h.fake.actions(action) == []
