"""Independent AMI clients for the e2e tests (panoramisk, a third-party client).

:class:`AmiClient` logs in, collects every event in a bounded list and lets a test
wait, with a deadline, for events matching a predicate. :func:`originate` and
:func:`screen_call` drive calls with ``Originate`` of ``Local/<number>@<context>``;
every call carries a unique ``DG_TAG`` channel variable that Asterisk copies into
each channel event (``channelvars`` in manager.conf), so a test can tell its
calls apart.

The proof of what happened is Asterisk's own events: ``UserEvent DgDialStep``
(the dialplan reached its dial step), ``UserEvent DgSinkReached`` (the callee
Local channel was dialled, with the number it was dialled with), ``Newexten``
with ``Application: Dial`` and ``Hangup`` with ``Cause``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from panoramisk import Manager
from panoramisk.message import Message

EVENT_LIMIT = 200_000  # events kept per client (a test that needs more is broken)
LOGIN_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 30.0  # one screened call, originate to last hangup
ORIGINATE_TIMEOUT_MS = 20_000  # Originate "Timeout": ringing time of the Local channel

_tags = itertools.count(1)


def new_tag(prefix: str = "t") -> str:
    return f"{prefix}{next(_tags)}"


def chan_vars(event: Message) -> dict[str, str]:
    """``ChanVariable: NAME=value`` headers (one or many) as a dict."""
    raw = event.get("ChanVariable")
    values = raw if isinstance(raw, list) else [raw] if raw else []
    out: dict[str, str] = {}
    for item in values:
        key, _, value = str(item).partition("=")
        out[key] = value
    return out


def event_tag(event: Message) -> str:
    return chan_vars(event).get("DG_TAG") or str(event.get("Tag", ""))


class AmiClient:
    """One logged-in panoramisk Manager that records every event it receives."""

    def __init__(self, host: str, port: int, username: str, secret: str) -> None:
        self.events: list[Message] = []
        self.by_tag: dict[str, list[Message]] = {}
        # channels of Local ";2" halves (the leg that runs the dialplan) hung up, by tag
        self.leg_hangups: dict[str, list[str]] = {}
        self._linked_tags: dict[str, str] = {}  # Linkedid -> tag
        self._untagged: dict[str, list[Message]] = {}  # Linkedid -> events before the tag
        self._changed = asyncio.Condition()
        self._logged_in = asyncio.Event()
        self.manager = Manager(
            host=host, port=port, username=username, secret=secret,
            loop=asyncio.get_running_loop(), ping_delay=3600, reconnect_timeout=1,
            on_login=lambda _m: self._logged_in.set(),
            log=logging.getLogger("tests.e2e.ami"),
        )
        self.manager.register_event("*", self._on_event)

    async def __aenter__(self) -> AmiClient:
        self.manager.connect()
        async with asyncio.timeout(LOGIN_TIMEOUT_S):
            await self._logged_in.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.manager.close()

    async def _on_event(self, _manager: Manager, event: Message) -> None:
        if len(self.events) >= EVENT_LIMIT:
            raise RuntimeError(f"more than {EVENT_LIMIT} AMI events in one test")
        self.events.append(event)
        self._file_by_tag(event)
        async with self._changed:
            self._changed.notify_all()

    def _file_by_tag(self, event: Message) -> None:
        """File the event under its call's tag.

        Events sent before Originate applied its variables (``Newchannel``) carry an
        empty ``DG_TAG``: they are kept by ``Linkedid`` and filed once a tagged
        event of the same linked call arrives.
        """
        linked = str(event.get("Linkedid", ""))
        tag = event_tag(event)
        if tag and linked:
            self._linked_tags[linked] = tag
            backlog = self._untagged.pop(linked, [])
            self.by_tag.setdefault(tag, []).extend(backlog)
        elif linked:
            tag = self._linked_tags.get(linked, "")
            if not tag:
                self._untagged.setdefault(linked, []).append(event)
                return
        if not tag:
            return
        self.by_tag.setdefault(tag, []).append(event)
        channel = str(event.get("Channel", ""))
        if event.get("Event") == "Hangup" and channel.endswith(";2"):
            self.leg_hangups.setdefault(tag, []).append(channel)

    async def wait_for(
        self, predicate: Callable[[Message], bool], *, timeout_s: float = CALL_TIMEOUT_S,
        start: int = 0,
    ) -> Message:
        """First event (from index ``start``) matching ``predicate``, within a deadline."""
        seen = start
        async with asyncio.timeout(timeout_s), self._changed:
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                await self._changed.wait()

    async def wait_until(self, condition: Callable[[], bool], *,
                         timeout_s: float = CALL_TIMEOUT_S) -> None:
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(condition)

    async def action(self, action: dict[str, Any], *, as_list: bool | None = None,
                     timeout_s: float = CALL_TIMEOUT_S) -> Any:
        """Send an action; the response (or list of responses, see panoramisk)."""
        async with asyncio.timeout(timeout_s):
            return await self.manager.send_action(action, as_list=as_list)


@dataclass
class CallResult:
    """What Asterisk reported about one screened call (by its DG_TAG)."""

    tag: str
    number: str
    events: list[Message] = field(default_factory=list)

    @property
    def dial_step_numbers(self) -> list[str]:
        return [str(e.get("Number")) for e in self.events
                if e.get("Event") == "UserEvent" and e.get("UserEvent") == "DgDialStep"]

    @property
    def sink_numbers(self) -> list[str]:
        return [str(e.get("Number")) for e in self.events
                if e.get("Event") == "UserEvent" and e.get("UserEvent") == "DgSinkReached"]

    @property
    def dial_apps(self) -> list[Message]:
        return [e for e in self.events
                if e.get("Event") == "Newexten" and e.get("Application") == "Dial"]

    @property
    def reached_dial(self) -> bool:
        return bool(self.dial_step_numbers or self.sink_numbers or self.dial_apps)

    @property
    def screen_hangup_cause(self) -> str | None:
        """Cause of the Local ;2 half that ran the screening dialplan."""
        for e in self.events:
            if e.get("Event") == "Hangup" and _is_screen_leg(e, self.number):
                return str(e.get("Cause"))
        return None


def _is_screen_leg(event: Message, number: str) -> bool:
    channel = str(event.get("Channel", ""))
    return channel.startswith(f"Local/{number}@") and channel.endswith(";2")


async def originate(
    ami: AmiClient, number: str, context: str, *, tag: str, campaign: str,
    variables: Iterable[str] = (), dest_context: str = "e2e-park",
) -> Any:
    """Async Originate of ``Local/<number>@<context>``.

    ``dest_context`` (exten ``s``) is where the answered call goes: ``e2e-park``
    hangs up at once, ``e2e-hold`` holds it unbridged, ``e2e-bridge-agent`` bridges
    it to an agent. Returns Asterisk's immediate response ("successfully queued");
    the later ``OriginateResponse`` arrives as an ordinary event.
    """
    response = await ami.action({
        "Action": "Originate",
        "Channel": f"Local/{number}@{context}",
        "Context": dest_context, "Exten": "s", "Priority": "1",
        "Async": "true",
        "Timeout": str(ORIGINATE_TIMEOUT_MS),
        "Variable": [f"__DG_TAG={tag}", f"CAMPAIGN={campaign}", *variables],
    }, as_list=False)
    if response.get("Response") != "Success":
        raise RuntimeError(f"Originate refused: {response}")
    return response


async def screen_call(
    admin: AmiClient, events: AmiClient, number: str, context: str, *, campaign: str,
    timeout_s: float = CALL_TIMEOUT_S, variables: Iterable[str] = (),
) -> CallResult:
    """Originate one screened call and wait until its screening leg hung up."""
    tag = new_tag()
    await originate(admin, number, context, tag=tag, campaign=campaign, variables=variables)
    call = CallResult(tag=tag, number=number)
    await wait_calls_done(events, [call], timeout_s=timeout_s)
    return call


async def wait_calls_done(
    events: AmiClient, calls: Sequence[CallResult], *, timeout_s: float,
) -> None:
    """Wait until every call's screening leg hung up; fill in their events."""
    pending = list(calls)

    def leg_done(call: CallResult) -> bool:
        return any(ch.startswith(f"Local/{call.number}@")
                   for ch in events.leg_hangups.get(call.tag, ()))

    def done() -> bool:
        nonlocal pending
        pending = [c for c in pending if not leg_done(c)]
        return not pending

    await events.wait_until(done, timeout_s=timeout_s)
    for call in calls:
        call.events = list(events.by_tag[call.tag])
