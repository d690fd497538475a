"""Each decision counted once, by its last record: superseding records in the report's
two passes (gateway/report/supersede.py), on sealed lines as the sinks write them."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from gateway.audit.chain import GENESIS_PREV, seal
from gateway.audit.enforced import FAULT_DEADLINE, FAULT_UNCERTAIN, superseding_body
from gateway.report import ReportBuilder, Supersessions


def body(n: int, *, verdict: str = "ALLOW", reason: str = "ok", fail_mode: str = "closed",
         context: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "v": 1, "id": f"d{n:04d}", "ts": f"2026-12-01T09:{n % 60:02d}:00.000000Z",
        "instance": "gw-a", "source": "agi", "campaign": "demo", "professional": "acme",
        "number": f"+3361234{n:04d}", "number_input": "", "number_mode": "full",
        "key_id": None, "caller_id": None, "verdict": verdict, "reason": reason,
        "engine": {"verdict": verdict, "reason": reason}, "retry_after_s": None,
        "shadow": False, "fail_open": False, "fail_mode": fail_mode,
        "pack": {"id": "fr", "hash": "ab"}, "consent_id": "c1" if verdict == "ALLOW" else None,
        "contract_id": None, "lists": [], "zones": ["Europe/Paris"],
        "local_times": {"Europe/Paris": "2026-12-01T10:00:00+01:00"},
        "counters": {"attempts_seen": 0, "attempts_limit": 4, "attempt_window_s": 86400},
        "latency_us": 1, "context": context or {}, "trace": [f"verdict: {verdict}"],
    }


def sealed(bodies: list[dict[str, Any]]) -> list[bytes]:
    lines, seq, prev = [], 0, GENESIS_PREV
    for b in bodies:
        line, prev = seal(b, seq=seq, prev=prev)
        lines.append(line.encode())
        seq += 1
    return lines


def report(lines: list[bytes], limit: int = 1000) -> tuple[Any, Supersessions]:
    sup = Supersessions(limit)
    for raw in lines:
        sup.scan(raw)
    builder = ReportBuilder(start=date(2026, 12, 1), end=date(2026, 12, 1),
                            supersessions=sup)
    for raw in lines:
        builder.feed(json.loads(raw))
    return builder.result(), sup


def test_a_superseded_decision_is_counted_once_by_its_last_record() -> None:
    late = body(1)  # landed late as ALLOW ok, then superseded: BLOCK store_unavailable
    alone = body(2)  # never written: only its superseding record exists
    open_ = body(3, fail_mode="open")  # fail-open campaign: ALLOW, flagged fail_open
    same = body(4, verdict="BLOCK", reason="opposition")  # a block stays a block
    lines = sealed([
        late, body(10), body(11),  # other records of the chain between the two
        superseding_body(late, fault=FAULT_DEADLINE),
        superseding_body(alone, fault=FAULT_DEADLINE),
        open_, superseding_body(open_, fault=FAULT_UNCERTAIN),
        same, superseding_body(same, fault=FAULT_DEADLINE),
        body(12),
    ])
    d, sup = report(lines)
    assert d.records_total == 10
    assert d.records_in_period == 7  # decisions 1, 2, 3, 4, 10, 11, 12
    assert d.superseded == 3 and d.superseding == 4 and d.unresolved == 0
    assert d.per_day[date(2026, 12, 1)] == {"ALLOW": 4, "BLOCK": 3}
    assert d.reasons == {"store_unavailable": 2, "opposition": 1}
    assert d.fail_open == 1
    assert d.engine_reasons["ok"] == 6  # the engine's answers stay the engine's
    assert sup.pending == {"d0001": 0, "d0002": 0, "d0003": 0, "d0004": 0}


def test_an_original_after_its_superseding_record_is_not_counted() -> None:
    """Order an older Redis sink could leave (a late original re-sealed after a head
    conflict): the superseding record still says what was enforced."""
    late = body(1)
    d, _ = report(sealed([body(9), superseding_body(late, fault=FAULT_UNCERTAIN), late]))
    assert d.records_in_period == 2 and d.superseded == 1 and d.superseding == 1
    assert d.per_day[date(2026, 12, 1)] == {"ALLOW": 1, "BLOCK": 1}
    assert d.reasons == {"store_unavailable": 1}


def test_twice_superseded_counts_the_last_one() -> None:
    first = body(1)
    again = dict(superseding_body(first, fault=FAULT_DEADLINE), verdict="ALLOW",
                 reason="ok", fail_open=True)  # a last record that says otherwise again
    d, _ = report(sealed([first, superseding_body(first, fault=FAULT_DEADLINE), again]))
    assert d.records_in_period == 1 and d.superseded == 2 and d.superseding == 1
    assert d.per_day[date(2026, 12, 1)] == {"ALLOW": 1}


def test_a_context_key_named_supersedes_is_not_a_superseding_record() -> None:
    lines = sealed([body(1, context={"supersedes": "d0001"}), body(2)])
    d, sup = report(lines)
    assert sup.pending == {} and d.records_in_period == 2 and d.superseded == 0


def test_beyond_the_bound_ids_are_not_kept_and_the_report_says_so() -> None:
    bodies = [body(n) for n in range(5)]
    lines = sealed([*bodies, *(superseding_body(b, fault=FAULT_DEADLINE) for b in bodies)])
    d, sup = report(lines, limit=2)
    assert sup.unresolved == 3 == d.unresolved
    assert d.superseded == 2  # the two kept ids
    assert d.records_in_period == 2 + 3 * 2  # the three others counted twice, and said so


def test_the_first_pass_survives_garbage() -> None:
    sup = Supersessions()
    for raw in (b'{"supersedes": ', b'["supersedes"]', b'{"supersedes":"x","id":"y"}',
                b"\xff\xfe", "{\"supersedes\":\"z\",\"id\":\"z\"}"):
        sup.scan(raw)
    assert sup.pending == {"z": 1} and sup.lines == 5
