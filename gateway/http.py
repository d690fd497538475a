"""A small HTTP endpoint for operations: ``/metrics``, ``/healthz``, ``/readyz`` and
``POST /-/reload``.

Deliberately tiny (GET, plus one POST without a body; one request per connection,
bounded request size and read deadline) so it adds no dependency and cannot be used
to exhaust the process. ``/-/reload`` answers only clients on a loopback address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.accept import Acceptors, start_stream_server

log = structlog.get_logger(__name__)

MAX_REQUEST_BYTES = 8192  # request line + headers
READ_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 64

ReadyCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
Reload = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
RELOAD_PATH = "/-/reload"


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    content_type: str = "application/json"


_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Unprocessable Content",
    503: "Service Unavailable",
}


class OpsHttpServer:
    def __init__(
        self,
        *,
        render_metrics: Callable[[], bytes],
        metrics_content_type: str,
        ready: ReadyCheck,
        reload: Reload | None = None,
    ) -> None:
        self._render_metrics = render_metrics
        self._metrics_ct = metrics_content_type
        self._ready = ready
        self._reload = reload
        self._server: asyncio.Server | None = None
        self._acceptors: Acceptors | None = None  # a loop other than asyncio's (start())
        self._sem = asyncio.Semaphore(MAX_CONNECTIONS)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("OpsHttpServer.address before start()")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def start(self, host: str, port: int) -> None:
        # on uvloop the server accepts itself: out of descriptors, libuv closed the
        # queued connections unanswered (gateway.accept)
        self._server, self._acceptors = await start_stream_server(
            self._accept, host, port, event="http.accept_failed")

    async def close(self) -> None:
        if self._acceptors is not None:
            await self._acceptors.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - start_server always runs handlers in a task
            raise RuntimeError("HTTP handler outside a task")
        self._tasks.add(task)
        try:
            if self._sem.locked():
                writer.close()
                return
            async with self._sem:
                await self._serve(reader, writer)
        except Exception:  # task root: one bad request never takes the endpoint down
            log.exception("http.request_failed")
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
        ):
            return
        if len(head) > MAX_REQUEST_BYTES:
            response = HttpResponse(400, b'{"error":"request too large"}')
        else:
            response = await self._route(head, writer.get_extra_info("peername"))
        reason = _REASONS.get(response.status, "OK")
        if writer.is_closing():  # the client reset meanwhile: uvloop's write() would raise
            return
        writer.write(
            f"HTTP/1.1 {response.status} {reason}\r\nContent-Type: {response.content_type}\r\n"
            f"Content-Length: {len(response.body)}\r\nConnection: close\r\n\r\n".encode("ascii")
            + response.body
        )
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await writer.drain()
        except (TimeoutError, ConnectionError):
            return

    async def _route(self, head: bytes, peer: Any = None) -> HttpResponse:
        try:
            method, target, _version = head.split(b"\r\n", 1)[0].decode("ascii").split(" ", 2)
        except (UnicodeDecodeError, ValueError):
            return HttpResponse(400, b'{"error":"bad request line"}')
        path = target.split("?", 1)[0]
        if path == RELOAD_PATH and self._reload is not None:
            return await self._reload_route(method, peer)
        if method not in ("GET", "HEAD"):
            return HttpResponse(405, b'{"error":"GET only"}')
        if path == "/metrics":
            return HttpResponse(200, self._render_metrics(), self._metrics_ct)
        if path == "/healthz":
            return HttpResponse(200, b'{"status":"ok"}')
        if path == "/readyz":
            ok, details = await self._ready()
            body = json.dumps({"ready": ok, **details}, sort_keys=True).encode()
            return HttpResponse(200 if ok else 503, body)
        return HttpResponse(404, b'{"error":"not found"}')

    async def _reload_route(self, method: str, peer: Any) -> HttpResponse:
        if method != "POST":
            return HttpResponse(405, b'{"error":"POST only"}')
        if not _is_loopback(peer):
            return HttpResponse(403, b'{"error":"reload is accepted from loopback only"}')
        assert self._reload is not None  # noqa: S101 - checked by the caller
        ok, details = await self._reload()
        return HttpResponse(200 if ok else 422, json.dumps(details, sort_keys=True).encode())


def _is_loopback(peer: Any) -> bool:
    try:
        addr = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    except (TypeError, IndexError, ValueError):
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback
