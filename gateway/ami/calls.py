"""Follows screened calls through Asterisk's AMI events and classifies them (sans-IO).

A call is known by the ``GW_DECISION_ID`` variable the gateway added to its Originate
(a ``VarSet`` event names the channel: its Uniqueid is the *party* channel, the one
Asterisk runs ``Exten``/``Context`` on once the callee answers: the agent side).

- ``not_answered``: the party channel hung up without ever being Up (busy, no answer,
  rejected: causes 0, 16-21); ``system_hangup``: the same with any other cause
  (congestion, unallocated number, network failure).
- ``bridged``: the party channel went Up and was in a bridge with another channel
  within ``agent_delay_s`` of the answer.
- ``abandoned``: it went Up and was not bridged within ``agent_delay_s`` (classified at
  the deadline, or at hangup if that comes first).

Time is an argument (``now``); :meth:`next_deadline` tells the caller when to call
:meth:`due` again. Memory is bounded (``max_calls``, ``max_call_age_s``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from gateway.ami.codec import AmiMessage

DECISION_VARIABLE = "GW_DECISION_ID"
NUMBER_VARIABLE = "GW_E164"  # the dialled number, set with the decision id (AGI MSet / Originate)
AMD_VARIABLE = "AMDSTATUS"  # Asterisk's AMD() result: MACHINE | HUMAN | NOTSURE | HANGUP
CAMPAIGN_VARIABLES = ("GW_CAMPAIGN", "CAMPAIGN")
NOT_ANSWERED_CAUSES = frozenset({0, 16, 17, 18, 19, 20, 21})
DEFAULT_MAX_CALLS = 10000
DEFAULT_MAX_CALL_AGE_S = 6 * 3600.0
UP_STATE = "6"


class CallOutcome(StrEnum):
    NOT_ANSWERED = "not_answered"
    BRIDGED = "bridged"
    ABANDONED = "abandoned"
    SYSTEM_HANGUP = "system_hangup"

    @property
    def answered(self) -> bool:
        return self in (CallOutcome.BRIDGED, CallOutcome.ABANDONED)


@dataclass(frozen=True, slots=True)
class Classified:
    call_id: str  # the decision id
    campaign_id: str | None
    outcome: CallOutcome
    at: datetime  # answer instant for answered calls, else the hangup instant
    e164: str | None = None  # from the channel's GW_E164, when the events carried it
    machine: bool = False  # Asterisk's AMD() reported an answering machine


@dataclass(slots=True)
class _Call:
    call_id: str
    uniqueid: str
    created: datetime
    campaign_id: str | None = None
    e164: str | None = None
    machine: bool = False
    answered_at: datetime | None = None
    deadline: datetime | None = None
    done: bool = False
    bridges: set[str] = field(default_factory=set)


class CallTracker:
    def __init__(
        self,
        *,
        agent_delay_s: Callable[[str | None, datetime], float],
        campaign_of: Callable[[str], str | None] = lambda _id: None,
        campaign_variables: tuple[str, ...] = CAMPAIGN_VARIABLES,
        max_calls: int = DEFAULT_MAX_CALLS,
        max_call_age_s: float = DEFAULT_MAX_CALL_AGE_S,
    ) -> None:
        self._delay = agent_delay_s
        self._campaign_of = campaign_of
        self._campaign_vars = {v.lower() for v in campaign_variables}
        self._max_calls = max_calls
        self._max_age = timedelta(seconds=max_call_age_s)
        self._calls: OrderedDict[str, _Call] = OrderedDict()  # by party Uniqueid
        self._by_decision: dict[str, str] = {}
        self._vars_seen: OrderedDict[str, str] = OrderedDict()  # Uniqueid -> campaign
        self._numbers_seen: OrderedDict[str, str] = OrderedDict()  # Uniqueid -> GW_E164
        self._members: dict[str, set[str]] = {}  # BridgeUniqueid -> tracked party uids

    def __len__(self) -> int:
        return len(self._calls)

    # --- events ----------------------------------------------------------------------

    def on_event(self, msg: AmiMessage, now: datetime) -> list[Classified]:
        name = (msg.event or "").lower()
        uid = msg.get("Uniqueid") or ""
        if name == "varset":
            self._varset(msg, uid, now)
            return []
        if name == "newstate":
            call = self._calls.get(uid)
            if call is not None and (msg.get("ChannelState") == UP_STATE or
                                     (msg.get("ChannelStateDesc") or "").lower() == "up"):
                self._answer(call, now)
            return []
        if name == "bridgeenter":
            return self._bridge_enter(msg, uid, now)
        if name == "bridgeleave":
            bridge = msg.get("BridgeUniqueid") or ""
            call = self._calls.get(uid)
            if call is not None:
                call.bridges.discard(bridge)
                self._leave(bridge, uid)
            return []
        if name == "hangup":
            return self._hangup(msg, uid, now)
        return []

    def _varset(self, msg: AmiMessage, uid: str, now: datetime) -> None:
        var = (msg.get("Variable") or "").lower()
        value = (msg.get("Value") or "").strip()
        if not uid or not value:
            return
        if var == DECISION_VARIABLE.lower():
            if value in self._by_decision or uid in self._calls:
                return
            campaign = self._campaign_of(value) or self._vars_seen.pop(uid, None)
            self._calls[uid] = _Call(value, uid, now, campaign,
                                     e164=self._numbers_seen.pop(uid, None))
            self._by_decision[value] = uid
            while len(self._calls) > self._max_calls:
                self._forget(next(iter(self._calls)))
        elif var == NUMBER_VARIABLE.lower():
            call = self._calls.get(uid)
            if call is not None:
                call.e164 = call.e164 or value[:32]
            else:
                self._numbers_seen[uid] = value[:32]
                while len(self._numbers_seen) > self._max_calls:
                    self._numbers_seen.popitem(last=False)
        elif var == AMD_VARIABLE.lower():
            call = self._calls.get(uid)
            if call is not None and value.upper() == "MACHINE":
                call.machine = True
        elif var in self._campaign_vars:
            call = self._calls.get(uid)
            if call is not None:
                call.campaign_id = call.campaign_id or value
            else:
                self._vars_seen[uid] = value
                while len(self._vars_seen) > self._max_calls:
                    self._vars_seen.popitem(last=False)

    def _answer(self, call: _Call, now: datetime) -> None:
        if call.answered_at is None:
            call.answered_at = now
            call.deadline = now + timedelta(seconds=self._delay(call.campaign_id, now))

    def _bridge_enter(self, msg: AmiMessage, uid: str, now: datetime) -> list[Classified]:
        bridge = msg.get("BridgeUniqueid") or ""
        call = self._calls.get(uid)
        if call is not None:
            call.bridges.add(bridge)
            self._members.setdefault(bridge, set()).add(uid)
        if _int(msg.get("BridgeNumChannels")) < 2:
            return []
        out = []
        for party in sorted(self._members.get(bridge, ())):
            c = self._calls[party]
            if not c.done:
                self._answer(c, now)  # a bridge implies the party channel is up
                out.append(self._classify(c, CallOutcome.BRIDGED, c.answered_at or now))
        return out

    def _leave(self, bridge: str, uid: str) -> None:
        members = self._members.get(bridge)
        if members is not None:
            members.discard(uid)
            if not members:
                del self._members[bridge]

    def _hangup(self, msg: AmiMessage, uid: str, now: datetime) -> list[Classified]:
        call = self._calls.get(uid)
        if call is None:
            return []
        out = []
        if not call.done:
            if call.answered_at is not None:
                out.append(self._classify(call, CallOutcome.ABANDONED, call.answered_at))
            else:
                cause = _int(msg.get("Cause"))
                outcome = (CallOutcome.NOT_ANSWERED if cause in NOT_ANSWERED_CAUSES
                           else CallOutcome.SYSTEM_HANGUP)
                out.append(self._classify(call, outcome, now))
        self._forget(uid)
        return out

    # --- timers ----------------------------------------------------------------------

    def next_deadline(self) -> datetime | None:
        deadlines = [c.deadline for c in self._calls.values()
                     if c.deadline is not None and not c.done]
        return min(deadlines) if deadlines else None

    def due(self, now: datetime) -> list[Classified]:
        out = []
        for uid, call in list(self._calls.items()):
            if not call.done and call.deadline is not None and call.deadline <= now:
                out.append(self._classify(call, CallOutcome.ABANDONED,
                                          call.answered_at or now))
            if now - call.created > self._max_age:
                self._forget(uid)
        return out

    # --- helpers ---------------------------------------------------------------------

    def _classify(self, call: _Call, outcome: CallOutcome, at: datetime) -> Classified:
        call.done = True
        return Classified(call.call_id, call.campaign_id, outcome, at, call.e164, call.machine)

    def _forget(self, uid: str) -> None:
        call = self._calls.pop(uid, None)
        if call is not None:
            self._by_decision.pop(call.call_id, None)
            for bridge in call.bridges:
                self._leave(bridge, uid)


def _int(text: str | None) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        return -1
