"""What a dialer account may send through the AMI proxy (pure; docs/ami.md).

Default deny: an action is relayed only if it is in the account's ``allowed_actions``
and never in :data:`~gateway.ami.settings.NEVER_ALLOWED_ACTIONS`; each of its headers
must be one the proxy knows for that action (:data:`KNOWN_HEADERS`) or one the account
allows explicitly (``allowed_headers = ["Action.Header"]``); no header may repeat
(Asterisk reads the first, the proxy must read the same one), except ``Variable`` on
``Originate``. Then per action:

- ``Getvar``/``Setvar``: a ``Channel`` is required (no globals), the variable is a plain
  name (no ``FUNC(...)``: ``GLOBAL(GW_AGI)`` would write a global), never ``GW_*`` in any
  case or with ``_``/``__`` inheritance prefixes; ``Setvar`` never of the campaign variable.
- ``Redirect``, ``BlindTransfer``, ``Atxfer``: every destination must be one of the
  account's targets (:mod:`gateway.ami.dialplan`); a dial target is a new call, screened.
- ``Originate``: :mod:`gateway.ami.originate`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.ami.codec import AmiMessage
from gateway.ami.dialplan import TargetKind, classify
from gateway.ami.settings import ProxyAccount

ANY = frozenset({"*"})
_BASE = frozenset({"action", "actionid"})
KNOWN_HEADERS: dict[str, frozenset[str]] = {
    "originate": frozenset({
        "channel", "exten", "context", "priority", "application", "data", "timeout",
        "callerid", "variable", "account", "earlymedia", "async", "codecs", "channelid",
        "otherchannelid",
    }),
    "hangup": frozenset({"channel", "cause"}),
    "redirect": frozenset({
        "channel", "extrachannel", "exten", "extraexten", "context", "extracontext",
        "priority", "extrapriority",
    }),
    "blindtransfer": frozenset({"channel", "exten", "context"}),
    "atxfer": frozenset({"channel", "exten", "context"}),
    "bridge": frozenset({"channel1", "channel2", "tone"}),
    "getvar": frozenset({"channel", "variable"}),
    "setvar": frozenset({"channel", "variable", "value"}),
    "status": frozenset({"channel", "variables", "allvariables"}),
    "coreshowchannels": frozenset(),
    "absolutetimeout": frozenset({"channel", "timeout"}),
    "queuestatus": frozenset({"queue", "member"}),
    "queuesummary": frozenset({"queue"}),
    "monitor": frozenset({"channel", "file", "format", "mix"}),
    "stopmonitor": frozenset({"channel"}),
    "mixmonitor": frozenset({"channel", "file", "options"}),  # never "Command"
    "stopmixmonitor": frozenset({"channel", "mixmonitorid"}),
    "playdtmf": frozenset({"channel", "digit", "duration", "receive"}),
    "sendtext": frozenset({"channel", "message"}),
    "userevent": ANY,  # every header becomes a header of the event
    "coresettings": frozenset(),
    "corestatus": frozenset(),
    "listcommands": frozenset(),
    "waitevent": frozenset({"timeout"}),
    "meetmelist": frozenset({"conference"}),
    "confbridgelist": frozenset({"conference"}),
    "extensionstate": frozenset({"exten", "context"}),
    "dbget": frozenset({"family", "key"}),
    "command": frozenset({"command"}),
}
REPEATABLE: dict[str, frozenset[str]] = {"originate": frozenset({"variable"})}
# Asterisk reads at most 128 header lines of a manager message (AST_MAX_MANHEADERS;
# Asterisk 22 then rejects the message, older versions may drop the extra lines) and
# lines of at most 1024 bytes with CRLF (a longer line fails the whole message). The
# proxy must never screen a header Asterisk will not read; it adds up to two headers
# (ActionID, Variable: GW_DECISION_ID), so a dialer gets fewer.
MAX_ACTION_HEADERS = 120
MAX_HEADER_LINE_BYTES = 1000

# A plain channel variable name, with Asterisk's inheritance prefixes (_NAME, __NAME).
VARIABLE_NAME = re.compile(r"_{0,2}[A-Za-z][A-Za-z0-9_]{0,79}")
_COMMAND_ARG = re.compile(r"[A-Za-z0-9_.@/-]{1,80}")
MAX_COMMAND_WORDS = 8
_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}")
_LETTERS = re.compile(r"[A-Za-z]{0,40}")
_VALUE_CHECKS: dict[tuple[str, str], re.Pattern[str]] = {
    ("monitor", "file"): _FILE,
    ("monitor", "format"): re.compile(r"[A-Za-z0-9]{0,20}"),
    ("monitor", "mix"): _LETTERS,
    ("mixmonitor", "file"): _FILE,
    ("mixmonitor", "options"): _LETTERS,  # no W(..), r(file) ...: no arguments
    ("status", "variables"): re.compile(r"[A-Za-z0-9_]{1,80}(,[A-Za-z0-9_]{1,80}){0,63}"),
}


def is_gateway_variable(name: str) -> bool:
    """``GW_*`` in any case, with or without inheritance prefixes."""
    return name.lstrip("_").lower().startswith("gw_")


@dataclass(frozen=True, slots=True)
class Refuse:
    message: str


@dataclass(frozen=True, slots=True)
class Relay:
    pass


@dataclass(frozen=True, slots=True)
class ScreenTarget:
    """A transfer/redirect into a dial target: a new call to ``exten`` (raw)."""

    exten: str
    context: str


Verdict = Refuse | Relay | ScreenTarget


def check_headers(msg: AmiMessage, account: ProxyAccount, action: str) -> Refuse | None:
    if len(msg.headers) > MAX_ACTION_HEADERS:
        return Refuse(f"more than {MAX_ACTION_HEADERS} headers")
    for name, value in msg.headers:
        if len(name.encode()) + 2 + len(value.encode("utf-8", "surrogateescape")) > (
                MAX_HEADER_LINE_BYTES):
            return Refuse(f"header line longer than {MAX_HEADER_LINE_BYTES} bytes")
    known = KNOWN_HEADERS.get(action, frozenset())
    extra = account.extra_headers(action)
    if known == ANY or "*" in extra:
        return None
    allowed = _BASE | known | extra
    repeatable = REPEATABLE.get(action, frozenset())
    seen: set[str] = set()
    for name, _value in msg.headers:
        low = name.lower()
        if low not in allowed:
            return Refuse(f"header {name!r} not allowed for {action}")
        if low in seen and low not in repeatable:
            return Refuse(f"header {name!r} repeated")
        seen.add(low)
    for (act, header), pattern in _VALUE_CHECKS.items():
        if act == action:
            checked = msg.get(header)
            if checked is not None and not pattern.fullmatch(checked.strip()):
                return Refuse(f"{header} value not allowed")
    return None


def check(msg: AmiMessage, account: ProxyAccount, action: str) -> Verdict:
    """Everything but ``Originate`` (checked by :mod:`gateway.ami.originate`)."""
    refused = check_headers(msg, account, action)
    if refused is not None:
        return refused
    if action in ("getvar", "setvar"):
        return _variable_access(msg, account, action)
    if action == "redirect":
        return _redirect(msg, account)
    if action in ("blindtransfer", "atxfer"):
        return _transfer(msg, account)
    if action == "command":
        return _command(msg, account)
    return Relay()


def _command(msg: AmiMessage, account: ProxyAccount) -> Verdict:
    """``Command`` only for the account's ``allowed_commands`` (conference control):
    the first two words must be one of them, the rest plain arguments."""
    words = (msg.get("Command") or "").split()
    allowed = {" ".join(c.lower().split()) for c in account.allowed_commands}
    if (len(words) < 2 or len(words) > MAX_COMMAND_WORDS
            or " ".join(words[:2]).lower() not in allowed
            or not all(_COMMAND_ARG.fullmatch(w) for w in words[2:])):
        return Refuse("CLI command not allowed for this account")
    return Relay()


def _variable_access(msg: AmiMessage, account: ProxyAccount, action: str) -> Verdict:
    if not (msg.get("Channel") or "").strip():
        return Refuse(f"{action} needs a Channel (global variables are not accessible)")
    name = (msg.get("Variable") or "").strip()
    if not VARIABLE_NAME.fullmatch(name):
        return Refuse(f"{action}: variable must be a plain channel variable name")
    if is_gateway_variable(name):
        return Refuse(f"{action}: GW_* variables are reserved to the gateway")
    if action == "setvar" and name.lstrip("_").lower() == account.campaign_variable.lower():
        return Refuse("setvar: the campaign variable is set by Originate only")
    return Relay()


def _destination(context: str, exten: str, account: ProxyAccount) -> Verdict:
    kind = classify(context.strip(), exten.strip(), dial=account.dial, agent=account.agent)
    if kind is TargetKind.AGENT:
        return Relay()
    if kind is TargetKind.DIAL:
        return ScreenTarget(exten=exten.strip(), context=context.strip())
    return Refuse("destination not allowed for this account")


def _combine(verdicts: list[Verdict]) -> Verdict:
    for v in verdicts:
        if isinstance(v, Refuse):
            return v
    screens = [v for v in verdicts if isinstance(v, ScreenTarget)]
    if len(screens) > 1:
        return Refuse("more than one destination dials a number")
    return screens[0] if screens else Relay()


def _redirect(msg: AmiMessage, account: ProxyAccount) -> Verdict:
    context, exten = msg.get("Context") or "", msg.get("Exten") or ""
    verdicts = [_destination(context, exten, account)]
    if (msg.get("ExtraChannel") or "").strip():
        context2 = msg.get("ExtraContext") or ""
        if context2.strip():
            verdicts.append(_destination(context2, msg.get("ExtraExten") or "", account))
        else:
            verdicts.append(_destination(context, exten, account))
    return _combine(verdicts)


def _transfer(msg: AmiMessage, account: ProxyAccount) -> Verdict:
    context = msg.get("Context") or ""
    if not context.strip():
        # Asterisk would use the channel's own context, which the proxy cannot see.
        return Refuse("transfer needs a Context")
    return _destination(context, msg.get("Exten") or "", account)
