"""Attack: hostile requests to the scrub/check API (hostile review of issue 13).

An Authorization header that is not UTF-8, an ``at`` the calendar cannot hold, JSON
nested past the parser's recursion limit, a CSV header too long or too wide: each
answered (4xx or an INVALID row), never a 500 and never a cut response."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
import structlog

from gateway.app import App
from tests.api.test_api import LEGAL_NOW, TOKEN, config


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    gateway = App(config(tmp_path, max_line_bytes=4096), clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def exchange(app: App, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """One request as raw bytes (headers no HTTP client would send); (status, body)."""
    host, port = app.api.address
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head + b"Host: x\r\nConnection: close\r\n"
                     + (f"Content-Length: {len(body)}\r\n".encode() if body else b"")
                     + b"\r\n" + body)
        await writer.drain()
        async with asyncio.timeout(20):
            data = await reader.read()  # until the server closes
    finally:
        writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), payload


def get(path: str, *headers: bytes) -> bytes:
    return f"GET {path} HTTP/1.1\r\n".encode() + b"".join(h + b"\r\n" for h in headers)


def post(path: str, content_type: str = "text/csv") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nContent-Type: {content_type}\r\n"
            f"Authorization: Bearer {TOKEN}\r\n").encode()


AUTH = f"Authorization: Bearer {TOKEN}".encode()


@pytest.mark.parametrize("header", [
    b"Authorization: Bearer \xff\xfe" + TOKEN.encode(),
    b"Authorization: Bearer " + TOKEN.encode()[:-2] + b"\xc3\xa9",
    b"Authorization: \xff " + TOKEN.encode(),
])
async def test_token_that_is_not_utf8_is_refused_not_a_500(app: App, header: bytes) -> None:
    status, body = await exchange(app, get("/v1/check?number=0612345678&campaign=demo",
                                           header))
    assert status == 401, body
    assert json.loads(body) == {"error": "missing or invalid bearer token"}


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59+00:00", "9999-12-31T20:00:00-12:00",
                                "0001-01-01T00:00:00+00:00", "0001-01-01T23:00:00+14:00",
                                "2200-01-01T00:00:00Z", "1999-12-31T23:59:59Z"])
async def test_at_outside_the_calendar_is_a_400(app: App, at: str) -> None:
    for number in ("0612345678", "0612345682"):  # ALLOW and BLOCK at a legal instant
        status, body = await exchange(app, get(
            f"/v1/check?number={number}&campaign=demo&at={quote(at)}", AUTH))
        assert status == 400, body
        error = json.loads(body)["error"]
        assert error.startswith("at: ")
        assert "outside 2000-2199" in error or "out of range in UTC" in error
    status, body = await exchange(app, post(f"/v1/scrub?campaign=demo&at={quote(at)}"),
                                  b"number\n0612345678\n")
    assert status == 400, body


async def test_at_at_the_edges_of_the_range_is_answered(app: App) -> None:
    for at in ("2000-01-01T00:00:00Z", "2199-12-31T23:59:59Z"):
        status, body = await exchange(app, get(
            f"/v1/check?number=0612345678&campaign=demo&at={quote(at)}", AUTH))
        assert status == 200, body
        assert json.loads(body)["verdict"] in ("ALLOW", "BLOCK")


def chunked_payload(body: bytes) -> bytes:
    """The chunks' data of a chunked response; asserts the final chunk is there."""
    out, rest = b"", body
    while True:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            return out
        out, rest = out + rest[:n], rest[n + 2:]
        assert rest, "no final chunk: the response was cut"


async def test_json_nested_past_the_recursion_limit_is_an_invalid_row(app: App) -> None:
    deep = b'{"phone": "0612345678", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}\n"
    status, body = await exchange(app, post("/v1/scrub?campaign=demo", "application/x-ndjson"),
                                  deep + b'{"phone": "06 12 34 56 82"}\n')
    assert status == 200
    rows = [json.loads(line) for line in chunked_payload(body).splitlines()]
    assert [(r["line"] if "line" in r else 2, r["verdict"]) for r in rows] == [
        (1, "INVALID"), (2, "BLOCK")]
    assert rows[0]["error"] == "not JSON: nested too deeply"


@pytest.mark.parametrize("header, problem", [
    (b"number," + b"x" * 5000, "header row longer than 4096 bytes"),
    (b"number" + b"," * 1000, "the header has 1001 columns (at most 1000)"),
])
async def test_csv_header_too_long_or_too_wide_is_a_400(app: App, header: bytes,
                                                        problem: str) -> None:
    # 1,000 rows of 11 bytes each padded to the header's width: before the cap, a header
    # of 60,000 empty names made this 22 kB body a 120 MB response and 2 GB of memory
    status, body = await exchange(app, post("/v1/scrub?campaign=demo"),
                                  header + b"\n" + b"0612345678\n" * 1000)
    assert status == 400, body[:200]
    assert problem in json.loads(body)["error"]


async def test_csv_header_at_the_column_cap_is_scrubbed(app: App) -> None:
    header = "number" + ",c" * 999
    status, body = await exchange(app, post("/v1/scrub?campaign=demo"),
                                  f"{header}\n0612345678{',x' * 999}\n".encode())
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(chunked_payload(body).decode())))
    assert [r["verdict"] for r in rows] == ["ALLOW"]


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    return True


async def test_idle_and_slow_header_connections_are_closed(tmp_path: Path) -> None:
    """No token needed to hold a socket: before, aiohttp's default kept a connection
    that never finished its headers for an hour (keepalive_timeout 3630 s)."""
    gateway = App(config(tmp_path, read_timeout_s=0.5), clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        host, port = gateway.api.address
        idle = await asyncio.open_connection(host, port)
        slow = await asyncio.open_connection(host, port)
        slow[1].write(b"GET /v1/check HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        await slow[1].drain()
        assert await closed_within(idle[0], 10)
        assert await closed_within(slow[0], 10)
        for _, writer in (idle, slow):
            writer.close()
    finally:
        await gateway.stop()


async def test_connections_beyond_the_cap_are_refused(tmp_path: Path) -> None:
    gateway = App(config(tmp_path, max_connections=4), clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        host, port = gateway.api.address
        held = [await asyncio.open_connection(host, port) for _ in range(4)]
        for _, writer in held:
            writer.write(b"GET /v1/check HTTP/1.1\r\n")
            await writer.drain()
        reader, writer = await asyncio.open_connection(host, port)
        async with asyncio.timeout(10):
            answer = await reader.read()  # closed at once
        assert answer.startswith(b"HTTP/1.1 503 ")
        writer.close()
        for _, w in held:
            w.close()
            await w.wait_closed()
        for _ in range(100):  # the server sees the closes; then a request is served again
            status, _ = await exchange(gateway, get(
                "/v1/check?number=0612345678&campaign=demo", AUTH))
            if status != 503:
                break
        assert status == 200
    finally:
        await gateway.stop()


async def test_refusals_are_logged_sampled_not_once_each(app: App) -> None:
    """No token needed to make a log line: one per refused request let anyone flood the
    logs (and journald, past its rate limit, drops the gateway's other lines)."""
    with structlog.testing.capture_logs() as logs:
        for _ in range(40):
            status, _ = await exchange(app, get(
                "/v1/check?number=0612345678&campaign=demo",
                b"Authorization: Bearer wrong-token-0123456789"))
            assert status == 401
    lines = [e for e in logs if e["event"] == "api.unauthorized"]
    assert 1 <= len(lines) <= 4 and lines[0]["repeated"] == 1
    assert all("wrong-token" not in repr(e) for e in logs)


async def test_rows_not_in_utf8_are_invalid_rows_not_rewritten(app: App) -> None:
    body = (b"name;phone\nAl;06 12 34 56 78\n" + "Hélène;06 12 34 56 82\n"
            .encode("cp1252") + "Zoé;06 12 34 56 82\n".encode())
    status, payload = await exchange(app, post("/v1/scrub?campaign=demo"), body)
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(chunked_payload(payload).decode()), delimiter=";"))
    assert [(r["name"], r["verdict"], r["error"]) for r in rows] == [
        ("Al", "ALLOW", ""), ("", "INVALID", "not UTF-8"), ("Zoé", "BLOCK", "")]
    assert "\ufffd" not in chunked_payload(payload).decode()
    for lines in ([json.dumps({"phone": "0612345678"}).encode(),
                   '{"phone": "0612345682", "name": "Hélène"}'.encode("cp1252")],):
        status, payload = await exchange(
            app, post("/v1/scrub?campaign=demo", "application/x-ndjson"), b"\n".join(lines))
        out = [json.loads(x) for x in chunked_payload(payload).splitlines()]
        assert [(o.get("line"), o["verdict"], o["error"]) for o in out] == [
            (None, "ALLOW", ""), (2, "INVALID", "not UTF-8")]
    status, payload = await exchange(app, post("/v1/scrub?campaign=demo"),
                                     "nom;téléphone\n0612345678\n".encode("cp1252"))
    assert status == 400 and json.loads(payload)["error"] == "header row: not UTF-8"


async def test_json_keys_naming_the_number_twice_are_an_invalid_row(app: App) -> None:
    status, payload = await exchange(
        app, post("/v1/scrub?campaign=demo", "application/x-ndjson"),
        b'{"Phone": "0612345678", "phone": "0612345682"}\n')
    assert status == 200
    out = [json.loads(x) for x in chunked_payload(payload).splitlines()]
    assert [(o["verdict"], o["error"]) for o in out] == [("INVALID", "several number keys")]


async def test_a_batch_is_bounded_in_bytes_not_only_in_rows(app: App) -> None:
    """Rows of 60 kB, 2000 to a batch: a 64 MB body was held whole (about 300 MB of
    Python objects per scrub, four scrubs at once) before its first row was decided.
    Past MAX_BATCH_BYTES of input the rows read so far are decided and sent: the client
    gets them while it still holds the rest of its body."""
    from gateway.api.server import MAX_BATCH_BYTES

    wide = b"0612345678," + b"x" * 3000 + b"\n"
    rows = MAX_BATCH_BYTES // len(wide) + 1
    host, port = app.api.address
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(post("/v1/scrub?campaign=demo") + b"Host: x\r\n"
                     + f"Content-Length: {10_000_000}\r\n\r\n".encode()
                     + b"number,note\n" + wide * rows)
        await writer.drain()
        seen = b""
        async with asyncio.timeout(20):
            while seen.count(b"ALLOW") < rows:  # decided before the body's end
                chunk = await reader.read(65536)
                assert chunk, "closed"
                seen += chunk
    finally:
        writer.close()


async def test_many_lines_not_in_utf8_are_batched_like_rows(app: App) -> None:
    body = b"number\n" + b"\xff\n" * 5000 + b"0612345678\n"
    status, payload = await exchange(app, post("/v1/scrub?campaign=demo"), body)
    rows = list(csv.DictReader(io.StringIO(chunked_payload(payload).decode())))
    assert status == 200 and len(rows) == 5001
    assert {r["error"] for r in rows[:-1]} == {"not UTF-8"} and rows[-1]["verdict"] == "ALLOW"


async def test_client_not_reading_the_response_frees_its_scrub(tmp_path: Path) -> None:
    """A client that sends its body and never reads the answer: the server's writes
    waited without a deadline, and with max_concurrent_scrubs such clients held every
    scrub slot for good (later scrubs: 503). Now a write waits read_timeout_s at most."""
    gateway = App(config(tmp_path, read_timeout_s=0.5, max_concurrent_scrubs=1),
                  clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        host, port = gateway.api.address
        row = b"0612345678" + (b"," + b"x" * 4000) * 14 + b"\n"  # echoed back: 56 kB each
        body = b"number" + b",note" * 14 + b"\n" + row * 400
        _, writer = await asyncio.open_connection(host, port)
        writer.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        writer.write(post("/v1/scrub?campaign=demo") + b"Host: x\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        # never read: the server's writes fill the buffers and stall
        with structlog.testing.capture_logs() as logs:
            async with asyncio.timeout(20):
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()  # the server cut the connection
        assert [e["stalled_write"] for e in logs if e["event"] == "api.scrub_aborted"] == [
            True]
        status, _ = await exchange(gateway, post("/v1/scrub?campaign=demo"),
                                   b"number\n0612345678\n")
        assert status == 200  # its scrub slot is free
    finally:
        await gateway.stop()


def test_a_connection_beyond_the_cap_gets_its_503_on_uvloop() -> None:
    """uvloop's transports subclass none of asyncio's: the refusal's ``isinstance(...,
    asyncio.WriteTransport)`` was false there, so a refused client got a bare close
    instead of the 503 that says why (and when to come back)."""
    import uvloop  # the optional extra: the test environment installs it (pyproject dev)

    from gateway.api.server import BUSY, _Refused

    async def refused_answer() -> bytes:
        server = await asyncio.get_running_loop().create_server(_Refused, "127.0.0.1", 0)
        try:
            host, port = server.sockets[0].getsockname()[:2]
            reader, writer = await asyncio.open_connection(host, port)
            async with asyncio.timeout(10):
                answer = await reader.read()
            writer.close()
            return answer
        finally:
            server.close()
            await server.wait_closed()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(refused_answer()) == BUSY
