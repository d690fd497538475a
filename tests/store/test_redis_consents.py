"""Compact consents on Redis: listpack buckets, compaction, the former layout, readers
of other processes, crashed imports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.core.model import ConsentRecord
from gateway.store import codec, consent_pack, redis_lists
from gateway.store.base import ImportMode, StoreError
from gateway.store.factory import open_store
from gateway.store.keys import LIST_CONSENTS
from gateway.store.redis import RedisStore
from tests.store.test_redis import SendCounter

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
A = "+33612345678"
B = "+33698765432"
DAY = 86400


def consent(e164: str = A, cid: str = "c1", **kw: Any) -> ConsentRecord:
    base: dict[str, Any] = dict(
        id=cid, e164=e164, professional="acme", product_category="telecom",
        collected_at=NOW - timedelta(days=10), expires_at=NOW + timedelta(days=300),
        channel="web", proof_ref=f"proof-{cid}")
    base.update(kw)
    return ConsentRecord(**base)


def full(e164: str, cid: str, i: int = 0) -> ConsentRecord:
    """Every column filled."""
    return consent(e164, cid, withdrawn_at=NOW - timedelta(days=1), timezone="Europe/Paris",
                   agreed_slot_start=NOW + timedelta(days=2),
                   agreed_slot_end=NOW + timedelta(days=2, minutes=30),
                   call_centre=f"cc-{i % 4}", proof_ref=f"rec/2026/08/{i:09d}.wav")


def _redis(url: str, prefix: str, **kw: Any) -> RedisStore:
    store = open_store(url, key_prefix=prefix, socket_timeout_s=2.0, **kw)
    assert isinstance(store, RedisStore)
    return store


@pytest.fixture
async def rstore(redis_or_cluster_url: str, key_prefix: str) -> AsyncIterator[RedisStore]:
    store = _redis(redis_or_cluster_url, key_prefix)
    yield store
    await store.close()


async def facts(store: RedisStore, e164: str = A, professional: str = "acme") -> Any:
    return await store.load_facts(e164=e164, professional=professional, campaign_id="s",
                                  now=NOW, attempt_window_s=DAY, abandon_window_s=DAY)


async def bucket_of(store: RedisStore, e164: str, gen: int | None = None
                    ) -> tuple[str, dict[str, bytes]]:
    """The number's bucket in the live generation (or ``gen``) and its fields."""
    if gen is None:
        gen = (await store.conn.metas())[LIST_CONSENTS].base
    loc = store.consents.locate(e164, gen)
    assert loc is not None
    raw: dict[Any, Any] = await store.conn.client.execute_command(
        "HGETALL", loc[0], NEVER_DECODE=[])
    return loc[0], {k.decode(): v for k, v in raw.items()}


async def test_buckets_stay_listpacks_with_every_column(rstore: RedisStore) -> None:
    # 60 numbers of one bucket, 3 consents each (every column): values are split in
    # chunks no longer than hash-max-listpack-value
    numbers = [f"+3361234{i:04d}" for i in range(0, 600, 10)]
    rows = [full(n, f"crm-{j}-{i:06d}", i) for i, n in enumerate(numbers) for j in range(3)]
    info = await rstore.import_consents(rows, mode=ImportMode.REPLACE, now=NOW)
    assert info.size == 180
    key, fields = await bucket_of(rstore, numbers[0])
    assert await rstore.conn.client.object("encoding", key) == "listpack"
    assert len(fields) > len(numbers)  # chunks beyond the first
    assert max(len(v) for v in fields.values()) <= await rstore.consents.chunk_size()
    got = (await facts(rstore, numbers[7])).consents
    assert got == tuple(sorted((r for r in rows if r.e164 == numbers[7]),
                               key=lambda c: (c.collected_at, c.id)))


async def test_compaction_keeps_the_newest_live_record_only(rstore: RedisStore) -> None:
    first = await rstore.import_consents([consent(), consent(B, "b1")],
                                         mode=ImportMode.REPLACE, now=NOW)
    merged = await rstore.import_consents([consent(proof_ref="proof-v2")],
                                          mode=ImportMode.MERGE, now=NOW)
    _, fields = await bucket_of(rstore, A)
    (value,) = fields.values()
    assert [(p.version, consent_pack.decode_id(p.id)) for p in consent_pack.records(value)] == [
        (merged.version, "c1")]
    assert (await facts(rstore)).consents[0].proof_ref == "proof-v2"
    # a replace is built aside (a new generation); the superseded one is unlinked
    replaced = await rstore.import_consents([consent(B, "b1")], mode=ImportMode.REPLACE,
                                            now=NOW)
    key, fields = await bucket_of(rstore, A)
    assert fields == {} and await rstore.conn.client.exists(key) == 0
    old_key, old_fields = await bucket_of(rstore, A, first.version)
    assert old_fields == {} and await rstore.conn.client.exists(old_key) == 0
    assert await rstore.conn.client.exists(rstore.keys.consent_index(first.version)) == 0
    assert await rstore.conn.client.smembers(rstore.keys.consent_generations()) == {
        str(replaced.version)}
    assert (await facts(rstore, B)).consents == (consent(B, "b1"),)


async def test_a_merge_racing_a_replace_is_refused(rstore: RedisStore) -> None:
    """A merge that began before a replace committed wrote into the superseded
    generation: its commit is refused, the replace stands whole."""
    await rstore.import_consents([consent()], mode=ImportMode.REPLACE, now=NOW)
    replaced: list[int] = []

    async def rows() -> AsyncIterator[ConsentRecord]:
        yield consent(cid="merged")
        info = await rstore.import_consents([consent(B, "b1")], mode=ImportMode.REPLACE,
                                            now=NOW)
        replaced.append(info.version)

    with pytest.raises(StoreError, match="superseded"):
        await rstore.import_consents(rows(), mode=ImportMode.MERGE, now=NOW)
    (status,) = await rstore.lists_status()
    assert (status.version, status.size) == (replaced[0], 1)
    assert (await facts(rstore)).consents == ()
    assert (await facts(rstore, B)).consents == (consent(B, "b1"),)


async def test_the_former_layout_is_still_read_then_retired(rstore: RedisStore,
                                                             redis_or_cluster_url: str,
                                                           key_prefix: str) -> None:
    """A store written by the per-number JSON layout keeps working: its consents are read
    beside the compact ones (the compact record of an id wins), a withdrawal applies to
    both, and the next replace import retires them (purged from the number's hash)."""
    def encode(r: ConsentRecord) -> tuple[str, str, str]:
        return r.e164, r.id, codec.encode_consent(r)

    old = [consent(), consent(cid="c2", professional="other"), consent(B, "b1")]
    await redis_lists.import_entries(rstore.conn, LIST_CONSENTS, old, encode,
                                     mode=ImportMode.REPLACE, now=NOW, content_hash="",
                                     batch_size=10)
    reader = _redis(redis_or_cluster_url, key_prefix)  # another process, that never wrote anything
    try:
        assert (await facts(reader)).consents == (consent(),)
        assert (await facts(reader, professional="other")).consents == (
            consent(cid="c2", professional="other"),)
        await rstore.import_consents([consent(channel="phone"), consent(cid="c3")],
                                     mode=ImportMode.MERGE, now=NOW)
        assert [(c.id, c.channel) for c in (await facts(reader)).consents] == [
            ("c1", "phone"), ("c3", "web")]
        assert await reader.withdraw_consent(e164=A, professional=None, at=NOW) == 3
        assert all(c.withdrawn_at == NOW for c in (await facts(reader)).consents)
        await rstore.import_consents([consent(B, "b2")], mode=ImportMode.REPLACE, now=NOW)
        assert (await facts(reader)).consents == ()
        assert [c.id for c in (await facts(reader, B)).consents] == ["b2"]
        for e164 in (A, B):
            fields = await rstore.conn.client.hkeys(rstore.keys.number(e164))
            assert not [f for f in fields if f.startswith("v|consents|")]
    finally:
        await reader.close()


async def test_a_reader_of_another_process_confirms_new_consents_once(
        redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = _redis(redis_url, key_prefix)
    reader = _redis(redis_url, key_prefix)
    try:
        await writer.import_consents([full(A, "c1")], mode=ImportMode.REPLACE, now=NOW)
        await reader.ping()
        counter = SendCounter(monkeypatch)
        # first read of this process: confirmed by a second read with the dictionary
        assert (await facts(reader)).consents == (full(A, "c1"),)
        assert counter.sends == 2
        counter.sends = 0
        assert (await facts(reader)).consents == (full(A, "c1"),)
        assert counter.sends == 1
        # an import elsewhere, with a new term: one confirming read, then one again
        await writer.import_consents([consent(cid="c2", channel="door-to-door")],
                                     mode=ImportMode.MERGE, now=NOW)
        counter.sends = 0
        assert [c.channel for c in (await facts(reader)).consents] == ["web", "door-to-door"]
        assert counter.sends == 2
        counter.sends = 0
        await facts(reader)
        assert counter.sends == 1
    finally:
        await writer.close()
        await reader.close()


async def test_a_crashed_import_stays_invisible_then_is_dropped(rstore: RedisStore) -> None:
    await rstore.import_consents([consent()], mode=ImportMode.REPLACE, now=NOW)
    # a process that wrote part of an import and died before its commit
    meta = await rstore.conn.meta("begin", LIST_CONSENTS, codec.to_ms(NOW))
    ghosts = [consent_pack.pre_encode(r) for r in (consent(cid="ghost"), consent(B, "ghost"))]
    calls = await rstore.consents._prepare(ghosts,
                                           meta.seq, meta.base, ImportMode.MERGE, meta,
                                           await rstore.consents.chunk_size(), set())
    await rstore.consents._send_all(calls)
    assert [c.id for c in (await facts(rstore)).consents] == ["c1"]
    assert (await facts(rstore, B)).consents == ()
    # the next purge after stale_import_s marks it aborted and drops its records
    await rstore.purge_superseded(now=NOW + timedelta(days=2))
    key, fields = await bucket_of(rstore, B)
    assert await rstore.conn.client.exists(key) == 0
    _, fields = await bucket_of(rstore, A)
    assert [consent_pack.decode_id(p.id)
            for v in fields.values() for p in consent_pack.records(v)] == ["c1"]
    # and a later merge does not resurrect it
    await rstore.import_consents([consent(cid="c2")], mode=ImportMode.MERGE,
                                 now=NOW + timedelta(days=2))
    assert [c.id for c in (await facts(rstore)).consents] == ["c1", "c2"]


async def test_a_merge_begun_during_a_replace_and_committed_after_it_is_refused(
        rstore: RedisStore) -> None:
    await rstore.import_consents([consent()], mode=ImportMode.REPLACE, now=NOW)
    began = {"replace": asyncio.Event(), "merge": asyncio.Event()}
    go = {"replace": asyncio.Event(), "merge": asyncio.Event()}

    def rows(kind: str, row: ConsentRecord) -> AsyncIterator[ConsentRecord]:
        async def gen() -> AsyncIterator[ConsentRecord]:
            began[kind].set()  # the import's version is handed out before its rows
            await go[kind].wait()
            yield row
        return gen()

    replace = asyncio.create_task(rstore.import_consents(
        rows("replace", consent(B, "b1")), mode=ImportMode.REPLACE, now=NOW))
    await began["replace"].wait()
    merge = asyncio.create_task(rstore.import_consents(
        rows("merge", consent(cid="merged")), mode=ImportMode.MERGE, now=NOW))
    await began["merge"].wait()
    go["replace"].set()
    replaced = await replace
    go["merge"].set()
    with pytest.raises(StoreError, match="superseded"):
        await merge
    assert await rstore.lists_status() == [replaced]
    assert (await facts(rstore)).consents == ()
    assert (await facts(rstore, B)).consents == (consent(B, "b1"),)
    assert await rstore.conn.client.smembers(rstore.keys.consent_generations()) == {
        str(replaced.version)}
