"""Out of descriptors: accept(2) fails (EMFILE) while connections wait in the kernel's
queue. On uvloop the server accepts itself (libuv accepted one connection per turn of
the loop, and let the queue overflow under load); a failed accept must pause accepting,
as asyncio's loop does, not spin on a listening socket that stays readable, and accepting
must resume once descriptors are free again, the waiting connections all admitted.

Deterministic: the descriptors are taken before the loop first runs after the
connections were queued; what is asserted is the count of failures logged and of
connections admitted, not a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
from collections.abc import Callable, Iterator

import pytest
import structlog

from gateway.agi.server import AgiSettings
from tests.agi.fakes import RecordingObserver
from tests.agi.harness import running_server
from tests.agi.peer import connect_now
from tests.fixtures.event_loops import loop_factories
from tests.regressions.test_agi_idle_wave_delays_real_call import wait_for

CLIENTS = 20
SETTINGS = AgiSettings(env_deadline_s=10.0, session_deadline_s=20.0)


@contextlib.contextmanager
def descriptors_exhausted() -> Iterator[list[int]]:
    """Every descriptor this process may open is taken (under a soft limit lowered to
    what is open now plus a few, restored after): the next accept(2) fails EMFILE."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    taken: list[int] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 64, hard))
        while True:
            try:
                taken.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                break
        yield taken
    finally:
        for fd in taken:
            os.close(fd)
        taken.clear()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def accepted_after_exhaustion() -> tuple[int, int]:
    """(accept failures logged while out of descriptors, connections admitted after)."""
    observer = RecordingObserver()
    with structlog.testing.capture_logs() as logs:
        async with running_server(settings=SETTINGS, observer=observer) as server:
            clients = [connect_now(server.address) for _ in range(CLIENTS)]
            try:
                with descriptors_exhausted() as taken:
                    assert taken
                    # turns of the loop while accept(2) fails: a loop spinning on the
                    # readable socket would log a failure in each
                    for _ in range(200):
                        await asyncio.sleep(0)
                    failed = sum(line["event"] == "agi.accept_failed" for line in logs)
                    assert server.connections_pending == 0
                await wait_for(observer, lambda: server.connections_pending == CLIENTS)
                admitted = server.connections_pending
            finally:
                for client in clients:
                    client.close()
    return failed, admitted


@pytest.mark.parametrize("loop_factory", loop_factories())
def test_accepting_pauses_out_of_descriptors_and_resumes(
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
        request: pytest.FixtureRequest) -> None:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        failed, admitted = runner.run(accepted_after_exhaustion())
    assert admitted == CLIENTS
    if request.node.callspec.id == "uvloop":  # the server's own accept (asyncio's loop logs
        assert failed == 1, failed            # its own line, through logging)
