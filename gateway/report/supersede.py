"""Counting each decision once: the superseding records of the trail (first pass).

When the service's answer differs from a record already written (its write missed the
deadline, so the call was answered by the fail mode: ``gateway.audit.enforced``), a
later record with the same decision id and ``supersedes`` = that id says what was
enforced. The report counts each decision by its **last** record, streaming:

1. a first pass over the raw lines keeps, for each decision id that has superseding
   records, how many it has (:class:`Supersessions`). Only lines containing the bytes
   ``"supersedes"`` are parsed (the key of a superseding record, which other records
   do not have), so this pass costs a byte search per line;
2. the second pass (:meth:`Supersessions.keep`) skips every record of such an id except
   its last superseding record. An original is skipped wherever it lies, even after its
   superseding record (trails written before the Redis sink stopped re-sealing late
   originals after a head conflict may have that order).

Memory: one entry per superseded decision id, at most :data:`MAX_SUPERSEDED_IDS`
(about 150 bytes each). Superseding records are rare (a call blocked because its
audit record missed its write deadline); beyond the bound the ids are not kept, their
records are counted as any record (the decision may be counted twice) and the report
says how many (``unresolved``). The second pass reads as many lines as the first one
did, so records appended in between are left out of both.
"""

from __future__ import annotations

import json
from typing import Any

MAX_SUPERSEDED_IDS = 100_000
_KEY = b'"supersedes"'


class Supersessions:
    def __init__(self, limit: int = MAX_SUPERSEDED_IDS) -> None:
        self.limit = limit
        # decision id -> superseding records the second pass has not seen yet
        self.pending: dict[str, int] = {}
        self.lines = 0  # lines read by the first pass: the second one reads as many
        self.unresolved = 0  # superseding records whose id was not kept (beyond limit)

    def scan(self, raw: bytes | str) -> None:
        """First pass: one stored line."""
        self.lines += 1
        data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
        if _KEY not in data:
            return
        try:
            rec = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
            return  # the second pass reports it (unparseable)
        target = rec.get("supersedes") if isinstance(rec, dict) else None
        if not isinstance(target, str) or rec.get("id") != target:
            return
        if target in self.pending:
            self.pending[target] += 1
        elif len(self.pending) < self.limit:
            self.pending[target] = 1
        else:
            self.unresolved += 1

    def keep(self, rec: dict[str, Any]) -> bool:
        """Second pass: whether ``rec`` is the record its decision is counted by."""
        rid = rec.get("id")
        if not isinstance(rid, str):
            return True
        left = self.pending.get(rid)
        if left is None:
            return True
        if rec.get("supersedes") != rid:
            return False  # the original, superseded (before or after its superseding record)
        self.pending[rid] = max(0, left - 1)
        return left == 1  # the last superseding record of this decision
