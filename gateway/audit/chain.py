"""Hash chains over audit records, and their verification (sans-IO).

One chain per writer instance: every record carries ``instance``, ``seq`` (0, 1, 2,
... within that instance's chain), ``prev`` (the ``hash`` of the previous record of
the same chain; :data:`GENESIS_PREV` for ``seq`` 0) and ``hash``: SHA-256 over the
canonical serialisation of the record without its ``hash`` field. The stored line
*is* the canonical serialisation of the whole record, so any byte changed in a line
either breaks the canonical form or changes the hash.

Canonical serialisation: JSON, keys sorted, no whitespace, ASCII only (non-ASCII
escaped as ``\\uXXXX``, which is also valid UTF-8), no floats.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.audit.canonical import PresealedBody as PresealedBody  # re-exported
from gateway.audit.canonical import canonical as canonical
from gateway.audit.canonical import canonical_value as canonical_value
from gateway.audit.enforced import enforced_view

GENESIS_PREV = "0" * 64
MAX_PROBLEMS = 1000  # problems kept in a VerifyReport (all are counted)


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical record without its ``hash`` field."""
    unsealed = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(unsealed).encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last sealed record of one chain, also kept apart from the records."""

    seq: int
    hash: str

    def encode(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def decode(cls, text: str) -> ChainHead:
        seq, _, digest = text.partition(":")
        return cls(int(seq), digest)


def seal(body: Mapping[str, Any], *, seq: int, prev: str) -> tuple[str, str]:
    """Chain ``body`` after ``prev`` at position ``seq``: returns (line, hash).

    The record is serialised once: the keys before ``hash`` and those after it in two
    halves, the hash is taken over the halves joined, and the line is the halves with
    ``"hash":"..."`` between them: exactly ``canonical`` of the sealed record (sorted
    keys), for one serialisation of the record instead of two. A
    :class:`PresealedBody` gives its serialisation in parts itself."""
    if isinstance(body, PresealedBody):
        return _seal_parts(body.canonical_parts(), seq, prev)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key, value in body.items():
        if key < "hash":
            before[key] = value
        elif key > "hash":
            after[key] = value
    after["seq"] = seq  # "prev" and "seq" sort after "hash"
    after["prev"] = prev
    head = canonical(before)[1:-1]  # "k":v,... without the braces ("" when empty)
    tail = canonical(after)[1:-1]  # never empty: seq and prev
    unsealed = "{" + head + ("," if head else "") + tail + "}"
    digest = hashlib.sha256(unsealed.encode("ascii")).hexdigest()
    return "{" + head + ("," if head else "") + f'"hash":"{digest}",' + tail + "}", digest


def _seal_parts(parts: tuple[str, str, str, str], seq: int, prev: str) -> tuple[str, str]:
    """``seal`` of a body given as its canonical parts (see :class:`PresealedBody`)."""
    before, to_prev, to_seq, after = parts
    link = [to_prev, '"prev":' + canonical_value(prev), to_seq,
            '"seq":' + canonical_value(seq), after]
    tail = ",".join([p for p in link if p])
    head = before + "," if before else ""
    digest = hashlib.sha256(("{" + head + tail + "}").encode("ascii")).hexdigest()
    return "{" + head + f'"hash":"{digest}",' + tail + "}", digest


def next_link(head: ChainHead | None) -> tuple[int, str]:
    """(seq, prev) of the record that follows ``head`` (genesis when None)."""
    if head is None:
        return 0, GENESIS_PREV
    return head.seq + 1, head.hash


@dataclass(frozen=True, slots=True)
class Problem:
    position: str  # "line 12" / "stream 1700000000000-0"
    kind: str  # undecodable | unparseable | malformed | non_canonical | hash_mismatch |
    # gap | reordered | broken_link | chain_restart | missing_prefix | truncated_tail |
    # head_mismatch | chain_missing
    detail: str
    record_id: str | None = None
    instance: str | None = None
    seq: int | None = None
    anchor: str | None = None  # which kept head/anchor the check compared with


@dataclass(slots=True)
class ChainSummary:
    instance: str
    first_seq: int
    last_seq: int
    last_hash: str
    count: int
    from_genesis: bool  # False: starts after a trimmed prefix, anchored at its prev
    anchor_prev: str


@dataclass(slots=True)
class VerifyReport:
    ok: bool = True
    records: int = 0
    chains: dict[str, ChainSummary] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    problems_total: int = 0
    notes: list[str] = field(default_factory=list)
    # records that replace an earlier one of the same decision id (the first missed its
    # write deadline): what was enforced, in stored order (first MAX_PROBLEMS kept)
    superseding: list[dict[str, Any]] = field(default_factory=list)
    superseding_total: int = 0
    # not failures: a torn last line (interrupted append), reported apart from tampering
    warnings: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "problems_total": self.problems_total,
            "problems": [
                {"position": p.position, "kind": p.kind, "detail": p.detail,
                 "record_id": p.record_id, "instance": p.instance, "seq": p.seq,
                 "anchor": p.anchor}
                for p in self.problems
            ],
            "chains": {
                i: {"first_seq": c.first_seq, "last_seq": c.last_seq, "count": c.count,
                    "from_genesis": c.from_genesis, "anchor_prev": c.anchor_prev,
                    "last_hash": c.last_hash}
                for i, c in sorted(self.chains.items())
            },
            "notes": self.notes,
            "warnings": [
                {"position": w.position, "kind": w.kind, "detail": w.detail}
                for w in self.warnings
            ],
            "superseding_total": self.superseding_total,
            "superseding": self.superseding,
        }


class ChainVerifier:
    """Incremental verifier: ``feed`` raw lines in stored order, then ``report``.

    Memory is bounded by the number of chains (writer instances), not records.
    ``allow_trimmed_prefix``: a chain may start at ``seq > 0`` (Redis stream trimmed by
    MAXLEN/MINID, or a rotated file read alone); it is then anchored at the first
    kept record's ``prev``. Records removed *before* that first kept record cannot be
    told apart from trimming. ``heads``: the chain heads kept apart from the records
    (Redis hash / head file); a tail shorter than its head is reported truncated.
    """

    def __init__(self, *, allow_trimmed_prefix: bool = False,
                 heads: Mapping[str, ChainHead] | None = None,
                 anchors: Mapping[str, Mapping[str, ChainHead]] | None = None,
                 heads_name: str = "head", newline_terminated: bool = False) -> None:
        self._allow_trimmed = allow_trimmed_prefix
        # JSONL: every complete record ends with "\n"; a last line without one is torn
        self._newline_terminated = newline_terminated
        self._heads_given = heads is not None
        self._heads_name = heads_name
        # every expected head to check the chains against: (name, {instance: head})
        self._sources: list[tuple[str, dict[str, ChainHead]]] = [(heads_name, dict(heads or {}))]
        self._sources += [(name, dict(kept)) for name, kept in (anchors or {}).items()]
        self._seen: set[tuple[str, str]] = set()  # (source, instance): head's seq reached
        self._report = VerifyReport()

    def _problem(self, problem: Problem) -> None:
        rep = self._report
        rep.ok = False
        rep.problems_total += 1
        if len(rep.problems) < MAX_PROBLEMS:
            rep.problems.append(problem)

    def feed(self, position: str, raw: bytes | str) -> dict[str, Any] | None:
        """Check one stored line; returns the parsed record when it is well formed."""
        self._report.records += 1
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self._problem(Problem(position, "undecodable", str(exc)))
                return None
        complete = raw.endswith("\n")
        line = raw[:-1] if complete else raw
        try:
            rec = json.loads(line)
        except RecursionError:  # arrays nested past the interpreter's recursion limit
            self._problem(Problem(position, "unparseable", "nested too deeply"))
            return None
        except ValueError as exc:
            if self._newline_terminated and not complete:
                # a crash or a full disk mid-append (or a write in progress right now):
                # not tampering; the writer cuts it off into a quarantine file at start
                self._report.records -= 1
                self._report.warnings.append(Problem(
                    position, "torn_tail",
                    f"partial last line ({len(line)} chars, no final newline): an "
                    "interrupted append, repaired at the writer's next start"))
                return None
            self._problem(Problem(position, "unparseable", str(exc)))
            return None
        if not _well_formed(rec):
            self._problem(Problem(position, "malformed", "missing or mistyped chain fields"))
            return None
        rid, inst, seq = str(rec.get("id")), rec["instance"], rec["seq"]

        def problem(kind: str, detail: str, anchor: str | None = None) -> None:
            self._problem(Problem(position, kind, detail, rid, inst, seq, anchor))

        try:
            again = canonical(rec)
        except ValueError as exc:  # NaN/Infinity sneaked in
            again = f"<{exc}>"
        if again != line:
            problem("non_canonical", "stored bytes are not the canonical form of the record")
        elif record_hash(rec) != rec["hash"]:
            problem("hash_mismatch", "record content does not match its hash")
        self._link(rec, problem)
        if rec.get("supersedes") is not None:
            self._report.superseding_total += 1
            if len(self._report.superseding) < MAX_PROBLEMS:
                self._report.superseding.append(enforced_view(rec))
        return dict(rec)

    def _link(self, rec: Mapping[str, Any], problem: Any) -> None:
        inst, seq, prev, digest = rec["instance"], rec["seq"], rec["prev"], rec["hash"]
        chain = self._report.chains.get(inst)
        if chain is None:
            genesis = seq == 0 and prev == GENESIS_PREV
            if not genesis and not self._allow_trimmed:
                problem("missing_prefix", f"chain starts at seq {seq} without its genesis")
            elif not genesis:
                self._report.notes.append(
                    f"chain {inst} starts at seq {seq} (trimmed prefix), anchored at {prev}")
            self._report.chains[inst] = ChainSummary(inst, seq, seq, digest, 1, genesis, prev)
        else:
            if seq == chain.last_seq + 1 and prev == chain.last_hash:
                pass
            elif seq == 0 and prev == GENESIS_PREV:
                problem("chain_restart", f"a new genesis after seq {chain.last_seq}")
            elif seq <= chain.last_seq:
                problem("reordered", f"seq {seq} after seq {chain.last_seq}")
            elif seq > chain.last_seq + 1:
                problem("gap", f"seq {chain.last_seq + 1}..{seq - 1} missing")
            else:
                problem("broken_link", "prev does not match the previous record's hash")
            chain.last_seq, chain.last_hash = seq, digest
            chain.count += 1
        for name, kept in self._sources:
            head = kept.get(inst)
            if head is not None and seq == head.seq:
                self._seen.add((name, inst))
                if digest != head.hash:
                    problem("head_mismatch",
                            f"record at seq {seq} differs from the {name}'s hash", name)

    def report(self) -> VerifyReport:
        """Finish: compare each chain's tail with every kept head and anchor."""
        rep = self._report
        primary = self._sources[0][1]
        for name, kept in self._sources:
            for inst, head in sorted(kept.items()):
                self._check_tail(name, inst, head)
                if name != self._heads_name and self._heads_given and inst not in primary \
                        and head.seq >= 0:
                    self._problem(Problem(
                        "end", "head_missing",
                        f"the {name} has seq {head.seq} for this chain but the "
                        f"{self._heads_name} has no entry: it was deleted or replaced",
                        None, inst, head.seq, name))
        return rep

    def diverged(self, name: str, inst: str, head: ChainHead) -> None:
        """A writer found this chain shorter than its anchor and froze the anchor."""
        self._problem(Problem("end", "anchor_diverged",
                              f"a writer found the chain cut below the {name}'s seq "
                              f"{head.seq} and froze it", None, inst, head.seq, name))

    def missing_anchor(self, path: str) -> None:
        """The anchor file is gone while the trail has records (deleted, or the trail
        predates anchors and nothing was written since: one append creates it)."""
        self._problem(Problem("end", "anchor_missing",
                              f"anchor file {path} does not exist", anchor=f"anchor file {path}"))

    def _check_tail(self, name: str, inst: str, head: ChainHead) -> None:
        rep = self._report
        chain = rep.chains.get(inst)
        pos = "end"
        if chain is None and self._allow_trimmed:
            rep.notes.append(f"chain {inst}: {name} at seq {head.seq}, every record trimmed")
        elif chain is None:
            self._problem(Problem(pos, "chain_missing",
                                  f"the {name} has seq {head.seq} but the trail has no "
                                  "record of this chain", None, inst, head.seq, name))
        elif chain.last_seq < head.seq:
            self._problem(Problem(
                pos, "truncated_tail",
                f"last record seq {chain.last_seq}, {name} seq {head.seq}: "
                f"{head.seq - chain.last_seq} record(s) missing at the end", None, inst,
                chain.last_seq, name))
        elif (name, inst) not in self._seen:
            self._problem(Problem(pos, "head_mismatch",
                                  f"record at the {name}'s seq {head.seq} not found", None,
                                  inst, head.seq, name))
        elif chain.last_seq > head.seq:
            rep.notes.append(f"chain {inst}: {chain.last_seq - head.seq} record(s) after "
                             f"the {name} (written after it was last updated)")


def _well_formed(rec: Any) -> bool:
    return (
        isinstance(rec, dict)
        and isinstance(rec.get("hash"), str)
        and isinstance(rec.get("prev"), str)
        and isinstance(rec.get("instance"), str)
        and type(rec.get("seq")) is int
        and rec["seq"] >= 0
    )


def verify(records: Iterable[tuple[str, bytes | str]], *, allow_trimmed_prefix: bool = False,
           heads: Mapping[str, ChainHead] | None = None,
           anchors: Mapping[str, Mapping[str, ChainHead]] | None = None) -> VerifyReport:
    """Verify ``(position, raw line)`` pairs in stored order (see :class:`ChainVerifier`)."""
    verifier = ChainVerifier(allow_trimmed_prefix=allow_trimmed_prefix, heads=heads,
                             anchors=anchors)
    for position, raw in records:
        verifier.feed(position, raw)
    return verifier.report()
