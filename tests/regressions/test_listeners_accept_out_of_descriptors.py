"""Out of descriptors: accept(2) fails (EMFILE) while connections wait in the kernel's
queue of the ops endpoint, the AMI proxy's dialer port or the API. asyncio's loop pauses
accepting and serves them once descriptors are free; libuv (uvloop) accepted each one
and closed it at once, unanswered. Each listener now accepts itself on uvloop
(gateway.accept, as the FastAGI server does): accepting pauses and resumes, and every
queued connection is answered.

Deterministic, as test_agi_accept_out_of_descriptors.py: the requests are in the
kernel's queue and the descriptors taken before the loop first runs; what is asserted is
the count of failures logged and what each client got back, not a time.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.app import App
from gateway.config import load_config
from gateway.http import OpsHttpServer
from tests.agi.peer import connect_now
from tests.ami.helpers import harness
from tests.fixtures.event_loops import loop_factories
from tests.regressions.test_agi_accept_out_of_descriptors import descriptors_exhausted

CLIENTS = 20
DEADLINE_S = 10.0  # for all the answers (accepting resumes after 1 s)
TURNS = 200  # loop turns while out of descriptors: a spinning accept logs in each
TOKEN = "t0ken-for-the-tests-0123456789"

LoopFactory = Callable[[], asyncio.AbstractEventLoop] | None


async def answer(client: socket.socket, until: bytes) -> bytes:
    """What the server sent on ``client``, up to ``until`` or its close (a reset ends it
    too: what came before is kept)."""
    loop = asyncio.get_running_loop()
    got = b""
    try:
        while until not in got:
            data = await loop.sock_recv(client, 65536)
            if not data:
                break
            got += data
    except ConnectionResetError:
        pass
    return got


async def answers_after_exhaustion(address: tuple[str, int], request: bytes, until: bytes,
                                   event: str) -> tuple[int, list[bytes]]:
    """(``event`` lines logged while out of descriptors, each queued client's answer)."""
    clients = [connect_now(address) for _ in range(CLIENTS)]
    try:
        for client in clients:
            client.sendall(request)  # a few bytes: in the server's socket at once
        with structlog.testing.capture_logs() as logs:
            with descriptors_exhausted() as taken:
                assert taken
                for _ in range(TURNS):
                    await asyncio.sleep(0)  # loop turns (polls), not time
                failed = sum(line["event"] == event for line in logs)
            async with asyncio.timeout(DEADLINE_S):
                answers = [await answer(client, until) for client in clients]
    finally:
        for client in clients:
            client.close()
    return failed, answers


Main = Callable[[], Coroutine[Any, Any, tuple[int, list[bytes]]]]


def run(loop_factory: LoopFactory, main: Main, request: pytest.FixtureRequest,
        answered: Callable[[bytes], bool]) -> None:
    """Every queued client answered (before: closed unanswered on uvloop); accepting
    paused once, not retried in every turn of the loop."""
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        failed, answers = runner.run(main())
    assert len(answers) == CLIENTS
    assert all(answered(a) for a in answers), answers
    if request.node.callspec.id == "uvloop":  # the listener's own accept (asyncio's loop
        assert failed == 1, failed            # logs its own line, through logging)


@pytest.mark.parametrize("loop_factory", loop_factories())
def test_ops_endpoint_answers_scrapes_queued_out_of_descriptors(
        loop_factory: LoopFactory, request: pytest.FixtureRequest) -> None:
    async def main() -> tuple[int, list[bytes]]:
        async def ready() -> tuple[bool, dict[str, object]]:
            return True, {}

        server = OpsHttpServer(render_metrics=lambda: b"", metrics_content_type="text/plain",
                               ready=ready)
        await server.start("127.0.0.1", 0)
        try:
            return await answers_after_exhaustion(
                server.address, b"GET /healthz HTTP/1.0\r\n\r\n", b'{"status":"ok"}',
                "http.accept_failed")
        finally:
            await server.close()

    run(loop_factory, main, request, lambda a: a.startswith(b"HTTP/1.1 200 OK\r\n"))


@pytest.mark.parametrize("loop_factory", loop_factories())
def test_ami_proxy_greets_dialers_queued_out_of_descriptors(
        loop_factory: LoopFactory, request: pytest.FixtureRequest) -> None:
    async def main() -> tuple[int, list[bytes]]:
        async with harness() as h:
            return await answers_after_exhaustion(
                ("127.0.0.1", h.proxy.port), b"", b"\r\n", "ami.accept_failed")

    run(loop_factory, main, request, lambda a: a.startswith(b"Asterisk Call Manager/"))


@pytest.mark.parametrize("loop_factory", loop_factories())
def test_api_answers_requests_queued_out_of_descriptors(
        loop_factory: LoopFactory, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    config = load_config(None, env={}, overrides={
        "agi": {"listen": "127.0.0.1:0"},
        "http": {"listen": "127.0.0.1:0"},
        "audit": {"sink": "jsonl", "path": str(tmp_path / "audit.jsonl")},
        "api": {"enabled": True, "listen": "127.0.0.1:0", "tokens": [TOKEN]},
    })

    async def main() -> tuple[int, list[bytes]]:
        gateway = App(config)
        await gateway.start()
        try:
            assert gateway.api is not None and gateway.api.address is not None
            return await answers_after_exhaustion(
                gateway.api.address,
                b"GET /v1/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                b"\r\n\r\n", "api.accept_failed")
        finally:
            await gateway.stop()

    run(loop_factory, main, request, lambda a: a.startswith(b"HTTP/1.1 200 OK\r\n"))
