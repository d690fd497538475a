"""The scrub/check HTTP API over real sockets (aiohttp client against the running App)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from gateway.api.server import openapi_document
from gateway.app import App
from gateway.config import Config, load_config

LEGAL_NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # Tuesday 10:30 in Paris
TOKEN = "t0ken-for-the-tests-0123456789"
OTHER = "an0ther-token-for-the-tests-42"
AT = "2026-12-01T10:30:00+01:00"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
DEADLINE = aiohttp.ClientTimeout(total=20)


def config(tmp_path: Path, **api: Any) -> Config:
    return load_config(None, env={}, overrides={
        "agi": {"listen": "127.0.0.1:0"},
        "http": {"listen": "127.0.0.1:0"},
        "audit": {"sink": "jsonl", "path": str(tmp_path / "audit.jsonl")},
        "api": {"enabled": True, "listen": "127.0.0.1:0", "tokens": [TOKEN, OTHER], **api},
    })


@pytest.fixture
async def app(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[App]:
    extra = getattr(request, "param", {})
    gateway = App(config(tmp_path, **extra), clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


def base(app: App) -> str:
    host, port = app.api.address
    return f"http://{host}:{port}"


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_openapi_served_equals_the_file_in_docs(app: App) -> None:
    async with aiohttp.ClientSession(timeout=DEADLINE) as http:
        async with http.get(base(app) + "/v1/openapi.json") as resp:  # no token needed
            assert resp.status == 200
            served = await resp.read()
    assert served == DOCS.read_bytes() == openapi_document()
    doc = json.loads(served)
    assert set(doc["paths"]) == {"/v1/check", "/v1/scrub", "/v1/openapi.json"}


async def test_api_is_off_by_default_and_on_its_own_port(tmp_path: Path, app: App) -> None:
    assert load_config(None, env={}).api.enabled is False
    assert app.api.address != app.http_address


async def test_check_answers_the_engines_decision(app: App, tmp_path: Path) -> None:
    async with aiohttp.ClientSession(timeout=DEADLINE) as http:
        async with http.get(base(app) + "/v1/check", headers=auth(),
                            params={"number": "06 12 34 56 78", "campaign": "demo",
                                    "at": AT}) as resp:
            assert resp.status == 200
            doc = await resp.json()
        async with http.get(base(app) + "/v1/check", headers=auth(OTHER),
                            params={"number": "06 12 34 56 82", "campaign": "demo"}) as resp:
            blocked = await resp.json()
    assert (doc["verdict"], doc["reason"], doc["e164"]) == ("ALLOW", "ok", "+33612345678")
    assert doc["consent_id"] == "demo-c1" and doc["dry_run"] is True
    assert doc["at"] == datetime.fromisoformat(AT).isoformat()
    assert (blocked["verdict"], blocked["reason"]) == ("BLOCK", "opposition")
    assert blocked["at"] == LEGAL_NOW.isoformat()  # default: the gateway's clock
    assert not (tmp_path / "audit.jsonl").exists() or not (tmp_path / "audit.jsonl").read_text()


@pytest.mark.parametrize("header", [
    None, "Bearer", "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x",
    f"Bearer {TOKEN[:-1]}",
])
async def test_bad_tokens_are_refused(app: App, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    async with aiohttp.ClientSession(timeout=DEADLINE) as http:
        for method, path in (("GET", "/v1/check?number=0612345678&campaign=demo"),
                             ("POST", "/v1/scrub?campaign=demo")):
            async with http.request(method, base(app) + path, headers=headers,
                                    data=b"number\n0612345678\n") as resp:
                assert resp.status == 401
                assert resp.headers["WWW-Authenticate"].startswith("Bearer")
                assert TOKEN not in await resp.text()


@pytest.mark.parametrize("app", [{"rate_per_s": 0.01, "rate_burst": 2}], indirect=True)
async def test_rate_limit_per_token(app: App) -> None:
    url = base(app) + "/v1/check?number=0612345678&campaign=demo"
    async with aiohttp.ClientSession(timeout=DEADLINE) as http:
        statuses = []
        for _ in range(3):
            async with http.get(url, headers=auth()) as resp:
                statuses.append(resp.status)
                retry = resp.headers.get("Retry-After")
        async with http.get(url, headers=auth(OTHER)) as resp:
            other = resp.status
    assert statuses == [200, 200, 429] and retry is not None and int(retry) >= 1
    assert other == 200  # buckets are per token


@pytest.mark.parametrize("query, status", [
    ("number=0612345678", 400),
    ("number=0612345678&campaign=nope", 400),
    ("number=0612345678&campaign=demo&at=tomorrow", 400),
    ("campaign=demo", 400),
    ("number=garbage&campaign=demo", 200),  # an answer: BLOCK invalid_number
])
async def test_check_parameters(app: App, query: str, status: int) -> None:
    async with aiohttp.ClientSession(timeout=DEADLINE) as http:
        async with http.get(base(app) + "/v1/check?" + query, headers=auth()) as resp:
            assert resp.status == status
            doc = await resp.json()
    if status == 200:
        assert doc["reason"] == "invalid_number"
    else:
        assert doc["error"]


CSV_BODY = (
    "id;name;phone;note\r\n"
    "1;Alice;06 12 34 56 78;ok\r\n"
    '2;"Bob\nBobson";06 12 34 56 82;quoted newline\r\n'
    "3;Carl;not a number;x\r\n"
    "4;Dan;0612345678;too;many\r\n"
    "5;Eve;;empty\r\n"
    "6;Fay;01 99 00 00 01;contract\r\n"
)


async def post_scrub(app: App, body: bytes, content_type: str, query: str = "campaign=demo",
                     **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(timeout=DEADLINE) as http:
        async with http.post(base(app) + "/v1/scrub?" + query, data=body,
                             headers={**auth(), "Content-Type": content_type, **headers}) as r:
            return r.status, await r.text()


async def test_scrub_csv_streams_every_row_back(app: App) -> None:
    query = f"campaign=demo&at={quote(AT)}"
    status, text = await post_scrub(app, CSV_BODY.encode(), "text/csv", query)
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    got = {r["id"]: (r["verdict"], r["reason"]) for r in rows}
    assert got == {"1": ("ALLOW", "ok"), "2": ("BLOCK", "opposition"),
                   "3": ("BLOCK", "invalid_number"), "4": ("INVALID", "invalid_row"),
                   "5": ("INVALID", "invalid_row"), "6": ("ALLOW", "ok")}
    assert rows[1]["name"] == "Bob\nBobson"
    assert rows[0]["consent_id"] == "demo-c1" and rows[5]["contract_id"] == "DEMO-CTR-0001"
    assert rows[3]["error"] == "5 fields where the header has 4"
    assert rows[0]["next_legal_at"] == "2026-12-01T09:30:00+00:00"


async def test_scrub_json_lines(app: App) -> None:
    lines = [json.dumps({"Phone": "06 12 34 56 78", "crm": {"id": 7}}), "{not json",
             json.dumps([1, 2]), json.dumps({"name": "no number"}),
             json.dumps({"phone": "06 12 34 56 81", "reason": "theirs"})]
    status, text = await post_scrub(app, "\n".join(lines).encode(), "application/x-ndjson")
    assert status == 200
    out = [json.loads(line) for line in text.splitlines()]
    assert len(out) == 5
    assert out[0]["crm"] == {"id": 7} and out[0]["verdict"] == "ALLOW"
    assert [o.get("verdict", o.get("gw_verdict")) for o in out] == [
        "ALLOW", "INVALID", "INVALID", "INVALID", "BLOCK"]
    assert out[1]["error"].startswith("not JSON") and out[1]["line"] == 2
    assert out[2]["error"] == "not a JSON object"
    assert out[3]["error"] == "no number key" and out[3]["name"] == "no number"
    assert out[4]["reason"] == "theirs" and out[4]["gw_reason"] == "opposition"


@pytest.mark.parametrize("app", [{"max_body_bytes": 1000, "max_line_bytes": 100}],
                         indirect=True)
async def test_size_limits(app: App) -> None:
    status, text = await post_scrub(app, b"number\n" + b"0612345678\n" * 100, "text/csv")
    assert status == 413 and "1000" in text
    long_line = b"number,name\n0612345678,a\n0612345678," + b"x" * 200 + b"\n0612345679,c\n"
    status, text = await post_scrub(app, long_line, "text/csv")
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["verdict"] for r in rows] == ["ALLOW", "INVALID", "BLOCK"]
    assert rows[1]["error"] == "line longer than 100 bytes"


async def test_body_needs_a_length_and_a_known_type(app: App) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"number\n0612345678\n"

    async with aiohttp.ClientSession(timeout=DEADLINE) as http:
        async with http.post(base(app) + "/v1/scrub?campaign=demo", data=chunks(),
                             headers={**auth(), "Content-Type": "text/csv"}) as resp:
            assert resp.status == 411
    status, _ = await post_scrub(app, b"number\n0612345678\n", "application/pdf")
    assert status == 415
    status, text = await post_scrub(app, b"id,name\n1,a\n", "text/csv")
    assert status == 400 and "number column" in text
    status, _ = await post_scrub(app, b"number\n0612345678\n", "text/csv", "campaign=nope")
    assert status == 400


async def test_slow_body_is_cut_not_waited_for(tmp_path: Path) -> None:
    gateway = App(config(tmp_path, read_timeout_s=0.3), clock=lambda: LEGAL_NOW)
    await gateway.start()
    try:
        host, port = gateway.api.address
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"POST /v1/scrub?campaign=demo HTTP/1.1\r\nHost: x\r\n"
                     f"Authorization: Bearer {TOKEN}\r\nContent-Type: text/csv\r\n"
                     "Content-Length: 1000\r\n\r\nnumber\n0612345678\n".encode())
        await writer.drain()
        async with asyncio.timeout(10):
            data = await reader.read()  # until the server closes
        writer.close()
    finally:
        await gateway.stop()
    assert data.startswith(b"HTTP/1.1 200")
    assert not data.endswith(b"0\r\n\r\n")  # no final chunk: visibly incomplete


def test_tokens_are_redacted(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert TOKEN not in repr(cfg) and TOKEN not in json.dumps(cfg.to_public_dict())
    assert cfg.to_public_dict()["api"]["tokens"] == "***"


@pytest.mark.parametrize("api, problem", [
    ({"enabled": True}, "no tokens"),
    ({"tokens": ["short"]}, "at least 16"),
    ({"max_body_bytes": 0}, "max_body_bytes"),
])
def test_bad_api_settings(api: dict[str, Any], problem: str) -> None:
    from gateway.config import ConfigError

    with pytest.raises(ConfigError, match=problem):
        load_config(None, env={}, overrides={"api": api})
