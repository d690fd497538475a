"""One dialer connected to the AMI proxy: login, local actions, screening, relaying.

A session handles its actions one at a time, as Asterisk does, so that responses
reach a dialer in the order it sent its actions even without ActionIDs (VICIdial).
Outgoing messages go through a bounded queue drained by a writer task; a dialer that
does not read is disconnected when the queue is full, never allowed to stall others.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Protocol

import structlog

from gateway.ami.auth import FailedLogins, check_login, new_challenge
from gateway.ami.codec import AmiMessage, AmiParser, AmiProtocolError, encode, encode_banner
from gateway.ami.observer import AmiObserver
from gateway.ami.originate import (
    OriginateTarget,
    read_originate,
    strip_dial_prefix,
    with_country_code,
)
from gateway.ami.permissions import Refuse, ScreenTarget, check
from gateway.ami.settings import ProxyAccount, ProxySettings
from gateway.ami.upstream import Route, Upstream, UpstreamUnavailable
from gateway.core.model import Attempt, Reason, Verdict
from gateway.service_api import Screener, ScreenResult, screen_or_none

log = structlog.get_logger(__name__)

_NUMBER = re.compile(r"\+?[0-9]{2,20}")

_CLOSE = None  # sentinel in the send queue: flush, then close
# The answer to a valid Login while the link to Asterisk is down (then the connection closes).
UPSTREAM_DOWN_MESSAGE = (
    "Asterisk is unreachable: dialer-gateway has no AMI link to it; try again later"
)


class SessionClosed(Exception):
    """The dialer went away or must be disconnected (reason in ``args[0]``)."""


def _error(action_id: str | None, message: str) -> AmiMessage:
    m = AmiMessage.of(Response="Error")
    if action_id is not None:
        m = m.with_header("ActionID", action_id)
    return m.with_header("Message", message)


def _success(action_id: str | None, *extra: tuple[str, str]) -> AmiMessage:
    m = AmiMessage.of(("Response", "Success"))
    if action_id is not None:
        m = m.with_header("ActionID", action_id)
    return AmiMessage((*m.headers, *extra))


class ProxyContext(Protocol):
    """What a dialer session uses of its proxy (``gateway.ami.proxy.AmiProxy``), and no more."""

    @property
    def settings(self) -> ProxySettings: ...  # the proxy's, as reloaded
    @property
    def upstream(self) -> Upstream: ...
    @property
    def upstream_up(self) -> bool: ...
    @property
    def screener(self) -> Screener: ...
    @property
    def observer(self) -> AmiObserver: ...
    @property
    def failed_logins(self) -> FailedLogins: ...
    def note_allowed(self, decision_id: str, campaign_id: str) -> None: ...


class DialerSession:
    def __init__(
        self, proxy: ProxyContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._proxy = proxy
        self._s = proxy.settings
        self._reader = reader
        self._writer = writer
        peer = writer.get_extra_info("peername")
        self.peer_host: str = str(peer[0]) if peer else ""
        self.peer_port: int = int(peer[1]) if peer else 0
        self._parser = AmiParser(
            max_message_bytes=self._s.max_message_bytes, max_headers=self._s.max_headers
        )
        self._ready: list[AmiMessage] = []
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(self._s.send_queue_limit)
        self.account: ProxyAccount | None = None
        self._challenge: str | None = None
        self._events_on = True
        self._busy = False
        self._upstream_lost = False
        self.close_reason: str | None = None
        self.route = Route(deliver=self.deliver)

    # --- outgoing ------------------------------------------------------------------

    def send(self, message: AmiMessage) -> None:
        self._enqueue(encode(message))

    def _enqueue(self, data: bytes | None) -> None:
        if self.close_reason == "slow_consumer":
            return
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            self.abort("slow_consumer")

    def deliver(self, event: AmiMessage) -> None:
        """An event for this dialer (from the upstream dispatcher; never blocks)."""
        if self.account is None or not self._events_on or self.close_reason is not None:
            return
        name = event.event
        if name is not None and not self.account.wants_event(name):
            return
        self.send(event)

    def abort(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self._writer.transport.abort()

    def close_after_flush(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        try:
            self._queue.put_nowait(_CLOSE)
        except asyncio.QueueFull:
            self.abort(reason)

    def upstream_lost(self) -> None:
        """Asterisk went away: tell the dialer as Asterisk does, then disconnect it."""
        self._upstream_lost = True
        if not self._busy:
            self._say_shutdown()

    def _say_shutdown(self) -> None:
        if self.close_reason is not None:
            return
        self.send(
            AmiMessage.of(
                Event="Shutdown", Shutdown="Uncleanly", Restart="True",
                Reason="upstream AMI connection lost",
            )
        )
        self.close_after_flush("upstream_lost")

    async def _writer_loop(self) -> None:
        while True:
            data = await self._queue.get()
            if data is _CLOSE:
                break
            if self._writer.is_closing():  # the dialer reset it: uvloop's write() would raise
                self.abort("eof")
                break
            self._writer.write(data)
            try:
                async with asyncio.timeout(self._s.write_timeout_s):
                    await self._writer.drain()
            except TimeoutError:
                self.abort("slow_consumer")
                break
            except OSError:
                self.abort("eof")
                break
        self._writer.close()

    # --- incoming ------------------------------------------------------------------

    async def _read_message(self) -> AmiMessage:
        while not self._ready:
            try:
                data = await self._reader.read(self._s.read_chunk_bytes)
            except OSError as exc:
                raise SessionClosed("eof") from exc
            if not data:
                raise SessionClosed(self.close_reason or "eof")
            try:
                self._ready.extend(self._parser.feed(data))
            except AmiProtocolError as exc:
                log.info("ami.dialer_protocol_error", peer=self.peer_host, error=str(exc))
                self.send(_error(None, f"Protocol error: {exc}"))
                self.close_after_flush("protocol_error")
                raise SessionClosed("protocol_error") from exc
        return self._ready.pop(0)

    async def run(self) -> None:
        writer_task = asyncio.create_task(self._writer_loop())
        try:
            self._enqueue(encode_banner(self._s.banner_version))
            try:
                async with asyncio.timeout(self._s.login_timeout_s):
                    await self._login_phase()
            except TimeoutError:
                self.send(_error(None, "Login timeout"))
                self.close_after_flush("login_timeout")
                raise SessionClosed("login_timeout") from None
            while self.close_reason is None:
                async with asyncio.timeout(self._s.idle_timeout_s):
                    msg = await self._read_message()
                self._busy = True
                try:
                    await self._handle(msg)
                finally:
                    self._busy = False
                if self._upstream_lost:
                    self._say_shutdown()
        except SessionClosed as exc:
            if self.close_reason is None:
                self.close_reason = str(exc.args[0])
        except TimeoutError:
            self.close_after_flush("idle_timeout")
        finally:
            if self.close_reason is None:
                self.close_reason = "shutdown"
            self.route.closed = True
            self._enqueue(_CLOSE)
            try:
                async with asyncio.timeout(self._s.write_timeout_s):
                    await writer_task
            except TimeoutError:
                self.abort(self.close_reason)
                writer_task.cancel()

    async def _login_phase(self) -> None:
        unauthenticated = 0
        while self.account is None:
            msg = await self._read_message()
            action = (msg.action or "").lower()
            aid = msg.action_id
            if action == "challenge":
                if (msg.get("AuthType") or "").lower() != "md5":
                    self.send(_error(aid, "Must specify AuthType"))
                    continue
                self._challenge = new_challenge()
                self.send(_success(aid, ("Challenge", self._challenge)))
            elif action == "login":
                await self._login(msg)
            else:
                unauthenticated += 1
                self.send(_error(aid, "Authentication Required"))
                if unauthenticated >= self._s.max_unauthenticated_actions:
                    self.close_after_flush("auth_failed")
                    raise SessionClosed("auth_failed")

    async def _login(self, msg: AmiMessage) -> None:
        aid = msg.action_id
        limiter = self._proxy.failed_logins
        account = None
        if not limiter.blocked(self.peer_host):
            account = check_login(  # the proxy's settings: a reload changes the accounts
                msg, self._proxy.settings, peer_host=self.peer_host, challenge=self._challenge
            )
        if account is None:
            limiter.record_failure(self.peer_host)
            log.warning("ami.dialer_login_failed", peer=self.peer_host)
            await asyncio.sleep(self._s.failed_login_delay_s)
            self.send(_error(aid, "Authentication failed"))
            self.close_after_flush("auth_failed")
            raise SessionClosed("auth_failed")
        limiter.record_success(self.peer_host)
        if not self._proxy.upstream_up:
            # Asterisk itself would be unreachable: never claim a working manager link.
            log.warning("ami.dialer_login_refused", account=account.name, peer=self.peer_host,
                        reason="upstream_down", upstream=self._proxy.upstream.state)
            self.send(_error(aid, UPSTREAM_DOWN_MESSAGE))
            self.close_after_flush("upstream_down")
            raise SessionClosed("upstream_down")
        self.account = account
        self._events_on = (msg.get("Events") or "on").strip().lower() != "off"
        log.info("ami.dialer_logged_in", account=account.name, peer=self.peer_host)
        self.send(_success(aid, ("Message", "Authentication accepted")))
        self.send(AmiMessage.of(Event="FullyBooted", Privilege="system,all", Status="Fully Booted"))

    async def _handle(self, msg: AmiMessage) -> None:
        account = self.account
        assert account is not None  # noqa: S101 - invariant: only called after login
        aid = msg.action_id
        action = (msg.action or "").strip().lower()
        if not action:
            self.send(_error(aid, "Missing action in request"))
        elif action == "ping":
            self.send(_success(aid, ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")))
        elif action == "logoff":
            self.send(AmiMessage.of(("Response", "Goodbye"), *self._aid(aid),
                                    ("Message", "Thanks for all the fish.")))
            self.close_after_flush("logoff")
        elif action in ("login", "challenge"):
            self.send(_success(aid, ("Message", "Already authenticated")))
        elif action == "events":
            mask = (msg.get("EventMask") or "").strip().lower()
            self._events_on = mask not in ("off", "")
            self.send(_success(aid, ("Events", "On" if self._events_on else "Off")))
        elif not account.allows(action):
            self._refuse(aid, account, action, "action not allowed for this account",
                         "Permission denied")
        elif action == "originate":
            await self._originate(msg, account)
        else:
            verdict = check(msg, account, action)
            if isinstance(verdict, Refuse):
                self._refuse(aid, account, action, verdict.message)
            elif isinstance(verdict, ScreenTarget):
                await self._screen_target(msg, account, action, verdict)
            else:
                await self._relay(msg)

    def _refuse(self, aid: str | None, account: ProxyAccount, action: str, why: str,
                message: str | None = None) -> None:
        # ``why`` never holds a number (permissions/originate word their reasons so).
        log.info("ami.action_refused", account=account.name, action=action, reason=why)
        self._proxy.observer.action_refused(account.name, action)
        self.send(_error(aid, message or f"{action.capitalize()} refused by dialer-gateway: "
                                         f"{why}"))

    async def _screen_target(self, msg: AmiMessage, account: ProxyAccount, action: str,
                             target: ScreenTarget) -> None:
        """A transfer into a dial target is a new call: screen it like an Originate."""
        campaign = account.default_campaign or ""
        if not account.allows_campaign(campaign):
            self._refuse(msg.action_id, account, action,
                         "no usable default_campaign to screen a new call")
            return
        number = strip_dial_prefix(target.exten, account)
        found = _NUMBER.fullmatch(number) is not None
        screened = OriginateTarget(with_country_code(number, account) if found else target.exten,
                                   found, campaign, None, "exten")
        if await self._screen(msg, account, screened, action) is not None:
            await self._relay(msg)

    @staticmethod
    def _aid(aid: str | None) -> tuple[tuple[str, str], ...]:
        return (("ActionID", aid),) if aid is not None else ()

    async def _originate(self, msg: AmiMessage, account: ProxyAccount) -> None:
        target = read_originate(msg, account)
        if isinstance(target, Refuse):
            self._refuse(msg.action_id, account, "originate", target.message)
            return
        result = await self._screen(msg, account, target, "originate")
        if result is None:
            return
        self._proxy.note_allowed(result.decision_id, target.campaign_id)
        forward = msg.with_header("Variable", f"GW_DECISION_ID={result.decision_id}")
        if result.e164:  # the event consumer records abandoned calls against the number
            forward = forward.with_header("Variable", f"GW_E164={result.e164}")
        is_async = (msg.get("Async") or "").strip().lower() in ("true", "yes", "1", "on", "y")
        await self._relay(forward, isolated=not is_async)

    async def _screen(self, msg: AmiMessage, account: ProxyAccount, target: OriginateTarget,
                      action: str) -> ScreenResult | None:
        """Screen one callee; the result if allowed, else None (dialer answered)."""
        aid = msg.action_id
        label = action.capitalize()
        attempt = Attempt(
            number=target.number, campaign_id=target.campaign_id,
            caller_id=target.caller_id, source="ami",
            # the Originate carries GW_DECISION_ID to the carrier context's FastAGI screen
            issue_prescreen=action == "originate",
        )
        context = {
            "dialer_account": account.name,
            "peer": self.peer_host,
            "action": action,
            "callee_from": target.via,
            "exten": msg.get("Exten") or "",
            "context": msg.get("Context") or "",
            "application": msg.get("Application") or "",
        }
        result = await screen_or_none(self._proxy.screener, attempt, context=context,
                                      deadline_s=self._s.screen_timeout_s)
        if result is None:
            self._proxy.observer.originate_screened(account.name, "BLOCK", "timeout")
            self.send(_error(aid, f"{label} blocked by dialer-gateway: {Reason.TIMEOUT}"))
            return None
        self._proxy.observer.originate_screened(
            account.name, str(result.verdict), str(result.reason)
        )
        if result.verdict is not Verdict.ALLOW:
            log.info("ami.originate_blocked", account=account.name, action=action,
                     reason=str(result.reason), decision_id=result.decision_id)
            self.send(_error(aid, f"{label} blocked by dialer-gateway: {result.reason}"))
            return None
        return result

    async def _relay(self, msg: AmiMessage, *, isolated: bool = False) -> None:
        aid = msg.action_id
        upstream = self._proxy.upstream
        try:
            if isolated:
                response = await upstream.request_isolated(
                    msg, timeout_s=self._s.action_timeout_s)
            else:
                response = await upstream.request(
                    msg, route=self.route, timeout_s=self._s.action_timeout_s)
        except UpstreamUnavailable as exc:
            self.send(_error(aid, f"{exc}; action not sent again"))
            return
        except TimeoutError:
            self.send(_error(aid, "Upstream AMI did not answer in time; action not sent again"))
            return
        self.send(response)

