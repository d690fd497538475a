"""The sans-IO FastAGI codec: table cases plus Hypothesis properties."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.agi.protocol import (
    AgiEnvironment,
    AgiEvent,
    AgiHangup,
    AgiProtocolError,
    AgiReply,
    AgiSessionParser,
    AgiTrying,
    AgiUsage,
    UnsafeArgument,
    encode_command,
    encode_mset,
    encode_set_variable,
    quote_argument,
)
from tests.agi.peer import env_bytes


def parse(data: bytes, **limits: int) -> list[AgiEvent]:
    return AgiSessionParser(**limits).feed(data)


def test_environment_keeps_every_variable_and_gives_route_and_args() -> None:
    events = parse(env_bytes("screen?number=%2B33612345678&campaign=spring", ("06 12", "c1")))
    assert len(events) == 1
    env = events[0]
    assert isinstance(env, AgiEnvironment)
    assert len(env.variables) == 24
    assert env.route == "screen"
    assert env.script == "screen?number=%2B33612345678&campaign=spring"
    assert env.query == {"number": "+33612345678", "campaign": "spring"}
    assert env.args == ("06 12", "c1")
    assert env.variables["agi_accountcode"] == ""
    assert env.variables["agi_callerid"] == "unknown"
    assert env.get("agi_callerid") is None
    assert env.get("agi_accountcode") is None
    assert env.get("agi_channel") == "PJSIP/trunk-00000001"


def test_plus_in_query_is_a_plus_not_a_space() -> None:
    [env] = parse(b"agi_network_script: /screen?number=+33612345678&x\n\n")
    assert isinstance(env, AgiEnvironment)
    assert env.route == "screen"
    assert env.query == {"number": "+33612345678", "x": ""}


def test_crlf_lines_are_accepted() -> None:
    [env, reply] = parse(b"agi_network_script: screen\r\n\r\n200 result=0\r\n")
    assert isinstance(env, AgiEnvironment)
    assert env.route == "screen"
    assert reply == AgiReply(code=200, result="0", text="result=0")


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (b"200 result=0", AgiReply(200, "0", None, (), "result=0")),
        (b"200 result=-1", AgiReply(200, "-1", None, (), "result=-1")),
        (b"200 result= (timeout)", AgiReply(200, "", "timeout", (), "result= (timeout)")),
        (
            b"200 result=1 (some data) endpos=1234",
            AgiReply(
                200, "1", "some data", (("endpos", "1234"),), "result=1 (some data) endpos=1234"
            ),
        ),
        (b"100 result=0 Trying...", AgiTrying("result=0 Trying...")),
        (b"510 Invalid or unknown command", AgiReply(510, text="Invalid or unknown command")),
        (b"511 Command Not Permitted", AgiReply(511, text="Command Not Permitted")),
        (b"520 Invalid command syntax.", AgiUsage(("Invalid command syntax.",))),
        (b"HANGUP", AgiHangup()),
    ],
)
def test_reply_lines(line: bytes, event: AgiEvent) -> None:
    assert parse(b"\n" + line + b"\n") == [AgiEnvironment({}), event]


def test_multi_line_520_usage_is_one_event() -> None:
    events = parse(
        b"\n520-Invalid command syntax.  Proper usage follows:\n"
        b" Usage: EXEC <application> <options>\n"
        b"520 End of proper usage.\n200 result=0\n"
    )
    assert events[1] == AgiUsage(
        (
            "Invalid command syntax.  Proper usage follows:",
            " Usage: EXEC <application> <options>",
            "End of proper usage.",
        )
    )
    assert events[2] == AgiReply(200, "0", text="result=0")


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"x" * 65, "line_too_long"),
        (b"agi_a: " + b"x" * 60 + b"\n", "line_too_long"),
        (b"".join(b"agi_%d: v\n" % i for i in range(5)), "too_many_headers"),
        (b"notagi: v\n", "bad_header"),
        (b"agi_a v\n", "bad_header"),
        (b"agi_a: 1\nagi_a: 2\n", "duplicate_header"),
        (b"\nhello\n", "bad_reply"),
        (b"\n200 ok\n", "bad_reply"),
        (b"\n200result=0\n", "bad_reply"),
        (b"\n300 result=0\n", "unknown_code"),
        (b"\n200-result=0\n", "bad_reply"),
        (b"\n520-usage\n" + b"more\n" * 4, "usage_too_long"),
    ],
)
def test_violations_raise_agi_protocol_error(data: bytes, kind: str) -> None:
    parser = AgiSessionParser(max_line_bytes=64, max_headers=4, max_usage_lines=3)
    with pytest.raises(AgiProtocolError) as info:
        parser.feed(data)
    assert info.value.kind == kind
    with pytest.raises(AgiProtocolError):  # the parser stays failed
        parser.feed(b"\n")


def test_line_of_exactly_the_limit_is_accepted() -> None:
    line = b"agi_a: " + b"x" * (64 - 7)
    assert len(line) == 64
    [env] = AgiSessionParser(max_line_bytes=64).feed(line + b"\n\n")
    assert isinstance(env, AgiEnvironment)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"agi_a: 1\n", "eof_before_env_end"),
        (b"", "eof_before_env_end"),
        (b"\n520-usage\n", "eof_in_usage"),
        (b"\n200 res", "eof_in_line"),
    ],
)
def test_eof_mid_message(data: bytes, kind: str) -> None:
    parser = AgiSessionParser()
    parser.feed(data)
    with pytest.raises(AgiProtocolError) as info:
        parser.feed_eof()
    assert info.value.kind == kind


def test_eof_between_replies_is_clean() -> None:
    parser = AgiSessionParser()
    parser.feed(b"\n200 result=0\n")
    parser.feed_eof()  # no exception
    assert parser.environment_done


def test_error_carries_events_completed_before_it() -> None:
    with pytest.raises(AgiProtocolError) as info:
        parse(b"\n200 result=0\nbogus\n")
    assert info.value.events == (AgiEnvironment({}), AgiReply(200, "0", text="result=0"))


# --- encoding ---------------------------------------------------------------------------


def test_arguments_are_quoted_and_escaped() -> None:
    assert encode_command("VERBOSE", 'say "hi" \\ there', "1") == (
        b'VERBOSE "say \\"hi\\" \\\\ there" "1"\n'
    )
    assert encode_command("ANSWER") == b"ANSWER\n"


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b", "\r\nEXEC System rm"])
def test_cr_lf_nul_are_refused(bad: str) -> None:
    with pytest.raises(UnsafeArgument):
        quote_argument(bad)
    with pytest.raises(UnsafeArgument):
        encode_command("VERBOSE", bad)
    with pytest.raises(UnsafeArgument):
        encode_set_variable("X", bad)


@pytest.mark.parametrize("name", ["verbose", "EXEC\n", "", "SET VARIABLE\r"])
def test_bad_command_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeArgument):
        encode_command(name)


def test_overlong_command_is_refused() -> None:
    with pytest.raises(UnsafeArgument):
        encode_command("VERBOSE", "x" * 3000)


def test_mset_is_one_exec_with_empty_values_allowed() -> None:
    line = encode_mset((("GW_VERDICT", "ALLOW"), ("GW_RETRY_AFTER", ""), ("GW_E164", "+33612")))
    assert line == b'EXEC "MSet" "GW_VERDICT=ALLOW,GW_RETRY_AFTER=,GW_E164=+33612"\n'


@pytest.mark.parametrize(
    "pair",
    [("A", "x,y"), ("A", 'x"y'), ("A", "x\\y"), ("A", "x y"), ("A", "${EVIL}"), ("A B", "1"),
     ("A", "x\ny"), ("A", "(x)"), ("1A", "x")],
)
def test_mset_refuses_what_it_would_misread(pair: tuple[str, str]) -> None:
    with pytest.raises(UnsafeArgument):
        encode_mset((pair,))


@given(st.text())
def test_quote_argument_never_emits_a_line_break(arg: str) -> None:
    try:
        quoted = quote_argument(arg)
    except UnsafeArgument:
        assert any(c in arg for c in "\r\n\x00")
    else:
        assert "\n" not in quoted and "\r" not in quoted
        assert quoted.startswith('"') and quoted.endswith('"')


# --- properties -------------------------------------------------------------------------


class LineByLineParser(AgiSessionParser):
    """The reference: every line read one by one (no one-pass parse, no waiting)."""

    def _whole_environment(self) -> AgiEnvironment | None:
        return None

    def _plain_so_far(self) -> bool:
        return False


def feed_cut(parser: AgiSessionParser, data: bytes, cuts: list[int]
             ) -> tuple[list[AgiEvent], str | None]:
    """Feed ``data`` cut at ``cuts``, then the end; return the events and the error kind,
    if any."""
    events: list[AgiEvent] = []
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    try:
        for start, end in itertools.pairwise(bounds):
            events.extend(parser.feed(data[start:end]))
        parser.feed_eof()
    except AgiProtocolError as exc:
        return [*events, *exc.events], exc.kind
    return events, None


def run(data: bytes, cuts: list[int], line_by_line: bool = False
        ) -> tuple[list[AgiEvent], str | None]:
    parser_class = LineByLineParser if line_by_line else AgiSessionParser
    return feed_cut(parser_class(max_line_bytes=64, max_headers=6, max_usage_lines=3),
                    data, cuts)


FRAGMENTS = [
    b"agi_network_script: screen?number=%2B336\n",
    b"agi_arg_1: 0612345678\n",
    b"agi_callerid: unknown\n",
    b"\n",
    b"\r\n",
    b"200 result=0\n",
    b"200 result=1 (data) endpos=12\n",
    b"100 result=0 Trying...\n",
    b"510 Invalid or unknown command\n",
    b"511 Dead channel\n",
    b"520-Invalid command syntax.  Proper usage follows:\n",
    b"Usage: EXEC\n",
    b"520 End of proper usage.\n",
    b"HANGUP\n",
    b"x" * 70,
    b"\xff\xfe\x00",
]

streams = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=20)), max_size=25
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(streams, st.lists(st.integers(min_value=0), max_size=12))
def test_any_chunking_gives_the_same_events(data: bytes, cuts: list[int]) -> None:
    assert run(data, cuts) == run(data, [])
    assert run(data, cuts) == run(data, list(range(len(data))))  # byte by byte
    assert run(data, cuts) == run(data, cuts, line_by_line=True)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_agi_protocol_error(data: bytes) -> None:
    events, _ = run(data, [])  # run() only catches AgiProtocolError
    assert all(
        isinstance(e, AgiEnvironment | AgiReply | AgiTrying | AgiUsage | AgiHangup)
        for e in events
    )


@settings(max_examples=200, deadline=None)
@given(streams)
def test_structured_garbage_raises_only_agi_protocol_error(data: bytes) -> None:
    events, kind = run(data, [])
    assert kind is None or isinstance(kind, str)
    assert sum(isinstance(e, AgiEnvironment) for e in events) <= 1


# --- the one-pass environment -----------------------------------------------------------

ENV_FRAGMENTS = [
    b"agi_network_script: screen?number=%2B336\n",
    b"agi_arg_1: 06\xc3\xa9\n",  # UTF-8
    b"agi_arg_2: \xff\xfe\n",  # not UTF-8
    b"agi_arg_1: again\n",  # a duplicate name (when arg_1 came before)
    b"agi_empty:\n",
    b"agi_spaces:   three\n",
    b"agi_colon: a:b: c\n",
    b"agi_bad-name: x\n",
    b"agi_" + b"k" * 65 + b": too long a name\n",
    b"agi_long: " + b"v" * 90 + b"\n",
    b"no_prefix: x\n",
    b"\n",
    b"\r\n",
    b"agi_crlf: x\r\n",
    b"200 result=0\n",
    b"200 result=1\n",
    b"200 result=-1\n",
    b"HANGUP\n",
]


def run_env(data: bytes, cuts: list[int], parser_class: type[AgiSessionParser] = AgiSessionParser
            ) -> tuple[list[AgiEvent], str | None]:
    return feed_cut(parser_class(max_line_bytes=128, max_headers=5, max_env_bytes=300),
                    data, cuts)


@settings(max_examples=400, deadline=None)
@given(st.tuples(st.lists(st.sampled_from(ENV_FRAGMENTS[:7]), max_size=6).map(b"".join),
                 st.lists(st.sampled_from(ENV_FRAGMENTS), max_size=6).map(b"".join))
       .map(lambda parts: parts[0] + b"\n" + parts[1]),  # an environment, mostly valid
       st.lists(st.integers(min_value=0), max_size=6))
@example(b"agi_spaces:   three\nagi_arg_1: 06\xc3\xa9\nagi_arg_2: \xff\xfe\n\n200 result=-1\n", [7])
@example(b"agi_empty:\nagi_colon: a:b: c\nagi_empty:\n\n", [])
def test_an_environment_in_one_piece_parses_as_line_by_line(data: bytes, cuts: list[int],
                                                            ) -> None:
    """Whole (the one-pass parse when it applies), in pieces and byte by byte (line by
    line): the same events and the same error, whatever the lines and the limits hit."""
    whole = run_env(data, [])
    assert whole == run_env(data, cuts)
    assert whole == run_env(data, list(range(len(data))))
    assert whole == run_env(data, cuts, LineByLineParser)


class CountingParser(AgiSessionParser):
    lines = 0

    def _env_line(self, line: bytes) -> AgiEvent | None:
        self.lines += 1
        return super()._env_line(line)


class CountingLineByLine(CountingParser, LineByLineParser):
    pass


def test_an_environment_sent_at_once_is_parsed_in_one_pass() -> None:
    data = env_bytes("screen", args=("0612345678", "acme/telecom"))
    whole, by_byte = CountingParser(), CountingLineByLine()
    events = whole.feed(data + b"200 result=0\n")
    assert whole.lines == 0  # no per-line step
    slow = [e for i in range(len(data)) for e in by_byte.feed(data[i:i + 1])]
    assert by_byte.lines == data.count(b"\n")
    assert events == [*slow, AgiReply(200, "0", text="result=0")]


@pytest.mark.parametrize("cut", [1, 100, 441, -169, -2, -1])
def test_an_environment_in_several_reads_is_parsed_in_one_pass(cut: int) -> None:
    """Asterisk writes its environment a variable at a time: with Asterisk 22 it came in
    two reads (441 and 169 bytes). The reads before its end wait for it."""
    data = env_bytes("screen", args=("0612345678", "acme/telecom"))
    parser, by_byte = CountingParser(), CountingLineByLine()
    first = parser.feed(data[:cut])
    events = first + parser.feed(data[cut:] + b"200 result=0\n")
    assert first == [] and parser.lines == 0
    slow = [e for i in range(len(data)) for e in by_byte.feed(data[i:i + 1])]
    assert events == [*slow, AgiReply(200, "0", text="result=0")]


@pytest.mark.parametrize("over", [0, 1])
def test_an_environment_of_max_env_bytes_passes_and_one_byte_more_does_not(over: int) -> None:
    """Its lines with their newlines, the blank line aside: the limit is the same whole
    (one pass) and in pieces (line by line)."""
    lines = [b"agi_k%d: " % i + b"v" * 90 + b"\n" for i in range(5)]
    data = b"".join(lines)[:-1] + b"x" * over + b"\n\n"
    limit = sum(map(len, lines))
    for cuts in ([], list(range(len(data)))):
        parser = AgiSessionParser(max_line_bytes=128, max_headers=8, max_env_bytes=limit)
        bounds = [0, *cuts, len(data)]
        try:
            events = [e for a, b in itertools.pairwise(bounds) for e in parser.feed(data[a:b])]
        except AgiProtocolError as exc:
            assert (over, exc.kind) == (1, "env_too_large")
        else:
            assert over == 0
            assert [len(e.variables) for e in events if isinstance(e, AgiEnvironment)] == [5]


def _mset_reference(variables: tuple[tuple[str, str], ...]) -> bytes:
    """encode_mset as it was before its one-match fast path: a check per pair."""
    if not variables:
        raise UnsafeArgument("MSet needs at least one variable")
    pairs: list[str] = []
    for name, value in variables:
        if re.match(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z", name) is None:
            raise UnsafeArgument(f"bad variable name {name!r}")
        if re.match(r"[A-Za-z0-9+_.:@/-]*\Z", value) is None:
            raise UnsafeArgument(f"value of {name} outside the MSet-safe alphabet")
        pairs.append(f"{name}={value}")
    return encode_command("EXEC", "MSet", ",".join(pairs))


_MSET_CHARS = st.sampled_from(list("Az09+_.:@/-,= \"\\$\n\x00é"))
_MSET_NAMES = st.one_of(st.sampled_from(["GW_VERDICT", "GW_E164", "A", "_x", "1A", "A B",
                                         "A=B", "A,B", "x" * 65]),
                        st.text(_MSET_CHARS, max_size=8))


@given(st.lists(st.tuples(_MSET_NAMES, st.one_of(st.text(_MSET_CHARS, max_size=12),
                                                  st.text(max_size=4),
                                                  st.just("x" * 2100))),
                max_size=6).map(tuple))
@settings(max_examples=600)
@example(variables=(("GW_VERDICT", "ALLOW"), ("GW_VERDICT", "a=b")))
@example(variables=(("GW_VERDICT", "ALLOW"), ("GW_E164", "a,b")))
@example(variables=(("GW_VERDICT", "x" * 2100),))
def test_mset_fast_path_writes_and_refuses_as_the_check_per_pair(
    variables: tuple[tuple[str, str], ...]
) -> None:
    # twice: the first call may learn the names, the second takes the one-match path
    for _ in range(2):
        try:
            expected: bytes | str = _mset_reference(variables)
        except UnsafeArgument as exc:
            expected = str(exc)
        try:
            got: bytes | str = encode_mset(variables)
        except UnsafeArgument as exc:
            got = str(exc)
        assert got == expected
