"""What an ``Action: Originate`` dials, read as Asterisk reads it (pure functions).

Every field that can dial is read (docs/ami.md "Screening of Originate"):

- ``Channel``: a dial string (:mod:`gateway.ami.dialstring`); ``Local/<exten>@<ctx>``
  dials ``<exten>`` when ``<ctx>`` is one of the account's dial targets;
- ``Context``/``Exten``: where the answered channel goes; a dial target there is a
  callee too (click-to-call: ``Channel`` is the agent, ``Exten`` the customer);
- ``Application``/``Data``: only applications on the account's list; ``Dial`` data is
  parsed like ``Channel``.

At most one callee per Originate (two would be two calls screened as one); none:
the raw ``Channel`` goes to the screener, which answers ``invalid_number`` (audited,
blocked). Anything the proxy cannot read as Asterisk does is refused before screening.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.ami.codec import AmiMessage
from gateway.ami.dialplan import TargetKind, classify
from gateway.ami.dialstring import DialString, DialStringRefused, parse, parse_dial_data
from gateway.ami.permissions import VARIABLE_NAME, Refuse, check_headers, is_gateway_variable
from gateway.ami.settings import NEVER_ALLOWED_APPLICATIONS, ProxyAccount

_NUMBER = re.compile(r"\+?[0-9]{2,20}")
_ANGLE = re.compile(r"<([^<>]*)>")
# ast_app_separate_args (Variable headers, application data) interprets these.
_SPECIAL = frozenset('"\\()[]{}$`')
MAX_VARIABLES_PER_HEADER = 64  # Asterisk's own limit (man_do_variable_value)


@dataclass(frozen=True, slots=True)
class OriginateTarget:
    number: str  # what goes to the Screener (the raw text when no number was found)
    found: bool
    campaign_id: str
    caller_id: str | None
    via: str = "channel"  # channel | exten | data | none


def strip_dial_prefix(number: str, account: ProxyAccount) -> str:
    if account.strip_prefix and number.startswith(account.strip_prefix):
        number = number[len(account.strip_prefix) :]
    return number


def with_country_code(number: str, account: ProxyAccount) -> str:
    if account.number_has_country_code and not number.startswith("+"):
        return "+" + number
    return number


def variables(message: AmiMessage) -> list[tuple[str, str]]:
    """Every NAME=value of every ``Variable:`` header, split as Asterisk splits them.

    Raises ``ValueError`` where Asterisk's splitting (quotes, escapes, brackets) could
    differ from a plain split on ``,``, for more than 64 items in one header, and for a
    name that is not a plain variable name (``GLOBAL(X)=`` would write a global).
    """
    out: list[tuple[str, str]] = []
    for header in message.get_all("Variable"):
        text = header.lstrip(" \t")
        if any(ch in _SPECIAL for ch in text):
            raise ValueError("special character in Variable")
        parts = text.split(",")
        if len(parts) > MAX_VARIABLES_PER_HEADER:
            raise ValueError("too many variables in one Variable header")
        for part in parts:
            name, eq, value = part.partition("=")
            if not eq or not name:
                continue  # Asterisk skips these too
            if not VARIABLE_NAME.fullmatch(name):
                raise ValueError("Variable name is not a plain channel variable name")
            out.append((name, value))
    return out


def campaign_of(message: AmiMessage, account: ProxyAccount, pairs: list[tuple[str, str]]
                ) -> str | Refuse:
    wanted = account.campaign_variable
    if wanted.lower() == "account":
        acct = (message.get("Account") or "").strip()
        return acct or account.default_campaign or ""
    values = {v for n, v in pairs if n.lstrip("_").lower() == wanted.lower()}
    if len(values) > 1:
        return Refuse("campaign variable given twice with different values")
    return values.pop() if values else account.default_campaign or ""


def caller_id_number(message: AmiMessage) -> str | None:
    raw = message.get("CallerID")
    if not raw:
        return None
    m = _ANGLE.search(raw)
    text = (m.group(1) if m else raw).strip().strip('"')
    return text if _NUMBER.fullmatch(text) else None


@dataclass(frozen=True, slots=True)
class _Callee:
    raw: str
    dialplan: bool  # reached through the dialplan (strip_prefix applies)
    via: str


def _callee_of(dial: DialString, account: ProxyAccount, via: str) -> _Callee | Refuse | None:
    if dial.local is not None:
        context, exten = dial.local
        kind = classify(context, exten, dial=account.dial, agent=account.agent)
        if kind is TargetKind.DIAL:
            return _Callee(exten, True, via)
        if kind is TargetKind.AGENT:
            return None
        return Refuse(f"Local destination {context!r} not allowed for this account")
    if dial.number is not None:
        return _Callee(dial.number, False, via)
    return None


def _application(msg: AmiMessage, account: ProxyAccount) -> list[_Callee] | Refuse:
    app = (msg.get("Application") or "").strip().lower()
    data = msg.get("Data") or ""
    if app in NEVER_ALLOWED_APPLICATIONS or app not in account.allowed_applications:
        return Refuse(f"application {app!r} not allowed")
    if (msg.get("Exten") or "").strip() or (msg.get("Context") or "").strip():
        return Refuse("Application and Context/Exten together")
    if app != "dial":
        if any(ch in _SPECIAL or ch in "&,;|" or ch.isspace() for ch in data):
            return Refuse("application data not accepted")
        return []
    try:
        peers = parse_dial_data(data)
    except DialStringRefused as exc:
        return Refuse(f"Dial data not accepted: {exc}")
    out: list[_Callee] = []
    for peer in peers:
        c = _callee_of(peer, account, "data")
        if isinstance(c, Refuse):
            return c
        if c is not None:
            out.append(c)
    return out


def _destination(msg: AmiMessage, account: ProxyAccount) -> list[_Callee] | Refuse:
    context = (msg.get("Context") or "").strip()
    exten = (msg.get("Exten") or "").strip()
    if not context or not exten:
        return Refuse("Originate needs Application, or Context and Exten")
    kind = classify(context, exten, dial=account.dial, agent=account.agent)
    if kind is TargetKind.DIAL:
        return [_Callee(exten, True, "exten")]
    if kind is TargetKind.AGENT:
        return []
    return Refuse(f"destination in context {context!r} not allowed for this account")


def read_originate(message: AmiMessage, account: ProxyAccount) -> OriginateTarget | Refuse:
    """The one number this Originate dials and its campaign, or why it is refused."""
    refused = check_headers(message, account, "originate")
    if refused is not None:
        return refused
    try:
        pairs = variables(message)
    except ValueError as exc:
        return Refuse(str(exc))
    if any(is_gateway_variable(name) for name, _ in pairs):
        return Refuse("GW_* variables are reserved to the gateway")
    campaign = campaign_of(message, account, pairs)
    if isinstance(campaign, Refuse):
        return campaign
    if not account.allows_campaign(campaign):
        return Refuse(f"campaign {campaign!r} not allowed for this account")
    channel = (message.get("Channel") or "").lstrip(" \t")
    try:
        dial = parse(channel)
    except DialStringRefused as exc:
        return Refuse(f"Channel not accepted: {exc}")
    first = _callee_of(dial, account, "channel")
    if isinstance(first, Refuse):
        return first
    callees = [first] if first is not None else []
    if (message.get("Application") or "").strip():
        more = _application(message, account)
    else:
        more = _destination(message, account)
    if isinstance(more, Refuse):
        return more
    callees += more
    if len(callees) > 1:
        return Refuse("Originate dials more than one number")
    cid = caller_id_number(message)
    if not callees:
        # Still screened and audited: the engine answers invalid_number for raw text.
        return OriginateTarget(channel or "<no channel>", False, campaign, cid, "none")
    callee = callees[0]
    number = strip_dial_prefix(callee.raw, account) if callee.dialplan else callee.raw
    if not _NUMBER.fullmatch(number):
        return OriginateTarget(callee.raw, False, campaign, cid, callee.via)
    return OriginateTarget(with_country_code(number, account), True, campaign, cid, callee.via)
