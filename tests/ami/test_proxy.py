"""The AMI proxy against a scripted fake Asterisk (real sockets on 127.0.0.1)."""



from __future__ import annotations

from gateway.ami.auth import md5_key
from gateway.ami.codec import AmiMessage
from gateway.core.model import Reason
from tests.ami.helpers import harness


async def test_plain_login_ping_and_logoff() -> None:
    async with harness() as h:
        d = await h.dialer(login=False)
        resp = await d.login()
        assert resp.response == "Success"
        assert resp.action_id == "L"
        assert d.parser.banner is not None and d.parser.banner.startswith("Asterisk Call Manager/")
        await d.send(Action="Ping", ActionID="p1")
        pong = await d.response()
        assert (pong.get("Ping"), pong.action_id) == ("Pong", "p1")
        await d.send(Action="Logoff")
        assert (await d.response()).response == "Goodbye"
        assert await d.closed()
        assert h.fake.actions("Ping") == []  # answered by the proxy itself


async def test_md5_challenge_login() -> None:
    async with harness() as h:
        d = await h.dialer(login=False)
        await d.send(Action="Challenge", AuthType="MD5", ActionID="c")
        challenge = (await d.response()).get("Challenge")
        assert challenge
        await d.send(Action="Login", AuthType="MD5", Username="vici",
                     Key=md5_key(challenge, "dialer-pw"), ActionID="l")
        assert (await d.response()).response == "Success"


async def test_allowed_originate_is_forwarded_with_decision_id_and_own_action_id() -> None:
    async with harness() as h:
        d = await h.dialer()
        await d.send(("Action", "Originate"), ("Channel", "PJSIP/0612345678@trunk"),
                     ("Exten", "8365"), ("Context", "default"), ("Priority", "1"),
                     ("Variable", "CAMPAIGN=autumn,LEAD=7"), ("CallerID", '"X" <0162000001>'),
                     ("ActionID", "orig-1"))
        resp = await d.response()
        assert resp.response == "Success"
        assert resp.action_id == "orig-1"
        (sent,) = h.fake.actions("Originate")
        assert sent.action_id != "orig-1"  # remapped upstream
        assert "GW_DECISION_ID=dec-1" in sent.get_all("Variable")
        assert "CAMPAIGN=autumn,LEAD=7" in sent.get_all("Variable")
        attempt, context = h.screener.attempts[0]
        assert (attempt.number, attempt.campaign_id, attempt.caller_id, attempt.source) == (
            "0612345678", "autumn", "0162000001", "ami")
        assert context["exten"] == "8365" and context["dialer_account"] == "vici"
        assert h.proxy.recent_decisions["dec-1"] == "autumn"


async def test_blocked_originate_never_reaches_asterisk() -> None:
    async with harness() as h:
        h.screener.blocked["0612345678"] = Reason.OPPOSITION
        d = await h.dialer()
        await d.send(Action="Originate", Channel="SIP/trunk/0612345678", Exten="8365",
                     Context="default", ActionID="o2")
        resp = await d.response()
        assert resp.response == "Error"
        assert resp.action_id == "o2"
        assert resp.get("Message") == "Originate blocked by dialer-gateway: opposition"
        await d.send(Action="Status", ActionID="after")  # the link is still usable
        assert (await d.response()).action_id == "after"
        assert h.fake.actions("Originate") == []


async def test_originate_without_a_number_is_screened_and_blocked() -> None:
    async with harness() as h:
        d = await h.dialer()
        await d.send(Action="Originate", Channel="PJSIP/endpoint-only", Exten="8365",
                     Context="default", ActionID="o3")
        resp = await d.response()
        assert resp.get("Message") == "Originate blocked by dialer-gateway: invalid_number"
        assert h.screener.attempts[0][0].number == "PJSIP/endpoint-only"
        assert h.fake.actions("Originate") == []


async def test_two_dialers_with_the_same_action_id_get_their_own_responses() -> None:
    async with harness() as h:
        a, b = await h.dialer(), await h.dialer()
        await a.send(Action="Getvar", Channel="PJSIP/a-1", Variable="A", ActionID="1")
        await b.send(Action="Setvar", Channel="PJSIP/a-1", Variable="B", Value="x",
                     ActionID="1")
        ra, rb = await a.response(), await b.response()
        assert (ra.action_id, ra.get("Message")) == ("1", "Getvar accepted")
        assert (rb.action_id, rb.get("Message")) == ("1", "Setvar accepted")
        ids = {m.action_id for m in h.fake.received if m.action in ("Getvar", "Setvar")}
        assert len(ids) == 2 and "1" not in ids


async def test_dialer_without_action_ids_gets_responses_in_order() -> None:
    async with harness() as h:
        d = await h.dialer()
        names = ["Getvar", "Setvar", "Status", "Hangup", "Redirect"]
        headers = {"Getvar": "Channel: PJSIP/a-1\nVariable: A\n",
                   "Setvar": "Channel: PJSIP/a-1\nVariable: A\nValue: 1\n",
                   "Redirect": "Channel: PJSIP/a-1\nContext: default\nExten: 8365\n"}
        await d.send_raw(b"".join(f"Action: {n}\n{headers.get(n, '')}\n".encode()
                                  for n in names))
        got = [await d.response() for _ in names]
        assert [r.get("Message") for r in got] == [f"{n} accepted" for n in names]
        assert all(r.action_id is None for r in got)


async def test_events_are_relayed_unless_the_dialer_turned_them_off() -> None:
    async with harness() as h:
        on = await h.dialer()
        off = await h.dialer(login=False)
        await off.send(Action="Login", Username="vici", Secret="dialer-pw", Events="off")
        assert (await off.response()).response == "Success"
        await h.fake.emit(AmiMessage.of(Event="Newchannel", Channel="PJSIP/x-1"))
        while (m := await on.recv()).event != "Newchannel":
            assert m.event == "FullyBooted"
        await off.send(Action="Ping", ActionID="p")
        while (m := await off.recv()).kind != "response":
            assert m.event == "FullyBooted"  # Newchannel never arrives
        assert m.action_id == "p"


async def test_event_carrying_an_action_id_goes_to_its_dialer_only() -> None:
    async with harness() as h:
        a, b = await h.dialer(), await h.dialer()
        await a.send(Action="Originate", Channel="PJSIP/0612345678@t", Exten="8365",
                     Context="default", Async="true", ActionID="mine")
        assert (await a.response()).action_id == "mine"
        upstream_id = h.fake.actions("Originate")[0].action_id
        assert upstream_id is not None
        await h.fake.emit(AmiMessage.of(Event="OriginateResponse", ActionID=upstream_id,
                                        Response="Success"))
        await h.fake.emit(AmiMessage.of(Event="Marker"))
        while (m := await a.recv()).event != "OriginateResponse":
            pass
        assert m.action_id == "mine"
        while (m := await b.recv()).event != "Marker":
            assert m.event != "OriginateResponse"


async def test_actions_outside_the_account_are_denied() -> None:
    async with harness() as h:
        d = await h.dialer()
        await d.send(Action="Command", Command="core stop now", ActionID="c")
        resp = await d.response()
        assert (resp.response, resp.get("Message")) == ("Error", "Permission denied")
        assert h.fake.actions("Command") == []


async def test_a_synchronous_originate_does_not_stall_other_dialers() -> None:
    async with harness() as h:
        h.fake.hold.add("Originate")  # the callee never answers: Asterisk keeps it pending
        a, b = await h.dialer(), await h.dialer()
        await a.send(Action="Originate", Channel="PJSIP/0612345678@trunk", Exten="8365",
                     Context="default", ActionID="sync")
        await h.fake.wait_for(lambda: len(h.fake.actions("Originate")) == 1)
        await b.send(Action="Status", ActionID="b1")
        assert (await b.response()).action_id == "b1"
        # it went over a connection of its own (one more login than the shared link)
        assert h.fake.logins == 2
