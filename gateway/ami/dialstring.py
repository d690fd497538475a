"""Dial strings (``TECH/resource``) read as Asterisk's channel drivers read them (pure).

Only an allow-list of shapes is accepted; anything else is refused, so that the number
the proxy screens is always the number the channel driver dials. The shapes, and the
driver code each one was checked against (Asterisk 22):

========  ==========================================  ====================================
tech      accepted shapes                              dialled number
========  ==========================================  ====================================
PJSIP     ``PJSIP/<num>@<endpoint>``                   ``<num>`` (request user; chan_pjsip
                                                       ``request()``: endpoint lookup of
                                                       ``<num>@<endpoint>`` fails, the part
                                                       before ``@`` becomes the user)
          ``PJSIP/<endpoint>/sip:<num>@<host>[:port]`` ``<num>`` (the URI's user; the rest
                                                       after the first ``/`` is the AOR/URI)
          ``PJSIP/<endpoint>``                         none (the endpoint's contact)
IAX2      ``IAX2/[<user>[:<secret>]@]<peer>[:port]/``  ``<num>`` (``parse_dial_string``:
          ``<num>[@<context>]``                        peer/exten/options by ``/``)
          ``IAX2/[<user>@]<peer>[:port]``              none (exten ``s``)
DAHDI     ``DAHDI/[gGrR]<n>[c]/<num>``, ``DAHDI/<n>``   ``<num>`` (digits only)
          ``/<num>``
SIP       ``SIP/<peer>/<num>``, ``SIP/<num>@<peer>``    ``<num>`` (chan_sip, removed in
          ``SIP/<peer>``                               Asterisk 21: kept for older PBXs)
Local     ``Local/<exten>@<context>[/<n|j|m>...]``     whatever ``<context>`` does with
                                                       ``<exten>`` (the caller decides
                                                       with the account's dial targets)
========  ==========================================  ====================================

Refused: every other technology, options after the number (``IAX2/p/n/opts``,
``DAHDI/g1/n/opts``), a ``/`` inside a URI (``sip:n@h;x=/m``), URI parameters or headers,
quotes, backslashes, brackets and parentheses (``ast_app_separate_args`` treats them
specially), whitespace, and a request user combined with a URI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A dialled number: what a carrier receives. ``+`` only in front.
NUMBER = r"\+?[0-9]{2,20}"
# Asterisk copies contexts and extensions into 80-byte buffers (AST_MAX_CONTEXT,
# AST_MAX_EXTENSION, NUL included) and Originate's Channel into 256 bytes: anything
# longer would be truncated -- dialling a prefix of the screened number -- so refused.
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,78}"  # endpoint, peer, host, context, user
_PORT = r"[0-9]{1,5}"
_EXTEN = r"[A-Za-z0-9+*#]{1,79}"  # a dialplan extension (no pattern characters)
MAX_DIAL_STRING = 200  # characters of one dial string (Asterisk: 255 in Originate)

_PJSIP_USER_AT = re.compile(rf"(?P<num>{NUMBER})@(?P<endpoint>{_NAME})")
_PJSIP_URI = re.compile(
    rf"(?P<endpoint>{_NAME})/sips?:(?P<num>{NUMBER})@(?P<host>{_NAME})(?::{_PORT})?"
)
_PJSIP_ENDPOINT = re.compile(_NAME)
_IAX2 = re.compile(
    rf"(?:(?P<user>{_NAME})(?::(?P<secret>{_NAME}))?@)?(?P<peer>{_NAME})(?::{_PORT})?"
    rf"(?:/(?P<num>{NUMBER})(?:@(?P<context>{_NAME}))?)?"
)
_DAHDI = re.compile(r"(?P<group>[gGrR]?[0-9]{1,3}c?)(?:/(?P<num>[0-9]{2,20}))?")
_SIP_PEER_NUM = re.compile(rf"(?P<peer>{_NAME})/(?P<num>{NUMBER})")
_SIP_NUM_AT = re.compile(rf"(?P<num>{NUMBER})@(?P<peer>{_NAME})")
_LOCAL = re.compile(rf"(?P<exten>{_EXTEN})@(?P<context>{_NAME})(?:/(?P<opts>[njm]{{1,3}}))?")


@dataclass(frozen=True, slots=True)
class DialString:
    """One parsed dial string.

    ``number``: the number the channel driver dials (None: it dials no number given here).
    ``local``: for ``Local/<exten>@<context>``, the (context, exten) the new channel runs
    in the dialplan; whether that dials ``exten`` is the account's configuration.
    """

    tech: str  # lower-case technology
    number: str | None = None
    local: tuple[str, str] | None = None


class DialStringRefused(ValueError):
    """The dial string is not one of the accepted shapes (message says why)."""


def parse(dial: str) -> DialString:
    """Parse one dial string (``TECH/resource``) or raise :class:`DialStringRefused`."""
    if len(dial) > MAX_DIAL_STRING:
        raise DialStringRefused(f"longer than {MAX_DIAL_STRING} characters")
    tech, sep, rest = dial.partition("/")
    if not sep or not tech or not rest:
        raise DialStringRefused("not TECH/resource")
    low = tech.lower()  # ast_get_channel_tech compares case-insensitively
    if low == "pjsip":
        return _pjsip(rest)
    if low == "iax2":
        m = _IAX2.fullmatch(rest)
        if m is None:
            raise DialStringRefused("IAX2 shape not accepted")
        return DialString("iax2", number=m["num"])
    if low == "dahdi":
        m = _DAHDI.fullmatch(rest)
        if m is None:
            raise DialStringRefused("DAHDI shape not accepted")
        return DialString("dahdi", number=m["num"])
    if low == "sip":
        m = _SIP_PEER_NUM.fullmatch(rest) or _SIP_NUM_AT.fullmatch(rest)
        if m is not None:
            return DialString("sip", number=m["num"])
        if _PJSIP_ENDPOINT.fullmatch(rest):
            return DialString("sip")  # SIP/<peer>: the peer's contact
        raise DialStringRefused("SIP shape not accepted")
    if low == "local":
        m = _LOCAL.fullmatch(rest)
        if m is None:
            raise DialStringRefused("Local shape not accepted")
        return DialString("local", local=(m["context"], m["exten"]))
    raise DialStringRefused("technology not accepted")  # never echo it: may be a number


def _pjsip(rest: str) -> DialString:
    m = _PJSIP_USER_AT.fullmatch(rest)
    if m is not None:
        return DialString("pjsip", number=m["num"])
    m = _PJSIP_URI.fullmatch(rest)
    if m is not None:
        return DialString("pjsip", number=m["num"])
    if _PJSIP_ENDPOINT.fullmatch(rest):
        return DialString("pjsip")
    raise DialStringRefused("PJSIP shape not accepted")


# --- Dial() application data ----------------------------------------------------------

# Dial options that take no argument and cannot send a channel anywhere. Options with
# arguments (b(), B(), F(), G(), U(), M(), L(), ...) run dialplan or move channels.
SAFE_DIAL_OPTIONS = frozenset("hHiIrR")
_DIAL_TIMEOUT = re.compile(r"[0-9]{0,5}")
# ast_app_separate_args treats these specially (quotes, escapes, nesting): never accepted.
_SPECIAL = frozenset('"\\()[]{}$`|;\'')


def parse_dial_data(data: str) -> list[DialString]:
    """``Dial`` data ``peer[&peer...][,timeout[,options]]``: every peer, parsed.

    Raises :class:`DialStringRefused` for anything but digits as timeout and
    :data:`SAFE_DIAL_OPTIONS` as options, for a URL argument, and for any special
    character ``ast_app_separate_args`` would interpret.
    """
    if any(ch in _SPECIAL or ch.isspace() for ch in data):
        raise DialStringRefused("special character in Dial data")
    args = data.split(",")
    if len(args) > 3:
        raise DialStringRefused("Dial data has more than peers, timeout and options")
    if len(args) > 1 and not _DIAL_TIMEOUT.fullmatch(args[1]):
        raise DialStringRefused("Dial timeout not digits")
    if len(args) > 2 and not set(args[2]) <= SAFE_DIAL_OPTIONS:
        raise DialStringRefused("Dial option not accepted")
    peers = args[0].split("&")
    if not peers or any(not p for p in peers):
        raise DialStringRefused("empty Dial peer")
    return [parse(p) for p in peers]
