"""Probes of panoramisk 1.4's ``Manager`` (why the proxy's upstream is the project's own).

Each test asserts panoramisk's *current* behaviour, so that the day it changes the
suite says so and docs/dependencies.md can be updated:

1. after a reconnect, ``Manager`` re-sends every action that got no response
   (``send_awaiting_actions`` on ``FullyBooted``): for an ``Originate`` that is a
   second dial without a fresh check;
2. ``Action.__str__`` writes header values verbatim: a CR/LF inside a value injects
   headers (or a whole second action) into the stream.

The project's own codec refuses the second; its upstream link never does the first
(tests/regressions/test_ami_no_replay_after_reconnect.py).
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from panoramisk import Manager
from panoramisk.actions import Action

from gateway.ami.codec import AmiMessage, AmiParser, AmiProtocolError, encode
from tests.ami.fake_asterisk import FakeAsterisk

WAIT_S = 10.0


async def test_panoramisk_manager_replays_an_unanswered_originate_after_reconnect() -> None:
    fake = FakeAsterisk(fully_booted=True)
    fake.hold.add("Originate")  # Asterisk never answers it before going away
    await fake.start()
    logged_in = asyncio.Event()
    manager = Manager(host="127.0.0.1", port=fake.port, username=fake.username,
                      secret=fake.secret, loop=asyncio.get_running_loop(), ping_delay=3600,
                      reconnect_timeout=0, on_login=lambda _m: logged_in.set(),
                      log=logging.getLogger("tests.panoramisk_probe"))
    try:
        manager.connect()
        async with asyncio.timeout(WAIT_S):
            await logged_in.wait()
        future = manager.send_action({"Action": "Originate", "Channel": "PJSIP/0612345678@t",
                                      "Exten": "8365", "Context": "default"})
        await fake.wait_for(lambda: len(fake.actions("Originate")) == 1, deadline_s=WAIT_S)
        await fake.stop()  # Asterisk restarts ...
        await fake.start()
        # ... and panoramisk dials again, with the same ActionID, unprompted.
        await fake.wait_for(lambda: len(fake.actions("Originate")) == 2, deadline_s=WAIT_S)
        first, second = fake.actions("Originate")
        assert first.action_id == second.action_id
        assert not future.done()
    finally:
        manager.close()
        await fake.stop()


async def test_panoramisk_action_does_not_escape_crlf_in_values() -> None:
    evil = {"Action": "Originate", "Channel": "PJSIP/0612345678@t",
            "Exten": "8365\r\n\r\nAction: Originate\r\nChannel: PJSIP/0699999999@t"}
    wire = str(Action(evil)).encode()
    actions = [m for m in AmiParser().feed(wire + b"\r\n") if m.action]
    assert len(actions) == 2  # one call asked for, two Originates on the wire
    assert actions[1].get("Channel") == "PJSIP/0699999999@t"
    # the project's codec refuses to write it
    with pytest.raises(AmiProtocolError):
        encode(AmiMessage(tuple(evil.items())))
