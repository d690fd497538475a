"""The proxy's shared connection to the real Asterisk AMI.

Dialer ActionIDs are remapped to ``dgw-<token>-<n>`` upstream so that two dialers
never collide (and dialers that send none still get their responses in order).
An action is written at most once: when the link drops, every action in flight
fails with :class:`UpstreamUnavailable` and is **never replayed** on the next
connection (a replayed Originate would dial a second time without a fresh check).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from gateway.ami.codec import AmiMessage
from gateway.ami.link import AmiLink, AmiLinkError, Backoff, LinkFactory, connect_with_retry
from gateway.ami.observer import AmiObserver, NullObserver
from gateway.ami.settings import AmiSettings

log = structlog.get_logger(__name__)



class UpstreamUnavailable(Exception):
    """The upstream AMI is down, or the link dropped while the action was in flight."""


@dataclass(eq=False, slots=True)
class Route:
    """Where events carrying one of our upstream ActionIDs go (a dialer session)."""

    deliver: Callable[[AmiMessage], None]
    closed: bool = False


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[AmiMessage]
    original_id: str | None


@dataclass(slots=True)
class _RouteEntry:
    route: Route
    original_id: str | None = field(default=None)


def restore_action_id(message: AmiMessage, original_id: str | None) -> AmiMessage:
    return message.replace("ActionID", original_id)


async def _open_link(settings: AmiSettings) -> AmiLink:
    return await AmiLink.open(settings, events=True)


async def _open_quiet_link(settings: AmiSettings) -> AmiLink:
    return await AmiLink.open(settings, events=False)


class Upstream:
    def __init__(
        self,
        settings: AmiSettings,
        *,
        observer: AmiObserver | None = None,
        link_factory: LinkFactory = _open_link,
        isolated_link_factory: LinkFactory = _open_quiet_link,
    ) -> None:
        self._s = settings
        self._observer = observer or NullObserver()
        self._factory = link_factory
        self._isolated_factory = isolated_link_factory
        self._prefix = f"dgw-{secrets.token_hex(3)}-"
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._routes: OrderedDict[str, _RouteEntry] = OrderedDict()
        self._link: AmiLink | None = None
        self._event_listeners: list[Callable[[AmiMessage], None]] = []
        self._state_listeners: list[Callable[[str], None]] = []
        self.state = "connecting"
        self.connected = asyncio.Event()
        self.connections = 0  # successful logins so far (tests, metrics)
        self._state_changed = asyncio.Event()

    async def state_change(self) -> None:
        """Return at the next change of ``state`` (callers bound it with a deadline)."""
        await self._state_changed.wait()

    # --- wiring ------------------------------------------------------------------

    def add_event_listener(self, listener: Callable[[AmiMessage], None]) -> None:
        self._event_listeners.append(listener)

    def remove_event_listener(self, listener: Callable[[AmiMessage], None]) -> None:
        if listener in self._event_listeners:
            self._event_listeners.remove(listener)

    def add_state_listener(self, listener: Callable[[str], None]) -> None:
        self._state_listeners.append(listener)

    def _set_state(self, state: str) -> None:
        self.state = state
        self._state_changed.set()
        self._state_changed = asyncio.Event()
        self._observer.link_state("upstream", state)
        for listener in list(self._state_listeners):
            listener(state)

    # --- requests ----------------------------------------------------------------

    async def request(
        self, action: AmiMessage, *, route: Route, timeout_s: float
    ) -> AmiMessage:
        """Send once; return the response with the dialer's own ActionID restored."""
        link = self._link
        if link is None or self.state != "up":
            raise UpstreamUnavailable("upstream AMI unavailable")
        if len(self._pending) >= self._s.max_pending_actions:
            raise UpstreamUnavailable("too many actions in flight upstream")
        uid = f"{self._prefix}{next(self._ids)}"
        original = action.action_id
        fut: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()
        self._pending[uid] = _Pending(fut, original)
        self._routes[uid] = _RouteEntry(route, original)
        while len(self._routes) > self._s.max_routes:
            self._routes.popitem(last=False)
        try:
            await link.send(action.replace("ActionID", uid))
            async with asyncio.timeout(timeout_s):
                return await fut
        except AmiLinkError as exc:
            await self._drop(link, f"write: {exc}")
            raise UpstreamUnavailable("upstream AMI connection lost") from exc
        finally:
            self._pending.pop(uid, None)

    async def request_isolated(self, action: AmiMessage, *, timeout_s: float) -> AmiMessage:
        """Send once on a connection of its own (a synchronous ``Originate``).

        Asterisk handles one manager connection's actions one after the other, and a
        synchronous Originate holds its connection until the callee answers (up to its
        ``Timeout``): on the shared link it would stall every dialer and the keepalive.
        The dedicated link is closed afterwards; nothing is ever re-sent on it.
        """
        if self.state != "up":
            raise UpstreamUnavailable("upstream AMI unavailable")
        try:
            link = await self._isolated_factory(self._s)
        except AmiLinkError as exc:
            raise UpstreamUnavailable("upstream AMI unavailable") from exc
        uid = f"{self._prefix}{next(self._ids)}"
        try:
            await link.send(action.replace("ActionID", uid))
            async with asyncio.timeout(timeout_s):
                while True:
                    msg = await link.read()
                    if msg.kind == "response" and msg.action_id == uid:
                        return restore_action_id(msg, action.action_id)
        except AmiLinkError as exc:
            raise UpstreamUnavailable("upstream AMI connection lost") from exc
        finally:
            await link.close()

    # --- the task root -------------------------------------------------------------

    async def run(self) -> None:
        backoff = Backoff(self._s)
        while True:
            link = await connect_with_retry(
                self._factory, self._s, backoff, role="upstream", set_state=self._set_state
            )
            self._link = link
            self.connections += 1
            self.connected.set()
            self._set_state("up")
            log.info("ami.upstream_up", host=self._s.host, port=self._s.port)
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._keepalive(link))
                    await self._read_loop(link)
            except* AmiLinkError as eg:
                log.warning("ami.upstream_lost", error=str(eg.exceptions[0]))
            finally:
                await self._drop(link, "lost")
            await asyncio.sleep(backoff.delay())

    async def _drop(self, link: AmiLink, why: str) -> None:
        if self._link is not link:
            return
        self._link = None
        self.connected.clear()
        for uid, pending in list(self._pending.items()):
            if not pending.future.done():
                pending.future.set_exception(UpstreamUnavailable(f"upstream {why}"))
            self._pending.pop(uid, None)
        self._routes.clear()
        await link.close()
        self._set_state("down")

    async def _read_loop(self, link: AmiLink) -> None:
        while True:
            self._dispatch(await link.read())

    def _dispatch(self, msg: AmiMessage) -> None:
        aid = msg.action_id
        if msg.kind == "response":
            pending = self._pending.get(aid) if aid else None
            if pending is None:
                log.info("ami.upstream_unmatched_response")
            elif not pending.future.done():
                pending.future.set_result(restore_action_id(msg, pending.original_id))
            return
        entry = self._routes.get(aid) if aid else None
        if entry is not None:
            if not entry.route.closed:
                entry.route.deliver(restore_action_id(msg, entry.original_id))
            return
        for listener in list(self._event_listeners):
            listener(msg)

    async def _keepalive(self, link: AmiLink) -> None:
        route = Route(deliver=lambda _m: None)
        while True:
            await asyncio.sleep(self._s.ping_interval_s)
            try:
                await self.request(
                    AmiMessage.of(Action="Ping"), route=route, timeout_s=self._s.ping_timeout_s
                )
            except (TimeoutError, UpstreamUnavailable) as exc:
                raise AmiLinkError("keepalive Ping unanswered") from exc
