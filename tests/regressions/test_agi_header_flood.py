"""Attack: endless well-formed ``agi_*`` headers, never the blank line."""

from __future__ import annotations

from tests.agi.fakes import RecordingObserver
from tests.agi.harness import TEST_SETTINGS, running_server
from tests.agi.peer import AsteriskPeer


async def test_header_flood_is_cut_at_max_headers() -> None:
    observer = RecordingObserver()
    async with running_server(observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        try:
            await peer.send(b"".join(b"agi_h%d: v\n" % i for i in range(10_000)))
        except ConnectionError:
            pass
        assert await peer.read_until_closed() == b""
        await peer.close()
        await observer.wait_ended(1)
    assert observer.errors == ["too_many_headers"]
    assert TEST_SETTINGS.max_headers < 10_000


async def test_long_headers_are_cut_at_max_env_bytes() -> None:
    """Attack: the longest headers allowed, as many as allowed, never the blank line.

    Within ``max_line_bytes`` and ``max_headers`` each, an environment could hold
    ``max_line_bytes * max_headers`` (512 KiB with the defaults) per pending connection,
    and ``max_pending`` connections at once: gigabytes. ``max_env_bytes`` bounds the
    whole environment (Asterisk's own is a few kB: its dialplan arguments are at most
    8 kB); beyond it the connection is closed."""
    import dataclasses

    settings = dataclasses.replace(TEST_SETTINGS, max_env_bytes=1024)
    line_bytes = settings.max_line_bytes
    lines = [b"agi_h%02d: " % i + b"v" * (line_bytes - 10) + b"\n" for i in range(8)]
    assert all(len(line) <= line_bytes + 1 for line in lines)
    assert len(lines) < settings.max_headers
    assert sum(map(len, lines)) > settings.max_env_bytes
    observer = RecordingObserver()
    async with running_server(settings=settings, observer=observer) as server:
        assert server.address is not None
        peer = await AsteriskPeer.connect(server.address)
        try:
            await peer.send(b"".join(lines))
        except ConnectionError:
            pass
        assert await peer.read_until_closed() == b""
        await peer.close()
        await observer.wait_ended(1)
    assert observer.errors == ["env_too_large"]
