"""The answer's last command: sent, then our end of stream, its reply not awaited.

Once Asterisk has confirmed one answer (a ``200 result=0/1`` read), a session ends as
soon as its last command is written: a FIN right behind the line (handlers.py,
AgiSession.finish). The peer here does what res_agi.c does: it reads the line, writes
its reply anyway, reads our end of stream, writes ``HANGUP``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket

from structlog.testing import capture_logs

from gateway.agi.handlers import ScreenHandler
from gateway.core.model import Reason, Verdict
from tests.agi.fakes import FakeScreener, RecordingObserver, result
from tests.agi.harness import TEST_SETTINGS, running_server
from tests.agi.peer import DEADLINE_S, AsteriskPeer, env_bytes, screen_session

ALLOW = ('EXEC "MSet" "GW_VERDICT=ALLOW,GW_REASON=ok,GW_E164=+33612345678,'
         'GW_RETRY_AFTER=,GW_DECISION_ID=d-0001"')


async def asterisk_after_the_line(address: tuple[str, int]) -> tuple[bytes, str]:
    """One call as res_agi.c sees it, never waiting on the gateway past its line: what
    came before the end of stream, and how the ``HANGUP`` written last fared."""
    loop = asyncio.get_running_loop()
    sock = socket.create_connection(address)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(DEADLINE_S):
            await loop.sock_sendall(sock, env_bytes(args=("0612345678", "spring-promo")))
            received = b""
            while chunk := await loop.sock_recv(sock, 4096):  # up to the end of stream
                received += chunk
            await loop.sock_sendall(sock, b"200 result=0\n")  # Asterisk replies all the same
            assert await loop.sock_recv(sock, 4096) == b""  # then reads the end: SUCCESS
            try:
                await loop.sock_sendall(sock, b"HANGUP\n")
                hangup = "written"
            except BrokenPipeError:  # our reset came back first: Asterisk logs at debug
                hangup = "EPIPE"
            # ConnectionResetError (a bare reset, no FIN) is logged as an ERROR: raises
    finally:
        sock.close()
    return received, hangup


async def test_a_confirmed_answer_ends_the_session_with_the_line() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        # the first answer awaits its reply: Asterisk confirms the command
        assert await screen_session(server.address) == [ALLOW]
        received, hangup = await asterisk_after_the_line(server.address)
        assert received == ALLOW.encode() + b"\n"
        assert hangup in ("written", "EPIPE")
        # ended "ok" with no reply: a wait would have been reply_timeout (0.5 s here)
        assert await observer.wait_ended(2) == ["ok", "ok"]


async def test_an_answer_not_confirmed_keeps_awaiting_its_reply() -> None:
    """``result=-2`` (MSet missing) confirms nothing: every answer still reads its
    reply and says so (agi.set_variables_failed), until one is taken."""
    observer = RecordingObserver()
    with capture_logs() as logs:
        async with running_server(observer=observer) as server:
            assert server.address is not None
            for _ in range(2):
                await screen_session(server.address, reply=b"200 result=-2\n")
            await screen_session(server.address)
            received, _ = await asterisk_after_the_line(server.address)
            assert await observer.wait_ended(4) == ["ok"] * 4
    failed = [e["result"] for e in logs if e["event"] == "agi.set_variables_failed"]
    assert failed == ["-2", "-2"]
    assert received == ALLOW.encode() + b"\n"


async def test_set_variable_mode_awaits_four_replies_and_not_the_fifth() -> None:
    observer = RecordingObserver()
    handlers = {"screen": ScreenHandler(FakeScreener(), variable_mode="set_variable")}
    with capture_logs() as logs:
        async with running_server(handlers=handlers, observer=observer) as server:
            assert server.address is not None
            assert len(await screen_session(server.address, reply=b"200 result=1\n")) == 5
            # a failed second reply is read: nothing more is sent
            peer = await AsteriskPeer.connect(server.address)
            await peer.send(env_bytes(args=("0612345678", "spring-promo")))
            for reply in (b"200 result=1\n", b"200 result=-1\n"):
                assert await peer.read_command()
                await peer.send(reply)
            assert await peer.read_until_closed() == b""
            await peer.close()
            # four replies awaited, the fifth line followed by the end of stream
            peer = await AsteriskPeer.connect(server.address)
            await peer.send(env_bytes(args=("0612345678", "spring-promo")))
            for _ in range(4):
                assert await peer.read_command()
                await peer.send(b"200 result=1\n")
            assert await peer.read_command() == 'SET VARIABLE "GW_DECISION_ID" "d-0001"'
            assert await peer.read_until_closed() == b""
            await peer.close()
            assert await observer.wait_ended(3) == ["ok"] * 3
    assert [e["result"] for e in logs if e["event"] == "agi.set_variables_failed"] == ["-1"]


async def test_an_overloaded_answer_ends_the_session_with_the_line_too() -> None:
    settings = dataclasses.replace(TEST_SETTINGS, max_sessions=1)
    screener = FakeScreener(result(Verdict.BLOCK, Reason.OPPOSITION))
    observer = RecordingObserver()
    async with running_server(screener, settings=settings, observer=observer) as server:
        assert server.address is not None
        await screen_session(server.address)  # confirmed
        screener.release.clear()
        screener.entered.clear()
        held = await AsteriskPeer.connect(server.address)
        await held.send(env_bytes(args=("0612345678", "spring-promo")))
        async with asyncio.timeout(DEADLINE_S):
            await screener.entered.wait()
        received, _ = await asterisk_after_the_line(server.address)
        assert received == (b'EXEC "MSet" "GW_VERDICT=BLOCK,GW_REASON=timeout,GW_E164=,'
                            b'GW_RETRY_AFTER=,GW_DECISION_ID="\n')
        assert await observer.wait_ended(2) == ["ok", "overloaded"]
        screener.release.set()
        assert (await held.read_command()).startswith(
            'EXEC "MSet" "GW_VERDICT=BLOCK,GW_REASON=opposition')
        assert await held.read_until_closed() == b""
        await held.close()
        assert await observer.wait_ended(3) == ["ok", "overloaded", "ok"]


async def test_a_confirmation_vouches_only_for_the_host_that_gave_it() -> None:
    """A second Asterisk host (another address) without a working ``MSet`` is reported on
    its every call, though the first host has confirmed answers; and a client that is
    not Asterisk cannot, by replying ``200 result=0``, silence what another host says."""
    observer = RecordingObserver()
    with capture_logs() as logs:
        async with running_server(observer=observer) as server:
            assert server.address is not None
            assert await screen_session(server.address) == [ALLOW]  # 127.0.0.1 confirms
            received, _ = await asterisk_after_the_line(server.address)  # not awaited
            assert received == ALLOW.encode() + b"\n"
            for _ in range(2):  # the other host's answers are still read, and reported
                commands = await screen_session(server.address, reply=b"200 result=-2\n",
                                                local_host="127.0.0.2")
                assert commands == [ALLOW]
            assert await observer.wait_ended(4) == ["ok"] * 4
    failed = [e["result"] for e in logs if e["event"] == "agi.set_variables_failed"]
    assert failed == ["-2", "-2"]
