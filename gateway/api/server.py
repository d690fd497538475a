"""The scrub and check HTTP API on its own listener (aiohttp; docs/scrub.md, "HTTP API").

``GET /v1/check``, ``POST /v1/scrub`` (CSV or JSON lines in, the same out, streamed),
``GET /v1/openapi.json``. Bearer tokens from ``[api] tokens`` (compared in constant
time, never logged), a token bucket per token, a body size limit (Content-Length
required), a per-read deadline and a cap on scrubs in flight. No access log: query
strings carry phone numbers.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from importlib import resources
from typing import cast

import structlog
from aiohttp import web

from gateway.accept import Acceptors, create_server
from gateway.agi.server import _SampledLog  # the AGI server's sampler (one per interval)
from gateway.api.bodies import BodyError, CsvBody, JsonLinesBody
from gateway.api.settings import ApiSettings
from gateway.clock import Clock
from gateway.config import parse_hostport
from gateway.core.model import Attempt
from gateway.instant import parse_at
from gateway.scrub import Lead, Scrubber
from gateway.service import Service
from gateway.store.base import StoreUnavailable

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CSV_TYPES = frozenset({"text/csv", "application/csv"})
JSONL_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/x-jsonlines"})
OPENAPI_PATH = "/v1/openapi.json"
#: Refusals (bad token, too many connections) need no token: one log line per interval
#: and kind, with ``repeated``, so that nobody can flood the logs with them.
REFUSAL_LOG_INTERVAL_S = 10.0
#: Input bytes after which the rows read are decided and sent even if fewer than
#: ``batch_rows``: wide rows (60 kB each, 2000 to a batch) held ~300 MB per scrub.
MAX_BATCH_BYTES = 1 << 20


def openapi_document() -> bytes:
    return resources.files("gateway.api").joinpath("openapi.json").read_bytes()


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class _Refused(asyncio.Protocol):
    """A connection beyond ``max_connections``: a 503 and closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a TCP transport (asyncio's, or uvloop's, which subclasses none of asyncio's
        # transport classes: no isinstance check here)
        cast(asyncio.WriteTransport, transport).write(BUSY)
        transport.close()


_BUSY_BODY = b'{"error": "too many connections to the API"}'
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\nRetry-After: 5\r\n\r\n%s"
        % (len(_BUSY_BODY), _BUSY_BODY))


class TokenBuckets:
    """One bucket per token index (the token itself is never a key)."""

    def __init__(self, rate_per_s: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate_per_s, burst, clock
        self._state: dict[int, tuple[float, float]] = {}

    def take(self, key: int) -> float:
        """0 when allowed, else the seconds until a request would be."""
        now = self.clock()
        level, last = self._state.get(key, (float(self.burst), now))
        level = min(float(self.burst), level + (now - last) * self.rate)
        if level >= 1:
            self._state[key] = (level - 1, now)
            return 0.0
        self._state[key] = (level, now)
        return (1 - level) / self.rate


class ApiServer:
    def __init__(self, service: Service, settings: ApiSettings,
                 clock: Clock) -> None:
        self.service = service
        self.settings = settings
        self.clock = clock
        self._tokens = tuple(t.encode() for t in settings.tokens)
        self._buckets = TokenBuckets(settings.rate_per_s, settings.rate_burst)
        self._scrubs = 0
        self._refusals = _SampledLog(REFUSAL_LOG_INTERVAL_S)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._acceptors: Acceptors | None = None  # a loop other than asyncio's (start())
        self.address: tuple[str, int] | None = None

    # --- lifecycle --------------------------------------------------------------------

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._guard],
                              client_max_size=self.settings.max_body_bytes)
        app.router.add_get("/v1/check", self.check)
        app.router.add_post("/v1/scrub", self.scrub)
        app.router.add_get(OPENAPI_PATH, self.openapi)
        return app

    async def start(self) -> None:
        host, port = parse_hostport(self.settings.listen, key="api.listen")
        # keepalive_timeout: also the deadline of a connection's first request (aiohttp
        # arms it when the connection is made); its default kept one for an hour
        self._runner = web.AppRunner(self.application(), access_log=None,
                                     handle_signals=False,
                                     keepalive_timeout=self.settings.read_timeout_s)
        await self._runner.setup()
        server = self._runner.server
        if server is None:  # setup() makes it; mypy cannot know
            raise RuntimeError("aiohttp runner without a server after setup()")
        cap = self.settings.max_connections

        def protocol() -> asyncio.BaseProtocol:
            # connections accepted in one burst are counted once made: the cap may be
            # passed by at most the listen backlog
            if len(server.connections) < cap:
                return server()
            self._refusals.warning(log, "api.connection_refused", "cap", cap=cap)
            return _Refused()

        # on uvloop the API accepts itself: out of descriptors, libuv closed the queued
        # connections unanswered (gateway.accept)
        self._listener, self._acceptors = await create_server(
            protocol, host, port, event="api.accept_failed")
        sockets = self._listener.sockets
        self.address = sockets[0].getsockname()[:2] if sockets else (host, port)
        log.info("api.started", listen=f"{self.address[0]}:{self.address[1]}")

    async def close(self) -> None:
        if self._acceptors is not None:
            await self._acceptors.close()
            self._acceptors = None
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()  # closes the connections
            self._runner = None
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None

    # --- auth and rate ------------------------------------------------------------------

    def _token_index(self, request: web.Request) -> int | None:
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return None
        # the header as aiohttp decoded it (UTF-8, surrogateescape): its own bytes back
        given = presented.strip().encode("utf-8", "surrogateescape")
        found = None
        for i, token in enumerate(self._tokens):  # every token compared: no early exit
            if hmac.compare_digest(given, token) and found is None:
                found = i
        return found

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == OPENAPI_PATH:
            return await handler(request)
        index = self._token_index(request)
        if index is None:
            self._refusals.warning(log, "api.unauthorized", "token", path=request.path,
                                   peer=request.remote)
            return _error(401, "missing or invalid bearer token",
                          **{"WWW-Authenticate": 'Bearer realm="dialer-gateway"'})
        wait = self._buckets.take(index)
        if wait:
            return _error(429, "rate limit exceeded", **{"Retry-After": str(max(1, round(wait)))})
        return await handler(request)

    # --- endpoints ----------------------------------------------------------------------

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=openapi_document(), content_type="application/json")

    def _campaign_and_at(self, request: web.Request) -> tuple[str, datetime] | web.Response:
        campaign = request.query.get("campaign", "")
        if not campaign:
            return _error(400, "campaign: required")
        if campaign not in self.service.policy.campaigns:
            return _error(400, f"campaign: {campaign!r} is not configured")
        raw_at = request.query.get("at")
        if not raw_at:
            return campaign, self.clock()
        try:
            return campaign, parse_at(raw_at, "at")
        except ValueError as exc:
            return _error(400, str(exc))

    async def check(self, request: web.Request) -> web.Response:
        from gateway.cli.commands import decision_dict  # the document `check` prints

        parsed = self._campaign_and_at(request)
        if isinstance(parsed, web.Response):
            return parsed
        campaign, at = parsed
        number = request.query.get("number", "")
        if not number or len(number) > 64:
            return _error(400, "number: required, at most 64 characters")
        attempt = Attempt(number=number, campaign_id=campaign, source="api")
        try:
            async with asyncio.timeout(self.settings.read_timeout_s):
                decision = await self.service.evaluate(attempt, at)
        except (StoreUnavailable, TimeoutError) as exc:
            log.warning("api.check_failed", error=type(exc).__name__)
            return _error(503, "the store could not answer; try again")
        return web.json_response(decision_dict(decision, campaign=campaign, at=at))

    async def scrub(self, request: web.Request) -> web.StreamResponse:
        parsed = self._campaign_and_at(request)
        if isinstance(parsed, web.Response):
            return parsed
        campaign, at = parsed
        limits = self.settings
        if request.content_length is None:
            return _error(411, "Content-Length required")
        if request.content_length > limits.max_body_bytes:
            return _error(413, f"body larger than {limits.max_body_bytes} bytes")
        kind = request.content_type
        if kind not in CSV_TYPES | JSONL_TYPES:
            return _error(415, "send text/csv or application/x-ndjson")
        if self._scrubs >= limits.max_concurrent_scrubs:
            return _error(503, "too many scrubs in flight", **{"Retry-After": "5"})
        self._scrubs += 1
        try:
            return await self._scrub(request, campaign, at, kind in CSV_TYPES)
        finally:
            self._scrubs -= 1

    async def _readline(self, request: web.Request) -> bytes:
        async with asyncio.timeout(self.settings.read_timeout_s):
            return await request.content.readline()

    async def _scrub(self, request: web.Request, campaign: str, at: datetime,
                     is_csv: bool) -> web.StreamResponse:
        limits = self.settings
        number_column = request.query.get("number_column") or None
        body: CsvBody | JsonLinesBody
        try:
            if is_csv:
                first = await self._readline(request)
                if len(first) > limits.max_line_bytes:
                    return _error(400, f"header row longer than {limits.max_line_bytes} bytes")
                try:
                    header = first.decode("utf-8-sig")
                except UnicodeDecodeError:
                    return _error(400, "header row: not UTF-8")
                body = CsvBody(header, number_column)
            else:
                body = JsonLinesBody(number_column)
        except (BodyError, ValueError) as exc:
            return _error(400, str(exc))
        except TimeoutError:
            return _error(408, "request body too slow")
        response = web.StreamResponse(
            headers={"Content-Type": "text/csv; charset=utf-8" if is_csv
                     else "application/x-ndjson"})
        await response.prepare(request)
        scrubber = Scrubber(self.service, campaign, at)
        batch: list[Lead] = []
        stalled = False

        async def send(data: bytes) -> None:
            # a client that does not read its answer: without a deadline the write
            # waited for good, and held a scrub slot
            nonlocal stalled
            stalled = True
            async with asyncio.timeout(limits.read_timeout_s):
                await response.write(data)
            stalled = False

        async def emit() -> None:
            rows = await scrubber.scrub(batch)
            await send(body.render(rows).encode())
            batch.clear()

        try:
            await send(body.first_output().encode())
            batch_bytes = 0
            while True:
                raw = await self._readline(request)
                if not raw:
                    break
                batch_bytes += len(raw)
                lead: Lead | None
                if len(raw) > limits.max_line_bytes:
                    lead = body.skip(f"line longer than {limits.max_line_bytes} bytes")
                else:
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:  # replaced, its cells would come back altered
                        lead = body.skip("not UTF-8")
                    else:
                        lead = body.feed(text)
                if lead is not None:
                    batch.append(lead)
                if len(batch) >= limits.batch_rows or batch_bytes >= MAX_BATCH_BYTES:
                    await emit()
                    batch_bytes = 0
            tail = body.flush()
            if tail is not None:
                batch.append(tail)
            if batch:
                await emit()
        except (TimeoutError, ValueError, ConnectionError, StoreUnavailable) as exc:
            # the 200 and part of the rows are out: cut the connection so the client
            # sees an incomplete response, never a short one that looks whole
            log.warning("api.scrub_aborted", error=type(exc).__name__,
                        stalled_write=stalled)
            if request.transport is not None:
                if stalled:  # close() would wait to flush to a client that never reads
                    request.transport.abort()
                else:
                    request.transport.close()
            return response
        await response.write_eof()
        return response
