"""What the proxy reads from an ``Action: Originate`` (pure functions).

The callee is the dial string in ``Channel``; ``Exten``/``Context``/``Application`` are
the agent side and are never the callee. Examples (docs/ami.md)::

    PJSIP/0612345678@trunk          -> 0612345678
    SIP/trunk/0612345678            -> 0612345678
    PJSIP/trunk/sip:0612345678@host -> 0612345678
    DAHDI/g1/0612345678             -> 0612345678
    Local/9330612345678@vici/n      -> strip "9" -> 330612345678 (+ country code flag)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.ami.codec import AmiMessage
from gateway.ami.settings import ProxyAccount

_NUMBER = re.compile(r"\+?[0-9]{2,20}")
_VAR_SPLIT = re.compile(r"[,|]")
_ANGLE = re.compile(r"<([^<>]*)>")


@dataclass(frozen=True, slots=True)
class OriginateTarget:
    number: str  # what goes to the Screener (the raw text when no number was found)
    found: bool
    campaign_id: str
    caller_id: str | None


def callee_from_channel(channel: str) -> str | None:
    """The dialled number in an Asterisk dial string, or None when there is none."""
    tech, sep, rest = channel.strip().partition("/")
    if not sep or not tech or not rest:
        return None
    if tech.lower() == "local":
        candidate = rest.split("@", 1)[0]
    else:
        last = rest.rsplit("/", 1)[-1]
        if "/" not in rest and "@" not in last:
            return None  # "PJSIP/endpoint": no number in the dial string
        if ":" in last.split("@", 1)[0]:
            last = last.split(":", 1)[1]  # sip:0612@host or user:pass
        candidate = last.split("@", 1)[0]
    candidate = candidate.strip()
    return candidate if _NUMBER.fullmatch(candidate) else None


def strip_dial_prefix(number: str, account: ProxyAccount) -> str:
    if number.startswith("+"):
        return number
    if account.strip_prefix and number.startswith(account.strip_prefix):
        number = number[len(account.strip_prefix) :]
    if account.number_has_country_code:
        number = "+" + number
    return number


def variables(message: AmiMessage) -> list[tuple[str, str]]:
    """Every NAME=value of every ``Variable:`` header (comma or pipe separated)."""
    out: list[tuple[str, str]] = []
    for header in message.get_all("Variable"):
        for part in _VAR_SPLIT.split(header):
            name, eq, value = part.partition("=")
            if eq and name.strip():
                out.append((name.strip(), value.strip()))
    return out


def campaign_of(message: AmiMessage, account: ProxyAccount) -> str:
    wanted = account.campaign_variable
    if wanted.lower() == "account":
        acct = (message.get("Account") or "").strip()
        if acct:
            return acct
    elif wanted:
        for name, value in variables(message):
            if name.lower() == wanted.lower() and value:
                return value
    return account.default_campaign or ""


def caller_id_number(message: AmiMessage) -> str | None:
    raw = message.get("CallerID")
    if not raw:
        return None
    m = _ANGLE.search(raw)
    text = (m.group(1) if m else raw).strip().strip('"')
    return text if _NUMBER.fullmatch(text) else None


# Applications an Originate may run on the answered channel that would dial again.
DIALLING_APPLICATIONS = frozenset({"dial", "originate", "page"})


def dials_a_second_number(message: AmiMessage) -> bool:
    """``Application: Dial`` (Originate, Page) with a number in ``Data``: a second callee.

    The agent side may dial an agent (``PJSIP/agent-17``) but never a number, which would
    reach a second callee that was never screened.
    """
    app = (message.get("Application") or "").strip().lower()
    if app not in DIALLING_APPLICATIONS:
        return False
    first_arg = (message.get("Data") or "").split(",", 1)[0]
    return any(callee_from_channel(part) is not None for part in first_arg.split("&"))


def read_originate(message: AmiMessage, account: ProxyAccount) -> OriginateTarget:
    channel = message.get("Channel") or ""
    number = callee_from_channel(channel)
    campaign = campaign_of(message, account)
    cid = caller_id_number(message)
    if number is None:
        # Still screened and audited: the engine answers invalid_number for raw text.
        return OriginateTarget(channel or "<no channel>", False, campaign, cid)
    return OriginateTarget(strip_dial_prefix(number, account), True, campaign, cid)
