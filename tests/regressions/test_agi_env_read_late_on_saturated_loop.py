"""Incident: on an overloaded host real sessions got no answer at all (bench/field.py:
185 of 500 at 250 in flight; a 1 s environment deadline closed even more).

Asterisk sent its environment in time, but the saturated loop had not read it when the
deadline timer ran: the bytes and the timer came due in the same turn of the loop, the
timer won, and the session was closed unread, unanswered. Now a deadline takes a last
look at what the peer already sent before closing.

Deterministic: the test sends the environment right after the server has started its
deadline, then keeps the loop busy (real CPU work) past that deadline, so the bytes and
the timer are due in the same turn. A peer that sends nothing is still closed.
"""

from __future__ import annotations

import asyncio
import socket

from gateway.agi.server import AgiSession, AgiSettings
from tests.agi.fakes import RecordingObserver
from tests.agi.harness import running_server
from tests.agi.peer import answer_commands, connect_now, env_bytes
from tests.regressions.cpu_lag import burn

ENV_DEADLINE_S = 0.2
BURN_S = 0.6  # longer than the deadline: the loop reads the bytes only after it fired
DEADLINE_S = 10.0
# max_queue_wait_s over BURN_S: the call read late is screened (this test is about the
# last look; admission by age, which would answer it BLOCK timeout, is tested apart)
SETTINGS = AgiSettings(max_sessions=4, env_deadline_s=ENV_DEADLINE_S, reply_deadline_s=2.0,
                       session_deadline_s=5.0, shutdown_grace_s=1.0, max_queue_wait_s=5.0)


class SendsWhenTheDeadlineRuns(RecordingObserver):
    """When the server admits the connection, arrange for ``sock`` to send ``data`` (if
    any) right after the session task has started its environment deadline, then burn.

    ``_on_connect`` reports the pending connection, then creates the session task: a
    callback queued here runs before the task's first step, one queued from it runs
    after (the task has armed its deadline); that one sends and burns.
    """

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.sock: socket.socket | None = None  # set before the loop's next turn
        self._data = data
        self.armed = False

    def connections_pending(self, count: int) -> None:
        super().connections_pending(count)
        if count == 1 and not self.armed:
            self.armed = True
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._send_and_burn)

    def _send_and_burn(self) -> None:
        assert self.sock is not None
        if self._data:
            self.sock.sendall(self._data)  # loopback: in the server's socket at once
        burn(BURN_S)


async def test_environment_sent_in_time_is_read_and_answered() -> None:
    observer = SendsWhenTheDeadlineRuns(env_bytes("screen", ("0612345678", "c")))
    async with running_server(settings=SETTINGS, observer=observer) as server:
        observer.sock = connect_now(server.address)
        commands = await answer_commands(observer.sock, deadline_s=DEADLINE_S)
        ended = await observer.wait_ended(1, DEADLINE_S)
    assert observer.armed
    assert len(commands) == 1 and "GW_VERDICT=ALLOW" in commands[0], commands
    assert ended == ["ok"]


async def test_a_silent_peer_is_still_closed_at_the_deadline() -> None:
    observer = SendsWhenTheDeadlineRuns(b"")
    async with running_server(settings=SETTINGS, observer=observer) as server:
        observer.sock = connect_now(server.address)
        commands = await answer_commands(observer.sock, deadline_s=DEADLINE_S)
        ended = await observer.wait_ended(1, DEADLINE_S)
    assert observer.armed
    assert commands == []
    assert ended == ["env_timeout"]


REPLY_DEADLINE_S = 0.2


async def test_a_reply_sent_in_time_is_taken_when_its_deadline_runs_in_the_same_turn() -> None:
    """The same race for a command's reply (its deadline is a plain timer that wakes the
    wait on the peer, not an asyncio.timeout): the reply is in the socket when the loop,
    busy past the reply deadline, comes back; the deadline and the bytes are due in the
    same turn and the reply is taken, not the session closed as ``reply_timeout``."""
    client: list[socket.socket] = []
    replies: list[str] = []

    def reply_and_burn() -> None:  # queued before the command: runs once it waits
        client[0].sendall(b"200 result=1\n")  # loopback: in the server's socket at once
        burn(REPLY_DEADLINE_S * 3)

    async def noop(session: AgiSession) -> None:
        asyncio.get_running_loop().call_soon(reply_and_burn)
        replies.append((await session.execute("NOOP")).result)

    observer = RecordingObserver()
    settings = AgiSettings(reply_deadline_s=REPLY_DEADLINE_S, session_deadline_s=5.0)
    async with running_server(settings=settings, handlers={"screen": noop},
                              observer=observer) as server:
        client.append(connect_now(server.address))
        client[0].sendall(env_bytes("screen"))
        ended = await observer.wait_ended(1, DEADLINE_S)
        client[0].close()
    assert replies == ["1"]
    assert ended == ["ok"]
