"""Sans-IO codec of the Asterisk Manager Interface (AMI), used by both sides.

A message is an ordered list of ``Key: Value`` header lines ended by a blank line.
Repeated keys are kept (``Variable:`` may repeat). Lines may end with CRLF (Asterisk)
or a bare LF (VICIdial). ``encode`` refuses CR, LF and NUL inside keys or values, so
nothing a peer sends can smuggle a header or a second action through the gateway.

The parser never does I/O: ``feed(bytes) -> list[AmiMessage]``. Bytes are decoded as
UTF-8 with ``surrogateescape`` so that arbitrary bytes round-trip unchanged through
``encode``. Any malformed input raises :class:`AmiProtocolError` and nothing else;
after an error the parser stays failed (the connection must be closed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Limits (docs/ami.md, docs/behavior.md)
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
DEFAULT_MAX_HEADERS = 256
BANNER_PREFIX = "Asterisk Call Manager/"
END_COMMAND = "--END COMMAND--"
_FORBIDDEN = ("\r", "\n", "\0")


class AmiProtocolError(Exception):
    """The peer violated the AMI framing (or a limit), or a message cannot be encoded."""


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One AMI message: ordered headers, repeated keys allowed, keys case-insensitive."""

    headers: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, *pairs: tuple[str, str], **kw: str) -> AmiMessage:
        return cls(tuple(pairs) + tuple(kw.items()))

    def get(self, key: str, default: str | None = None) -> str | None:
        k = key.lower()
        for name, value in self.headers:
            if name.lower() == k:
                return value
        return default

    def get_all(self, key: str) -> list[str]:
        k = key.lower()
        return [value for name, value in self.headers if name.lower() == k]

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    @property
    def kind(self) -> str:
        """``response``, ``event``, ``action`` (from the first header), or ``other``.

        An ``OriginateResponse`` event also carries a ``Response:`` header: only the
        first header tells the kind of a message.
        """
        first = self.headers[0][0].lower() if self.headers else ""
        return first if first in ("response", "event", "action") else "other"

    @property
    def action(self) -> str | None:
        return self.get("Action")

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def response(self) -> str | None:
        return self.get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def without(self, key: str) -> AmiMessage:
        k = key.lower()
        return AmiMessage(tuple((n, v) for n, v in self.headers if n.lower() != k))

    def replace(self, key: str, value: str | None) -> AmiMessage:
        """Drop every ``key`` header; then put ``key: value`` where the first one was.

        With ``value=None`` the header is only removed. A missing header is appended.
        """
        k = key.lower()
        out: list[tuple[str, str]] = []
        placed = value is None
        for name, v in self.headers:
            if name.lower() == k:
                if not placed and value is not None:
                    out.append((name, value))
                    placed = True
                continue
            out.append((name, v))
        if not placed and value is not None:
            out.append((key, value))
        return AmiMessage(tuple(out))

    def with_header(self, key: str, value: str) -> AmiMessage:
        return AmiMessage((*self.headers, (key, value)))

    def __repr__(self) -> str:  # values may hold secrets or numbers: show keys only
        kind = self.action or self.event or self.response or "?"
        return f"AmiMessage({kind!r}, keys={[k for k, _ in self.headers]!r})"


def _check(text: str, what: str) -> None:
    for ch in _FORBIDDEN:
        if ch in text:
            raise AmiProtocolError(f"{what} contains a forbidden control character")


def encode(message: AmiMessage | Iterable[tuple[str, str]]) -> bytes:
    """Serialise one message with CRLF line ends; refuse CR/LF/NUL in keys or values."""
    headers = message.headers if isinstance(message, AmiMessage) else tuple(message)
    if not headers:
        raise AmiProtocolError("empty message")
    parts: list[str] = []
    for key, value in headers:
        if not key or ":" in key or key != key.strip():
            raise AmiProtocolError("invalid header name")
        _check(key, "header name")
        _check(value, "header value")
        parts.append(f"{key}: {value}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8", "surrogateescape")


def encode_banner(version: str = "5.0.0") -> bytes:
    _check(version, "banner")
    return f"{BANNER_PREFIX}{version}\r\n".encode()


class AmiParser:
    """Incremental AMI parser. ``expect_banner=True`` on the client side of a connection."""

    def __init__(
        self,
        *,
        expect_banner: bool = False,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_headers: int = DEFAULT_MAX_HEADERS,
    ) -> None:
        self._expect_banner = expect_banner
        self.banner: str | None = None
        self._max_bytes = max_message_bytes
        self._max_headers = max_headers
        self._buf = bytearray()
        self._headers: list[tuple[str, str]] = []
        self._size = 0  # bytes of the message being assembled (complete lines)
        self._follows = False  # inside "Response: Follows" command output
        self._failed: AmiProtocolError | None = None

    def feed(self, data: bytes) -> list[AmiMessage]:
        if self._failed is not None:
            raise self._failed
        try:
            return self._feed(data)
        except AmiProtocolError as exc:
            self._failed = exc
            raise

    def _feed(self, data: bytes) -> list[AmiMessage]:
        self._buf += data
        out: list[AmiMessage] = []
        start = 0
        buf = self._buf
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            raw = bytes(buf[start:nl])
            start = nl + 1
            self._size += len(raw) + 1
            if self._size > self._max_bytes:
                raise AmiProtocolError("message exceeds the size limit")
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            msg = self._line(raw.decode("utf-8", "surrogateescape"))
            if msg is not None:
                out.append(msg)
        del buf[:start]
        if self._size + len(buf) > self._max_bytes:
            raise AmiProtocolError("message exceeds the size limit")
        return out

    def _line(self, line: str) -> AmiMessage | None:
        if self._expect_banner and self.banner is None:
            if not line.startswith(BANNER_PREFIX):
                raise AmiProtocolError("missing 'Asterisk Call Manager' banner")
            self.banner = line
            self._size = 0
            return None
        if line == "":
            if not self._headers:  # stray blank lines between messages
                self._size = 0
                return None
            msg = AmiMessage(tuple(self._headers))
            self._headers = []
            self._size = 0
            self._follows = False
            return msg
        if self._follows:
            if line == END_COMMAND:
                return None
            key, sep, value = line.partition(":")
            if not sep or not key or key != key.strip():
                self._add("Output", line)
                return None
            self._add(key, value.lstrip(" "))
            return None
        if "\0" in line or "\r" in line:
            raise AmiProtocolError("control character inside a header line")
        key, sep, value = line.partition(":")
        if not sep or not key or key != key.strip():
            raise AmiProtocolError("header line without a 'Key: value' shape")
        value = value.lstrip(" ")
        self._add(key, value)
        if not self._headers[1:] and key.lower() == "response" and value.lower() == "follows":
            self._follows = True
        return None

    def _add(self, key: str, value: str) -> None:
        if len(self._headers) >= self._max_headers:
            raise AmiProtocolError("too many headers in one message")
        self._headers.append((key, value))
