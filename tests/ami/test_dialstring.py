"""Dial strings read as Asterisk's channel drivers read them; every other shape refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.ami.dialstring import DialString, DialStringRefused, parse, parse_dial_data


@pytest.mark.parametrize(
    ("dial", "expected"),
    [
        ("PJSIP/0612345678@trunk", DialString("pjsip", "0612345678")),
        ("pjsip/+33612345678@trunk", DialString("pjsip", "+33612345678")),
        ("PJSIP/trunk/sip:0612345678@carrier.example", DialString("pjsip", "0612345678")),
        ("PJSIP/trunk/sips:0612345678@carrier.example:5061", DialString("pjsip", "0612345678")),
        ("PJSIP/agent-17", DialString("pjsip")),
        ("IAX2/trunk/0612345678", DialString("iax2", "0612345678")),
        ("IAX2/user:pw@trunk:4569/0612345678@from-gw", DialString("iax2", "0612345678")),
        ("IAX2/0612345678@trunk", DialString("iax2")),  # username, exten "s"
        ("DAHDI/g1/0612345678", DialString("dahdi", "0612345678")),
        ("DAHDI/R2c/0612345678", DialString("dahdi", "0612345678")),
        ("DAHDI/1", DialString("dahdi")),
        ("SIP/trunk/0612345678", DialString("sip", "0612345678")),
        ("SIP/0612345678@trunk", DialString("sip", "0612345678")),
        ("Local/90612345678@vicidial-out", DialString("local", local=("vicidial-out",
                                                                       "90612345678"))),
        ("LOCAL/933612345678@default/n", DialString("local", local=("default",
                                                                     "933612345678"))),
        ("Local/8600051@default/nj", DialString("local", local=("default", "8600051"))),
    ],
)
def test_accepted_shapes(dial: str, expected: DialString) -> None:
    assert parse(dial) == expected


@pytest.mark.parametrize(
    "dial",
    [
        # the reproductions: Asterisk dials the first number, not the last
        "IAX2/trunk/0699999999/0612345678",
        "PJSIP/trunk/sip:0699999999@host;x=/0612345678",
        # a URI with parameters, headers or a request user on top
        "PJSIP/trunk/sip:0612345678@host;user=phone",
        "PJSIP/trunk/sip:0612345678@host?X-Foo=1",
        "PJSIP/0699999999@trunk/sip:0612345678@host",
        "PJSIP/trunk/aor-name",
        "PJSIP/agent@trunk",
        # options, quoting, whitespace, odd characters
        "DAHDI/g1/0612345678/opts",
        "DAHDI/i1-g1/0612345678",
        "DAHDI/g1/w0612345678",
        'PJSIP/"0612345678"@trunk',
        "PJSIP/0612345678@trunk ",
        "PJSIP/0612\t345678@trunk",
        "Local/0612345678@ctx/q",
        "Local/0612345678",
        "Local/06-12@ctx",
        "Local/0612345678@ctx@other",
        # Asterisk would truncate: a prefix of the number dialled
        "IAX2/" + "u" * 70 + ":" + "s" * 70 + "@" + "p" * 70 + "/0612345678",
        "Local/0612345678@" + "c" * 80,
        # other technologies
        "Motif/x/0612345678",
        "WebSocket/conn/0612345678",
        "UnicastRTP/127.0.0.1:1",
        "Console/dsp",
        "0612345678",
        "PJSIP/",
        "",
    ],
)
def test_refused_shapes(dial: str) -> None:
    with pytest.raises(DialStringRefused):
        parse(dial)


@given(st.text(max_size=80))
def test_any_text_is_parsed_or_refused_and_numbers_are_digits(dial: str) -> None:
    try:
        result = parse(dial)
    except DialStringRefused:
        return
    assert result.number is None or result.number.lstrip("+").isdigit()
    assert "/" not in (result.number or "")


@pytest.mark.parametrize(
    ("data", "numbers"),
    [
        ("PJSIP/agent-17", [None]),
        ("PJSIP/agent-17,30", [None]),
        ("PJSIP/agent-17,30,hH", [None]),
        ("PJSIP/agent-17&PJSIP/0612345678@trunk", [None, "0612345678"]),
    ],
)
def test_dial_data(data: str, numbers: list[str | None]) -> None:
    assert [p.number for p in parse_dial_data(data)] == numbers


@pytest.mark.parametrize(
    "data",
    [
        "PJSIP/agent-17,30,b(ctx^s^1)",  # pre-dial Gosub: runs any dialplan
        "PJSIP/agent-17,30,F(ctx^0699999999^1)",
        "PJSIP/agent-17,30,U(sub)",
        "PJSIP/agent-17,30,tT",  # DTMF transfers
        "PJSIP/agent-17,30,,http://x",
        "PJSIP/agent-17,x",
        '"PJSIP/0612345678@trunk"',
        "PJSIP/agent-17&",
        "IAX2/trunk/0699999999/0612345678",
        "Local/0699999999@ctx\\,x",
    ],
)
def test_dial_data_refused(data: str) -> None:
    with pytest.raises(DialStringRefused):
        parse_dial_data(data)
