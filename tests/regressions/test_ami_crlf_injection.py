"""Attack: CR/LF/NUL smuggled into header values to inject a second action."""

from __future__ import annotations

from tests.ami.helpers import harness


async def test_bare_cr_inside_a_value_ends_the_session_and_nothing_is_relayed() -> None:
    async with harness() as h:
        d = await h.dialer()
        # LF framing (as VICIdial sends) with a CR hidden in the Channel value
        await d.send_raw(b"Action: Originate\nChannel: PJSIP/0612345678@trunk\r"
                         b"Action: Originate\nExten: 8365\n\n")
        resp = await d.response()
        assert resp.response == "Error"
        assert (resp.get("Message") or "").startswith("Protocol error")
        assert await d.closed()
        assert h.fake.actions("Originate") == []
        assert h.screener.attempts == []


async def test_nul_inside_a_value_ends_the_session() -> None:
    async with harness() as h:
        d = await h.dialer()
        await d.send_raw(b"Action: Getvar\nVariable: A\x00B\n\n")
        assert (await d.response()).response == "Error"
        assert await d.closed()
        assert h.fake.actions("Getvar") == []


async def test_repeated_channel_headers_cannot_split_screened_and_dialled_numbers() -> None:
    async with harness() as h:
        d = await h.dialer()
        await d.send_raw(b"Action: Originate\nChannel: PJSIP/0612345678@trunk\n"
                         b"Channel: PJSIP/0699999999@trunk\nExten: 8365\nActionID: r\n\n")
        resp = await d.response()
        assert (resp.response, resp.action_id) == ("Error", "r")
        assert h.fake.actions("Originate") == []
