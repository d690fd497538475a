"""The store interface: one contract, two implementations (memory, Redis).

Every implementation must pass ``tests/store/test_contract.py``. Errors of the
backing infrastructure (connection refused, timeouts, cluster down) are raised as
:class:`StoreUnavailable`, never as the driver's own exceptions.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from gateway.store.compact import CompactNumbers
    from gateway.store.resp import LeanClient

from gateway.core.model import (
    CampaignStats,
    ConsentRecord,
    ContractRecord,
    Facts,
    ListInfo,
    Suppression,
)


class StoreError(Exception):
    """Base of the store's own errors."""


class StoreUnavailable(StoreError):
    """The backing store cannot be reached or did not answer in time."""


class StoreBusy(StoreUnavailable):
    """The store is up but this process could not get its answer in time: every
    connection stayed busy for longer than the caller could wait, or a reply was read
    after the socket timeout because the event loop ran late (``gateway.loop_lag``).

    The gateway is saturated, the store is not down: the hot path answers ``timeout``,
    never ``store_unavailable``. Other callers may treat it as :class:`StoreUnavailable`.
    """


# The hot path's deadline (event-loop time) for the store operations of one decision: a
# store that must wait for a connection waits until then (the decision budget), not for
# its own pool timeout. Set by the Service around a decision; None elsewhere.
OPERATION_DEADLINE: ContextVar[float | None] = ContextVar("store_operation_deadline",
                                                          default=None)


class ImportMode(StrEnum):
    REPLACE = "replace"  # the new file is the whole list (atomic switch)
    MERGE = "merge"  # the new file's rows are added to (or update) the list


@dataclass(frozen=True, slots=True)
class Reservation:
    """Result of an atomic attempt reservation against a frequency cap."""

    ok: bool
    count: int  # attempts in the window, including this one when ok


@dataclass(frozen=True, slots=True)
class OppositionRow:
    e164: str
    registered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FactsQuery:
    """One :meth:`Store.load_facts` call's arguments, for :meth:`Store.load_facts_many`."""

    e164: str
    professional: str
    campaign_id: str
    attempt_window_s: int
    abandon_window_s: int


class Store(abc.ABC):
    """Shared state of all gateway instances."""

    #: A consent replace import is built aside until its commit, which takes the file's
    #: content hash at the end (``consent_pack.PreEncoded.content_hash``): the importer
    #: may write it while the rest of the file is still being validated.
    consent_replace_aside: ClassVar[bool] = False

    # --- hot path ---------------------------------------------------------------

    @abc.abstractmethod
    async def load_facts(
        self,
        *,
        e164: str,
        professional: str,
        campaign_id: str,
        now: datetime,
        attempt_window_s: int,
        abandon_window_s: int,
        prescreen_id: str | None = None,
    ) -> Facts:
        """All per-number and per-campaign facts for one attempt, in one round trip.

        ``attempts`` holds the professional's attempts to ``e164`` within
        ``attempt_window_s`` before ``now``; ``campaign`` the abandon counters within
        ``abandon_window_s`` and the attempts of the last 60 s (pacing).

        ``prescreen_id``: the same read also consumes (one-shot, atomically) the
        prescreen token of ``(e164, prescreen_id)``. When it matches (``professional``,
        unexpired at ``now``; ``gateway/store/prescreen.py``) it is returned in
        ``Facts.prescreen`` and the attempt it counted (id ``prescreen_id``) is left out
        of ``attempts`` and of the pacing count. Otherwise it is gone all the same.
        """

    async def load_facts_many(
        self, queries: Sequence[FactsQuery], *, now: datetime
    ) -> list[Facts]:
        """:meth:`load_facts` for many numbers at ``now`` (bulk scrubbing), in order.

        The same facts as one :meth:`load_facts` each; a store may batch the reads
        (Redis: one pipeline for the whole batch). Read only.
        """
        return [
            await self.load_facts(
                e164=q.e164, professional=q.professional, campaign_id=q.campaign_id, now=now,
                attempt_window_s=q.attempt_window_s, abandon_window_s=q.abandon_window_s,
            )
            for q in queries
        ]

    @abc.abstractmethod
    async def reserve_attempt(
        self,
        *,
        e164: str,
        professional: str,
        campaign_id: str,
        now: datetime,
        window_s: int,
        limit: int | None,
        attempt_id: str,
        day_since: datetime | None = None,
        day_limit: int | None = None,
        prescreen_ttl_s: int | None = None,
        caps: Sequence[tuple[int, int]] = (),
    ) -> Reservation:
        """Atomically record an attempt if fewer than ``limit`` exist in the window
        and, with ``day_limit``, fewer than ``day_limit`` since ``day_since`` (the start
        of the callee's day; within the window), and, for each ``(window_s, limit)`` of
        ``caps`` (windows no longer than ``window_s``), fewer than that limit within that
        window: a US state's cap layered over the federal one, honoured together.

        Two concurrent reservations on a number with one attempt left: exactly one
        gets ``ok=True``. ``limit=None`` always records. The attempt also counts
        towards the campaign's pacing counter.

        ``prescreen_ttl_s``: when the attempt is recorded, atomically with it, leave a
        prescreen token for ``(e164, attempt_id)`` valid that long (see ``load_facts``).
        """

    @abc.abstractmethod
    async def release_attempt(
        self, *, e164: str, professional: str, campaign_id: str, attempt_id: str,
    ) -> None:
        """Undo :meth:`reserve_attempt` for a call that was not placed after all (its
        audit record could not be written in time), with its prescreen token if it had one.
        Idempotent; unknown ids are ignored."""

    # --- lists ------------------------------------------------------------------

    @abc.abstractmethod
    async def import_consents(
        self, rows: AsyncIterable[ConsentRecord] | Iterable[ConsentRecord], *, mode: ImportMode,
        now: datetime, content_hash: str = "",
    ) -> ListInfo:
        """Import consents; all visible at once or none (atomic)."""

    @abc.abstractmethod
    async def withdraw_consent(
        self, *, e164: str, professional: str | None, at: datetime
    ) -> int:
        """Mark consents of ``e164`` (for one professional, or all) withdrawn; returns count."""

    @abc.abstractmethod
    async def import_contracts(
        self, rows: AsyncIterable[ContractRecord] | Iterable[ContractRecord], *, mode: ImportMode,
        now: datetime, content_hash: str = "",
    ) -> ListInfo:
        """Import contracts in progress; atomic."""

    @abc.abstractmethod
    async def import_opposition(
        self, source: str,
        rows: AsyncIterable[OppositionRow] | Iterable[OppositionRow] | CompactNumbers, *,
        mode: ImportMode, now: datetime, content_hash: str = "",
    ) -> ListInfo:
        """Import an opposition list snapshot for ``source``; atomic switch of versions.

        ``rows`` may also be a :class:`CompactNumbers` (numbers already grouped by bucket,
        deduplicated: what the fast importer builds).
        """

    @abc.abstractmethod
    async def add_opposition(self, source: str, e164: str, *, at: datetime) -> None:
        """Add one number to an opposition list (bumps nothing: the list keeps its version)."""

    @abc.abstractmethod
    async def remove_opposition(self, source: str, e164: str) -> bool:
        """Remove one number; returns whether it was there."""

    @abc.abstractmethod
    async def add_suppression(self, e164: str, suppression: Suppression) -> None:
        """Start a refusal/withdrawal suppression for (professional, number)."""

    @abc.abstractmethod
    async def lists_status(self) -> list[ListInfo]:
        """Every known list with version, import time and size."""

    async def drop_opposition(self, source: str) -> bool:
        """Delete the imported snapshot and the metadata of an opposition list (a
        mistyped ``--source``); returns whether it existed. Numbers added one by one
        stay (remove them with ``remove_opposition``)."""
        raise NotImplementedError

    # --- live campaign counters (AMI event consumer) -----------------------------

    @abc.abstractmethod
    async def record_answer(
        self, *, campaign_id: str, call_id: str, at: datetime, abandoned: bool
    ) -> None:
        """Count one live-answered call of the campaign (abandoned or bridged).

        Idempotent per ``call_id`` so that two instances seeing the same event
        count it once.
        """

    @abc.abstractmethod
    async def campaign_stats(
        self, *, campaign_id: str, now: datetime, abandon_window_s: int
    ) -> CampaignStats:
        """The campaign's shared counters alone (no number): answered and abandoned calls
        within ``abandon_window_s`` before ``now`` and the attempts of the last 60 s."""

    # --- lifecycle ----------------------------------------------------------------

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""

    def hot_connection(self) -> LeanClient | None:
        """The hot path's own connection, when it has one (``gateway.store.resp``
        ``LeanClient``: its ``connects``, ``connect_failures``, ``connected`` and
        ``in_flight`` are exported as metrics); None otherwise."""
        return None

    async def warm_up(self) -> None:
        """Before the first call is taken: whatever a cold client would otherwise do
        inside the first decisions' budget. Raise StoreUnavailable when the store does
        not answer (the gateway still starts, fails closed and says so in /readyz)."""
        await self.ping()

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""
