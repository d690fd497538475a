"""In-process store: the embedded default for a single node and for demos.

Same contract as the Redis store (``tests/store/test_contract.py``). asyncio-safe
because every change is a synchronous section (no ``await`` between a read and the
write that depends on it); imports build their new state aside and switch it in one
synchronous step, so readers never see half a list.
"""

from __future__ import annotations

import asyncio
import dataclasses
from array import array
from collections.abc import AsyncIterable, Iterable, Sequence
from datetime import datetime

from gateway.core.model import (
    CampaignStats,
    ConsentRecord,
    ContractRecord,
    Facts,
    ListInfo,
    OppositionEntry,
    Suppression,
)
from gateway.store import codec, prescreen
from gateway.store.base import (
    FactsQuery,
    ImportMode,
    OppositionRow,
    Reservation,
    Store,
    StoreError,
)
from gateway.store.batches import DEFAULT_IMPORT_BATCH_SIZE, batches
from gateway.store.compact import CompactNumbers, number_int
from gateway.store.keys import LIST_CONSENTS, LIST_CONTRACTS, opposition_list, withdrawal_field

# Rolling window of the pacing counter (attempts per campaign in the last 60 s).
PACING_WINDOW_S = 60
# Answered/abandoned calls are kept this long (the longest abandon window, US: 30 days).
DEFAULT_ANSWER_RETENTION_S = 31 * 24 * 3600
# Every this many reservations, attempt histories older than their window are dropped.
DEFAULT_SWEEP_EVERY = 10_000

_Key = tuple[str, str]


class MemoryStore(Store):
    def __init__(
        self,
        *,
        import_batch_size: int = DEFAULT_IMPORT_BATCH_SIZE,
        answer_retention_s: int = DEFAULT_ANSWER_RETENTION_S,
        sweep_every: int = DEFAULT_SWEEP_EVERY,
    ) -> None:
        self._batch = import_batch_size
        self._answer_retention_ms = answer_retention_s * 1000
        self._sweep_every = sweep_every
        self._reservations = 0
        self._lists: dict[str, ListInfo] = {}
        self._seq: dict[str, int] = {}
        self._base: dict[str, int] = {}  # version of the last replace import per list
        # opposition lists: the imported snapshot (compact) and the numbers added one by
        # one (opposition add, do_not_call outcomes), which no import ever replaces
        self._snapshots: dict[str, CompactNumbers] = {}
        self._individual: dict[str, dict[str, datetime]] = {}
        self._consents: dict[str, dict[str, ConsentRecord]] = {}
        self._contracts: dict[str, dict[str, ContractRecord]] = {}
        self._withdrawals: dict[str, dict[str, str]] = {}
        self._suppressions: dict[str, dict[str, Suppression]] = {}
        # (e164, professional) -> attempt id -> epoch ms; and the window last used
        self._attempts: dict[_Key, dict[str, int]] = {}
        self._attempt_windows: dict[_Key, int] = {}
        self._answered: dict[str, dict[str, tuple[int, bool]]] = {}
        self._paced: dict[str, dict[str, int]] = {}
        # (e164, decision id) -> prescreen token (JSON, as in Redis); insertion order is
        # issue order, so expired tokens are dropped from the front
        self._prescreens: dict[_Key, tuple[str, int]] = {}
        self._closed = False

    # --- hot path -------------------------------------------------------------------

    async def load_facts(
        self, *, e164: str, professional: str, campaign_id: str, now: datetime,
        attempt_window_s: int, abandon_window_s: int, prescreen_id: str | None = None,
    ) -> Facts:
        now_ms = codec.to_ms(now)
        token = None
        if prescreen_id is not None:  # consumed whatever it holds: one-shot
            raw = self._prescreens.pop((e164, prescreen_id), None)
            token = prescreen.match(raw[0] if raw else None, decision_id=prescreen_id,
                                    e164=e164, professional=professional, now=now)
        own = token.decision_id if token is not None else None
        withdrawals = {
            k[2:]: codec.parse_withdrawals(v) for k, v in self._withdrawals.get(e164, {}).items()
        }
        consents = sorted(
            (codec.apply_withdrawals(c, withdrawals)
             for c in self._consents.get(e164, {}).values() if c.professional == professional),
            key=lambda c: (c.collected_at, c.id),
        )
        contracts = sorted(
            (c for c in self._contracts.get(e164, {}).values() if c.professional == professional),
            key=lambda c: (c.started_at, c.id),
        )
        oppositions = self._oppositions_of(e164)
        low = now_ms - attempt_window_s * 1000
        attempts = sorted(
            ms for aid, ms in self._attempts.get((e164, professional), {}).items()
            if ms > low and aid != own
        )
        suppressions = sorted(
            (s for s in self._suppressions.get(e164, {}).values()
             if s.professional == professional),
            key=lambda s: s.since,
        )
        return Facts(
            consents=tuple(consents),
            contracts=tuple(contracts),
            oppositions=oppositions,
            lists=tuple(self._lists[n] for n in sorted(self._lists)),
            attempts=tuple(codec.from_ms(ms) for ms in attempts),
            suppressions=tuple(suppressions),
            campaign=self._campaign_stats(campaign_id, now_ms, abandon_window_s, own),
            prescreen=token,
        )

    async def load_facts_many(
        self, queries: Sequence[FactsQuery], *, now: datetime
    ) -> list[Facts]:
        """:meth:`load_facts` for each query, with what a batch shares computed once: each
        campaign's counters, the lists, and the facts of a number nothing is stored for
        (most leads of a scrub; the same value :meth:`load_facts` gives)."""
        now_ms = codec.to_ms(now)
        lists = tuple(self._lists[n] for n in sorted(self._lists))
        names = self._opposition_names()
        nothing: dict[tuple[str, int], Facts] = {}
        out = []
        for q in queries:
            slot = (q.campaign_id, q.abandon_window_s)
            if slot not in nothing:
                nothing[slot] = Facts(lists=lists, campaign=self._campaign_stats(
                    q.campaign_id, now_ms, q.abandon_window_s))
            e164 = q.e164
            if (e164 in self._consents or e164 in self._contracts
                    or e164 in self._suppressions or (e164, q.professional) in self._attempts
                    or self._oppositions_of(e164, names)):
                out.append(await self.load_facts(
                    e164=e164, professional=q.professional, campaign_id=q.campaign_id,
                    now=now, attempt_window_s=q.attempt_window_s,
                    abandon_window_s=q.abandon_window_s))
            else:
                out.append(nothing[slot])
        return out

    def _campaign_stats(self, campaign_id: str, now_ms: int, abandon_window_s: int,
                        own: str | None = None) -> CampaignStats:
        """``own``: a prescreened call's own attempt, already counted by the proxy."""
        answered_low = now_ms - abandon_window_s * 1000
        # answers after ``now`` (a back-dated check) had not happened yet: they do not count
        answered = [a for a in self._answered.get(campaign_id, {}).values()
                    if answered_low < a[0] <= now_ms]
        paced_low = now_ms - PACING_WINDOW_S * 1000
        return CampaignStats(
            answered=len(answered),
            abandoned=sum(1 for a in answered if a[1]),
            attempts_last_minute=sum(
                1 for aid, ms in self._paced.get(campaign_id, {}).items()
                if paced_low < ms <= now_ms and aid != own
            ),
        )

    async def campaign_stats(
        self, *, campaign_id: str, now: datetime, abandon_window_s: int
    ) -> CampaignStats:
        codec.require_aware(now, "now")
        return self._campaign_stats(campaign_id, codec.to_ms(now), abandon_window_s)

    async def reserve_attempt(
        self, *, e164: str, professional: str, campaign_id: str, now: datetime,
        window_s: int, limit: int | None, attempt_id: str,
        day_since: datetime | None = None, day_limit: int | None = None,
        prescreen_ttl_s: int | None = None, caps: Sequence[tuple[int, int]] = (),
    ) -> Reservation:
        now_ms = codec.to_ms(now)
        key = (e164, professional)
        if prescreen_ttl_s is not None:
            self._drop_expired_prescreens(now_ms)
        history = self._attempts.setdefault(key, {})
        low = now_ms - window_s * 1000
        for aid in [a for a, ms in history.items() if ms <= low]:
            del history[aid]
        if attempt_id in history:
            self._issue_prescreen(e164, professional, campaign_id, attempt_id, now_ms,
                                  prescreen_ttl_s)
            return Reservation(ok=True, count=len(history))
        if limit is not None and len(history) >= limit:
            return Reservation(ok=False, count=len(history))
        if day_since is not None and day_limit is not None:
            since_ms = codec.to_ms(day_since)
            if sum(1 for ms in history.values() if ms >= since_ms) >= day_limit:
                return Reservation(ok=False, count=len(history))
        for cap_window_s, cap_limit in caps:
            cap_low = now_ms - min(cap_window_s, window_s) * 1000
            if sum(1 for ms in history.values() if ms > cap_low) >= cap_limit:
                return Reservation(ok=False, count=len(history))
        history[attempt_id] = now_ms
        self._issue_prescreen(e164, professional, campaign_id, attempt_id, now_ms,
                              prescreen_ttl_s)
        self._attempt_windows[key] = window_s * 1000
        paced = self._paced.setdefault(campaign_id, {})
        paced[attempt_id] = now_ms
        paced_low = now_ms - PACING_WINDOW_S * 1000
        for aid in [a for a, ms in paced.items() if ms <= paced_low]:
            del paced[aid]
        self._reservations += 1
        if self._reservations % self._sweep_every == 0:
            self._sweep(now_ms)
        return Reservation(ok=True, count=len(history))

    async def release_attempt(
        self, *, e164: str, professional: str, campaign_id: str, attempt_id: str,
    ) -> None:
        self._attempts.get((e164, professional), {}).pop(attempt_id, None)
        self._paced.get(campaign_id, {}).pop(attempt_id, None)
        self._prescreens.pop((e164, attempt_id), None)

    def _issue_prescreen(self, e164: str, professional: str, campaign_id: str,
                         attempt_id: str, now_ms: int, ttl_s: int | None) -> None:
        if ttl_s is None:
            return
        value = prescreen.encode(e164=e164, professional=professional,
                                 campaign_id=campaign_id, at_ms=now_ms, ttl_s=ttl_s)
        self._prescreens.pop((e164, attempt_id), None)  # re-issued: moves to the end
        self._prescreens[(e164, attempt_id)] = (value, now_ms + ttl_s * 1000)

    def _drop_expired_prescreens(self, now_ms: int) -> None:
        while self._prescreens:
            key, (_, expires_ms) = next(iter(self._prescreens.items()))
            if expires_ms >= now_ms:
                return
            del self._prescreens[key]

    def _sweep(self, now_ms: int) -> None:
        for key in list(self._attempts):
            window = self._attempt_windows.get(key, 0)
            if all(ms <= now_ms - window for ms in self._attempts[key].values()):
                del self._attempts[key]
                self._attempt_windows.pop(key, None)

    # --- lists ------------------------------------------------------------------------

    def _begin(self, name: str) -> int:
        self._seq[name] = self._seq.get(name, 0) + 1
        return self._seq[name]

    def _check_not_superseded(self, name: str, version: int, mode: ImportMode) -> None:
        """Same rule as the Redis store: a replace committed meanwhile wins."""
        current = self._lists.get(name)
        if mode is ImportMode.REPLACE and current is not None and current.version > version:
            raise StoreError(f"list {name}: import superseded: version {current.version} "
                             "was committed meanwhile")
        if mode is ImportMode.MERGE and self._base.get(name, 0) > version:
            raise StoreError(f"list {name}: import superseded: a replace import was "
                             "committed meanwhile")

    def _commit(self, name: str, version: int, size: int, now: datetime, content_hash: str
                ) -> ListInfo:
        current = self._lists.get(name)
        version = max(version, current.version if current is not None else 0)
        info = ListInfo(name=name, version=version, imported_at=codec.from_ms(codec.to_ms(now)),
                        size=size, content_hash=content_hash)
        self._lists[name] = info
        return info

    async def import_consents(
        self, rows: AsyncIterable[ConsentRecord] | Iterable[ConsentRecord], *, mode: ImportMode,
        now: datetime, content_hash: str = "",
    ) -> ListInfo:
        codec.require_aware(now, "now")
        version = self._begin(LIST_CONSENTS)
        staged: dict[str, dict[str, ConsentRecord]] = {}
        async for batch in batches(rows, self._batch):
            for r in batch:
                codec.validate_consent(r)
                staged.setdefault(r.e164, {})[r.id] = codec.normalise_consent(r)
        self._check_not_superseded(LIST_CONSENTS, version, mode)
        if mode is ImportMode.REPLACE:
            self._base[LIST_CONSENTS] = version
            self._consents = staged
        else:
            for e164, per in staged.items():
                self._consents.setdefault(e164, {}).update(per)
        size = sum(len(v) for v in self._consents.values())
        return self._commit(LIST_CONSENTS, version, size, now, content_hash)

    async def withdraw_consent(
        self, *, e164: str, professional: str | None, at: datetime
    ) -> int:
        codec.require_aware(at, "at")
        per_number = self._withdrawals.setdefault(e164, {})
        withdrawals = {k[2:]: codec.parse_withdrawals(v) for k, v in per_number.items()}
        count = sum(
            1 for c in self._consents.get(e164, {}).values()
            if codec.withdrawal_applies(codec.apply_withdrawals(c, withdrawals), professional, at)
        )
        field = withdrawal_field(professional)
        per_number[field] = codec.append_withdrawal(per_number.get(field), at)
        return count

    async def import_contracts(
        self, rows: AsyncIterable[ContractRecord] | Iterable[ContractRecord], *, mode: ImportMode,
        now: datetime, content_hash: str = "",
    ) -> ListInfo:
        codec.require_aware(now, "now")
        version = self._begin(LIST_CONTRACTS)
        staged: dict[str, dict[str, ContractRecord]] = {}
        async for batch in batches(rows, self._batch):
            for r in batch:
                codec.validate_contract(r)
                staged.setdefault(r.e164, {})[r.id] = codec.normalise_contract(r)
        self._check_not_superseded(LIST_CONTRACTS, version, mode)
        if mode is ImportMode.REPLACE:
            self._base[LIST_CONTRACTS] = version
            self._contracts = staged
        else:
            for e164, per in staged.items():
                self._contracts.setdefault(e164, {}).update(per)
        size = sum(len(v) for v in self._contracts.values())
        return self._commit(LIST_CONTRACTS, version, size, now, content_hash)

    async def import_opposition(
        self, source: str,
        rows: AsyncIterable[OppositionRow] | Iterable[OppositionRow] | CompactNumbers, *,
        mode: ImportMode, now: datetime, content_hash: str = "",
    ) -> ListInfo:
        codec.require_aware(now, "now")
        name = opposition_list(source)
        version = self._begin(name)
        if isinstance(rows, CompactNumbers):
            staged = rows  # built by the importer for this call; kept as it is
            for _ in staged.buckets():  # progress (the watcher) and a yield per list
                pass
            await asyncio.sleep(0)
        else:
            ints: array[int] = array("Q")
            async for batch in batches(rows, self._batch):
                for r in batch:
                    if not r.e164:
                        raise ValueError("opposition row without number")
                    ints.append(number_int(r.e164))
            staged = CompactNumbers.build(ints)
            del ints
        self._check_not_superseded(name, version, mode)
        if mode is ImportMode.REPLACE:
            self._base[name] = version
            self._snapshots[name] = staged
        else:
            self._snapshots[name] = self._snapshots.get(name, CompactNumbers()).union(staged)
        return self._commit(name, version, self._opposition_size(name), now, content_hash)

    def _opposition_size(self, name: str) -> int:
        snapshot = self._snapshots.get(name, CompactNumbers())
        extra = sum(1 for e164 in self._individual.get(name, {})
                    if number_int(e164) not in snapshot)
        return len(snapshot) + extra

    def _oppositions_of(self, e164: str, names: Sequence[str] | None = None
                        ) -> tuple[OppositionEntry, ...]:
        """``names``: ``_opposition_names()`` when the caller has it (a batch)."""
        try:
            n = number_int(e164)
        except ValueError:
            n = -1
        out: list[OppositionEntry] = []
        for name in self._opposition_names() if names is None else names:
            source = name.split(":", 1)[1]
            added = self._individual.get(name, {}).get(e164)
            if added is not None:
                out.append(OppositionEntry(source=source, registered_at=added))
            elif n in self._snapshots.get(name, ()):
                out.append(OppositionEntry(source=source, registered_at=None))
        return tuple(out)

    def _opposition_names(self) -> list[str]:
        return sorted(set(self._snapshots) | set(self._individual))

    def _ensure_list(self, name: str, at: datetime) -> ListInfo:
        info = self._lists.get(name)
        if info is None:
            info = self._commit(name, self._begin(name), 0, at, "")
        return info

    async def add_opposition(self, source: str, e164: str, *, at: datetime) -> None:
        codec.require_aware(at, "at")
        name = opposition_list(source)
        n = number_int(e164)
        info = self._ensure_list(name, at)
        entries = self._individual.setdefault(name, {})
        if e164 not in entries:
            entries[e164] = codec.parse_iso(codec.iso(at)) or at
            if n not in self._snapshots.get(name, ()):
                self._lists[name] = dataclasses.replace(info, size=info.size + 1)

    async def remove_opposition(self, source: str, e164: str) -> bool:
        name = opposition_list(source)
        individual = self._individual.get(name, {}).pop(e164, None) is not None
        snapshot = self._snapshots.get(name)
        from_snapshot = snapshot is not None and snapshot.discard(number_int(e164))
        if not (individual or from_snapshot):
            return False
        info = self._lists[name]
        self._lists[name] = dataclasses.replace(info, size=max(0, info.size - 1))
        return True

    async def drop_opposition(self, source: str) -> bool:
        name = opposition_list(source)
        self._snapshots.pop(name, None)
        if self._individual.get(name):
            info = self._lists[name]
            self._lists[name] = dataclasses.replace(info, size=self._opposition_size(name))
            return True
        return self._lists.pop(name, None) is not None

    async def add_suppression(self, e164: str, suppression: Suppression) -> None:
        codec.require_aware(suppression.since, "suppression since")
        normalised = codec.decode_suppression(codec.encode_suppression(suppression))
        field = f"{codec.to_ms(suppression.since)}|{suppression.professional}"
        self._suppressions.setdefault(e164, {})[field] = normalised

    async def lists_status(self) -> list[ListInfo]:
        return [self._lists[n] for n in sorted(self._lists)]

    # --- campaign counters ------------------------------------------------------------

    async def record_answer(
        self, *, campaign_id: str, call_id: str, at: datetime, abandoned: bool
    ) -> None:
        at_ms = codec.to_ms(at)
        calls = self._answered.setdefault(campaign_id, {})
        if call_id in calls:
            return
        calls[call_id] = (at_ms, abandoned)
        low = at_ms - self._answer_retention_ms
        for cid in [c for c, v in calls.items() if v[0] <= low]:
            del calls[cid]

    # --- lifecycle --------------------------------------------------------------------

    async def purge_superseded(self, *, now: datetime) -> int:
        """Nothing to purge: superseded versions are dropped when an import switches."""
        codec.require_aware(now, "now")
        return 0

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._closed = True
