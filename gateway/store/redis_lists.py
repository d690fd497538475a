"""Versioned list imports on Redis, and the purge of superseded versions.

An import (see keys.py for the layout):

1. ``begin`` hands out a new version ``v`` and marks it pending (invisible);
2. rows stream in pipelines of ``import_batch_size`` entries, each written as the field
   ``v|<list>|v|<id>`` of its number's hash, beside the entries of the live versions;
3. ``commit`` flips the list metadata in one step: replace makes ``v`` the only live
   version (``base = version = v``), merge adds ``v`` to the live range. Readers see the
   old list or the new one, never a mix. If the rows raise, ``abort`` marks ``v``
   aborted; if the process dies, ``v`` stays pending (invisible) until
   ``stale_import_s`` has passed and a purge marks it aborted;
4. ``purge_superseded`` SCANs the per-number hashes (``scan_count`` keys per step, on
   each primary for a cluster) and deletes fields of versions below ``base``, of
   aborted versions, and entries superseded by a newer live version.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import structlog

from gateway.core.model import ListInfo
from gateway.store import codec
from gateway.store.base import ImportMode, StoreError
from gateway.store.batches import batches
from gateway.store.codec import ListMeta
from gateway.store.keys import ENTRY, entry_field, entry_prefix
from gateway.store.redis_conn import RedisConn, _text, live_args, metas_from_hash

log = structlog.get_logger(__name__)

T = TypeVar("T")
Entry = tuple[str, str, str]  # (e164, entry id, encoded value)

# An import still pending after this long is considered dead (its writer crashed).
DEFAULT_STALE_IMPORT_S = 24 * 3600
# Keys asked per SCAN step of a purge.
DEFAULT_SCAN_COUNT = 1000


async def import_entries(
    conn: RedisConn, list_name: str, rows: AsyncIterable[T] | Iterable[T],
    encode: Callable[[T], Entry], *, mode: ImportMode, now: datetime, content_hash: str,
    batch_size: int,
) -> ListInfo:
    now_ms = codec.to_ms(now)
    async with conn.guard(f"import {list_name} (begin)"):
        meta = await conn.meta("begin", list_name, now_ms)
    version = meta.seq
    committed = False
    try:
        counted = 0
        async for batch in batches(rows, batch_size):
            entries = [encode(r) for r in batch]
            async with conn.guard(f"import {list_name} (write)"):
                counted += await _write(conn, list_name, version, entries, mode, meta)
        async with conn.guard(f"import {list_name} (commit)"):
            done = await conn.meta(
                "commit", list_name, version, mode.value, counted, content_hash, now_ms
            )
        committed = True
        log.info("store.import_committed", list=list_name, version=version, mode=mode.value,
                 rows=counted, size=done.size)
        return done.info()
    finally:
        if not committed:
            await _abort(conn, list_name, version)


async def _write(conn: RedisConn, list_name: str, version: int, entries: list[Entry],
                 mode: ImportMode, meta: ListMeta) -> int:
    """One pipeline per batch: on plain Redis a single script call writing every row;
    on a cluster one call per row (rows of different numbers are in different slots)."""
    keys = conn.keys
    chunk = 1 if conn.is_cluster else max(1, len(entries))
    calls: list[tuple[list[str], list[Any]]] = []
    for start in range(0, len(entries), chunk):
        part = entries[start:start + chunk]
        numbers = [keys.number(e164) for e164, _, _ in part]
        if mode is ImportMode.REPLACE:
            pairs = [x for _, eid, value in part
                     for x in (entry_field(list_name, version, eid), value)]
            calls.append((numbers, pairs))
        else:
            pairs = [x for _, eid, value in part for x in (eid, value)]
            calls.append((numbers, [entry_prefix(list_name), *live_args(meta), version, 0,
                                    *pairs]))
    script = conn.hset_entries if mode is ImportMode.REPLACE else conn.put_entries
    return sum(int(r) for r in await conn.eval_batch(script, calls))


async def _abort(conn: RedisConn, list_name: str, version: int) -> None:
    try:
        async with conn.guard(f"import {list_name} (abort)"):
            await conn.meta("abort", list_name, version)
        log.warning("store.import_aborted", list=list_name, version=version)
    except StoreError as exc:
        # the version stays pending (invisible); a purge after stale_import_s drops it
        log.error("store.import_abort_failed", list=list_name, version=version, error=str(exc))


async def put_single(conn: RedisConn, list_name: str, e164: str, entry_id: str, value: str,
                     *, now: datetime) -> bool:
    """Add one entry to the live version of a list unless it is there; True if added."""
    async with conn.guard(f"add to {list_name}"):
        meta = await conn.meta("ensure", list_name, codec.to_ms(now))
        added = await conn.put_entries(
            keys=[conn.keys.number(e164)],
            args=[entry_prefix(list_name), *live_args(meta), meta.version, 1, entry_id, value],
        )
        if int(added):
            await conn.meta("adjust", list_name, 1)
    return bool(int(added))


async def remove_single(conn: RedisConn, list_name: str, e164: str, entry_id: str) -> bool:
    async with conn.guard(f"remove from {list_name}"):
        metas = await conn.metas()
        meta = metas.get(list_name)
        removed = await conn.remove_entry(
            keys=[conn.keys.number(e164)],
            args=[entry_prefix(list_name), entry_id, *live_args(meta)],
        )
        if int(removed) and meta is not None:
            await conn.meta("adjust", list_name, -1)
    return bool(int(removed))


def garbage_fields(fields: Iterable[str], metas: dict[str, ListMeta]) -> list[str]:
    """Entry fields no reader can ever see again."""
    newest: dict[tuple[str, str], int] = {}
    parsed: list[tuple[str, str, str, int]] = []
    garbage: list[str] = []
    for field in fields:
        parts = field.split("|", 3)
        if len(parts) != 4 or parts[0] != ENTRY or not parts[2].isdigit():
            continue
        _, name, ver, entry_id = parts
        meta = metas.get(name)
        if meta is None:
            continue
        version = int(ver)
        if version < meta.base or version in meta.aborted:
            garbage.append(field)
        elif meta.live(version):
            parsed.append((field, name, entry_id, version))
            key = (name, entry_id)
            newest[key] = max(newest.get(key, 0), version)
    garbage.extend(f for f, name, eid, v in parsed if v < newest[(name, eid)])
    return garbage


async def purge_superseded(conn: RedisConn, *, now: datetime, stale_import_s: int,
                           scan_count: int) -> int:
    """Delete superseded entry versions; returns the number of fields deleted."""
    cutoff = codec.to_ms(now) - stale_import_s * 1000
    async with conn.guard("purge (metadata)"):
        for name, meta in (await conn.metas()).items():
            if any(started < cutoff for _, started in meta.pending):
                await conn.meta("expire", name, cutoff)
        metas = await conn.metas()
    deleted = 0
    targets: list[Any] = conn.client.get_primaries() if conn.is_cluster else [None]  # type: ignore[union-attr]
    for node in targets:
        cursor = 0
        while True:
            async with conn.guard("purge (scan)"):
                cursor, keys = await _scan(conn, node, cursor, scan_count)
                if keys:
                    deleted += await _purge_keys(conn, [_text(k) for k in keys], metas)
            if cursor == 0:
                break
    log.info("store.purge_done", fields_deleted=deleted)
    return deleted


async def _scan(conn: RedisConn, node: Any, cursor: int, count: int) -> tuple[int, list[Any]]:
    pattern = conn.keys.number_pattern()
    if node is None:
        result: Any = await conn.client.scan(cursor=cursor, match=pattern, count=count)
    else:
        result = await conn.client.execute_command(
            "SCAN", cursor, "MATCH", pattern, "COUNT", count, target_nodes=node
        )
    next_cursor, keys = result
    if isinstance(next_cursor, dict):  # cluster: ({node name: cursor}, keys)
        next_cursor = next(iter(next_cursor.values()))
    return int(next_cursor), list(keys)


async def _purge_keys(conn: RedisConn, keys: list[str], metas: dict[str, ListMeta]) -> int:
    pipe = conn.pipeline()
    for key in keys:
        pipe.hkeys(key)
    all_fields: list[Any] = await pipe.execute()
    pipe = conn.pipeline()
    count = 0
    for key, fields in zip(keys, all_fields, strict=True):
        garbage = garbage_fields((_text(f) for f in fields), metas)
        if garbage:
            pipe.hdel(key, *garbage)
            count += len(garbage)
    if count:
        await pipe.execute()
    return count


__all__ = ["garbage_fields", "import_entries", "metas_from_hash", "purge_superseded"]
