"""Incident class: panoramisk's Manager re-sends unanswered actions after a reconnect.

For an Originate that is a second dial without a fresh check. The proxy's upstream
link answers every action in flight with an error when the link drops, tells the
dialers that Asterisk went away, and never writes the action again.
"""

from __future__ import annotations

from tests.ami.helpers import harness, wait_state


async def test_originate_in_flight_gets_an_error_and_is_never_replayed() -> None:
    async with harness() as h:
        h.fake.hold.add("Originate")  # Asterisk never answers it
        d = await h.dialer()
        await d.send(Action="Originate", Channel="PJSIP/0612345678@trunk", Exten="8365",
                     Context="default", ActionID="o1")
        await h.fake.wait_for(lambda: len(h.fake.actions("Originate")) == 1)
        logins_before = h.fake.logins
        await h.fake.stop()  # Asterisk dies with the Originate unanswered
        resp = await d.response()
        assert (resp.response, resp.action_id) == ("Error", "o1")
        assert "not sent again" in (resp.get("Message") or "")
        shutdown = await d.recv()
        assert (shutdown.event, shutdown.get("Shutdown")) == ("Shutdown", "Uncleanly")
        assert await d.closed()
        # Asterisk comes back on the same port: the link logs in again ...
        await h.fake.start()
        await h.fake.wait_for(lambda: h.fake.logins > logins_before)
        h.fake.hold.clear()
        d2 = await h.dialer()
        await d2.send(Action="Status", ActionID="s")
        assert (await d2.response()).action_id == "s"
        # ... and the Originate was written exactly once, ever.
        assert len(h.fake.actions("Originate")) == 1


async def test_a_login_while_asterisk_is_down_is_refused_and_nothing_is_queued() -> None:
    async with harness() as h:
        await h.fake.stop()
        await wait_state(h.upstream, "down")
        d = await h.dialer(login=False)
        # a dialer that pipelines its Originate right behind its Login
        await d.send(Action="Login", Username="vici", Secret="dialer-pw", ActionID="L")
        await d.send(Action="Originate", Channel="PJSIP/0612345678@trunk", Exten="8365",
                     Context="default", ActionID="o")
        resp = await d.response()
        assert (resp.response, resp.action_id) == ("Error", "L")
        assert (resp.get("Message") or "").startswith("Asterisk is unreachable")
        assert await d.closed()  # the Originate was never read, let alone queued
        await h.fake.start()
        await wait_state(h.upstream, "up")
        d2 = await h.dialer()
        await d2.send(Action="Status", ActionID="s")
        assert (await d2.response()).action_id == "s"
        assert h.fake.actions("Originate") == []
