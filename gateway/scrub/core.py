"""From leads to scrubbed rows: batching, the engine's decision, the added columns."""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.core.calendar import zone_info
from gateway.core.model import Attempt, Decision, Reason, Verdict
from gateway.service import Service

#: Rows decided per store round trip (one Redis pipeline per batch).
DEFAULT_BATCH_ROWS = 2000
#: Allocations between two collections of the youngest generation during a bulk run
#: (Python's default is 700): see :func:`bulk_gc`.
BULK_GC_THRESHOLD = 100_000
#: Distinct (next instant, zone) pairs whose text is kept by one Scrubber.
MAX_INSTANT_TEXTS = 4096

#: Columns added after the lead's own, in this order (docs/scrub.md).
ADDED_COLUMNS = (
    "verdict",  # ALLOW | BLOCK | INVALID (row unusable: no number, broken CSV row)
    "reason",  # the engine's reason code; invalid_row for INVALID rows
    "e164",
    "next_legal_at",  # first instant the call would be legal, UTC (ALLOW: the --at instant)
    "next_legal_local",  # the same instant in the callee's zone
    "zones",  # the callee's zone(s), space separated
    "consent_id",  # the consent that allows the call (opt-in regimes)
    "contract_id",  # or the contract in progress that allows it
    "error",  # why a row is INVALID
)

INVALID = "INVALID"
INVALID_ROW = "invalid_row"


@dataclass(frozen=True, slots=True)
class Lead:
    """One input row: its own fields (kept as they are) and the number to decide."""

    line: int  # 1-based record number in the input (header excluded)
    fields: Sequence[str]
    number: str | None  # None: the row is unusable (``error`` says why)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Scrubbed:
    lead: Lead
    added: tuple[str, ...]  # values of ADDED_COLUMNS

    @property
    def verdict(self) -> str:
        return self.added[0]

    @property
    def reason(self) -> str:
        return self.added[1]

    def as_dict(self, names: Sequence[str]) -> dict[str, str]:
        return dict(zip(names, self.added, strict=True))


@dataclass(slots=True)
class ScrubSummary:
    """Counts by verdict and by reason, for the end-of-run summary (``--json``)."""

    rows: int = 0
    by_verdict: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
    first_invalid: list[tuple[int, str]] = field(default_factory=list)  # (line, error)

    def add(self, row: Scrubbed) -> None:
        self.rows += 1
        self.by_verdict[row.verdict] += 1
        self.by_reason[row.reason] += 1
        if row.verdict == INVALID and len(self.first_invalid) < 20:
            self.first_invalid.append((row.lead.line, row.added[-1]))

    def add_all(self, rows: Sequence[Scrubbed]) -> None:
        """:meth:`add` for a batch (the counters updated in bulk)."""
        self.rows += len(rows)
        self.by_verdict.update([row.added[0] for row in rows])
        self.by_reason.update([row.added[1] for row in rows])
        if self.by_verdict[INVALID] and len(self.first_invalid) < 20:
            for row in rows:
                if row.added[0] == INVALID and len(self.first_invalid) < 20:
                    self.first_invalid.append((row.lead.line, row.added[-1]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "allow": self.by_verdict.get("ALLOW", 0),
            "block": self.by_verdict.get("BLOCK", 0),
            "invalid": self.by_verdict.get(INVALID, 0),
            "by_reason": dict(sorted(self.by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
            "first_invalid": [{"line": line, "error": err} for line, err in self.first_invalid],
        }


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


@contextlib.contextmanager
def bulk_gc(threshold: int = BULK_GC_THRESHOLD) -> Iterator[None]:
    """A bulk run in a process of its own (the ``scrub`` command): the objects built so
    far (policy, packs, modules) are frozen out of the collector's scans, and the
    youngest generation is collected every ``threshold`` allocations instead of 700.
    Every lead allocates a few hundred short-lived objects (freed by reference counting):
    with the default threshold the collector ran every few leads and took about a fifth
    of the CPU. Memory stays bounded (the collections still run). Restored on exit."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(threshold, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


class Scrubber:
    """Decides leads for one campaign at one instant, a batch at a time."""

    def __init__(self, service: Service, campaign: str, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        self.service = service
        self.campaign = campaign
        self.at = at
        # (seconds after ``at`` or None for ``at`` itself, zone) -> (UTC text, local text):
        # a batch has a few distinct next instants (one per zone and window), not one per lead
        self._texts: dict[tuple[int | None, str | None], tuple[str, str]] = {}

    async def scrub(self, leads: Sequence[Lead]) -> list[Scrubbed]:
        usable = [lead for lead in leads if lead.number is not None]
        attempts = [Attempt(number=lead.number or "", campaign_id=self.campaign, source="scrub")
                    for lead in usable]
        decisions = iter(await self.service.evaluate_many(attempts, self.at, explain=False))
        out = []
        for lead in leads:
            if lead.number is None:
                out.append(Scrubbed(lead, (INVALID, INVALID_ROW, "", "", "", "", "", "",
                                           lead.error or "unusable row")))
            else:
                out.append(Scrubbed(lead, self.columns(next(decisions))))
        return out

    def columns(self, decision: Decision) -> tuple[str, ...]:
        if decision.verdict is Verdict.ALLOW:
            utc, local = self._instant_texts(None, decision.zones)
        elif decision.retry_after_s is not None:
            utc, local = self._instant_texts(decision.retry_after_s, decision.zones)
        else:
            utc = local = ""
        return (
            decision.verdict.value,
            decision.reason.value,
            decision.e164 or "",
            utc,
            local,
            " ".join(decision.zones),
            decision.consent_id or "",
            decision.contract_id or "",
            decision.trace[-1] if decision.reason is Reason.INVALID_NUMBER and decision.trace
            else "",
        )

    def _instant_texts(self, after_s: int | None, zones: tuple[str, ...]) -> tuple[str, str]:
        """The next legal instant ``at`` (+ ``after_s``) in UTC and in the first zone."""
        zone = zones[0] if zones else None
        key = (after_s, zone)
        texts = self._texts.get(key)
        if texts is None:
            next_at = self.at if after_s is None else self.at + timedelta(seconds=after_s)
            texts = (_iso(next_at.astimezone(UTC)),
                     _iso(next_at.astimezone(zone_info(zone))) if zone is not None else "")
            if len(self._texts) >= MAX_INSTANT_TEXTS:
                self._texts.clear()
            self._texts[key] = texts
        return texts
