"""Attack: a dialer sends actions (an Originate) before logging in."""

from __future__ import annotations

from tests.ami.helpers import harness


async def test_originate_before_login_is_refused_and_never_relayed() -> None:
    async with harness(max_unauthenticated_actions=3) as h:
        d = await h.dialer(login=False)
        await d.send(Action="Originate", Channel="PJSIP/0612345678@trunk", ActionID="x")
        resp = await d.response()
        assert (resp.response, resp.get("Message"), resp.action_id) == (
            "Error", "Authentication Required", "x")
        await d.send(Action="Ping")
        await d.send(Action="Status")
        assert (await d.response()).get("Message") == "Authentication Required"
        assert (await d.response()).get("Message") == "Authentication Required"
        assert await d.closed()  # the third unauthenticated action ends the session
        assert h.fake.actions("Originate") == []
        assert h.screener.attempts == []


async def test_a_silent_connection_is_closed_at_the_login_deadline() -> None:
    async with harness(login_timeout_s=0.2) as h:
        d = await h.dialer(login=False)
        resp = await d.response()
        assert resp.get("Message") == "Login timeout"
        assert await d.closed()
