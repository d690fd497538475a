"""The bulk consent path stores exactly what the record path stores.

``import_file`` hands the Redis store pre-encoded consents (``consent_pack.Pre``, written
by the validating pass) and, for a replace of distinct numbers, writes them with the
``PUT_FRESH`` script; ``import_consents`` of ``ConsentRecord`` values encodes them itself
and writes with ``PUT``. On mixed files (every accepted way of writing a number, offsets,
``Z``, microseconds, empty optional columns, non-ASCII and multi-chunk proofs, given and
derived ids, a file the fast pass hands to the generic reader, repeated numbers and
duplicate rows), the buckets and the dictionary are byte for byte the same, and the
memory store reads the same consents.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.client import NEVER_DECODE

from gateway.importer import ImportKind, import_file
from gateway.importer.run import SPECS, spool_batches, validate
from gateway.store import consent_pack
from gateway.store.base import ImportMode
from gateway.store.factory import open_store
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HEADER = ("number,professional,product_category,collected_at,expires_at,channel,proof_ref,"
          "withdrawn_at,timezone,agreed_slot_start,agreed_slot_end,consent_id,call_centre,"
          "address_region")
ROWS = [
    # canonical, every column
    "+33612345601,acme,energy,2025-01-01T10:00:00+01:00,2028-01-01T10:00:00Z,web,"
    "rec/1.wav,2025-06-01T00:00:00Z,Europe/Paris,2025-02-01T09:00:00+01:00,"
    "2025-02-01T09:30:00+01:00,crm-1,cc-1,67",
    # national form, derived id, no optional column
    "0612345602,acme,telecom,2025-01-01T10:00:00Z,2027-01-01T10:00:00Z,phone,,,,,,,,",
    # phonenumbers' form (the generic converter), microseconds, a Corsican département
    "06 12 34 56 03,energia,energy,2025-03-04T05:06:07.123456+02:00,"
    "2029-01-01T00:00:00.5Z,paper,rec/été/3.wav,,Europe/Paris,,,crm-3,cc-2,2a",
    # a proof of several listpack chunks, a far expiry
    "+33612345604,telco,insurance,2024-12-31T23:59:59-05:00,2099-01-01T00:00:00Z,web,"
    + "p" * 200 + ",,America/New_York,,,,cc-1,",
    # a number of another block (another bucket), a slot without a zone
    "+33798765405,acme,renovation,2025-01-01T10:00:00Z,2028-01-01T10:00:00Z,web,r5,,,"
    "2025-02-01T09:00:00Z,2025-02-01T09:30:00Z,crm-5,,971",
]
REPEATS = [
    # the same number, another professional: a second consent of number 1
    "+33612345601,energia,energy,2025-01-02T10:00:00Z,2028-01-01T10:00:00Z,web,r6,,,,,"
    "crm-6,,",
    # row 2 again (the same facts, national form written otherwise): a duplicate
    "+33612345602,acme,telecom,2025-01-01T10:00:00Z,2027-01-01T10:00:00Z,phone,,,,,,,,",
]
QUOTED = '"+33612345607",acme,energy,2025-01-01T10:00:00Z,2028-01-01T10:00:00Z,web,"r,7",,,,,,,'


def csv_file(rows: list[str], tmp_path: Path) -> Path:
    path = tmp_path / "consents.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
async def stores(redis_url: str, key_prefix: str) -> AsyncIterator[tuple[RedisStore, ...]]:
    made: list[RedisStore] = []
    for side in ("bulk", "records"):
        store = open_store(redis_url, key_prefix=f"{key_prefix}{side}", socket_timeout_s=5.0)
        assert isinstance(store, RedisStore)
        made.append(store)
    yield tuple(made)
    for store in made:
        await store.close()


async def records_of(path: Path) -> list[Any]:
    """The file's records as the generic reader converts them."""
    spec = SPECS[ImportKind.CONSENTS]
    with tempfile.TemporaryFile() as spool:
        validate(spec, path, spool=spool, fast=False)
        return [spec.unpack(p) async for batch in spool_batches(spool) for p in batch]


async def layout(store: RedisStore, match: str = "*") -> dict[str, Any]:
    """Every key of the store's prefix that ``match`` takes (prefix removed), its type
    and content."""
    client, prefix = store.conn.client, store.conn.keys.prefix
    out: dict[str, Any] = {}
    async for key in client.scan_iter(match=f"{prefix}:{match}"):
        name = key.decode() if isinstance(key, bytes) else key
        kind = await client.type(name)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "hash":
            value: Any = await client.execute_command("HGETALL", name, **{NEVER_DECODE: []})
        elif kind == "set":
            value = sorted(await client.smembers(name))
        else:
            value = await client.execute_command("DUMP", name)
        out[name[len(prefix):]] = (kind, value)
    return out


@pytest.mark.parametrize("rows", [ROWS, ROWS + REPEATS, [*ROWS, QUOTED], ROWS + REPEATS[:1]],
                         ids=["distinct", "repeated", "generic-reader", "same-number"])
async def test_bulk_import_stores_what_records_store(rows: list[str], tmp_path: Path,
                                                      stores: tuple[RedisStore, ...]) -> None:
    bulk, by_records = stores
    path = csv_file(rows, tmp_path)
    report = await import_file(bulk, ImportKind.CONSENTS, path, now=NOW,
                               mode=ImportMode.REPLACE)
    records = await records_of(path)
    assert report.rows_read == len(rows) and report.imported == report.size
    await by_records.import_consents(records, mode=ImportMode.REPLACE, now=NOW)
    written = await layout(bulk, "k*")
    assert any(k.startswith(":k:") for k in written)
    assert written == await layout(by_records, "k*")
    memory = MemoryStore()
    await import_file(memory, ImportKind.CONSENTS, path, now=NOW, mode=ImportMode.REPLACE)
    for e164 in sorted({r.e164 for r in records}):
        for professional in ("acme", "energia", "telco"):
            got = [await s.load_facts(e164=e164, professional=professional, campaign_id="c",
                                      now=NOW, attempt_window_s=60, abandon_window_s=60)
                   for s in (bulk, by_records, memory)]
            assert got[0].consents == got[1].consents == got[2].consents
            mine = sorted((r for r in records if r.e164 == e164
                           and r.professional == professional), key=lambda r: r.id)
            assert sorted(got[0].consents, key=lambda r: r.id) == list(
                {r.id: r for r in mine}.values())


async def test_a_fresh_write_sent_again_is_harmless(stores: tuple[RedisStore, ...]) -> None:
    """A pipeline of PUT_FRESH calls is sent again by redis-py after a lost connection or
    timeout, and by a NOSCRIPT replay on a Cluster: the calls that ran already find their
    fields set. That refusal aborted routine nightly replace imports (hostile review);
    now the same fields are set again, the record counted once per call."""
    store = stores[0]
    consents = store.consents
    meta = await store.conn.meta("begin", "consents", 0)
    pre = consent_pack.pre_encode((await records_of_rows(ROWS[:1]))[0])
    writes = await consents._prepare([pre], meta.seq, meta.seq, ImportMode.REPLACE, meta,
                                     await consents.chunk_size(), set(), fresh=True)
    assert await consents._send_all(writes) == 1
    stored = await _buckets(store, meta.seq)
    assert stored  # written
    assert await consents._send_all(writes) == 1  # the replay: no error, same count
    assert await _buckets(store, meta.seq) == stored  # the same fields, the same values


async def _buckets(store: RedisStore, gen: int) -> dict[bytes, dict[bytes, bytes]]:
    client, keys = store.conn.client, store.conn.keys
    out = {}
    for bucket in await client.smembers(keys.consent_index(gen)):
        key = keys.consent_bucket(int(bucket), gen)
        out[key.encode()] = await client.execute_command("HGETALL", key, **{NEVER_DECODE: []})
    return out


async def records_of_rows(rows: list[str]) -> list[Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return await records_of(csv_file(rows, Path(tmp)))
