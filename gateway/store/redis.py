"""Redis store (production): plain Redis, Sentinel or Redis Cluster via redis.asyncio.

The hot path (:meth:`RedisStore.load_facts`) is one pipeline: on plain Redis or
Sentinel that is one round trip; on a Cluster one round trip per node holding the
number's, the campaign's and the list metadata's slots (at most 3, sent in parallel).
Key schema: ``keys.py``; scripts: ``redis_scripts.py``; imports: ``redis_lists.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from redis.exceptions import RedisClusterException, RedisError

from gateway.core.model import (
    CampaignStats,
    ConsentRecord,
    ContractRecord,
    Facts,
    ListInfo,
    OppositionEntry,
    Suppression,
)
from gateway.store import (
    codec,
    prescreen,
    redis_consents,
    redis_lists,
    redis_opposition,
    redis_reads,
)
from gateway.store import (
    redis_scripts as lua,
)
from gateway.store.base import (
    FactsQuery,
    ImportMode,
    OppositionRow,
    Reservation,
    Store,
    StoreBusy,
    StoreError,
    StoreUnavailable,
)
from gateway.store.batches import DEFAULT_IMPORT_BATCH_SIZE
from gateway.store.codec import ListMeta
from gateway.store.compact import CompactNumbers, number_int, split
from gateway.store.keys import (
    ENTRY,
    LIST_CONSENTS,
    LIST_CONTRACTS,
    OPPOSITION_PREFIX,
    SUPPRESSION,
    WITHDRAWAL,
    WITHDRAWALS_KEPT,
    KeySchema,
    opposition_list,
    suppression_field,
    withdrawal_field,
)
from gateway.store.memory import DEFAULT_ANSWER_RETENTION_S, PACING_WINDOW_S
from gateway.store.redis_conn import RedisClient, RedisConn, _text, metas_from_hash
from gateway.store.redis_group import Group
from gateway.store.resp import LeanClient

log = redis_lists.log

# Re-reads of the opposition buckets when the list metadata moved during a decision.
MAX_LIST_REREADS = 3


class RedisStore(Store):
    consent_replace_aside = True  # redis_consents: a replace writes a new generation

    def __init__(
        self,
        client: RedisClient,
        *,
        key_prefix: str = "dg",
        import_batch_size: int = DEFAULT_IMPORT_BATCH_SIZE,
        answer_retention_s: int = DEFAULT_ANSWER_RETENTION_S,
        stale_import_s: int = redis_lists.DEFAULT_STALE_IMPORT_S,
        scan_count: int = redis_lists.DEFAULT_SCAN_COUNT,
        auto_purge: bool = True,
        retire_grace_s: float | None = None,
        on_close: Sequence[Callable[[], Awaitable[None]]] = (),
        max_operations: int | None = None,
        pool_timeout_s: float | None = None,
    ) -> None:
        if import_batch_size < 1:
            raise ValueError("import_batch_size must be >= 1")
        self.keys = KeySchema(key_prefix)
        self.conn = RedisConn(client, self.keys, on_close=on_close,
                              max_operations=max_operations, pool_timeout_s=pool_timeout_s)
        self._batch = import_batch_size
        self._answer_retention_ms = answer_retention_s * 1000
        self._stale_import_s = stale_import_s
        self._scan_count = scan_count
        self._auto_purge = auto_purge
        if retire_grace_s is None:
            # plain Redis runs a pipeline in order, so a reader confirms its generations
            # by the metadata read after them and a retired generation can go at once;
            # cluster nodes answer in parallel: keep it longer than any decision
            retire_grace_s = (redis_opposition.DEFAULT_RETIRE_GRACE_S
                              if self.conn.is_cluster else 0.0)
        self.compact = redis_opposition.Compact(self.conn, retire_grace_s=retire_grace_s)
        self.consents = redis_consents.Consents(self.conn, retire_grace_s=retire_grace_s)
        # opposition list -> live generations seen last: their buckets are read in the
        # decision's pipeline, before the metadata that confirms them
        self._gens: dict[str, tuple[int, ...]] = {}
        # concurrent calls' facts read and attempts reserved together (redis_group.py;
        # not on a Cluster)
        self._reads: Group[tuple[FactsQuery, datetime], Facts] | None = None
        self._reserves: Group[tuple[list[str], list[Any]], Any] | None = None
        if not self.conn.is_cluster:
            self._reads = Group(self._read_group)
            self._reserves = Group(self._reserve_group)

    # --- hot path -------------------------------------------------------------------

    async def load_facts(
        self, *, e164: str, professional: str, campaign_id: str, now: datetime,
        attempt_window_s: int, abandon_window_s: int, prescreen_id: str | None = None,
    ) -> Facts:
        """One pipeline: the batch read below with a batch of one (the same facts for a
        call and for a scrub, by construction). On plain Redis and Sentinel, calls that
        arrive while another's read is in flight are read together (redis_group.py)."""
        query = FactsQuery(e164, professional, campaign_id, attempt_window_s, abandon_window_s)
        if self._reads is not None and prescreen_id is None:
            return await self._reads.run((query, now))
        return (await self._load_facts((query,), now, "load_facts", prescreen_id))[0]

    async def _read_group(self, items: Sequence[tuple[FactsQuery, datetime]]
                          ) -> list[Facts | BaseException]:
        try:
            return list(await self._load_facts([q for q, _ in items], items[0][1],
                                               "load_facts", instants=[t for _, t in items]))
        except Exception as exc:
            if len(items) == 1 or _store_down(exc):
                raise
        # one number's facts could not be read (an undecodable record...): each call
        # alone, each with its own outcome; its neighbours are not failed with it
        out: list[Facts | BaseException] = []
        for query, now in items:
            try:
                out.extend(await self._load_facts((query,), now, "load_facts"))
            except Exception as exc:  # noqa: BLE001  # that caller's outcome, raised to it
                out.append(exc)
        return out

    async def load_facts_many(
        self, queries: Sequence[FactsQuery], *, now: datetime
    ) -> list[Facts]:
        """One pipeline for the whole batch: per number its hash and attempts, per
        distinct campaign its counters, the list metadata once."""
        return await self._load_facts(queries, now, "load_facts_many")

    async def _load_facts(
        self, queries: Sequence[FactsQuery], now: datetime, op: str,
        prescreen_id: str | None = None, instants: Sequence[datetime] | None = None,
    ) -> list[Facts]:
        """``instants``: each query's own ``now`` (concurrent calls read together, see
        :class:`~gateway.store.redis_group.Group`); ``now`` for all when None."""
        if not queries:
            return []
        now_ms = codec.to_ms(now)
        at_ms = [now_ms] * len(queries) if instants is None else [
            codec.to_ms(t) for t in instants]
        k = self.keys
        # (campaign, abandon window, instant) -> index of its three counters
        counters: dict[tuple[str, int, int], int] = {}
        async with self.conn.guard(op):
            places = [_place(q.e164) for q in queries]  # (bucket, member) of each number
            consents_seen = self.consents.seen
            seen = dict(self._gens)
            # each query's attempts lower bound, at its own instant
            lows = [f"({q_ms - q.attempt_window_s * 1000}"
                    for q, q_ms in zip(queries, at_ms, strict=True)]
            slots: list[tuple[str, str, str, int]] = []  # campaign, bounds (docs/store.md)
            for q, q_ms in zip(queries, at_ms, strict=True):
                slot = (q.campaign_id, q.abandon_window_s, q_ms)
                if slot not in counters:
                    counters[slot] = 3 * len(slots)
                    slots.append((q.campaign_id, f"({q_ms - q.abandon_window_s * 1000}",
                                  f"({q_ms - PACING_WINDOW_S * 1000}", q_ms))
            token_reply = own_reply = None
            if (prescreen_id is None and len(queries) > 1 and not self.conn.is_cluster
                    and redis_reads.usable(queries, places)):
                # a batch on plain Redis or Sentinel: the same reads, a few script calls
                gens = [(name, *redis_opposition.bucket_key_parts(
                            self.conn, redis_opposition.source_of(name), g))
                        for name in sorted(seen) for g in seen[name]]
                read = await redis_reads.read_batch(
                    self.conn, queries, places, lows, slots,
                    consent_gen=0 if consents_seen is None else consents_seen[0],
                    chunks=redis_consents.CHUNK_READS, gens=gens, hot=op == "load_facts")
            else:
                read, token_reply, own_reply = await self._read_pipelined(
                    queries, places, lows, slots, seen, prescreen_id, hot=op == "load_facts")
            hits = read.hits
            metas = metas_from_hash(read.lists)
            live = {n: m.gens for n, m in metas.items() if m.gens}
            for _ in range(MAX_LIST_REREADS):
                moved = {n: g for n, g in live.items() if seen.get(n) != g}
                if not moved:
                    break
                # first decision, or a swap since the last one: read those lists again,
                # confirmed by the metadata read after them
                pipe = self.conn.pipeline()
                buckets = self._bucket_keys(moved)
                for place in places:
                    _queue_members(pipe, place, buckets)
                pipe.hgetall(k.lists())
                *members, again = await pipe.execute()
                per = 2 * sum(len(g) for g in moved.values())
                for i, h in enumerate(hits):
                    h.update(self._hits(moved, members[i * per:(i + 1) * per]))
                seen.update(moved)
                live = {n: m.gens for n, m in metas_from_hash(again).items() if m.gens}
            else:
                raise StoreUnavailable(f"{op}: opposition lists kept changing during the read")
            self._gens = live
            e164s = [q.e164 for q in queries]
            consent_replies, consent_meta = await self.consents.settle(
                e164s, read.consents, consents_seen, metas)
            values = await self.consents.assemble(e164s, consent_replies, consent_meta)
            compact = [await self.consents.decode(q.e164, v, consent_meta) if v else []
                       for q, v in zip(queries, values, strict=True)]
        token = None
        if prescreen_id is not None:
            token = prescreen.match(token_reply, decision_id=prescreen_id,
                                    e164=queries[0].e164, professional=queries[0].professional,
                                    now=now)
        lists = list_infos(metas)  # decoded once for the batch
        # per campaign slot: its counters, and the facts of a number with nothing stored
        # (most leads of a scrub: one shared value, equal to what the decoding gives)
        stats: dict[int, CampaignStats] = {}
        nothing: dict[int, Facts] = {}
        for c in counters.values():
            answered, abandoned, paced = read.counters[c:c + 3]
            if token is not None:  # the proxy's own attempt is not an earlier one
                own = own_reply
                if own is not None and float(own) > now_ms - PACING_WINDOW_S * 1000:
                    paced = max(0, int(paced) - 1)
            stats[c] = CampaignStats(answered=int(answered), abandoned=int(abandoned),
                                     attempts_last_minute=int(paced))
            nothing[c] = Facts(lists=lists, campaign=stats[c], prescreen=token)
        out = []
        for i, q in enumerate(queries):
            number, attempts = read.numbers[i], read.attempts[i]
            c = counters[(q.campaign_id, q.abandon_window_s, at_ms[i])]
            if not (number or attempts or compact[i] or any(hits[i].values())):
                out.append(nothing[c])
                continue
            if token is not None:  # the proxy's own attempt is not an earlier one
                attempts = [(m, sc) for m, sc in attempts if _text(m) != prescreen_id]
            facts = facts_from_hash(q.e164, q.professional, number, metas, compact[i], lists)
            snapshot_hits = {n for n in live if hits[i].get(n)}
            out.append(Facts(
                consents=facts.consents,
                contracts=facts.contracts,
                oppositions=merge_oppositions(facts.oppositions, snapshot_hits),
                lists=facts.lists,
                attempts=tuple(sorted(codec.from_ms(score) for _, score in attempts)),
                suppressions=facts.suppressions,
                campaign=stats[c],
                prescreen=token,
            ))
        return out

    async def _read_pipelined(
        self, queries: Sequence[FactsQuery], places: Sequence[tuple[int, int] | None],
        lows: Sequence[str], slots: Sequence[tuple[str, str, str, int]],
        seen: dict[str, tuple[int, ...]], prescreen_id: str | None, *, hot: bool,
    ) -> tuple[redis_reads.BatchRead, Any, Any]:
        """The reads as one plain pipeline (a single call, a Cluster): the read, and the
        prescreen token's two replies (None without a prescreen id)."""
        k = self.keys
        pipe = self.conn.hot_pipeline() if hot else self.conn.pipeline()
        for q, low in zip(queries, lows, strict=True):
            pipe.hgetall(k.number(q.e164))
            pipe.zrangebyscore(k.attempts(q.e164, q.professional), low, "+inf",
                               withscores=True)
        for campaign, low, paced_low, high in slots:
            # up to ``now``: a back-dated check does not count later calls
            pipe.zcount(k.answered(campaign), low, high)
            pipe.zcount(k.abandoned(campaign), low, high)
            pipe.zcount(k.paced(campaign), paced_low, high)
        if prescreen_id is not None:  # load_facts only: a batch of one
            # one-shot: GETDEL (Redis >= 6.2) consumes it in this same round trip
            pipe.getdel(k.prescreen(queries[0].e164, prescreen_id))
            pipe.zscore(k.paced(queries[0].campaign_id), prescreen_id)
        for place in places:  # each number's consent bucket fields, before the metadata
            self.consents.queue_read_at(pipe, place)
        buckets = self._bucket_keys(seen)
        for place in places:
            _queue_members(pipe, place, buckets)
        pipe.hgetall(k.lists())  # last: confirms the generations read before it
        replies = await pipe.execute()
        n, at = len(queries), 2 * len(queries) + 3 * len(slots)
        token_reply = own_reply = None
        if prescreen_id is not None:
            token_reply, own_reply = replies[at], replies[at + 1]
            at += 2
        fixed = at + n
        per = 2 * sum(len(g) for g in seen.values())
        read = redis_reads.BatchRead(
            numbers=replies[0:2 * n:2], attempts=replies[1:2 * n:2],
            counters=replies[2 * n:2 * n + 3 * len(slots)], consents=replies[at:at + n],
            hits=[self._hits(seen, replies[fixed + i * per:fixed + (i + 1) * per])
                  for i in range(n)],
            lists=replies[-1])
        return read, token_reply, own_reply

    def _bucket_keys(self, gens: dict[str, tuple[int, ...]]) -> list[tuple[str, str, str]]:
        """Per live generation of each list (by list name): its bucket keys around the
        bucket number (``bucket_key_parts``: built once per read, not once per number)."""
        return [redis_opposition.bucket_key_parts(self.conn, redis_opposition.source_of(name),
                                                  g)
                for name in sorted(gens) for g in gens[name]]

    @staticmethod
    def _hits(gens: dict[str, tuple[int, ...]], results: list[Any]) -> dict[str, bool]:
        out: dict[str, bool] = {}
        i = 0
        for name in sorted(gens):
            n = 2 * len(gens[name])
            out[name] = any(int(r) for r in results[i:i + n])
            i += n
        return out

    async def reserve_attempt(
        self, *, e164: str, professional: str, campaign_id: str, now: datetime,
        window_s: int, limit: int | None, attempt_id: str,
        day_since: datetime | None = None, day_limit: int | None = None,
        prescreen_ttl_s: int | None = None, caps: Sequence[tuple[int, int]] = (),
    ) -> Reservation:
        now_ms = codec.to_ms(now)
        keys = [self.keys.attempts(e164, professional)]
        args: list[Any] = [now_ms, window_s * 1000, -1 if limit is None else limit, attempt_id]
        if day_since is not None and day_limit is not None:
            args += [codec.to_ms(day_since), day_limit]
        elif prescreen_ttl_s is not None or caps:
            args += [0, -1]  # no day limit; the token's arguments come after
        if prescreen_ttl_s is not None:  # written by the same script (same hash tag)
            keys.append(self.keys.prescreen(e164, attempt_id))
            args += [prescreen.encode(e164=e164, professional=professional,
                                      campaign_id=campaign_id, at_ms=now_ms,
                                      ttl_s=prescreen_ttl_s), prescreen_ttl_s * 1000]
        elif caps:
            args += ["", 0]  # no token (KEYS[2] absent); the caps come after
        if caps:
            args.append(len(caps))
            for cap_window_s, cap_limit in caps:
                args += [min(cap_window_s, window_s) * 1000, cap_limit]
        paced = self.keys.paced(campaign_id)
        if self._reserves is not None:  # one script (RESERVE_PACED), with the calls' beside
            ok, count = await self._reserves.run(
                ([paced, *keys], [PACING_WINDOW_S * 1000, *args]))
            return Reservation(ok=bool(int(ok)), count=int(count))
        async with self.conn.guard("reserve_attempt"):
            ok, count = await self.conn.reserve(keys=keys, args=args)
            if int(ok):  # a Cluster: the campaign's key is in another slot
                pipe = self.conn.pipeline()
                pipe.zadd(paced, {attempt_id: now_ms})
                pipe.zremrangebyscore(paced, "-inf", now_ms - PACING_WINDOW_S * 1000)
                pipe.pexpire(paced, PACING_WINDOW_S * 1000)
                await pipe.execute()
        return Reservation(ok=bool(int(ok)), count=int(count))

    async def _reserve_group(self, calls: Sequence[tuple[list[str], list[Any]]]
                             ) -> list[Any]:
        async with self.conn.guard("reserve_attempt"):
            if len(calls) == 1:
                keys, args = calls[0]
                if self.conn.lean is not None:  # the hot path's connection (resp.py)
                    return [await self.conn.lean.evalsha(lua.RESERVE_PACED, keys, args)]
                return [await self.conn.reserve_paced(keys=keys, args=args)]
            # asked once the slot is held: a caller that gave up while the batch waited
            # for it was answered BLOCK timeout; nothing is counted for its call
            wanted = (self._reserves.wanted(len(calls)) if self._reserves is not None
                      else [True] * len(calls))
            sent = [c for c, w in zip(calls, wanted, strict=True) if w]
            results = iter(await self.conn.eval_batch(self.conn.reserve_paced, sent,
                                                      per_call=True, hot=True)
                           if sent else ())
            gone = StoreUnavailable("reserve_attempt: the caller gave up before it was sent")
            return [next(results) if w else gone for w in wanted]

    async def campaign_stats(
        self, *, campaign_id: str, now: datetime, abandon_window_s: int
    ) -> CampaignStats:
        now_ms = codec.to_ms(now)
        k = self.keys
        async with self.conn.guard("campaign_stats"):
            # the campaign's keys share one hash tag: one slot, one round trip
            pipe = self.conn.pipeline()
            low = f"({now_ms - abandon_window_s * 1000}"
            pipe.zcount(k.answered(campaign_id), low, now_ms)
            pipe.zcount(k.abandoned(campaign_id), low, now_ms)
            pipe.zcount(k.paced(campaign_id), f"({now_ms - PACING_WINDOW_S * 1000}", now_ms)
            answered, abandoned, paced = await pipe.execute()
        return CampaignStats(answered=int(answered), abandoned=int(abandoned),
                             attempts_last_minute=int(paced))

    async def release_attempt(
        self, *, e164: str, professional: str, campaign_id: str, attempt_id: str,
    ) -> None:
        async with self.conn.guard("release_attempt"):
            # keys that may live in different Cluster slots: one command each. The AMI
            # proxy's token first (a call that was not placed has none): cut short by the
            # deadline, the release then leaves an attempt counted, never a live token
            # whose attempt is gone (a carrier screen presenting it would not count).
            await self.conn.client.delete(self.keys.prescreen(e164, attempt_id))
            await self.conn.client.zrem(self.keys.attempts(e164, professional), attempt_id)
            await self.conn.client.zrem(self.keys.paced(campaign_id), attempt_id)

    # --- lists ----------------------------------------------------------------------

    async def _import(self, list_name: str, rows: Any, encode: Any, mode: ImportMode,
                      now: datetime, content_hash: str) -> ListInfo:
        codec.require_aware(now, "now")
        info = await redis_lists.import_entries(
            self.conn, list_name, rows, encode, mode=mode, now=now,
            content_hash=content_hash, batch_size=self._batch,
        )
        if self._auto_purge and mode is ImportMode.REPLACE:
            try:
                await self.purge_superseded(now=now)
            except StoreError as exc:
                # the import is committed; superseded entries wait for the next purge
                log.warning("store.purge_failed", list=list_name, error=str(exc))
        return info

    async def import_consents(
        self, rows: AsyncIterable[ConsentRecord] | Iterable[ConsentRecord], *, mode: ImportMode,
        now: datetime, content_hash: str = "",
    ) -> ListInfo:
        """Compact layout (redis_consents.py): packed records in bucket hashes."""
        codec.require_aware(now, "now")
        info, touched = await self.consents.import_rows(rows, mode=mode, now=now,
                                                        content_hash=content_hash)
        if self._auto_purge:
            try:
                await self.consents.after_commit(info, touched, mode)
                if mode is ImportMode.REPLACE and info.version > 1:  # the former layout
                    await redis_lists.purge_superseded(
                        self.conn, now=now, stale_import_s=self._stale_import_s,
                        scan_count=self._scan_count)
            except StoreError as exc:
                # the import is committed; superseded records wait for the next purge
                log.warning("store.purge_failed", list=LIST_CONSENTS, error=str(exc))
        return info

    async def import_contracts(
        self, rows: AsyncIterable[ContractRecord] | Iterable[ContractRecord], *, mode: ImportMode,
        now: datetime, content_hash: str = "",
    ) -> ListInfo:
        def encode(r: ContractRecord) -> tuple[str, str, str]:
            codec.validate_contract(r)
            return r.e164, r.id, codec.encode_contract(r)

        return await self._import(LIST_CONTRACTS, rows, encode, mode, now, content_hash)

    async def import_opposition(
        self, source: str,
        rows: AsyncIterable[OppositionRow] | Iterable[OppositionRow] | CompactNumbers, *,
        mode: ImportMode, now: datetime, content_hash: str = "",
    ) -> ListInfo:
        codec.require_aware(now, "now")
        name = opposition_list(source)
        info, gens = await self.compact.import_rows(name, rows, mode=mode, now=now,
                                                    content_hash=content_hash)
        self._gens[name] = gens
        return info

    async def withdraw_consent(
        self, *, e164: str, professional: str | None, at: datetime
    ) -> int:
        codec.require_aware(at, "at")
        async with self.conn.guard("withdraw_consent"):
            pipe = self.conn.pipeline()
            pipe.hgetall(self.keys.number(e164))
            seen = self.consents.seen
            self.consents.queue_read(pipe, e164)
            pipe.hgetall(self.keys.lists())
            number, raw_consents, lists = await pipe.execute()
            metas = metas_from_hash(lists)
            raw, meta = await self.consents.settle([e164], [raw_consents], seen, metas)
            (value,) = await self.consents.assemble([e164], raw, meta)
            compact = await self.consents.decode(e164, value, meta)
            await self.conn.withdraw(
                keys=[self.keys.number(e164)],
                args=[withdrawal_field(professional), codec.iso(at) or "", WITHDRAWALS_KEPT],
            )
        facts = facts_from_hash(e164, professional, number, metas, compact)
        return sum(1 for c in facts.consents if codec.withdrawal_applies(c, professional, at))

    async def add_opposition(self, source: str, e164: str, *, at: datetime) -> None:
        """A number added one by one: its own field, which no import replaces."""
        codec.require_aware(at, "at")
        name = opposition_list(source)
        number_int(e164)
        async with self.conn.guard(f"add to {name}"):
            await self.conn.meta("ensure", name, codec.to_ms(at))
            if await self.conn.client.hsetnx(self.keys.number(e164), individual_field(source),
                                             codec.iso(at) or ""):
                await self.compact.meta_op("individual", name, 1)

    async def remove_opposition(self, source: str, e164: str) -> bool:
        name = opposition_list(source)
        async with self.conn.guard(f"remove from {name}"):
            individual = int(await self.conn.client.hdel(self.keys.number(e164),
                                                         individual_field(source)))
            if individual:
                await self.compact.meta_op("individual", name, -1)
            meta = (await self.conn.metas()).get(name)
            from_snapshot = await self.compact.remove(name, e164, meta)
        legacy = await redis_lists.remove_single(self.conn, name, e164, "")
        return bool(individual) or from_snapshot or legacy

    async def drop_opposition(self, source: str) -> bool:
        name = opposition_list(source)
        return await self.compact.drop(name)

    async def add_suppression(self, e164: str, suppression: Suppression) -> None:
        codec.require_aware(suppression.since, "suppression since")
        async with self.conn.guard("add_suppression"):
            await self.conn.client.hset(
                self.keys.number(e164),
                suppression_field(suppression.professional, codec.to_ms(suppression.since)),
                codec.encode_suppression(suppression),
            )

    async def lists_status(self) -> list[ListInfo]:
        async with self.conn.guard("lists_status"):
            metas = await self.conn.metas()
        return [metas[n].info() for n in sorted(metas) if metas[n].committed]

    async def purge_superseded(self, *, now: datetime) -> int:
        """Delete list entries no reader can see any more (see redis_lists.py)."""
        deleted = await redis_lists.purge_superseded(
            self.conn, now=now, stale_import_s=self._stale_import_s, scan_count=self._scan_count
        )
        deleted += await self.consents.compact_all()
        return deleted + await self.compact.cleanup(now_ms=codec.to_ms(now))

    # --- campaign counters ----------------------------------------------------------

    async def record_answer(
        self, *, campaign_id: str, call_id: str, at: datetime, abandoned: bool
    ) -> None:
        async with self.conn.guard("record_answer"):
            await self.conn.record_answer(
                keys=[self.keys.answered(campaign_id), self.keys.abandoned(campaign_id)],
                args=[call_id, codec.to_ms(at), 1 if abandoned else 0, self._answer_retention_ms],
            )

    # --- lifecycle ------------------------------------------------------------------

    def hot_connection(self) -> LeanClient | None:
        return self.conn.lean

    async def ping(self) -> None:
        async with self.conn.guard("ping"):
            await self.conn.client.ping()
            if self.conn.lean is not None:  # the hot path's own connection too
                (pong,) = await self.conn.lean.execute((("PING",),))
                if isinstance(pong, Exception):
                    raise pong

    async def warm_up(self) -> None:
        """Connections opened (a Cluster's slot map read, a Sentinel's master found), the
        scripts loaded, the opposition lists' live generations read: on a cold Cluster
        client the first decisions after a start missed their budget (BLOCK timeout)."""
        async with self.conn.guard("warm_up"):
            await self.conn.client.ping()
            await self.conn.load_scripts()
            metas = await self.conn.metas()
        self._gens = {n: m.gens for n, m in metas.items() if m.gens}

    async def close(self) -> None:
        for group in (self._reads, self._reserves):
            if group is not None:
                group.close()
        async with self.conn.guard("close"):
            await self.conn.close()


def _place(e164: str) -> tuple[int, int] | None:
    """(bucket, member) of a number in the compact layouts; None: not an E.164 number."""
    try:
        return split(number_int(e164))
    except ValueError:
        return None


def _queue_members(pipe: Any, place: tuple[int, int] | None,
                   buckets: Sequence[tuple[str, str, str]]) -> None:
    """The number's opposition probes: per live generation its bucket set and bitmap, in
    the order of ``RedisStore._bucket_keys`` (which ``_hits`` reads back)."""
    bucket, member = (0, 0) if place is None else place
    for head, tail, bitmap_tail in buckets:
        pipe.sismember(f"{head}{bucket}{tail}", member)
        pipe.getbit(f"{head}{bucket}{bitmap_tail}", member)


class _HashFacts:
    __slots__ = ("consents", "contracts", "lists", "oppositions", "suppressions")

    def __init__(self) -> None:
        self.consents: tuple[ConsentRecord, ...] = ()
        self.contracts: tuple[ContractRecord, ...] = ()
        self.oppositions: tuple[OppositionEntry, ...] = ()
        self.lists: tuple[ListInfo, ...] = ()
        self.suppressions: tuple[Suppression, ...] = ()


def facts_from_hash(e164: str, professional: str | None, raw: dict[Any, Any],
                    metas: dict[str, ListMeta],
                    compact_consents: Iterable[ConsentRecord] = (),
                    lists: tuple[ListInfo, ...] | None = None) -> _HashFacts:
    """Decode a per-number hash: newest live version of each entry, withdrawals applied.

    ``professional=None`` keeps the records of every professional. ``compact_consents``
    (the number's records of the compact layout, redis_consents.py) win over consents of
    the same id in the hash (written before that layout, by older versions). ``lists`` is
    ``list_infos(metas)`` when the caller has it already (a batch decodes it once).
    """
    newest: dict[tuple[str, str], tuple[int, str]] = {}
    suppressions: list[Suppression] = []
    withdrawals: dict[str, list[datetime]] = {}
    individual: list[OppositionEntry] = []
    for key, value in raw.items():
        field, text = _text(key), _text(value)
        kind = field[:2]
        if kind == ENTRY + "|":
            parts = field.split("|", 3)
            if len(parts) != 4 or not parts[2].isdigit():
                continue
            meta = metas.get(parts[1])
            version = int(parts[2])
            if meta is None or not meta.live(version):
                continue
            slot = (parts[1], parts[3])
            if slot not in newest or newest[slot][0] < version:
                newest[slot] = (version, text)
        elif kind == SUPPRESSION + "|":
            s = codec.decode_suppression(text)
            if professional is None or s.professional == professional:
                suppressions.append(s)
        elif kind == WITHDRAWAL + "|":
            withdrawals[field[2:]] = codec.parse_withdrawals(text)
        elif kind == redis_opposition.INDIVIDUAL + "|":
            individual.append(OppositionEntry(source=field[2:],
                                              registered_at=codec.parse_iso(text)))
    out = _HashFacts()
    by_id: dict[str, ConsentRecord] = {}
    contracts = []
    oppositions = individual
    for (name, entry_id), (_, text) in newest.items():
        if name == LIST_CONSENTS:
            by_id[entry_id] = codec.decode_consent(e164, entry_id, text)
        elif name == LIST_CONTRACTS:
            k = codec.decode_contract(e164, entry_id, text)
            if professional is None or k.professional == professional:
                contracts.append(k)
        elif name.startswith(OPPOSITION_PREFIX) and all(
                o.source != name[len(OPPOSITION_PREFIX):] for o in individual):
            oppositions.append(OppositionEntry(
                source=name[len(OPPOSITION_PREFIX):], registered_at=codec.parse_iso(text)
            ))
    by_id.update((c.id, c) for c in compact_consents)
    consents = [codec.apply_withdrawals(c, withdrawals) for c in by_id.values()
                if professional is None or c.professional == professional]
    out.consents = tuple(sorted(consents, key=lambda c: (c.collected_at, c.id)))
    out.contracts = tuple(sorted(contracts, key=lambda c: (c.started_at, c.id)))
    out.oppositions = tuple(sorted(oppositions, key=lambda o: o.source))
    out.lists = list_infos(metas) if lists is None else lists
    out.suppressions = tuple(sorted(suppressions, key=lambda s: s.since))
    return out


def list_infos(metas: dict[str, ListMeta]) -> tuple[ListInfo, ...]:
    """The committed lists a decision reports, by name."""
    return tuple(metas[n].info() for n in sorted(metas) if metas[n].committed)


def individual_field(source: str) -> str:
    return f"{redis_opposition.INDIVIDUAL}|{source}"


def merge_oppositions(found: tuple[OppositionEntry, ...], snapshot_lists: set[str]
                      ) -> tuple[OppositionEntry, ...]:
    """Entries of the number's hash plus the compact snapshots holding it (one per list)."""
    by_source = {o.source: o for o in found}
    for name in snapshot_lists:
        source = name[len(OPPOSITION_PREFIX):]
        by_source.setdefault(source, OppositionEntry(source=source, registered_at=None))
    return tuple(by_source[s] for s in sorted(by_source))


def _store_down(exc: BaseException) -> bool:
    """Whether a batch read failed because the store did not answer (every call of the
    batch fails alike) rather than on one number's data."""
    return isinstance(exc, (StoreBusy, TimeoutError)) or (
        isinstance(exc, StoreUnavailable)
        and isinstance(exc.__cause__, (RedisError, RedisClusterException, OSError)))
