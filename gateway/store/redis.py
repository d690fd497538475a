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

from gateway.core.model import (
    CampaignStats,
    ConsentRecord,
    ContractRecord,
    Facts,
    ListInfo,
    OppositionEntry,
    Suppression,
)
from gateway.store import codec, prescreen, redis_lists
from gateway.store.base import ImportMode, OppositionRow, Reservation, Store, StoreError
from gateway.store.batches import DEFAULT_IMPORT_BATCH_SIZE
from gateway.store.codec import ListMeta
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

log = redis_lists.log


class RedisStore(Store):
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
        on_close: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        if import_batch_size < 1:
            raise ValueError("import_batch_size must be >= 1")
        self.keys = KeySchema(key_prefix)
        self.conn = RedisConn(client, self.keys, on_close=on_close)
        self._batch = import_batch_size
        self._answer_retention_ms = answer_retention_s * 1000
        self._stale_import_s = stale_import_s
        self._scan_count = scan_count
        self._auto_purge = auto_purge

    # --- hot path -------------------------------------------------------------------

    async def load_facts(
        self, *, e164: str, professional: str, campaign_id: str, now: datetime,
        attempt_window_s: int, abandon_window_s: int, prescreen_id: str | None = None,
    ) -> Facts:
        now_ms = codec.to_ms(now)
        k = self.keys
        paced_low = now_ms - PACING_WINDOW_S * 1000
        async with self.conn.guard("load_facts"):
            pipe = self.conn.pipeline()
            pipe.hgetall(k.number(e164))
            pipe.zrangebyscore(
                k.attempts(e164, professional), f"({now_ms - attempt_window_s * 1000}", "+inf",
                withscores=True,
            )
            pipe.zcount(k.answered(campaign_id), f"({now_ms - abandon_window_s * 1000}", "+inf")
            pipe.zcount(k.abandoned(campaign_id), f"({now_ms - abandon_window_s * 1000}", "+inf")
            pipe.zcount(k.paced(campaign_id), f"({paced_low}", "+inf")
            pipe.hgetall(k.lists())
            if prescreen_id is not None:
                # one-shot: GETDEL (Redis >= 6.2) consumes it in this same round trip
                pipe.getdel(k.prescreen(e164, prescreen_id))
                pipe.zscore(k.paced(campaign_id), prescreen_id)
            number, attempts, answered, abandoned, paced, lists, *token_read = (
                await pipe.execute())
        token = None
        if prescreen_id is not None:
            raw, paced_own = token_read
            token = prescreen.match(raw, decision_id=prescreen_id, e164=e164,
                                    professional=professional, now=now)
            if token is not None:  # the proxy's own attempt is not an earlier one
                attempts = [(m, s) for m, s in attempts if _text(m) != prescreen_id]
                if paced_own is not None and float(paced_own) > paced_low:
                    paced = max(0, int(paced) - 1)
        metas = metas_from_hash(lists)
        facts = facts_from_hash(e164, professional, number, metas)
        return Facts(
            consents=facts.consents,
            contracts=facts.contracts,
            oppositions=facts.oppositions,
            lists=facts.lists,
            attempts=tuple(sorted(codec.from_ms(score) for _, score in attempts)),
            suppressions=facts.suppressions,
            campaign=CampaignStats(
                answered=int(answered), abandoned=int(abandoned), attempts_last_minute=int(paced)
            ),
            prescreen=token,
        )

    async def reserve_attempt(
        self, *, e164: str, professional: str, campaign_id: str, now: datetime,
        window_s: int, limit: int | None, attempt_id: str,
        prescreen_ttl_s: int | None = None,
    ) -> Reservation:
        now_ms = codec.to_ms(now)
        keys = [self.keys.attempts(e164, professional)]
        args: list[Any] = [now_ms, window_s * 1000, -1 if limit is None else limit, attempt_id]
        if prescreen_ttl_s is not None:  # written by the same script (same hash tag)
            keys.append(self.keys.prescreen(e164, attempt_id))
            args += [prescreen.encode(e164=e164, professional=professional,
                                      campaign_id=campaign_id, at_ms=now_ms,
                                      ttl_s=prescreen_ttl_s), prescreen_ttl_s * 1000]
        async with self.conn.guard("reserve_attempt"):
            ok, count = await self.conn.reserve(keys=keys, args=args)
            if int(ok):
                paced = self.keys.paced(campaign_id)
                pipe = self.conn.pipeline()
                pipe.zadd(paced, {attempt_id: now_ms})
                pipe.zremrangebyscore(paced, "-inf", now_ms - PACING_WINDOW_S * 1000)
                pipe.pexpire(paced, PACING_WINDOW_S * 1000)
                await pipe.execute()
        return Reservation(ok=bool(int(ok)), count=int(count))

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
        def encode(r: ConsentRecord) -> tuple[str, str, str]:
            codec.validate_consent(r)
            return r.e164, r.id, codec.encode_consent(r)

        return await self._import(LIST_CONSENTS, rows, encode, mode, now, content_hash)

    async def import_contracts(
        self, rows: AsyncIterable[ContractRecord] | Iterable[ContractRecord], *, mode: ImportMode,
        now: datetime, content_hash: str = "",
    ) -> ListInfo:
        def encode(r: ContractRecord) -> tuple[str, str, str]:
            codec.validate_contract(r)
            return r.e164, r.id, codec.encode_contract(r)

        return await self._import(LIST_CONTRACTS, rows, encode, mode, now, content_hash)

    async def import_opposition(
        self, source: str, rows: AsyncIterable[OppositionRow] | Iterable[OppositionRow], *,
        mode: ImportMode, now: datetime, content_hash: str = "",
    ) -> ListInfo:
        def encode(r: OppositionRow) -> tuple[str, str, str]:
            if not r.e164:
                raise ValueError("opposition row without number")
            return r.e164, "", codec.iso(r.registered_at) or ""

        return await self._import(opposition_list(source), rows, encode, mode, now, content_hash)

    async def withdraw_consent(
        self, *, e164: str, professional: str | None, at: datetime
    ) -> int:
        codec.require_aware(at, "at")
        async with self.conn.guard("withdraw_consent"):
            pipe = self.conn.pipeline()
            pipe.hgetall(self.keys.number(e164))
            pipe.hgetall(self.keys.lists())
            number, lists = await pipe.execute()
            await self.conn.withdraw(
                keys=[self.keys.number(e164)],
                args=[withdrawal_field(professional), codec.iso(at) or "", WITHDRAWALS_KEPT],
            )
        facts = facts_from_hash(e164, professional, number, metas_from_hash(lists))
        return sum(1 for c in facts.consents if codec.withdrawal_applies(c, professional, at))

    async def add_opposition(self, source: str, e164: str, *, at: datetime) -> None:
        codec.require_aware(at, "at")
        await redis_lists.put_single(
            self.conn, opposition_list(source), e164, "", codec.iso(at) or "", now=at
        )

    async def remove_opposition(self, source: str, e164: str) -> bool:
        return await redis_lists.remove_single(self.conn, opposition_list(source), e164, "")

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
        return await redis_lists.purge_superseded(
            self.conn, now=now, stale_import_s=self._stale_import_s, scan_count=self._scan_count
        )

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

    async def ping(self) -> None:
        async with self.conn.guard("ping"):
            await self.conn.client.ping()

    async def close(self) -> None:
        async with self.conn.guard("close"):
            await self.conn.close()


class _HashFacts:
    __slots__ = ("consents", "contracts", "lists", "oppositions", "suppressions")

    def __init__(self) -> None:
        self.consents: tuple[ConsentRecord, ...] = ()
        self.contracts: tuple[ContractRecord, ...] = ()
        self.oppositions: tuple[OppositionEntry, ...] = ()
        self.lists: tuple[ListInfo, ...] = ()
        self.suppressions: tuple[Suppression, ...] = ()


def facts_from_hash(e164: str, professional: str | None, raw: dict[Any, Any],
                    metas: dict[str, ListMeta]) -> _HashFacts:
    """Decode a per-number hash: newest live version of each entry, withdrawals applied.

    ``professional=None`` keeps the records of every professional.
    """
    newest: dict[tuple[str, str], tuple[int, str]] = {}
    suppressions: list[Suppression] = []
    withdrawals: dict[str, list[datetime]] = {}
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
    out = _HashFacts()
    consents, contracts, oppositions = [], [], []
    for (name, entry_id), (_, text) in newest.items():
        if name == LIST_CONSENTS:
            c = codec.decode_consent(e164, entry_id, text)
            if professional is None or c.professional == professional:
                consents.append(codec.apply_withdrawals(c, withdrawals))
        elif name == LIST_CONTRACTS:
            k = codec.decode_contract(e164, entry_id, text)
            if professional is None or k.professional == professional:
                contracts.append(k)
        elif name.startswith(OPPOSITION_PREFIX):
            oppositions.append(OppositionEntry(
                source=name[len(OPPOSITION_PREFIX):], registered_at=codec.parse_iso(text)
            ))
    out.consents = tuple(sorted(consents, key=lambda c: (c.collected_at, c.id)))
    out.contracts = tuple(sorted(contracts, key=lambda c: (c.started_at, c.id)))
    out.oppositions = tuple(sorted(oppositions, key=lambda o: o.source))
    out.lists = tuple(metas[n].info() for n in sorted(metas) if metas[n].committed)
    out.suppressions = tuple(sorted(suppressions, key=lambda s: s.since))
    return out
