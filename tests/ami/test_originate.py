"""What the proxy reads from an Originate: callee from Channel, campaign, caller ID."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.ami.codec import AmiMessage
from gateway.ami.originate import callee_from_channel, campaign_of, read_originate
from gateway.ami.settings import ProxyAccount

ACC = ProxyAccount(name="d", secret="x", default_campaign="fallback")


@pytest.mark.parametrize(
    ("channel", "number"),
    [
        ("PJSIP/0612345678@trunk", "0612345678"),
        ("SIP/trunk/0612345678", "0612345678"),
        ("SIP/0612345678@trunk", "0612345678"),
        ("PJSIP/trunk/sip:0612345678@carrier.example", "0612345678"),
        ("DAHDI/g1/0612345678", "0612345678"),
        ("IAX2/user@host/0612345678", "0612345678"),
        ("Local/90612345678@vicidial-out", "90612345678"),
        ("Local/933612345678@default/n", "933612345678"),
        ("PJSIP/+33612345678@trunk", "+33612345678"),
        ("PJSIP/endpoint", None),
        ("Local/agent@e2e-agent", None),
        ("PJSIP/", None),
        ("0612345678", None),
        ("", None),
    ],
)
def test_callee_from_channel(channel: str, number: str | None) -> None:
    assert callee_from_channel(channel) == number


def test_exten_is_never_the_callee() -> None:
    msg = AmiMessage.of(Action="Originate", Channel="PJSIP/agent-phone", Exten="0612345678",
                        Context="from-internal")
    target = read_originate(msg, ACC)
    assert not target.found
    assert target.number == "PJSIP/agent-phone"


def test_vicidial_prefix_and_country_code() -> None:
    acc = replace(ACC, strip_prefix="9", number_has_country_code=True)
    msg = AmiMessage.of(Action="Originate", Channel="Local/933612345678@default/n")
    assert read_originate(msg, acc).number == "+33612345678"
    plain = replace(ACC, strip_prefix="9")
    assert read_originate(AmiMessage.of(Channel="Local/90612345678@x"), plain).number == (
        "0612345678")


@pytest.mark.parametrize(
    ("variables", "account_header", "setting", "campaign"),
    [
        (["CAMPAIGN=spring"], None, "CAMPAIGN", "spring"),
        (["LEAD=1,CAMPAIGN=spring"], None, "CAMPAIGN", "spring"),
        (["LEAD=1|campaign=spring"], None, "CAMPAIGN", "spring"),
        (["LEAD=1", "CAMPAIGN=spring"], None, "CAMPAIGN", "spring"),
        (["LEAD=1"], None, "CAMPAIGN", "fallback"),
        ([], "autumn", "Account", "autumn"),
        ([], None, "Account", "fallback"),
        (["CAMPAIGN=spring"], "autumn", "Account", "autumn"),
    ],
)
def test_campaign_sources(variables: list[str], account_header: str | None, setting: str,
                          campaign: str) -> None:
    headers = [("Action", "Originate"), *(("Variable", v) for v in variables)]
    if account_header:
        headers.append(("Account", account_header))
    acc = replace(ACC, campaign_variable=setting)
    assert campaign_of(AmiMessage(tuple(headers)), acc) == campaign


def test_caller_id_number() -> None:
    msg = AmiMessage.of(Channel="PJSIP/0612345678@t", CallerID='"ACME" <0162000001>')
    assert read_originate(msg, ACC).caller_id == "0162000001"
    assert read_originate(AmiMessage.of(Channel="PJSIP/0612345678@t", CallerID="Anonymous"),
                          ACC).caller_id is None


@given(st.text(max_size=80))
def test_any_channel_text_gives_a_number_or_none(channel: str) -> None:
    found = callee_from_channel(channel)
    assert found is None or found.lstrip("+").isdigit()
