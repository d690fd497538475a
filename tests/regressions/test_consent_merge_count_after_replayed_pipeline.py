"""A consent import whose write pipeline is replayed keeps the list's size right.

Incident: the connection to Redis was lost after a merge's write pipeline reached the
server but before its reply came back; redis-py sent the pipeline again (one retry), and
the ``PUT`` script, finding the records written by the first send, answered "0 added".
The committed list size came out short by the records of that pipeline -- and the shrink
guard and ``lists status`` read that size. Now each call of a merge carries a receipt:
a replayed call returns the count of its first run.

The fault is real: a TCP proxy between the store and a real redis-server forwards the
pipeline, waits for the server's answer, then closes the connection instead of relaying it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import redis.asyncio as redis

from gateway.core.model import ConsentRecord
from gateway.store.base import ImportMode, Store
from gateway.store.factory import open_store
from gateway.store.keys import LIST_CONSENTS

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
READ_BYTES = 1 << 16


class DropOneReply:
    """Forwards both ways; once armed, the server's answer to the next request holding
    ``trigger`` is swallowed and that client connection closed."""

    def __init__(self, host: str, port: int, trigger: bytes) -> None:
        self.host, self.port, self.trigger = host, port, trigger
        self.armed = False
        self.dropped = 0
        self.tasks: set[asyncio.Task[None]] = set()  # the relays of each connection
        self.handlers: set[asyncio.Task[None]] = set()  # one per connection
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.handlers:  # each ends once its relays have (never cancelled itself)
            await asyncio.wait(self.handlers)

    async def _client(self, creader: asyncio.StreamReader,
                      cwriter: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        if handler is not None:
            self.handlers.add(handler)
            handler.add_done_callback(self.handlers.discard)
        sreader, swriter = await asyncio.open_connection(self.host, self.port)
        swallow = asyncio.Event()

        async def up() -> None:
            while data := await creader.read(READ_BYTES):
                if self.armed and self.trigger in data:
                    self.armed = False
                    swallow.set()
                swriter.write(data)
                await swriter.drain()

        async def down() -> None:
            while data := await sreader.read(READ_BYTES):
                if swallow.is_set():  # the server has run it: the reply is lost
                    self.dropped += 1
                    return
                cwriter.write(data)
                await cwriter.drain()

        tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
        self.tasks.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.tasks.difference_update(tasks)
            for writer in (cwriter, swriter):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()


def consents(first: int, count: int) -> list[ConsentRecord]:
    return [ConsentRecord(
        id=f"crm-{first + i}", e164=f"+336123{first + i:05d}", professional="acme",
        product_category="telecom", collected_at=NOW - timedelta(days=10),
        expires_at=NOW + timedelta(days=300), channel="web", proof_ref=f"rec/{first + i}")
        for i in range(count)]


@contextlib.asynccontextmanager
async def store_behind(redis_url: str, key_prefix: str, mode: bytes
                       ) -> AsyncIterator[tuple[Store, DropOneReply]]:
    """A store whose connection goes through a DropOneReply proxy for ``mode``'s calls."""
    where = urlsplit(redis_url)
    assert where.hostname is not None and where.port is not None
    proxy = DropOneReply(where.hostname, where.port, mode)
    port = await proxy.start()
    store = open_store(f"redis://127.0.0.1:{port}/0", key_prefix=key_prefix,
                       socket_timeout_s=5.0)
    try:
        yield store, proxy
    finally:
        await store.close()
        await proxy.close()


async def test_a_merge_replayed_after_a_lost_reply_counts_its_records(
        redis_url: str, key_prefix: str) -> None:
    # a merge's PUT calls name their mode; the commit comes after the writes
    async with store_behind(redis_url, key_prefix, b"merge") as (store, proxy):
        first = await store.import_consents(consents(0, 40), mode=ImportMode.MERGE, now=NOW)
        assert first.size == 40 and proxy.dropped == 0
        proxy.armed = True
        info = await store.import_consents(consents(40, 25), mode=ImportMode.MERGE,
                                           now=NOW + timedelta(seconds=1))
        assert proxy.dropped == 1  # the write pipeline's reply was lost, and it was replayed
        assert info.size == 65
        status = {i.name: i for i in await store.lists_status()}
        assert status[LIST_CONSENTS].size == 65
        # the records are all there, each once
        facts = await store.load_facts(e164="+33612300064", professional="acme",
                                       campaign_id="c", now=NOW, attempt_window_s=86400,
                                       abandon_window_s=86400)
        assert [c.id for c in facts.consents] == ["crm-64"]
        assert await receipts_left(redis_url, key_prefix) == []


async def receipts_left(url: str, key_prefix: str) -> list[bytes]:
    """Receipt fields still in the consent buckets (readers never read them)."""
    raw = redis.Redis.from_url(url)
    try:
        buckets = [k async for k in raw.scan_iter(match=f"{key_prefix}:k:*")]
        fields = [f for k in buckets for f in await raw.hkeys(k)]
    finally:
        await raw.aclose()
    assert buckets and fields
    return [f for f in fields if f.startswith(b"~")]


async def test_a_replace_with_repeated_numbers_replayed_counts_its_records(
        redis_url: str, key_prefix: str) -> None:
    """A replace whose numbers repeat (two consents of one number) is written by PUT too:
    the same loss, the same receipt."""
    async with store_behind(redis_url, key_prefix, b"replace") as (store, proxy):
        rows = consents(0, 20)
        rows += [dataclasses.replace(r, id=r.id + "-b", professional="energia")
                 for r in rows[:6]]  # six numbers with a second consent
        proxy.armed = True
        info = await store.import_consents(rows, mode=ImportMode.REPLACE, now=NOW)
        assert proxy.dropped == 1
        assert info.size == 26
        for professional, ids in (("acme", ["crm-3"]), ("energia", ["crm-3-b"])):
            facts = await store.load_facts(e164="+33612300003", professional=professional,
                                           campaign_id="c", now=NOW, attempt_window_s=86400,
                                           abandon_window_s=86400)
            assert [c.id for c in facts.consents] == ids
        assert await receipts_left(redis_url, key_prefix) == []
