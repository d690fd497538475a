"""Attack: a dialer sends an endless message (no blank line) or thousands of headers."""

from __future__ import annotations

from tests.ami.helpers import harness


async def test_message_over_the_size_limit_is_refused() -> None:
    async with harness(max_message_bytes=4096) as h:
        d = await h.dialer()
        await d.send_raw(b"Action: Originate\nVariable: " + b"A" * 10_000)
        resp = await d.response()
        assert (resp.get("Message") or "").startswith("Protocol error")
        assert await d.closed()
        assert h.fake.actions("Originate") == []


async def test_too_many_headers_are_refused() -> None:
    async with harness(max_headers=32) as h:
        d = await h.dialer()
        await d.send_raw(b"Action: Originate\n" + b"Variable: A=1\n" * 40 + b"\n")
        assert (await d.response()).response == "Error"
        assert await d.closed()
        assert h.fake.actions("Originate") == []


async def test_too_many_sessions_are_refused() -> None:
    async with harness(max_sessions=1) as h:
        await h.dialer()
        second = await h.dialer(login=False)
        assert (await second.response()).get("Message") == "Too many sessions"
        assert await second.closed()
