"""The sans-IO AMI codec: framing, limits, repeated headers, chunking, hostile bytes."""



from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ami.codec import AmiMessage, AmiParser, AmiProtocolError, encode


def test_crlf_and_bare_lf_give_the_same_message() -> None:
    crlf = b"Action: Originate\r\nChannel: PJSIP/0612345678@trunk\r\nVariable: A=1\r\n\r\n"
    lf = crlf.replace(b"\r\n", b"\n")
    (a,) = AmiParser().feed(crlf)
    (b,) = AmiParser().feed(lf)
    assert a == b
    assert a.action == "Originate"
    assert a.get("channel") == "PJSIP/0612345678@trunk"


def test_repeated_headers_are_kept_in_order() -> None:
    (m,) = AmiParser().feed(b"Action: Originate\nVariable: A=1\nVariable: B=2\n\n")
    assert m.get_all("Variable") == ["A=1", "B=2"]
    assert m.get("Variable") == "A=1"


def test_banner_is_read_once_on_the_client_side() -> None:
    p = AmiParser(expect_banner=True)
    assert p.feed(b"Asterisk Call Manager/5.0.1\r\nResponse: Success\r\n\r\n") == [
        AmiMessage.of(Response="Success")
    ]
    assert p.banner == "Asterisk Call Manager/5.0.1"


def test_missing_banner_is_a_protocol_error() -> None:
    with pytest.raises(AmiProtocolError):
        AmiParser(expect_banner=True).feed(b"Response: Success\r\n\r\n")


def test_response_follows_command_output() -> None:
    raw = (b"Response: Follows\r\nPrivilege: Command\r\nActionID: 7\r\n"
           b"Name/username   Host\r\nsome: colon line\r\n--END COMMAND--\r\n\r\n")
    (m,) = AmiParser().feed(raw)
    assert m.response == "Follows"
    assert m.action_id == "7"
    assert m.get_all("Output") == ["Name/username   Host"]


def test_line_without_colon_is_refused() -> None:
    with pytest.raises(AmiProtocolError):
        AmiParser().feed(b"Action Login\r\n\r\n")


def test_parser_stays_failed_after_an_error() -> None:
    p = AmiParser()
    with pytest.raises(AmiProtocolError):
        p.feed(b"garbage\n")
    with pytest.raises(AmiProtocolError):
        p.feed(b"Action: Ping\n\n")


def test_size_limit_on_a_message_without_end() -> None:
    p = AmiParser(max_message_bytes=1024)
    with pytest.raises(AmiProtocolError):
        for _ in range(100):
            p.feed(b"Variable: " + b"x" * 50 + b"\n")


def test_size_limit_on_one_endless_line() -> None:
    p = AmiParser(max_message_bytes=1024)
    with pytest.raises(AmiProtocolError):
        for _ in range(100):
            p.feed(b"x" * 50)


def test_header_count_limit() -> None:
    with pytest.raises(AmiProtocolError):
        AmiParser(max_headers=10).feed(b"".join(b"V: %d\n" % i for i in range(11)) + b"\n")


@pytest.mark.parametrize(
    "headers",
    [
        (("Action", "Originate"), ("Channel", "PJSIP/06@t\r\nAction: Originate")),
        (("Action", "Originate"), ("Variable", "A=1\nB")),
        (("Action", "Originate"), ("Variable", "A=1\rB")),
        (("Action", "Ping"), ("Action\r\nX", "y")),
        (("Action", "Ping"), ("Bad:Key", "y")),
        (("Action", "Ping"), ("Nul", "a\0b")),
    ],
)
def test_encode_refuses_injection(headers: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(AmiProtocolError):
        encode(AmiMessage(headers))


def test_replace_and_without_keep_order() -> None:
    m = AmiMessage.of(Action="Ping", ActionID="a", X="1")
    assert m.replace("ActionID", "b").headers == (("Action", "Ping"), ("ActionID", "b"), ("X", "1"))
    assert m.replace("actionid", None).headers == (("Action", "Ping"), ("X", "1"))
    assert m.without("X").replace("Y", "2").headers[-1] == ("Y", "2")


def test_repr_hides_values() -> None:
    m = AmiMessage.of(Action="Login", Secret="hunter2")
    assert "hunter2" not in repr(m)


# --- properties -----------------------------------------------------------------------

_key = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_0123456789",
               min_size=1, max_size=12)
_value = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)),
    max_size=40,
).map(lambda s: s.lstrip(" "))
_message = st.lists(st.tuples(_key, _value), min_size=1, max_size=8).map(
    lambda hs: AmiMessage(tuple(hs))
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(_message, min_size=1, max_size=6), st.lists(st.integers(0, 10_000)),
       st.booleans())
def test_any_chunking_yields_the_same_messages(
    messages: list[AmiMessage], cuts: list[int], bare_lf: bool
) -> None:
    stream = b"".join(encode(m) for m in messages)
    if bare_lf:
        stream = stream.replace(b"\r\n", b"\n")
    whole = AmiParser().feed(stream)
    p = AmiParser()
    pieces: list[AmiMessage] = []
    for chunk in _chunks(stream, cuts):
        pieces.extend(p.feed(chunk))
    assert whole == messages
    assert pieces == messages


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.booleans())
def test_arbitrary_bytes_raise_only_the_protocol_error(data: bytes, banner: bool) -> None:
    p = AmiParser(expect_banner=banner, max_message_bytes=512, max_headers=16)
    try:
        for m in p.feed(data):
            assert m.headers
            encode(m)  # what was parsed can be re-encoded, or refuses cleanly
    except AmiProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(_message)
def test_encode_parse_round_trip(message: AmiMessage) -> None:
    assert AmiParser().feed(encode(message)) == [message]
