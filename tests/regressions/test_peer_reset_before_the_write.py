"""A peer that resets its connection before the gateway writes to it, on both loops.

On asyncio's loop a write to a connection the peer has reset is dropped and the drain
raises ``ConnectionResetError``: an ``OSError``, handled as the peer gone. On uvloop
(``serve``'s default when installed) the write itself raises ``RuntimeError`` ("the
handler is closed"), which none of these handlers expected:

- the ops endpoint: a client that resets while its ``/readyz`` is probing the store
  made one ``http.request_failed`` ERROR line with a traceback each (a log flood for
  anyone who can reach the port);
- the AMI link to Asterisk: a send on a connection Asterisk reset (a restart) raised
  ``RuntimeError``, not ``AmiLinkError``: the dialer's action crashed its session
  (``ami.dialer_session_crashed``, the dialer disconnected) instead of being answered
  "upstream unavailable";
- the AMI proxy: a dialer that resets while its ``Originate`` is being screened: the
  answer's write crashed its session (``ami.dialer_session_crashed``, an ERROR);
- the supervisor: asking a worker that died with bytes unread in its control channel
  (a ``/readyz``, a reload) raised ``RuntimeError`` through the whole answer, instead of
  that worker's "no answer".
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest
import structlog

from gateway.ami.codec import AmiMessage
from gateway.ami.link import AmiLink, AmiLinkError
from gateway.ami.settings import AmiSettings
from gateway.config import load_config
from gateway.core.model import Reason
from gateway.http import OpsHttpServer
from gateway.supervisor import Supervisor
from tests.ami.helpers import harness

DEADLINE_S = 10.0
RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


async def _turns_until(condition: Callable[[], bool], what: str) -> None:
    """Let the loop turn (poll its sockets, run its tasks) until ``condition`` holds: no
    time is waited for, the condition is what the test needs."""
    for _ in range(100_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"not after 100,000 loop turns: {what}")


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    writer.transport.abort()


async def test_ops_endpoint_client_resetting_during_readyz_logs_no_error() -> None:
    asked, answer_now = asyncio.Event(), asyncio.Event()

    async def ready() -> tuple[bool, dict[str, Any]]:  # as the store probe: it awaits
        asked.set()
        await answer_now.wait()
        return True, {}

    server = OpsHttpServer(render_metrics=lambda: b"", metrics_content_type="text/plain",
                           ready=ready)
    await server.start("127.0.0.1", 0)
    try:
        with structlog.testing.capture_logs() as logs:
            _, writer = await asyncio.open_connection(*server.address)
            writer.write(b"GET /readyz HTTP/1.0\r\n\r\n")
            await writer.drain()
            async with asyncio.timeout(DEADLINE_S):
                await asked.wait()
            _reset(writer)  # on loopback the RST is in the server's socket once sent
            for _ in range(10):  # loop turns (polls), not time: the server reads the RST
                await asyncio.sleep(0)  # (no handle on its transport to look at)
            answer_now.set()
            async with asyncio.timeout(DEADLINE_S):
                while server._tasks:
                    await asyncio.wait(set(server._tasks))
        assert asked.is_set()
        assert [e for e in logs if e["event"] == "http.request_failed"] == []
    finally:
        await server.close()


async def test_ami_send_on_a_connection_asterisk_reset_is_a_link_error() -> None:
    reset_done = asyncio.Event()

    async def asterisk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _reset(writer)
        reset_done.set()

    server = await asyncio.start_server(asterisk, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        link = AmiLink(reader, writer, AmiSettings(port=port, secret="s"))
        async with asyncio.timeout(DEADLINE_S):
            await reset_done.wait()
            with pytest.raises(AmiLinkError):
                await link.read()  # the reset is seen (its transport closed)
        with pytest.raises(AmiLinkError):
            await link.send(AmiMessage.of(Action="Ping", ActionID="1"))
    finally:
        server.close()
        await server.wait_closed()


async def test_dialer_resetting_while_its_originate_is_screened_is_no_crash() -> None:
    async with harness() as h:
        h.screener.blocked["0612345678"] = Reason.OPPOSITION
        h.screener.gate = asyncio.Event()  # the screen waits (a store round trip)
        d = await h.dialer()
        (session,) = h.proxy.sessions
        with structlog.testing.capture_logs() as logs:
            await d.send(Action="Originate", Channel="SIP/trunk/0612345678", Exten="8365",
                         Context="default", ActionID="o1")
            async with asyncio.timeout(DEADLINE_S):
                await _turns_until(lambda: bool(h.screener.attempts), "the screen began")
                _reset(d.writer)
                await _turns_until(session._writer.is_closing, "the proxy read the reset")
                h.screener.gate.set()  # the answer goes to a connection reset meanwhile
                await _turns_until(lambda: not h.proxy.sessions, "the session ended")
        assert [e for e in logs if e["event"] == "ami.dialer_session_crashed"] == []
        assert session.close_reason == "eof"


async def test_supervisor_asking_a_worker_whose_channel_was_reset_gets_no_answer() -> None:
    sup = Supervisor(load_config(None, env={}, overrides={
        "service": {"workers": 2}, "store": {"url": "redis://127.0.0.1:1"}}))  # not reached
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    worker = sup.workers[0]
    worker.writer = writer
    worker.ready.set()  # ready until the supervisor's reader sees the channel end
    writer.write(b"unread")
    await writer.drain()
    theirs.close()  # a worker dying with bytes unread: the channel is reset
    with pytest.raises(ConnectionResetError):
        await reader.read(1)
    answer = await sup._request(worker, "ready", DEADLINE_S)  # /readyz, a reload
    assert answer["ok"] is False
    writer.close()
