"""The FastAGI server against a scripted Asterisk-like peer, on real loopback sockets."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gateway.agi.server import AgiServer, AgiSession, AgiSettings
from gateway.core.model import Reason, Verdict
from tests.agi.fakes import FakeScreener, RecordingObserver, result
from tests.agi.harness import TEST_SETTINGS, running_server
from tests.agi.peer import AsteriskPeer, answer_commands, env_bytes, screen_session
from tests.regressions.cpu_lag import lagging_loop

MSET_ALLOW = (
    'EXEC "MSet" "GW_VERDICT=ALLOW,GW_REASON=ok,GW_E164=+33612345678,'
    'GW_RETRY_AFTER=,GW_DECISION_ID=d-0001"'
)


async def test_normal_screen_session_sets_all_variables_in_one_mset() -> None:
    screener = FakeScreener()
    observer = RecordingObserver()
    async with running_server(screener, observer=observer) as server:
        assert server.address is not None
        commands = await screen_session(server.address)
        assert await observer.wait_ended(1) == ["ok"]
    assert commands == [MSET_ALLOW]
    attempt, context = screener.calls[0]
    assert (attempt.number, attempt.campaign_id, attempt.caller_id) == (
        "0612345678",
        "spring-promo",
        None,
    )
    assert attempt.source == "agi"
    assert context["channel"] == "PJSIP/trunk-00000001"
    assert context["uniqueid"] == "1718000000.1"


async def test_blocked_call_carries_retry_after() -> None:
    screener = FakeScreener(result(Verdict.BLOCK, Reason.OUTSIDE_HOURS, retry_after_s=3600))
    async with running_server(screener) as server:
        assert server.address is not None
        commands = await screen_session(server.address)
    assert commands == [
        'EXEC "MSet" "GW_VERDICT=BLOCK,GW_REASON=outside_hours,GW_E164=+33612345678,'
        'GW_RETRY_AFTER=3600,GW_DECISION_ID=d-0001"'
    ]


async def test_trying_then_final_reply_completes_the_session() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        await peer.send(env_bytes(args=("0612345678", "spring-promo")))
        assert (await peer.read_command()).startswith('EXEC "MSet"')
        await peer.send(b"100 result=0 Trying...\n")
        await peer.send(b"200 result=0\n")
        assert await peer.read_until_closed() == b""
        await peer.close()
        assert await observer.wait_ended(1) == ["ok"]


async def test_eof_before_blank_line_leaves_the_server_responsive() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        await peer.send(b"agi_network: yes\nagi_network_script: screen\n")
        peer.writer.write_eof()
        assert await peer.read_until_closed() == b""
        await peer.close()
        # a second, normal session is answered within 1 s
        async with asyncio.timeout(1.0):
            commands = await screen_session(server.address)
        assert commands == [MSET_ALLOW]
        assert sorted(await observer.wait_ended(2)) == ["ok", "protocol_error"]
    assert observer.errors == ["eof_before_env_end"]


async def test_over_long_line_closes_the_session() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        await peer.send(b"agi_network_script: " + b"x" * (TEST_SETTINGS.max_line_bytes + 1))
        assert await peer.read_until_closed() == b""
        await peer.close()
        await observer.wait_ended(1)
    assert observer.errors == ["line_too_long"]


async def test_too_many_headers_closes_the_session() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        flood = b"".join(b"agi_x%d: y\n" % i for i in range(TEST_SETTINGS.max_headers + 1))
        await peer.send(flood)
        assert await peer.read_until_closed() == b""
        await peer.close()
        await observer.wait_ended(1)
    assert observer.errors == ["too_many_headers"]


async def test_silent_peer_is_closed_at_the_env_deadline() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        assert await peer.read_until_closed() == b""
        await peer.close()
        assert await observer.wait_ended(1) == ["env_timeout"]


async def test_peer_silent_after_a_command_is_closed_at_the_reply_deadline() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        await peer.send(env_bytes(args=("0612345678", "spring-promo")))
        assert (await peer.read_command()).startswith('EXEC "MSet"')
        assert await peer.read_until_closed() == b""
        await peer.close()
        assert await observer.wait_ended(1) == ["reply_timeout"]


async def test_hangup_mid_command_stops_the_session() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        await peer.send(env_bytes(args=("0612345678", "spring-promo")))
        await peer.read_command()
        await peer.send(b"HANGUP\n")
        assert await peer.read_until_closed() == b""  # no further command
        await peer.close()
        assert await observer.wait_ended(1) == ["hangup"]
    assert len(peer.commands) == 1


async def test_garbage_bytes_close_the_session_and_are_counted() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        await peer.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\n\n")
        assert await peer.read_until_closed() == b""
        await peer.close()
        assert await observer.wait_ended(1) == ["protocol_error"]
    assert observer.errors == ["bad_header"]


async def _one_reply_session(reply: bytes) -> tuple[RecordingObserver, list[str]]:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        await peer.send(env_bytes(args=("0612345678", "spring-promo")))
        await peer.read_command()
        await peer.send(reply)
        assert await peer.read_until_closed() == b""
        await peer.close()
        await observer.wait_ended(1)
    return observer, peer.commands


async def test_510_unknown_command_closes_the_session() -> None:
    observer, commands = await _one_reply_session(b"510 Invalid or unknown command\n")
    assert observer.ended == ["command_rejected"]
    assert len(commands) == 1


async def test_511_dead_channel_closes_the_session() -> None:
    observer, commands = await _one_reply_session(
        b"511 Command Not Permitted on a dead channel or intercept routine\n"
    )
    assert observer.ended == ["dead_channel"]
    assert len(commands) == 1


async def test_520_usage_block_closes_the_session() -> None:
    observer, commands = await _one_reply_session(
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b" Usage: EXEC <application> <options>\n"
        b"520 End of proper usage.\n"
    )
    assert observer.ended == ["command_rejected"]
    assert len(commands) == 1


async def test_unknown_route_is_closed_without_any_command() -> None:
    observer = RecordingObserver()
    screener = FakeScreener()
    async with running_server(screener, observer=observer) as server:
        assert server.address is not None
        commands = await screen_session(server.address, script="nope?number=0612345678")
        assert await observer.wait_ended(1) == ["unknown_route"]
    assert commands == []
    assert screener.calls == []


async def test_sessions_beyond_the_limit_are_answered_block_timeout_at_once() -> None:
    """Admission control: past max_sessions a call gets an honest answer, not a queue."""
    settings = AgiSettings(
        max_sessions=2, env_deadline_s=0.5, reply_deadline_s=2.0, session_deadline_s=4.0
    )
    screener = FakeScreener(hold=True)
    observer = RecordingObserver()
    async with running_server(screener, settings=settings, observer=observer) as server:
        assert server.address is not None
        held = [await AsteriskPeer.connect(server.address) for _ in range(2)]
        for peer in held:
            await peer.send(env_bytes(args=("0612345678", "spring-promo")))
        async with asyncio.timeout(2.0):
            while len(screener.calls) < 2:
                screener.entered.clear()
                await screener.entered.wait()
        extra = await AsteriskPeer.connect(server.address)
        await extra.send(env_bytes(args=("0612345678", "spring-promo")))
        assert await extra.read_command() == (
            'EXEC "MSet" "GW_VERDICT=BLOCK,GW_REASON=timeout,GW_E164=,GW_RETRY_AFTER=,'
            'GW_DECISION_ID="'
        )
        await extra.send(b"200 result=0\n")
        assert await extra.read_until_closed() == b""
        await extra.close()
        assert await observer.wait_ended(1) == ["overloaded"]
        assert len(screener.calls) == 2  # the extra call was never screened
        assert server.sessions_in_flight == 2
        screener.release.set()
        for peer in held:
            assert (await peer.read_command()).startswith('EXEC "MSet"')
            await peer.send(b"200 result=0\n")
            await peer.read_until_closed()
            await peer.close()
        assert await observer.wait_ended(3) == ["overloaded", "ok", "ok"]


async def test_graceful_close_lets_in_flight_finish_and_cancels_stuck() -> None:
    observer = RecordingObserver()
    finish = asyncio.Event()
    entered: list[str] = []
    all_entered = asyncio.Event()

    async def slow(session: AgiSession) -> None:
        entered.append("slow")
        if len(entered) == 2:
            all_entered.set()
        await finish.wait()
        await session.execute("VERBOSE", "done", "1")

    async def stuck(session: AgiSession) -> None:
        entered.append("stuck")
        if len(entered) == 2:
            all_entered.set()
        await asyncio.Future()  # never completes by itself

    settings = AgiSettings(session_deadline_s=30.0, reply_deadline_s=5.0)
    server = AgiServer({"slow": slow, "stuck": stuck}, settings, observer=observer)
    address = await server.start("127.0.0.1", 0)
    peers = {}
    for route in ("slow", "stuck"):
        peers[route] = await AsteriskPeer.connect(address)
        await peers[route].send(env_bytes(route))
    async with asyncio.timeout(2.0):
        await all_entered.wait()

    closing = asyncio.create_task(server.close(grace_s=0.5))
    # new connections are refused once closing
    try:
        late = await AsteriskPeer.connect(address)
    except OSError:
        pass
    else:
        assert await late.read_until_closed() == b""
        await late.close()
    finish.set()
    assert await peers["slow"].read_command() == 'VERBOSE "done" "1"'
    await peers["slow"].send(b"200 result=1\n")
    async with asyncio.timeout(5.0):
        await closing
    assert sorted(observer.ended) == ["cancelled", "ok"]
    assert server.sessions_in_flight == 0
    for peer in peers.values():
        assert await peer.read_until_closed() == b""
        await peer.close()


async def test_serve_in_a_task_group_shuts_down_on_cancel() -> None:
    server = AgiServer({}, AgiSettings(shutdown_grace_s=0.5))
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(server.serve("127.0.0.1", 0))
        async with asyncio.timeout(2.0):
            await server.listening.wait()
        assert server.address is not None
        commands = await screen_session(server.address)
        assert commands == []  # no route registered
        task.cancel()
    assert task.cancelled()
    try:
        await AsteriskPeer.connect(server.address)
    except OSError:
        pass
    else:
        raise AssertionError("server still accepting after serve() was cancelled")


def test_settings_refuse_nonsense_limits() -> None:
    for bad in ({"max_sessions": 0}, {"reply_deadline_s": 0.0}, {"max_line_bytes": 8},
                {"shutdown_grace_s": -1.0}):
        with pytest.raises(ValueError):
            AgiSettings(**bad)  # type: ignore[arg-type]


async def test_pending_limit_sheds_the_oldest_idle_connection() -> None:
    settings = AgiSettings(max_sessions=4, max_pending=3, env_deadline_s=5.0,
                           session_deadline_s=8.0)
    observer = RecordingObserver()
    async with running_server(settings=settings, observer=observer) as server:
        assert server.address is not None
        idle = [await AsteriskPeer.connect(server.address) for _ in range(3)]
        await observer.wait_pending(3)
        # a real call arrives at the limit: the oldest idle connection makes room
        assert len(await screen_session(server.address)) == 1
        assert await idle[0].read_until_closed() == b""
        assert "shed" in await observer.wait_ended(2)
        assert server.connections_pending == 2
        for peer in idle:
            await peer.close()


async def test_per_source_pending_limit_sheds_that_source_oldest() -> None:
    settings = AgiSettings(max_sessions=4, max_pending=100, max_pending_per_source=2,
                           env_deadline_s=5.0, session_deadline_s=8.0)
    observer = RecordingObserver()
    async with running_server(settings=settings, observer=observer) as server:
        assert server.address is not None
        idle = [await AsteriskPeer.connect(server.address) for _ in range(3)]
        assert await idle[0].read_until_closed() == b""  # shed by the third
        assert await observer.wait_ended(1) == ["shed"]
        assert len(await screen_session(server.address)) == 1
        assert await idle[1].read_until_closed() == b""
        for peer in idle:
            await peer.close()


MSET_TIMEOUT = 'EXEC "MSet" "GW_VERDICT=BLOCK,GW_REASON=timeout,GW_E164=,GW_RETRY_AFTER=,' \
    'GW_DECISION_ID="'


async def test_pending_limit_answers_a_shed_call_whose_environment_had_arrived() -> None:
    """A saturated loop accepts a burst before reading any of it: the oldest real call,
    shed for the newest, is answered BLOCK timeout, not aborted unanswered."""
    settings = AgiSettings(max_sessions=4, max_pending=100, max_pending_per_source=2,
                           env_deadline_s=5.0, session_deadline_s=8.0)
    observer = RecordingObserver()
    screener = FakeScreener()
    async with running_server(screener, settings=settings, observer=observer) as server:
        assert server.address is not None
        calls = []
        for i in range(3):  # blocking: all three connected and sent before a loop turn
            sock = socket.create_connection(server.address)
            sock.sendall(env_bytes("screen", (f"061234567{i}", "spring-promo")))
            sock.setblocking(False)
            calls.append(sock)
        answers = [await answer_commands(sock) for sock in calls]
        ended = await observer.wait_ended(3)
    assert answers[0] == [MSET_TIMEOUT]  # shed: answered at once, unscreened
    assert all(len(a) == 1 and a[0].startswith('EXEC "MSet" "GW_VERDICT=ALLOW')
               for a in answers[1:])
    assert sorted(ended) == ["ok", "ok", "overloaded"]
    assert [attempt.number for attempt, _ in screener.calls] == ["0612345671", "0612345672"]


async def test_session_that_waited_past_max_queue_wait_is_answered_unscreened() -> None:
    """Admission by age: the loop was late on this call by more than max_queue_wait_s
    (a real CPU lag of 0.1 s a turn against 0.05 s): BLOCK timeout at once, unscreened."""
    settings = AgiSettings(max_sessions=4, max_queue_wait_s=0.05, env_deadline_s=5.0,
                           reply_deadline_s=5.0, session_deadline_s=8.0)
    observer = RecordingObserver()
    screener = FakeScreener()
    async with running_server(screener, settings=settings, observer=observer) as server:
        assert server.address is not None
        async with lagging_loop(0.1):
            commands = await screen_session(server.address)
            ended = await observer.wait_ended(1, deadline_s=10.0)
    assert commands == [MSET_TIMEOUT]
    assert ended == ["overloaded"]
    assert screener.calls == []


def test_settings_refuse_a_queue_wait_or_shed_grace_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="max_queue_wait_s"):
        AgiSettings(max_queue_wait_s=0.0)
    with pytest.raises(ValueError, match="shed_grace_s"):
        AgiSettings(shed_grace_s=-1.0)


async def test_a_peer_flooding_lines_is_not_read_beyond_the_unread_events_limit() -> None:
    """The session parses what arrives at once; a peer that sends line after line while
    the handler works (replies, HANGUPs) is no longer read once ``max_unread_events`` wait
    (a read's worth at most beyond it): no queue grows with what the peer sends."""
    import dataclasses

    settings = dataclasses.replace(TEST_SETTINGS, max_unread_events=8)
    entered, release = asyncio.Event(), asyncio.Event()
    sessions: list[AgiSession] = []

    async def slow(session: AgiSession) -> None:
        sessions.append(session)
        entered.set()
        await release.wait()
        await session.execute("NOOP")

    observer = RecordingObserver()
    flood = b"HANGUP\n" * 20_000  # 140 kB: many socket reads
    async with running_server(settings=settings, handlers={"screen": slow},
                              observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        await peer.send(env_bytes(args=("0612345678", "spring-promo")))
        await entered.wait()
        peer.writer.write(flood)
        transport = sessions[0]._transport
        for _ in range(10_000):  # loop turns, until the server stops reading the peer
            if not transport.is_reading():
                break
            await asyncio.sleep(0)
        assert not transport.is_reading()
        unread = len(sessions[0]._pending)
        assert 8 <= unread <= 8 + settings.read_chunk_bytes // len(b"HANGUP\n")
        for _ in range(100):  # more turns: nothing more is read
            await asyncio.sleep(0)
        assert len(sessions[0]._pending) == unread
        release.set()
        assert await observer.wait_ended(1) == ["hangup"]  # the HANGUP, at its command
        await peer.close()


async def test_a_connection_waiting_for_its_environment_has_no_task_until_it_comes() -> None:
    """No task per pending connection: an idler costs a socket and a place in the pending
    set until its deadline; a call's task starts once its environment is in."""
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        idle = await AsteriskPeer.connect(server.address)
        for _ in range(1000):  # loop turns, until the server has accepted it
            if server.connections_pending:
                break
            await asyncio.sleep(0)
        assert (server.connections_pending, server.connections_open) == (1, 0)
        commands = await screen_session(server.address)  # a real call meanwhile
        assert commands == [MSET_ALLOW]
        assert await observer.wait_ended(1) == ["ok"]
        assert (server.connections_pending, server.connections_open) == (1, 0)
        assert await idle.read_until_closed() == b""  # closed at its deadline
        await idle.close()
        assert sorted(await observer.wait_ended(2)) == ["env_timeout", "ok"]
