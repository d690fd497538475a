"""Compact opposition lists on Redis: integer buckets per generation, atomic swap.

Layout (docs/store.md): a number ``n`` (E.164 digits as an integer) is the member
``n % 10000`` of bucket ``n // 10000``. Generation ``g`` of list ``<source>`` keeps the
bucket in ``<p>:o:{<source>.<bucket>}:<g>`` (an intset while it holds at most the
intset limit) or ``<p>:o:{<source>.<bucket>}:<g>b`` (a 1,250-byte bitmap above it); the
hash tag holds the list and the bucket, so every generation of a bucket is on one slot
and buckets spread over the cluster. ``<p>:ox:<source>:<g>`` (SET of bucket numbers) is
the generation's index: cleanup UNLINKs exactly its buckets, no SCAN.

An import hands out a pending version ``g`` (LIST_META ``begin``), writes the index
then the buckets, and ``swap`` makes ``g`` live in one HSET of the list metadata
(replace: the only generation; merge: one more). Readers read the buckets of the
generations they last saw *before* the metadata in the same pipeline, and re-read only
if the metadata moved on, so they see one generation set, never a mix. Superseded
generations are UNLINKed once ``retire_grace_s`` has passed (longer than any decision).

Numbers added one by one (``opposition add``, do_not_call / wrong_number outcomes) are
the field ``o|<source>`` of the number's hash: no import replaces them.
"""

from __future__ import annotations

import asyncio
import sys
import time
from array import array
from collections.abc import AsyncIterable, Iterable
from datetime import datetime
from typing import Any

import structlog

from gateway.core.model import ListInfo
from gateway.store import codec
from gateway.store.base import ImportMode, OppositionRow, StoreError
from gateway.store.batches import batches
from gateway.store.codec import ListMeta
from gateway.store.compact import (
    DEFAULT_INTSET_ENTRIES,
    CompactNumbers,
    bitmap_threshold,
    number_int,
    split,
)
from gateway.store.keys import OPPOSITION_PREFIX, tag
from gateway.store.redis_conn import RedisConn, _text
from gateway.store.redis_opposition_lua import ADD_BUCKETS, OPP_META, REMOVE_MEMBER

log = structlog.get_logger(__name__)

#: Numbers grouped per write round (bounds the importer's memory).
IMPORT_RUN_NUMBERS = 200_000
#: Buckets written per script call on plain Redis/Sentinel (a cluster: one per call).
BUCKETS_PER_CALL = 256
#: Script calls per pipeline.
CALLS_PER_PIPELINE = 64
#: A superseded generation is deleted this long after the swap.
DEFAULT_RETIRE_GRACE_S = 2.0
#: Live generations of one list (one replace + merges); a merge beyond is refused.
MAX_GENERATIONS = 16
#: Bucket keys deleted per pipeline during cleanup.
CLEANUP_BATCH = 1000
INDIVIDUAL = "o"  # per-number hash field ``o|<source>``: added one by one

def source_of(list_name: str) -> str:
    return list_name[len(OPPOSITION_PREFIX):]


def bucket_keys(conn: RedisConn, source: str, bucket: int, gen: int) -> tuple[str, str]:
    head, tail, bitmap_tail = bucket_key_parts(conn, source, gen)
    return f"{head}{bucket}{tail}", f"{head}{bucket}{bitmap_tail}"


def bucket_key_parts(conn: RedisConn, source: str, gen: int) -> tuple[str, str, str]:
    """The bucket keys of one generation around the bucket number: (head, the set's
    tail, the bitmap's tail); a batched read builds them once, not once per number."""
    head = f"{conn.keys.prefix}:o:{{{tag(source)}."
    return head, f"}}:{gen}", f"}}:{gen}b"


def index_key(conn: RedisConn, source: str, gen: int) -> str:
    return f"{conn.keys.prefix}:ox:{tag(source)}:{gen}"


class Compact:
    """The compact-list operations of one RedisStore (scripts registered once)."""

    def __init__(self, conn: RedisConn, *, retire_grace_s: float) -> None:
        self.conn = conn
        self.retire_grace_s = retire_grace_s
        self.add_buckets = conn.client.register_script(ADD_BUCKETS)
        self.remove_member = conn.client.register_script(REMOVE_MEMBER)
        self.opp_meta = conn.client.register_script(OPP_META)
        self._threshold: int | None = None
        self.timings: dict[str, float] = {}  # last import's phases (s): swap, cleanup

    async def meta_op(self, op: str, name: str, *args: Any) -> ListMeta:
        status, payload = await self.opp_meta(keys=[self.conn.keys.lists()],
                                              args=[op, name, *args])
        if _text(status) != "OK":
            raise StoreError(f"list {name}: {_text(payload)}")
        return ListMeta.from_json(name, _text(payload))

    async def threshold(self) -> int:
        """Bitmap threshold from the server's ``set-max-intset-entries`` (512 if unreadable)."""
        if self._threshold is None:
            entries = DEFAULT_INTSET_ENTRIES
            try:
                raw: Any = await self.conn.client.config_get("set-max-intset-entries")
                values = list(raw.values()) if isinstance(raw, dict) else []
                if values and isinstance(values[0], dict):  # cluster: per node
                    values = [v for d in values for v in d.values()]
                if values:
                    entries = min(int(_text(v)) for v in values)
            except Exception:  # noqa: BLE001 -- CONFIG may be renamed/refused: use the default
                entries = DEFAULT_INTSET_ENTRIES
            self._threshold = bitmap_threshold(entries)
        return self._threshold

    # --- import ---------------------------------------------------------------------

    async def import_rows(self, list_name: str, rows: AsyncIterable[OppositionRow]
                          | Iterable[OppositionRow] | CompactNumbers, *, mode: ImportMode,
                          now: datetime, content_hash: str) -> tuple[ListInfo, tuple[int, ...]]:
        """Build a generation aside and swap it in; returns the list and its generations.

        ``rows`` may be a :class:`CompactNumbers` already grouped by bucket (the fast
        importer's output): its members are sent as they are, packed, no per-number work.
        """
        conn = self.conn
        source = source_of(list_name)
        now_ms = codec.to_ms(now)
        async with conn.guard(f"import {list_name} (begin)"):
            meta = await conn.meta("begin", list_name, now_ms)
            threshold = await self.threshold()
        gen = meta.seq
        older = meta.gens if mode is ImportMode.MERGE else ()
        committed = False
        added = 0
        try:
            if isinstance(rows, CompactNumbers):
                added = await self._write_compact(source, gen, older, rows, threshold)
            else:
                added = await self._write_rows(source, gen, older, rows, threshold)
            started = time.perf_counter()
            async with conn.guard(f"import {list_name} (swap)"):
                done = await self.meta_op("swap", list_name, gen, mode.value, added,
                                          content_hash, now_ms, MAX_GENERATIONS)
            committed = True
            self.timings["swap"] = time.perf_counter() - started
        finally:
            if not committed:
                await self._abort(list_name, gen)
        log.info("store.import_committed", list=list_name, version=gen, mode=mode.value,
                 added=added, size=done.size)
        if self.retire_grace_s > 0:
            await asyncio.sleep(self.retire_grace_s)
        started = time.perf_counter()
        await self.cleanup(list_name)
        self.timings["cleanup"] = time.perf_counter() - started
        return done.info(), done.gens

    async def _write_rows(self, source: str, gen: int, older: tuple[int, ...],
                          rows: AsyncIterable[OppositionRow] | Iterable[OppositionRow],
                          threshold: int) -> int:
        added = held = 0
        run: dict[int, list[int]] = {}
        async for batch in batches(rows, 4096):
            for r in batch:
                if not r.e164:
                    raise ValueError("opposition row without number")
                bucket, member = split(number_int(r.e164))
                run.setdefault(bucket, []).append(member)
            held += len(batch)
            if held >= IMPORT_RUN_NUMBERS:
                added += await self._write_run(source, gen, older, _packed(run), threshold)
                run, held = {}, 0
        if run:
            added += await self._write_run(source, gen, older, _packed(run), threshold)
        return added

    async def _write_compact(self, source: str, gen: int, older: tuple[int, ...],
                             numbers: CompactNumbers, threshold: int) -> int:
        added = held = 0
        run: dict[int, bytes] = {}
        for bucket, members in numbers.buckets():
            run[bucket] = _pack(members)
            held += len(members)
            if held >= IMPORT_RUN_NUMBERS:
                added += await self._write_run(source, gen, older, run, threshold)
                run, held = {}, 0
        if run:
            added += await self._write_run(source, gen, older, run, threshold)
        return added

    async def _write_run(self, source: str, gen: int, older: tuple[int, ...],
                         run: dict[int, bytes], threshold: int) -> int:
        conn = self.conn
        buckets = sorted(run)
        async with conn.guard(f"import opposition:{source} (index)"):
            for start in range(0, len(buckets), 10_000):
                await conn.client.sadd(index_key(conn, source, gen),
                                       *buckets[start:start + 10_000])
        added = 0
        per_call = 1 if conn.is_cluster else BUCKETS_PER_CALL
        calls: list[tuple[list[str], list[Any]]] = []
        for start in range(0, len(buckets), per_call):
            keys: list[str] = []
            args: list[Any] = [threshold, len(older)]
            for bucket in buckets[start:start + per_call]:
                keys.extend(bucket_keys(conn, source, bucket, gen))
                for g in older:
                    keys.extend(bucket_keys(conn, source, bucket, g))
                args.append(run[bucket])
            calls.append((keys, args))
            if len(calls) >= CALLS_PER_PIPELINE:
                added += await self._send(source, calls)
                calls = []
        if calls:
            added += await self._send(source, calls)
        return added

    async def _send(self, source: str, calls: list[tuple[list[str], list[Any]]]) -> int:
        async with self.conn.guard(f"import opposition:{source} (write)"):
            return sum(int(r) for r in await self.conn.eval_batch(self.add_buckets, calls))

    async def _abort(self, list_name: str, gen: int) -> None:
        try:
            async with self.conn.guard(f"import {list_name} (abort)"):
                await self.conn.meta("abort", list_name, gen)
            log.warning("store.import_aborted", list=list_name, version=gen)
            await self.delete_generation(source_of(list_name), gen)
        except StoreError as exc:
            # stays pending (invisible); purge expires it and deletes its buckets later
            log.error("store.import_abort_failed", list=list_name, version=gen, error=str(exc))

    # --- cleanup ----------------------------------------------------------------------

    async def delete_generation(self, source: str, gen: int) -> int:
        """UNLINK every bucket of one generation through its index; returns buckets."""
        conn = self.conn
        ix = index_key(conn, source, gen)
        deleted = 0
        cursor = 0
        while True:
            async with conn.guard("cleanup (index)"):
                cursor, members = await conn.client.sscan(ix, cursor=cursor, count=CLEANUP_BATCH)
            if members:
                pipe = conn.pipeline()
                for m in members:
                    pipe.execute_command("UNLINK", *bucket_keys(conn, source, int(_text(m)), gen))
                async with conn.guard("cleanup (unlink)"):
                    await pipe.execute()
                deleted += len(members)
            if int(cursor) == 0:
                break
        async with conn.guard("cleanup (index)"):
            await conn.client.unlink(ix)
        return deleted

    async def cleanup(self, list_name: str | None = None, *, now_ms: int | None = None) -> int:
        """Delete retired generations past the grace and aborted ones."""
        async with self.conn.guard("cleanup (metadata)"):
            metas = await self.conn.metas()
        cutoff = (now_ms if now_ms is not None else _now_ms()) - int(self.retire_grace_s * 1000)
        deleted = 0
        for name, meta in metas.items():
            if not name.startswith(OPPOSITION_PREFIX) or (list_name and name != list_name):
                continue
            for gen, retired_at in meta.retired:
                if retired_at <= cutoff:
                    deleted += await self.delete_generation(source_of(name), gen)
                    async with self.conn.guard("cleanup (metadata)"):
                        await self.meta_op("forget", name, gen)
            for gen in meta.aborted:
                deleted += await self.delete_generation(source_of(name), gen)
        if deleted:
            log.info("store.generations_deleted", buckets=deleted)
        return deleted

    async def drop(self, list_name: str) -> bool:
        """Delete every generation of a list and its metadata (``lists drop``)."""
        async with self.conn.guard(f"drop {list_name}"):
            meta = (await self.conn.metas()).get(list_name)
        if meta is None:
            return False
        source = source_of(list_name)
        gens = {*meta.gens, *(g for g, _ in meta.retired), *meta.aborted,
                *(v for v, _ in meta.pending)}
        async with self.conn.guard(f"drop {list_name}"):
            await self.conn.client.hdel(self.conn.keys.lists(), list_name)
        for gen in sorted(gens):  # after the metadata: no reader looks at them any more
            await self.delete_generation(source, gen)
        log.info("store.list_dropped", list=list_name, generations=len(gens))
        return True

    # --- one by one -------------------------------------------------------------------

    async def remove(self, list_name: str, e164: str, meta: ListMeta | None) -> bool:
        if meta is None or not meta.gens:
            return False
        bucket, member = split(number_int(e164))
        keys: list[str] = []
        for g in meta.gens:
            keys.extend(bucket_keys(self.conn, source_of(list_name), bucket, g))
        removed = int(await self.remove_member(keys=keys, args=[member]))
        if removed:
            await self.meta_op("size", list_name, -1)
        return bool(removed)


def _pack(members: list[int] | array[int]) -> bytes:
    """Members as unsigned 16-bit little-endian integers (one script argument)."""
    if sys.byteorder == "big" or not isinstance(members, array):
        arr = array("H", members)
        if sys.byteorder == "big":
            arr.byteswap()
        return arr.tobytes()
    return members.tobytes()


def _packed(run: dict[int, list[int]]) -> dict[int, bytes]:
    """Distinct members per bucket (the script counts a whole new bucket as new members)."""
    return {bucket: _pack(sorted(set(members))) for bucket, members in run.items()}


def _now_ms() -> int:
    return int(time.time() * 1000)
