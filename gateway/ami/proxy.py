"""The AMI proxy server (default 127.0.0.1:5039): dialers log in here, not into Asterisk."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

import structlog

from gateway.accept import Acceptors, start_stream_server
from gateway.ami.auth import FailedLogins
from gateway.ami.codec import AmiMessage, encode, encode_banner
from gateway.ami.observer import AmiObserver, NullObserver
from gateway.ami.session import DialerSession
from gateway.ami.settings import ProxyAccount, ProxySettings
from gateway.ami.upstream import Upstream
from gateway.service_api import Screener

log = structlog.get_logger(__name__)

# Decision ids of allowed Originates remembered for the event consumer (same process).
MAX_RECENT_DECISIONS = 10000
# How long close() lets sessions flush before it cancels them.
CLOSE_GRACE_S = 1.0


def log_account_permissions(account: ProxyAccount) -> None:
    """One line per account saying what it may do and what is refused (default deny)."""
    refused = []
    if not account.dial_targets:
        refused.append("Local channels and Context/Exten into dial targets (no dial_targets)")
    if not account.agent_targets:
        refused.append("Originate/Redirect to agent destinations (no agent_targets)")
    usable = account.usable_campaigns
    named = set(account.campaigns or ((account.default_campaign,)
                                      if account.default_campaign else ()))
    if usable is not None and named - usable:
        refused.append(f"campaigns {sorted(named - usable)} (shadow/exempt, not granted)")
    if usable is not None and not usable:
        refused.append("every Originate (no usable campaign)")
    (log.warning if refused else log.info)(
        "ami.proxy_account",
        account=account.name,
        actions=sorted(account.allowed_actions),
        applications=sorted(account.allowed_applications),
        dial_targets=list(account.dial_targets),
        agent_targets=list(account.agent_targets),
        campaigns=sorted(usable) if usable is not None else list(account.campaigns),
        refused=refused,
    )


class AmiProxy:
    def __init__(
        self,
        settings: ProxySettings,
        *,
        upstream: Upstream,
        screener: Screener,
        observer: AmiObserver | None = None,
        on_allowed: Callable[[str, str], None] | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.screener = screener
        self.observer: AmiObserver = observer or NullObserver()
        self._on_allowed = on_allowed
        self.failed_logins = FailedLogins(
            limit=settings.failed_login_limit, window_s=settings.failed_login_window_s,
            clock=monotonic or time.monotonic,
        )
        self.sessions: set[DialerSession] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._acceptors: Acceptors | None = None  # a loop other than asyncio's (start())
        self.recent_decisions: OrderedDict[str, str] = OrderedDict()
        upstream.add_event_listener(self._broadcast)
        upstream.add_state_listener(self._upstream_state)
        self._was_up = False

    @property
    def port(self) -> int:
        assert self._server is not None  # noqa: S101 - start() must have been called
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        # on uvloop the proxy accepts itself: out of descriptors, libuv closed the queued
        # connections unanswered (gateway.accept)
        self._server, self._acceptors = await start_stream_server(
            self._accept, self.settings.host, self.settings.port, event="ami.accept_failed",
            limit=self.settings.read_chunk_bytes)
        log.info("ami.proxy_listening", host=self.settings.host, port=self.port)
        for account in self.settings.accounts:
            log_account_permissions(account)

    async def close(self) -> None:
        """Stop accepting; flush and close every session, cancel what is still busy."""
        if self._acceptors is not None:
            await self._acceptors.close()
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.close_after_flush("shutdown")
        if self._tasks:
            _, busy = await asyncio.wait(set(self._tasks), timeout=CLOSE_GRACE_S)
            for session in list(self.sessions):
                session.abort("shutdown")
            for task in busy:
                task.cancel()
            if busy:
                await asyncio.wait(busy)
        if self._server is not None:
            await self._server.wait_closed()

    @property
    def upstream_up(self) -> bool:
        """Whether dialers may log in: the link to Asterisk is up (docs/ami.md)."""
        return self.upstream.state == "up"

    def reconfigure(self, settings: ProxySettings) -> list[str]:
        """Install reloaded settings (accounts, limits); ``host``/``port`` stay as bound.

        New connections and logins use the new settings at once. A logged-in dialer
        whose account was removed, whose secret changed, or whose address the account's
        ``permit`` no longer covers is disconnected (its credentials were revoked); any
        other session keeps running with its account's new permissions. Returns the
        names of the accounts whose sessions were closed.
        """
        self.settings = settings
        for account in settings.accounts:
            log_account_permissions(account)  # what each account may do now, and not
        self.failed_logins.configure(
            limit=settings.failed_login_limit, window_s=settings.failed_login_window_s
        )
        closed: list[str] = []
        for session in list(self.sessions):
            old = session.account
            if old is None:
                continue  # not logged in yet: its Login will check the new accounts
            new = settings.account(old.name)
            if new is None or new.secret != old.secret or not new.permits(session.peer_host):
                log.warning("ami.dialer_account_revoked", account=old.name,
                            peer=session.peer_host,
                            why="removed" if new is None else "secret or permit changed")
                session.close_after_flush("account_revoked")
                closed.append(old.name)
            else:
                session.account = new
        return closed

    def note_allowed(self, decision_id: str, campaign_id: str) -> None:
        self.recent_decisions[decision_id] = campaign_id
        while len(self.recent_decisions) > MAX_RECENT_DECISIONS:
            self.recent_decisions.popitem(last=False)
        if self._on_allowed is not None:
            self._on_allowed(decision_id, campaign_id)

    def _broadcast(self, event: AmiMessage) -> None:
        for session in list(self.sessions):
            session.deliver(event)

    def _upstream_state(self, state: str) -> None:
        if state == "up":
            self._was_up = True
        elif state == "down" and self._was_up:
            self._was_up = False
            log.warning("ami.proxy_upstream_lost", sessions=len(self.sessions))
            for session in list(self.sessions):
                session.upstream_lost()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.sessions) >= self.settings.max_sessions:
            self.observer.dialer_disconnected("too_many_sessions")
            if not writer.is_closing():  # reset already: uvloop's write() would raise
                writer.write(encode_banner(self.settings.banner_version))
                writer.write(encode(AmiMessage.of(Response="Error", Message="Too many sessions")))
            writer.close()
            return
        session = DialerSession(self, reader, writer)
        self.sessions.add(session)
        self.observer.dialer_sessions(len(self.sessions))
        # The session runs in a task of our own, which close() may cancel (cancelling
        # the asyncio.start_server callback task itself makes 3.11 log spurious errors).
        task = asyncio.create_task(self._run(session))
        self._tasks.add(task)
        try:
            await asyncio.wait([task])
        finally:
            self._tasks.discard(task)

    async def _run(self, session: DialerSession) -> None:
        try:
            await session.run()
        except Exception:  # task root: log, never let one dialer take the server down
            log.exception("ami.dialer_session_crashed", peer=session.peer_host)
            session.abort("error")
        finally:
            self.sessions.discard(session)
            self.observer.dialer_sessions(len(self.sessions))
            reason = session.close_reason or "shutdown"
            self.observer.dialer_disconnected(reason)
            log.info("ami.dialer_disconnected", peer=session.peer_host, reason=reason,
                     account=session.account.name if session.account else None)
