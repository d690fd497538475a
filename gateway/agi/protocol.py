"""FastAGI wire codec, sans-IO.

A FastAGI session, as Asterisk's ``res_agi`` speaks it over TCP:

1. Asterisk sends the environment, one ``agi_name: value`` line each, then a blank line.
2. The server sends one command line (``EXEC MSet ...``); Asterisk answers with one reply:
   ``200 result=N [(data)] [key=value ...]``, ``100 result=0 Trying...`` (intermediate:
   the final reply follows), ``510 ...`` (unknown command), ``511 ...`` (dead channel),
   ``520-...`` usage lines closed by ``520 End of proper usage.`` (or one ``520 ...`` line).
3. Asterisk may send ``HANGUP`` at any point after the environment, when the channel hangs up.

:class:`AgiSessionParser` turns bytes (in any chunking) into events; it never reads a socket.
Every fault of the peer, for arbitrary bytes, is raised as :class:`AgiProtocolError` and
nothing else. :func:`encode_command` builds a command line and refuses CR, LF and NUL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import unquote

from gateway.agi.limits import (
    DEFAULT_MAX_ENV_BYTES,
    DEFAULT_MAX_HEADERS,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_USAGE_LINES,
)

MAX_COMMAND_BYTES = 2048  # what res_agi reads of one command line

# Values that mean "absent" in Asterisk's environment (callerid, dnid, rdnis, ...).
_ABSENT_VALUES = frozenset({"", "unknown"})
_KEY_RE = re.compile(rb"agi_[A-Za-z0-9_]{1,64}\Z")
# a whole environment of well-formed lines (no CR, no blank line), for the one-pass parse
_ENV_BLOCK_RE = re.compile(r"agi_[A-Za-z0-9_]{1,64}:[^\n]*(?:\nagi_[A-Za-z0-9_]{1,64}:[^\n]*)*\Z")
_REPLY_RE = re.compile(rb"([0-9]{3})([ -])?(.*)\Z", re.DOTALL)
_RESULT_RE = re.compile(r"result=(\S*)(?: \((.*)\))?(.*)\Z", re.DOTALL)
_COMMAND_NAME_RE = re.compile(r"[A-Z][A-Z ]{0,63}\Z")


class AgiProtocolError(Exception):
    """The peer broke the FastAGI protocol (or one of our limits).

    ``kind`` is a short stable code, fit for a metric label. ``events`` holds the events
    completed in the same :meth:`AgiSessionParser.feed` call before the fault.
    """

    def __init__(self, kind: str, detail: str = "", events: tuple[AgiEvent, ...] = ()) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail
        self.events = events


class UnsafeArgument(ValueError):
    """A command argument that cannot be put on the wire safely (CR, LF, NUL, too long)."""


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgiEnvironment:
    """The ``agi_*`` variables Asterisk sent before the blank line (all of them, raw)."""

    variables: dict[str, str] = field(hash=False)

    def get(self, name: str) -> str | None:
        """The value of ``name``, or None when it is missing, empty or ``unknown``."""
        value = self.variables.get(name)
        if value is None or value.strip().lower() in _ABSENT_VALUES:
            return None
        return value

    @property
    def script(self) -> str:
        """``agi_network_script`` as sent: the route with its query string."""
        return self.variables.get("agi_network_script", "")

    @property
    def route(self) -> str:
        """The route: ``agi_network_script`` without query string nor leading slash."""
        return self.script.split("?", 1)[0].strip("/")

    @property
    def query(self) -> dict[str, str]:
        """The script's query string (``screen?number=..&campaign=..``), percent-decoded.

        ``+`` is kept as a plus sign (E.164 numbers), not read as a space.
        """
        _, _, raw = self.script.partition("?")
        out: dict[str, str] = {}
        for part in raw.split("&"):
            if not part:
                continue
            key, _, value = part.partition("=")
            out.setdefault(unquote(key), unquote(value))
        return out

    @property
    def args(self) -> tuple[str, ...]:
        """``agi_arg_1`` .. ``agi_arg_N`` in order, stopping at the first missing one."""
        out: list[str] = []
        while (value := self.variables.get(f"agi_arg_{len(out) + 1}")) is not None:
            out.append(value)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class AgiReply:
    """A final reply to one command (200, 510, 511 or a one-line 520)."""

    code: int
    result: str | None = None  # the ``result=`` value of a 200 reply
    data: str | None = None  # the parenthesised data of a 200 reply
    extra: tuple[tuple[str, str], ...] = ()  # further ``key=value`` pairs (endpos=...)
    text: str = ""  # the line after the code

    @property
    def ok(self) -> bool:
        return self.code == 200


@dataclass(frozen=True, slots=True)
class AgiTrying:
    """``100 result=0 Trying...``: the command runs; its final reply follows."""

    text: str = ""


@dataclass(frozen=True, slots=True)
class AgiUsage:
    """A ``520`` usage reply: the command was malformed. ``lines`` are its text lines."""

    lines: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AgiHangup:
    """In-band ``HANGUP``: the channel hung up."""


AgiEvent = AgiEnvironment | AgiReply | AgiTrying | AgiUsage | AgiHangup


# --- parser -----------------------------------------------------------------------------


class _State(Enum):
    ENV = "env"
    REPLIES = "replies"
    USAGE = "usage"
    FAILED = "failed"


class AgiSessionParser:
    """Incremental parser of what Asterisk sends on one FastAGI connection."""

    def __init__(
        self,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_usage_lines: int = DEFAULT_MAX_USAGE_LINES,
        max_env_bytes: int = DEFAULT_MAX_ENV_BYTES,
    ) -> None:
        if max_line_bytes < 16 or max_headers < 1 or max_usage_lines < 1 or max_env_bytes < 1:
            raise ValueError("limits too small")
        self.max_line_bytes = max_line_bytes
        self.max_headers = max_headers
        self.max_usage_lines = max_usage_lines
        self.max_env_bytes = max_env_bytes
        self._env_bytes = 0  # of the environment's lines so far, each with its newline
        self._buffer = bytearray()
        self._state = _State.ENV
        self._env: dict[str, str] = {}
        self._usage: list[str] = []
        self._error: AgiProtocolError | None = None

    @property
    def environment_done(self) -> bool:
        return self._state in (_State.REPLIES, _State.USAGE)

    @property
    def line_begun(self) -> bool:
        """Bytes of a line not ended yet are buffered: the peer is in a message."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[AgiEvent]:
        """Consume ``data``; return the events it completed. Raises AgiProtocolError only."""
        if self._error is not None:
            raise AgiProtocolError(self._error.kind, self._error.detail)
        self._buffer += data
        events: list[AgiEvent] = []
        if self._state is _State.ENV and not self._env:
            env = self._whole_environment()
            if env is not None:
                events.append(env)
            elif self._plain_so_far():
                return events  # parsed whole once its end is in
        try:
            while True:
                end = self._buffer.find(b"\n")
                if end < 0:
                    if len(self._buffer) > self.max_line_bytes:
                        raise AgiProtocolError("line_too_long", f">{self.max_line_bytes} bytes")
                    break
                if end > self.max_line_bytes:
                    raise AgiProtocolError("line_too_long", f">{self.max_line_bytes} bytes")
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                if line.endswith(b"\r"):
                    line = line[:-1]
                event = self._line(line)
                if event is not None:
                    events.append(event)
        except AgiProtocolError as exc:
            self._state = _State.FAILED
            self._error = exc
            self._buffer.clear()
            raise AgiProtocolError(exc.kind, exc.detail, tuple(events)) from None
        return events

    def feed_eof(self) -> None:
        """The peer closed. Raises AgiProtocolError if it left a message unfinished."""
        if self._error is not None:
            raise AgiProtocolError(self._error.kind, self._error.detail)
        if self._state is _State.ENV:
            kind = "eof_before_env_end"
        elif self._state is _State.USAGE:
            kind = "eof_in_usage"
        elif self._buffer:
            kind = "eof_in_line"
        else:
            return
        self._state = _State.FAILED
        self._error = AgiProtocolError(kind)
        raise AgiProtocolError(kind)

    def _whole_environment(self) -> AgiEnvironment | None:
        """The environment in one pass, when all of it is in the buffer and plain (the
        usual case; the reads before its end wait for it, see _plain_so_far): exactly
        what the line-by-line path gives, at a fraction of its cost. None (nothing
        consumed) otherwise: a block with a CR, a long line, too many lines, a bad or
        duplicate name or an empty environment goes through the line-by-line path,
        which raises the same errors as before."""
        buffer = self._buffer
        end = buffer.find(b"\n\n")
        # every line within the line limit, and the whole within the environment's
        if end <= 0 or end > self.max_line_bytes or end + 1 > self.max_env_bytes:
            return None
        lines = self._plain_lines(buffer[:end])
        if lines is None:
            return None
        variables: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            variables[name] = value[1:] if value[:1] == " " else value
        if len(variables) != len(lines):  # a duplicate name
            return None
        del buffer[: end + 2]
        self._state = _State.REPLIES
        return AgiEnvironment(variables)

    def _plain_so_far(self) -> bool:
        """The start of an environment that the one-pass parse will take once its end
        comes: Asterisk writes the environment a variable at a time, and it arrives in
        two or three reads. False (so the lines are read one by one, with their errors
        raised as they come) as soon as anything in it would make the line-by-line
        path answer differently: its end already in, a line it would refuse, a
        duplicate name, a limit reached."""
        buffer = self._buffer
        if buffer[:1] == b"\n" or b"\n\n" in buffer:
            return False
        if len(buffer) > self.max_line_bytes or len(buffer) > self.max_env_bytes:
            return False
        last = buffer.rfind(b"\n")
        if last < 0:
            return True  # not one line yet
        lines = self._plain_lines(buffer[:last])
        return lines is not None and len({line.partition(":")[0] for line in lines}) == len(lines)

    def _plain_lines(self, block: bytearray) -> list[str] | None:
        """The lines of ``block`` (whole environment lines, without the last newline) when
        each is one the line-by-line path takes as it is and there are no more than
        ``max_headers`` of them; None otherwise."""
        if b"\r" in block:
            return None
        text = block.decode("utf-8", errors="replace")
        if _ENV_BLOCK_RE.match(text) is None:
            return None
        lines = text.split("\n")
        return lines if len(lines) <= self.max_headers else None

    # --- one line -------------------------------------------------------------------------

    def _line(self, line: bytes) -> AgiEvent | None:
        if self._state is _State.ENV:
            return self._env_line(line)
        if self._state is _State.USAGE:
            return self._usage_line(line)
        return self._reply_line(line)

    def _env_line(self, line: bytes) -> AgiEvent | None:
        if not line:
            self._state = _State.REPLIES
            env = AgiEnvironment(self._env)
            self._env = {}
            return env
        if len(self._env) >= self.max_headers:
            raise AgiProtocolError("too_many_headers", f">{self.max_headers}")
        self._env_bytes += len(line) + 1
        if self._env_bytes > self.max_env_bytes:
            raise AgiProtocolError("env_too_large", f">{self.max_env_bytes} bytes")
        key, sep, value = line.partition(b":")
        if not sep or _KEY_RE.match(key) is None:
            raise AgiProtocolError("bad_header", "expected 'agi_name: value'")
        name = key.decode("ascii")
        if name in self._env:
            raise AgiProtocolError("duplicate_header", name)
        if value.startswith(b" "):
            value = value[1:]
        self._env[name] = _text(value)
        return None

    def _reply_line(self, line: bytes) -> AgiEvent | None:
        common = _COMMON_REPLIES.get(line)
        if common is not None:
            return common
        if line == b"HANGUP":
            return AgiHangup()
        match = _REPLY_RE.match(line)
        if match is None:
            raise AgiProtocolError("bad_reply", "expected a 3-digit code")
        code = int(match.group(1))
        sep = match.group(2)
        text = _text(match.group(3))
        if sep is None and text:
            raise AgiProtocolError("bad_reply", "no space after the code")
        if code == 520:
            if sep == b"-":
                self._state = _State.USAGE
                self._usage = [text]
                return None  # the usage block continues
            return AgiUsage((text,))
        if sep == b"-":
            raise AgiProtocolError("bad_reply", f"continuation on code {code}")
        if code == 100:
            return AgiTrying(text)
        if code == 200:
            return _result_reply(text)
        if code in (510, 511):
            return AgiReply(code=code, text=text)
        raise AgiProtocolError("unknown_code", str(code))

    def _usage_line(self, line: bytes) -> AgiEvent | None:
        if line.startswith(b"520 "):
            self._usage.append(_text(line[4:]))
            self._state = _State.REPLIES
            usage = AgiUsage(tuple(self._usage))
            self._usage = []
            return usage
        if len(self._usage) >= self.max_usage_lines:
            raise AgiProtocolError("usage_too_long", f">{self.max_usage_lines} lines")
        self._usage.append(_text(line))
        return None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _result_reply(text: str) -> AgiReply:
    match = _RESULT_RE.match(text)
    if match is None:
        raise AgiProtocolError("bad_reply", "200 without result=")
    result, data, rest = match.group(1), match.group(2), match.group(3)
    extra: list[tuple[str, str]] = []
    for token in rest.split():
        key, sep, value = token.partition("=")
        if sep and key:
            extra.append((key, value))
    return AgiReply(code=200, result=result, data=data, extra=tuple(extra), text=text)


# the replies to EXEC MSet and SET VARIABLE, built once (the events are immutable)
_COMMON_REPLIES: dict[bytes, AgiReply] = {
    b"200 result=" + r: _result_reply("result=" + r.decode()) for r in (b"0", b"1", b"-1")}


# --- commands ---------------------------------------------------------------------------


def quote_argument(arg: str) -> str:
    """Quote one argument the way res_agi's parser reads it back (``"..."``, ``\\`` escapes)."""
    if any(ch in arg for ch in "\r\n\x00"):
        raise UnsafeArgument("CR, LF or NUL in an AGI argument")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_command(name: str, *args: str) -> bytes:
    """One command line: ``NAME "arg1" "arg2"\\n``. Refuses CR/LF/NUL and over-long lines."""
    if _COMMAND_NAME_RE.match(name) is None:
        raise UnsafeArgument(f"bad AGI command name {name!r}")
    line = " ".join([name, *(quote_argument(a) for a in args)]).encode("utf-8") + b"\n"
    if len(line) > MAX_COMMAND_BYTES:
        raise UnsafeArgument(f"AGI command longer than {MAX_COMMAND_BYTES} bytes")
    return line


_MSET_SAFE_RE = re.compile(r"[A-Za-z0-9+_.:@/-]*\Z")
_VAR_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
# the whole ``A=1,B=`` payload in one match (the per-call path); names checked once each
_MSET_PAYLOAD_RE = re.compile(r"[A-Za-z0-9+_.:@/,=-]*\Z")
_MSET_NAMES_OK: set[str] = set()  # names that passed _VAR_NAME_RE (a fixed vocabulary)
_MSET_NAMES_MAX = 256


def encode_mset(variables: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> bytes:
    """``EXEC MSet "A=1,B=,C=x"``: set several channel variables in one round trip.

    MSet splits on ``,`` and ``=`` and strips quotes and backslashes itself, so names and
    values are restricted to a safe alphabet (no comma, quote, backslash, space, ``$``);
    anything else raises :class:`UnsafeArgument`. Empty values are allowed.
    """
    names = _MSET_NAMES_OK
    if variables and all(name in names for name, _ in variables):
        payload = ",".join([f"{name}={value}" for name, value in variables])
        # names hold no ``,`` or ``=``: with as many of each as the pairs need, no value
        # holds one either, and the one match checks every value's alphabet
        if (_MSET_PAYLOAD_RE.match(payload) is not None
                and payload.count(",") == len(variables) - 1
                and payload.count("=") == len(variables)):
            # what encode_command makes of it: nothing in the alphabet needs escaping
            line = b'EXEC "MSet" "' + payload.encode("ascii") + b'"\n'
            if len(line) > MAX_COMMAND_BYTES:
                raise UnsafeArgument(f"AGI command longer than {MAX_COMMAND_BYTES} bytes")
            return line
    return _encode_mset_checked(variables)


def _encode_mset_checked(
    variables: list[tuple[str, str]] | tuple[tuple[str, str], ...]
) -> bytes:
    """:func:`encode_mset` pair by pair: its errors name the variable at fault."""
    if not variables:
        raise UnsafeArgument("MSet needs at least one variable")
    pairs: list[str] = []
    for name, value in variables:
        if _VAR_NAME_RE.match(name) is None:
            raise UnsafeArgument(f"bad variable name {name!r}")
        if len(_MSET_NAMES_OK) < _MSET_NAMES_MAX:
            _MSET_NAMES_OK.add(name)
        if _MSET_SAFE_RE.match(value) is None:
            raise UnsafeArgument(f"value of {name} outside the MSet-safe alphabet")
        pairs.append(f"{name}={value}")
    return encode_command("EXEC", "MSet", ",".join(pairs))


def encode_set_variable(name: str, value: str) -> bytes:
    """``SET VARIABLE name "value"`` (one variable per round trip)."""
    if _VAR_NAME_RE.match(name) is None:
        raise UnsafeArgument(f"bad variable name {name!r}")
    return encode_command("SET VARIABLE", name, value)
