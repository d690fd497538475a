"""What the proxy reads from an Originate: the one callee, campaign, caller ID, refusals."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.ami.codec import AmiMessage
from gateway.ami.originate import OriginateTarget, read_originate
from gateway.ami.permissions import Refuse
from gateway.ami.settings import ProxyAccount

ACC = ProxyAccount(
    name="d", secret="x", default_campaign="fallback",
    campaigns=("fallback", "spring", "autumn"),
    dial_targets=("vicidial-out,_9X.", "default,_9X."),
    agent_targets=("default,_86000XX", "agents,s"),
    strip_prefix="9",
)


def orig(**headers: str | list[str]) -> AmiMessage:
    pairs: list[tuple[str, str]] = [("Action", "Originate")]
    for key, value in headers.items():
        for v in value if isinstance(value, list) else [value]:
            pairs.append((key, v))
    if "Application" not in headers and "Context" not in headers:
        pairs += [("Context", "default"), ("Exten", "8600051"), ("Priority", "1")]
    return AmiMessage(tuple(pairs))


def target(msg: AmiMessage, acc: ProxyAccount = ACC) -> OriginateTarget:
    result = read_originate(msg, acc)
    assert isinstance(result, OriginateTarget), result
    return result


def refusal(msg: AmiMessage, acc: ProxyAccount = ACC) -> str:
    result = read_originate(msg, acc)
    assert isinstance(result, Refuse), result
    return result.message


@pytest.mark.parametrize(
    ("channel", "number"),
    [
        ("PJSIP/0612345678@trunk", "0612345678"),
        ("SIP/trunk/0612345678", "0612345678"),
        ("PJSIP/trunk/sip:0612345678@carrier.example", "0612345678"),
        ("DAHDI/g1/0612345678", "0612345678"),
        ("IAX2/user@host/0612345678", "0612345678"),
        ("Local/90612345678@vicidial-out", "0612345678"),  # strip_prefix: dialplan only
        ("PJSIP/90612345678@trunk", "90612345678"),  # the trunk gets the 9 too
    ],
)
def test_callee_from_channel(channel: str, number: str) -> None:
    t = target(orig(Channel=channel))
    assert (t.number, t.found, t.via) == (number, True, "channel")


def test_vicidial_prefix_and_country_code() -> None:
    acc = replace(ACC, number_has_country_code=True)
    assert target(orig(Channel="Local/933612345678@default/n"), acc).number == "+33612345678"


def test_no_callee_is_screened_as_raw_text() -> None:
    t = target(orig(Channel="PJSIP/agent-17"))
    assert (t.number, t.found) == ("PJSIP/agent-17", False)


def test_click_to_call_callee_in_exten() -> None:
    msg = orig(Channel="PJSIP/agent-17", Context="default", Exten="90612345678", Priority="1")
    t = target(msg)
    assert (t.number, t.found, t.via) == ("0612345678", True, "exten")


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        # attack 2: allowed Channel, Context/Exten into an outbound context: two numbers
        ({"Channel": "Local/90612345678@default", "Context": "default",
          "Exten": "90699999999", "Priority": "1"}, "more than one number"),
        ({"Channel": "PJSIP/0612345678@trunk", "Context": "from-trunk", "Exten": "0699999999",
          "Priority": "1"}, "not allowed"),
        ({"Channel": "PJSIP/0612345678@trunk"}, None),  # control: accepted
        # attack 4: applications that dial
        ({"Channel": "PJSIP/0612345678@trunk", "Application": "RetryDial",
          "Data": "silence/1,1,1,Local/90699999999@default"}, "application"),
        ({"Channel": "PJSIP/0612345678@trunk", "Application": "Exec",
          "Data": "Dial(Local/90699999999@default)"}, "application"),
        ({"Channel": "PJSIP/0612345678@trunk", "Application": "Dial",
          "Data": "PJSIP/0699999999@trunk"}, "more than one number"),
        ({"Channel": "PJSIP/0612345678@trunk", "Application": "Dial",
          "Data": "IAX2/trunk/0699999999/x"}, "Dial data"),
        ({"Channel": "PJSIP/0612345678@trunk", "Application": "Dial",
          "Data": "Local/0699999999@elsewhere"}, "not allowed"),
        ({"Channel": "PJSIP/0612345678@trunk", "Application": "Playback",
          "Data": "x,${SHELL(id)}"}, "data"),
        ({"Channel": "PJSIP/0612345678@trunk", "Application": "Dial",
          "Data": "PJSIP/agent-17", "Exten": "90699999999", "Context": "default"},
         "together"),
        # attack 3: dial strings Asterisk reads differently
        ({"Channel": "IAX2/trunk/0699999999/0612345678"}, "Channel not accepted"),
        ({"Channel": "PJSIP/trunk/sip:0699999999@host;x=/0612345678"}, "Channel not accepted"),
        ({"Channel": "Local/0612345678@somewhere"}, "not allowed"),
        # attack 5: the dialer picks the campaign
        ({"Channel": "PJSIP/0612345678@trunk", "Variable": "CAMPAIGN=shadow"}, "campaign"),
        ({"Channel": "PJSIP/0612345678@trunk", "Variable": ["CAMPAIGN=spring",
                                                            "__campaign=autumn"]}, "campaign"),
        # attack 6 and friends: screening variables and functions
        ({"Channel": "PJSIP/0612345678@trunk", "Variable": "GW_AGI=agi://10.0.0.1"}, "GW_"),
        ({"Channel": "PJSIP/0612345678@trunk", "Variable": "__gw_verdict=ALLOW"}, "GW_"),
        ({"Channel": "PJSIP/0612345678@trunk", "Variable": "GLOBAL(GW_AGI)=x"}, "special"),
        ({"Channel": "PJSIP/0612345678@trunk", "Variable": 'A="x,CAMPAIGN=shadow"'},
         "special"),
        # unknown, repeated and dialplan-running headers
        ({"Channel": "PJSIP/0612345678@trunk", "PreDialGoSub": "sub,s,1"}, "PreDialGoSub"),
        ({"Channel": ["PJSIP/0612345678@trunk", "PJSIP/0699999999@trunk"]}, "repeated"),
        ({"Channel": "PJSIP/0612345678@trunk", "X-Whatever": "1"}, "not allowed"),
        ({"Channel": "PJSIP/0612345678@trunk", "Application": "Dial", "Data": "PJSIP/a"
          }, None),
    ],
)
def test_every_field_that_can_dial(headers: dict[str, str | list[str]], why: str | None
                                   ) -> None:
    msg = orig(**headers)
    if why is None:
        assert isinstance(read_originate(msg, ACC), OriginateTarget)
    else:
        assert why in refusal(msg)


def test_variable_flood_past_asterisks_header_limit_is_refused() -> None:
    flood = [f"V{i}=1" for i in range(125)]
    assert "headers" in refusal(orig(Channel="PJSIP/0612345678@trunk", Variable=flood))


def test_refusals_never_quote_the_number() -> None:
    msg = orig(Channel="PJSIP/agent-17", Context="nowhere", Exten="0699999999", Priority="1")
    assert "0699999999" not in refusal(msg)


@pytest.mark.parametrize(
    ("variables", "account_header", "setting", "campaign"),
    [
        (["CAMPAIGN=spring"], None, "CAMPAIGN", "spring"),
        (["LEAD=1,CAMPAIGN=spring"], None, "CAMPAIGN", "spring"),
        (["LEAD=1", "__CAMPAIGN=spring"], None, "CAMPAIGN", "spring"),
        (["LEAD=1|CAMPAIGN=spring"], None, "CAMPAIGN", "fallback"),  # '|' is no separator
        (["LEAD=1"], None, "CAMPAIGN", "fallback"),
        ([], "autumn", "Account", "autumn"),
        ([], None, "Account", "fallback"),
        (["CAMPAIGN=spring"], "autumn", "Account", "autumn"),
    ],
)
def test_campaign_sources(variables: list[str], account_header: str | None, setting: str,
                          campaign: str) -> None:
    headers: dict[str, str | list[str]] = {"Channel": "PJSIP/0612345678@t",
                                           "Variable": variables}
    if account_header:
        headers["Account"] = account_header
    assert target(orig(**headers), replace(ACC, campaign_variable=setting)).campaign_id == (
        campaign)


def test_campaign_outside_the_account_list_is_refused() -> None:
    assert "campaign" in refusal(orig(Channel="PJSIP/0612345678@t", Variable="CAMPAIGN=other"))
    no_default = replace(ACC, default_campaign=None)
    assert "campaign" in refusal(orig(Channel="PJSIP/0612345678@t"), no_default)


def test_caller_id_number() -> None:
    msg = orig(Channel="PJSIP/0612345678@t", CallerID='"ACME" <0162000001>')
    assert target(msg).caller_id == "0162000001"
    assert target(orig(Channel="PJSIP/0612345678@t", CallerID="Anonymous")).caller_id is None


def test_default_account_is_locked_down() -> None:
    bare = ProxyAccount(name="d", secret="x", default_campaign="fallback")
    # no dial or agent targets: no Local channel, no Context/Exten, no Redirect target
    assert "not allowed" in refusal(orig(Channel="Local/90612345678@default"), bare)
    assert "not allowed" in refusal(orig(Channel="PJSIP/0612345678@trunk"), bare)
    ok = orig(Channel="PJSIP/0612345678@trunk", Application="Playback", Data="hello-world")
    assert target(ok, bare).number == "0612345678"
