"""Compact consents on Redis: one listpack hash per bucket of numbers, packed records.

Layout (docs/store.md, keys.py): a number ``n`` (E.164 digits as an integer) is the field
``n % 10000`` of the bucket hash ``<p>:k:{k<n // 10000>}:<gen>`` (the tag spreads buckets
over Cluster slots; ``gen`` is the list's ``base``, the version of its last replace); its
value is the concatenation of the number's consent records (``consent_pack.py``), each
carrying the list version that wrote it. A value longer than the server's
``hash-max-listpack-value`` is split over the fields ``<mod>.1``, ``<mod>.2``..., so
buckets stay listpacks. ``<p>:kd`` is the dictionary (professionals, categories,
channels, time zones, call centres -> small ids), ``<p>:kx:<gen>`` the index of a
generation's buckets and ``<p>:kg`` the generations that have one (no SCAN anywhere).

Versions work as for the other lists (redis_lists.py): ``begin`` hands out a pending
version, ``commit`` switches the list metadata in one step, an aborted or crashed import
stays invisible. A replace builds a new generation aside and the superseded one is
UNLINKed after the commit; a merge writes into the live generation beside the records
of older versions (readers keep, per consent id, the newest live one), its touched
buckets are compacted after the commit, and it is refused if a replace was committed
since it began.

Readers read the number's bucket fields *before* the list metadata in the decision's
pipeline; when the consent metadata differs from the one they saw before sending (an
import committed meanwhile, or the first decision of a process), they read the fields
again with the dictionary and the metadata after them, so a reader never pairs records
read before a commit with the metadata after it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from redis.client import NEVER_DECODE

from gateway.core.model import ConsentRecord, ListInfo
from gateway.store import codec, consent_pack
from gateway.store.base import ImportMode, StoreError, StoreUnavailable
from gateway.store.batches import batches
from gateway.store.codec import ListMeta
from gateway.store.compact import BUCKET_SPAN, number_int, split
from gateway.store.keys import LIST_CONSENTS
from gateway.store.redis_conn import RedisConn, _text, live_args, metas_from_hash
from gateway.store.redis_consents_lua import (
    COMPACT,
    CONSENT_META,
    INTERN,
    PUT,
    PUT_FIRST,
    PUT_FRESH,
)

log = structlog.get_logger(__name__)

#: Chunk fields of a number read by the decision's pipeline (more: one more read).
CHUNK_READS = 4
#: Redis ``hash-max-listpack-value`` default: the chunk size when CONFIG is refused.
DEFAULT_LISTPACK_VALUE = 64
#: Smallest chunk written, whatever the server's setting.
MIN_CHUNK = 16
#: Consent rows encoded per write round (bounds the importer's memory). A run's writes go
#: out while the next run is encoded: small enough that a 100 000-row file has runs to
#: overlap (with one run, redis-server and this process worked in turn).
IMPORT_RUN_ROWS = 10_000
#: Rows written per script call on plain Redis/Sentinel (a cluster: one bucket per call).
ROWS_PER_CALL = 512
#: Script calls per pipeline.
CALLS_PER_PIPELINE = 32
#: Rows encoded between two yields to the event loop (the previous run's writes).
ENCODE_SLICE = 1024
#: Buckets compacted per pipeline.
COMPACT_BATCH = 500
#: Re-reads of a number's consents when the consent metadata moved during a decision.
MAX_CONSENT_REREADS = 3

State = tuple[int, int, str] | None


@dataclass(frozen=True, slots=True)
class _Writes:
    """One run's writes: calls (keys, arguments) of PUT, PUT_FRESH for a fresh run, or
    PUT_FIRST (with ``again``: the same calls for PUT, sent for those it refuses)."""

    script: Any
    calls: list[tuple[list[str], list[Any]]]
    receipts: list[tuple[str, str]]  # PUT: (first key, receipt field) of each call
    again: list[tuple[list[str], list[Any]]] | None = None


def state_of(meta: ListMeta | None) -> State:
    """What a reader must have seen for its records to match the metadata."""
    return None if meta is None else (meta.base, meta.version, meta.excluded())


def gen_of(meta: ListMeta | None) -> int:
    """The generation readers read: the version of the list's last replace (its base)."""
    return 0 if meta is None else meta.base


def chunk_fields(member: int, start: int, count: int) -> list[str]:
    return [str(member) if i == 0 else f"{member}.{i}" for i in range(start, start + count)]


class Consents:
    """The compact consent operations of one RedisStore (scripts registered once)."""

    def __init__(self, conn: RedisConn, *, retire_grace_s: float) -> None:
        self.conn = conn
        self.retire_grace_s = retire_grace_s
        self.put = conn.client.register_script(PUT)
        self.put_fresh = conn.client.register_script(PUT_FRESH)
        self.put_first = conn.client.register_script(PUT_FIRST)
        self.compact_script = conn.client.register_script(COMPACT)
        self.intern = conn.client.register_script(INTERN)
        self.list_meta = conn.client.register_script(CONSENT_META)
        self.ids: dict[str, int] = {}  # "<kind>:<term>" -> id
        self.terms: dict[int, str] = {}  # id -> term
        self.seen: State = None  # consent metadata of the last confirmed read
        self.run_rows = IMPORT_RUN_ROWS
        self._chunk: int | None = None

    # --- reads ------------------------------------------------------------------------

    def locate(self, e164: str, gen: int) -> tuple[str, int] | None:
        try:
            bucket, member = split(number_int(e164))
        except ValueError:
            return None
        return self.conn.keys.consent_bucket(bucket, gen), member

    def queue_read(self, pipe: Any, e164: str, gen: int | None = None) -> None:
        """One HMGET of the number's first chunks (always exactly one command), in the
        generation last seen unless ``gen`` is given."""
        try:
            place: tuple[int, int] | None = split(number_int(e164))
        except ValueError:
            place = None
        self.queue_read_at(pipe, place, gen)

    def queue_read_at(self, pipe: Any, place: tuple[int, int] | None,
                      gen: int | None = None) -> None:
        """:meth:`queue_read` of a number's (bucket, member) when the caller has it
        (None: not a number)."""
        if gen is None:
            gen = 0 if self.seen is None else self.seen[0]
        if place is None:  # not a number: no consent can be stored for it
            key, fields = self.conn.keys.consent_bucket(-1, gen), ["-"]
        else:
            key, fields = (self.conn.keys.consent_bucket(place[0], gen),
                           chunk_fields(place[1], 0, CHUNK_READS))
        # binary values: never decoded as text, whatever the client's decode_responses
        pipe.execute_command("HMGET", key, *fields, **{NEVER_DECODE: []})

    async def assemble(self, e164s: Sequence[str], replies: Sequence[Any],
                       meta: ListMeta | None) -> list[bytes]:
        """The values of the numbers from their HMGET replies (reads on past the chunks
        read at first: a number holding more is rare, and costs one more round trip)."""
        out: list[bytes] = []
        for e164, reply in zip(e164s, replies, strict=True):
            parts = _prefix(reply)
            if not parts:  # most numbers: no consent
                out.append(b"")
                continue
            loc = self.locate(e164, gen_of(meta))
            while loc is not None and len(parts) % CHUNK_READS == 0 and parts:
                more = _prefix(await self.conn.client.execute_command(
                    "HMGET", loc[0], *chunk_fields(loc[1], len(parts), CHUNK_READS),
                    **{NEVER_DECODE: []}))
                if not more:
                    break
                parts.extend(more)
            out.append(b"".join(parts))
        return out

    async def settle(self, e164s: Sequence[str], replies: list[Any], before: State,
                     metas: dict[str, ListMeta]) -> tuple[list[Any], ListMeta | None]:
        """Replies consistent with the consent metadata read after them (see the module
        docstring); returns them and that metadata."""
        meta = metas.get(LIST_CONSENTS)
        for _ in range(MAX_CONSENT_REREADS + 1):
            now = state_of(meta)
            if now == before:
                self.seen = now
                return replies, meta
            pipe = self.conn.pipeline()
            for e164 in e164s:
                self.queue_read(pipe, e164, gen_of(meta))
            pipe.hgetall(self.conn.keys.consent_dictionary())
            pipe.hgetall(self.conn.keys.lists())
            *replies, terms, lists = await pipe.execute()
            self._learn(terms)
            before, meta = now, metas_from_hash(lists).get(LIST_CONSENTS)
        raise StoreUnavailable("consents kept changing during the read")

    async def decode(self, e164: str, data: bytes, meta: ListMeta | None
                     ) -> list[ConsentRecord]:
        """The newest live record of each consent id of one number."""
        if not data or meta is None:
            return []
        newest: dict[bytes, consent_pack.Packed] = {}
        try:
            for p in consent_pack.records(data):
                if meta.live(p.version):
                    held = newest.get(p.id)
                    if held is None or held.version < p.version:
                        newest[p.id] = p
            try:
                return [consent_pack.decode(p, e164, self.terms) for p in newest.values()]
            except KeyError:  # a term interned by another process since we last looked
                await self.load_terms()
                return [consent_pack.decode(p, e164, self.terms) for p in newest.values()]
        except (consent_pack.PackError, KeyError, UnicodeDecodeError) as exc:
            # fail closed: the decision cannot be made on records we cannot read
            raise StoreUnavailable(f"consents of a number cannot be decoded: {exc!r}") from exc

    async def load_terms(self) -> None:
        self._learn(await self.conn.client.hgetall(self.conn.keys.consent_dictionary()))

    def _learn(self, raw: dict[Any, Any]) -> None:
        for k, v in raw.items():
            key = _text(k)
            if key == "#":
                continue
            ident = int(_text(v))
            self.ids[key] = ident
            self.terms[ident] = key.split(":", 1)[1]

    # --- import -----------------------------------------------------------------------

    async def chunk_size(self) -> int:
        """The server's ``hash-max-listpack-value`` (the smallest over a cluster)."""
        if self._chunk is None:
            value = DEFAULT_LISTPACK_VALUE
            try:
                raw: Any = await self.conn.client.config_get("hash-max-listpack-value")
                values = list(raw.values()) if isinstance(raw, dict) else []
                if values and isinstance(values[0], dict):  # cluster: per node
                    values = [v for d in values for v in d.values()]
                if values:
                    value = min(int(_text(v)) for v in values)
            except Exception:  # noqa: BLE001 -- CONFIG may be renamed/refused: use the default
                value = DEFAULT_LISTPACK_VALUE
            self._chunk = max(MIN_CHUNK, value)
        return self._chunk

    async def import_rows(self, rows: AsyncIterable[ConsentRecord] | Iterable[ConsentRecord],
                          *, mode: ImportMode, now: datetime, content_hash: str
                          ) -> tuple[ListInfo, set[int]]:
        """Write a version and commit it; returns the list and the buckets touched.

        A replace builds a new generation aside (new bucket keys: nothing to merge);
        a merge writes into the live generation, and is refused at its commit when a
        replace was committed since it began (its records would be in the old one)."""
        conn = self.conn
        now_ms = codec.to_ms(now)
        async with conn.guard("import consents (begin)"):
            meta = await conn.meta("begin", LIST_CONSENTS, now_ms)
            chunk = await self.chunk_size()
        version = meta.seq
        gen = version if mode is ImportMode.REPLACE or not meta.base else meta.base
        expected_base = "" if mode is ImportMode.REPLACE else str(meta.base)
        touched: set[int] = set()
        committed = False
        # a replace of records with distinct numbers, in its own new generation: no number
        # has anything stored to merge with, so its fields are written as they are
        fresh = (mode is ImportMode.REPLACE and isinstance(rows, consent_pack.PreEncoded)
                 and rows.unique_numbers is True)
        # rows still being validated (an overlapped replace): whether a number repeats is
        # not known yet, each call is checked as it is written (PUT_FIRST)
        checked = (mode is ImportMode.REPLACE and isinstance(rows, consent_pack.PreEncoded)
                 and rows.unique_numbers is None)
        # the writes of one run go out while the next run is encoded (redis-server and
        # this process work at the same time); runs are written in order
        inflight: asyncio.Task[int] | None = None
        receipts = itertools.count()  # PUT's receipts: one per call of this import
        spent: list[tuple[str, str]] = []  # and where they are, removed after the commit
        try:
            async with conn.guard("import consents (generation)"):
                await conn.client.sadd(conn.keys.consent_generations(), gen)
            counted = 0
            async for batch in _runs(rows, self.run_rows):
                writes = await self._prepare(batch, version, gen, mode, meta, chunk, touched,
                                             fresh=fresh, checked=checked, receipts=receipts)
                spent.extend(writes.receipts)
                if inflight is not None:
                    counted += await inflight
                inflight = asyncio.create_task(self._send_all(writes))
            if inflight is not None:
                counted += await inflight
            if isinstance(rows, consent_pack.PreEncoded) and rows.content_hash is not None:
                content_hash = rows.content_hash  # known once the whole file was read
            async with conn.guard("import consents (commit)"):
                status, payload = await self.list_meta(
                    keys=[conn.keys.lists()],
                    args=["commit", LIST_CONSENTS, version, mode.value, counted, content_hash,
                          now_ms, expected_base])
                if _text(status) != "OK":
                    raise StoreError(f"list {LIST_CONSENTS}: {_text(payload)}")
                done = ListMeta.from_json(LIST_CONSENTS, _text(payload))
            committed = True
            # every version live in it was written before: this process's next reads
            # need no confirming re-read
            self.seen = state_of(done)
        finally:
            if inflight is not None and not inflight.done():
                await asyncio.wait([inflight])  # its writes land before the abort
            if inflight is not None and not inflight.cancelled():
                inflight.exception()  # raised above, or superseded by the rows' error
            if not committed:
                await self._abort(version, gen, touched)
        log.info("store.import_committed", list=LIST_CONSENTS, version=version,
                 mode=mode.value, rows=counted, size=done.size)
        await self._drop_receipts(spent)
        return done.info(), touched

    async def _drop_receipts(self, spent: list[tuple[str, str]]) -> None:
        """HDEL the receipts of a committed import (nothing replays its calls now); one
        left behind (a failure here, a crash) is removed by the next COMPACT of its bucket
        and never read by readers."""
        try:
            for start in range(0, len(spent), COMPACT_BATCH):
                pipe = self.conn.pipeline()
                for key, receipt in spent[start:start + COMPACT_BATCH]:
                    pipe.hdel(key, receipt)
                async with self.conn.guard("import consents (receipts)"):
                    await pipe.execute()
        except StoreError as exc:
            log.warning("store.receipts_left", list=LIST_CONSENTS, error=str(exc))

    async def _prepare(self, batch: list[consent_pack.Pre], version: int, gen: int,
                       mode: ImportMode, meta: ListMeta, chunk: int, touched: set[int],
                       *, fresh: bool = False, checked: bool = False,
                       receipts: Iterator[int] | None = None) -> _Writes:
        """Encode one run into script calls (terms interned, new buckets indexed); with
        ``fresh`` (see import_rows), into plain HSETs of each number's chunks; with
        ``checked``, into PUT_FIRST calls and the same calls for PUT."""
        conn = self.conn
        ids = self.ids
        receipts = itertools.count() if receipts is None else receipts
        combos = {pre[2] for pre in batch}  # distinct terms: a handful per file
        missing = {key for terms in combos for key in consent_pack.term_keys(terms)
                   if key not in ids}
        if missing:
            wanted = sorted(missing)
            async with conn.guard("import consents (dictionary)"):
                got = await self.intern(keys=[conn.keys.consent_dictionary()], args=wanted)
            for key, ident in zip(wanted, got, strict=True):
                ids[key] = int(ident)
                self.terms[int(ident)] = key.split(":", 1)[1]
        term_ids = {combo: consent_pack.term_ids(combo, ids) for combo in combos}
        ver = consent_pack.uv_bytes(version)
        assemble = consent_pack.assemble
        grouped: dict[int, bytearray] = {}  # bucket -> its records, behind their member
        counts: dict[int, int] = {}
        for i, (number, fixed, combo, instants, proof) in enumerate(batch):
            if i % ENCODE_SLICE == 0:
                await asyncio.sleep(0)  # the previous run's writes proceed meanwhile
            bucket, member = divmod(number, BUCKET_SPAN)
            blob = grouped.get(bucket)
            if blob is None:
                blob = grouped[bucket] = bytearray()
                counts[bucket] = 0
            if member < 0x80:
                blob.append(member)
            else:
                blob += bytes(((member & 0x7F) | 0x80, member >> 7))  # member < 16384
            first, rest = term_ids[combo]
            blob += assemble(ver, fixed, first, instants, rest, proof)
            counts[bucket] += 1
        await self._index(grouped, gen, touched)
        put_head: list[Any] = [chunk, mode.value, *live_args(meta)]
        head: list[Any] = [chunk] if fresh or checked else put_head

        def start() -> list[Any]:
            """A call's first arguments: PUT's and PUT_FIRST's calls carry their own
            receipt (a call replayed after a lost reply returns its first count)."""
            if fresh:
                return list(head)
            return [*head, f"~{version}:{next(receipts)}"]

        calls: list[tuple[list[str], list[Any]]] = []
        keys: list[str] = []
        args: list[Any] = start()
        rows = 0
        for bucket in sorted(grouped):
            keys.append(conn.keys.consent_bucket(bucket, gen))
            args.append(bytes(grouped[bucket]))
            rows += counts[bucket]
            if conn.is_cluster or rows >= ROWS_PER_CALL:
                calls.append((keys, args))
                keys, args, rows = [], start(), 0
        if keys:
            calls.append((keys, args))
        if fresh:
            return _Writes(self.put_fresh, calls, [])
        spent = [(k[0], a[len(head)]) for k, a in calls]
        if checked:
            again = [(k, [*put_head, f"~{version}:{next(receipts)}", *a[len(head) + 1:]])
                     for k, a in calls]
            spent += [(k[0], a[len(put_head)]) for k, a in again]
            return _Writes(self.put_first, calls, spent, again)
        return _Writes(self.put, calls, spent)

    async def _index(self, grouped: Iterable[int], gen: int, touched: set[int]) -> None:
        """Add the buckets not written yet to the generation's index (before writing them:
        a compaction or a cleanup must find every written bucket)."""
        new_buckets = sorted(b for b in grouped if b not in touched)
        if new_buckets:
            conn = self.conn
            async with conn.guard("import consents (index)"):
                for start in range(0, len(new_buckets), 10_000):
                    await conn.client.sadd(conn.keys.consent_index(gen),
                                           *new_buckets[start:start + 10_000])
            touched.update(new_buckets)

    async def _send_all(self, writes: _Writes) -> int:
        calls = writes.calls
        added = 0
        for start in range(0, len(calls), CALLS_PER_PIPELINE):
            counts = await self._send(writes.script, calls[start:start + CALLS_PER_PIPELINE])
            refused = [start + i for i, n in enumerate(counts) if n < 0]
            added += sum(n for n in counts if n >= 0)
            if refused and writes.again is not None:
                # PUT_FIRST found a number stored or repeated: PUT merges those buckets
                # (nothing of these calls was written; the others are other buckets)
                added += sum(await self._send(self.put, [writes.again[i] for i in refused]))
        return added

    async def _send(self, script: Any, calls: list[tuple[list[str], list[Any]]]) -> list[int]:
        async with self.conn.guard("import consents (write)"):
            return [int(r) for r in await self.conn.eval_batch(script, calls)]

    async def _abort(self, version: int, gen: int, touched: set[int]) -> None:
        try:
            async with self.conn.guard("import consents (abort)"):
                meta = await self.conn.meta("abort", LIST_CONSENTS, version)
            log.warning("store.import_aborted", list=LIST_CONSENTS, version=version)
            if gen != gen_of(meta):  # a replace's own generation, or a superseded one
                await self.delete_generation(gen)
            else:
                await self.compact(sorted(touched), meta, gen)
        except StoreError as exc:
            # the version stays pending (invisible); a purge after stale_import_s drops it
            log.error("store.import_abort_failed", list=LIST_CONSENTS, version=version,
                      error=str(exc))

    # --- cleanup and compaction -------------------------------------------------------

    async def after_commit(self, info: ListInfo, touched: set[int], mode: ImportMode) -> int:
        """After ``retire_grace_s`` (cluster readers): a replace UNLINKs the superseded
        generations; a merge compacts the buckets it touched (nothing after the list's
        first version: no older record exists)."""
        if info.version == 1:
            return 0
        if self.retire_grace_s > 0:
            await asyncio.sleep(self.retire_grace_s)
        async with self.conn.guard("compact consents (metadata)"):
            meta = (await self.conn.metas()).get(LIST_CONSENTS)
        if mode is ImportMode.REPLACE:
            return await self.delete_stale(meta)
        return await self.compact(sorted(touched), meta, gen_of(meta))

    async def compact_all(self) -> int:
        """Compact every bucket of the live generation and delete stale generations
        (purge_superseded)."""
        conn = self.conn
        async with conn.guard("compact consents (metadata)"):
            meta = (await conn.metas()).get(LIST_CONSENTS)
        if meta is None:
            return 0
        dropped = await self.delete_stale(meta)
        gen = gen_of(meta)
        cursor = 0
        started = time.perf_counter()
        while True:
            async with conn.guard("compact consents (index)"):
                cursor, members = await conn.client.sscan(conn.keys.consent_index(gen),
                                                          cursor=cursor, count=COMPACT_BATCH)
            if members:
                dropped += await self.compact(sorted(int(_text(m)) for m in members), meta,
                                              gen)
            if int(cursor) == 0:
                break
        log.info("store.consents_compacted", dropped=dropped,
                 seconds=round(time.perf_counter() - started, 3))
        return dropped

    async def compact(self, buckets: Sequence[int], meta: ListMeta | None, gen: int) -> int:
        """Drop records no reader can see again from these buckets; returns how many."""
        if meta is None or not buckets:
            return 0
        conn = self.conn
        chunk = await self.chunk_size()
        aborted = "," + ",".join(str(a) for a in meta.aborted) + ","
        args = [meta.base, meta.version, meta.excluded(), aborted, chunk]
        dropped = 0
        for start in range(0, len(buckets), COMPACT_BATCH):
            calls = [([conn.keys.consent_bucket(b, gen)], args)
                     for b in buckets[start:start + COMPACT_BATCH]]
            async with conn.guard("compact consents"):
                dropped += sum(int(r) for r in await conn.eval_batch(self.compact_script,
                                                                     calls))
        return dropped

    async def delete_stale(self, meta: ListMeta | None) -> int:
        """UNLINK every generation but the live one and those of pending imports."""
        if meta is None:
            return 0
        keep = {meta.base, *(v for v, _ in meta.pending)}
        async with self.conn.guard("cleanup consents (generations)"):
            gens = {int(_text(g)) for g in
                    await self.conn.client.smembers(self.conn.keys.consent_generations())}
        deleted = 0
        for gen in sorted(gens - keep):
            deleted += await self.delete_generation(gen)
        return deleted

    async def delete_generation(self, gen: int) -> int:
        """UNLINK every bucket of one generation through its index; returns buckets."""
        conn = self.conn
        ix = conn.keys.consent_index(gen)
        deleted = 0
        cursor = 0
        while True:
            async with conn.guard("cleanup consents (index)"):
                cursor, members = await conn.client.sscan(ix, cursor=cursor,
                                                          count=COMPACT_BATCH)
            if members:
                pipe = conn.pipeline()
                for m in members:
                    pipe.execute_command("UNLINK", conn.keys.consent_bucket(int(_text(m)), gen))
                async with conn.guard("cleanup consents (unlink)"):
                    await pipe.execute()
                deleted += len(members)
            if int(cursor) == 0:
                break
        async with conn.guard("cleanup consents (index)"):
            await conn.client.unlink(ix)
            await conn.client.srem(conn.keys.consent_generations(), gen)
        log.info("store.consent_generation_deleted", generation=gen, buckets=deleted)
        return deleted


async def _runs(rows: AsyncIterable[ConsentRecord] | Iterable[ConsentRecord], size: int
                ) -> AsyncIterator[list[consent_pack.Pre]]:
    """Runs of about ``size`` rows in the importer's form (``consent_pack.Pre``), yielding to
    the event loop every ``ENCODE_SLICE`` rows while a run is gathered (the previous run's
    writes go out meanwhile). Pre-encoded rows are taken as they are."""
    run: list[consent_pack.Pre] = []
    if isinstance(rows, consent_pack.PreEncoded):
        async for pres in rows.batches():
            run.extend(pres)
            if len(run) >= size:
                yield run
                run = []
    elif isinstance(rows, AsyncIterable):
        async for batch in batches(rows, size):
            yield [consent_pack.pre_encode(r) for r in batch]
        return
    else:
        for row in rows:
            run.append(consent_pack.pre_encode(row))
            if len(run) % ENCODE_SLICE == 0:
                await asyncio.sleep(0)
                if len(run) >= size:
                    yield run
                    run = []
    if run:
        yield run


def _prefix(reply: Any) -> list[bytes]:
    """The chunks read, up to the first missing one."""
    out: list[bytes] = []
    for part in reply or ():
        if part is None:
            break
        out.append(part if isinstance(part, bytes) else str(part).encode())
    return out
