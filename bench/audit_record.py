#!/usr/bin/env python3
"""CPU per audit record on the hot path: build_record, then the body sealed into a chain.

For an ALLOW and a BLOCK decision of the engine (the French pack, a consented and an
unconsented lead: the real trace lines) with the context the AGI edge gives, in number
modes ``full`` and ``hash``: process CPU time per record of ``build_record`` and of the
trail's sealing (the body built from the record, then ``seal`` into the chain, as
``AuditTrail.append`` and the sinks do). Interleaved rounds, median printed as a markdown
table (paste into docs/benchmarks.md).

    .venv/bin/python bench/audit_record.py [--records 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.audit import record as record_module
from gateway.audit.chain import ChainHead, next_link, seal
from gateway.audit.record import AuditRecord, NumberPrivacy, build_record
from gateway.core.engine import decide, plan
from gateway.core.model import Attempt, Campaign, ConsentRecord, Decision, Facts, ListInfo
from gateway.core.policy import Policy
from gateway.packs import builtin_packs

MORNING = datetime(2026, 12, 1, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))
CAMPAIGN = Campaign(id="fr", professional="acme", product_category="telecom",
                    caller_id="+33162000001")
POLICY = Policy(packs=builtin_packs(), campaigns={"fr": CAMPAIGN})
# main before the record's own serialisation: the body is the dict, sealed by splitting it
RECORD_BODY: Any = getattr(record_module, "RecordBody", None)


def decision(i: int, consent: bool) -> tuple[Attempt, Decision]:
    attempt = Attempt(f"06 {i:08d}", "fr", source="agi")
    planned = plan(attempt, POLICY, MORNING)
    assert not isinstance(planned, Decision)
    consents = (ConsentRecord(f"c-{i}", planned.e164, "acme", "telecom",
                              MORNING - timedelta(days=30), None, "web", "proof-1"),
                ) if consent else ()
    lists = (ListInfo("opposition:bloctel", 3, MORNING - timedelta(days=2), 1000),)
    return attempt, decide(attempt, Facts(consents=consents, lists=lists), POLICY, MORNING,
                           planned)


def context(i: int) -> dict[str, str]:
    return {"edge": "agi", "peer": "127.0.0.1:40312", "channel": f"PJSIP/trunk-{i:08x}",
            "uniqueid": f"1764581400.{i}", "dialplan_context": "outbound",
            "accountcode": "acme"}


def build_all(cases: list[tuple[Attempt, Decision]]) -> list[AuditRecord]:
    return [build_record(
        decision_id=f"d-{i}", now=MORNING + timedelta(microseconds=i), attempt=attempt,
        decision=dec, returned_verdict=dec.verdict, returned_reason=dec.reason,
        shadow=False, fail_open=False, latency_s=0.0004, context=context(i),
        campaign=CAMPAIGN, professional=None, instance_id="gw-a",
    ) for i, (attempt, dec) in enumerate(cases)]


def build_into(built: list[AuditRecord], cases: list[tuple[Attempt, Decision]]) -> None:
    built.extend(build_all(cases))


def seal_all(records: list[AuditRecord], privacy: NumberPrivacy) -> str:
    head: ChainHead | None = None
    digest = ""
    for rec in records:
        if RECORD_BODY is not None:
            body = RECORD_BODY(rec, privacy, "gw-a")
        else:
            body = rec.to_body(privacy)
            body["instance"] = "gw-a"
        seq, prev = next_link(head)
        _line, digest = seal(body, seq=seq, prev=prev)
        head = ChainHead(seq, digest)
    return digest


def cpu_us(fn: Callable[[], object], n: int) -> float:
    started = time.process_time()
    fn()
    return (time.process_time() - started) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    n = args.records
    cases = {"ALLOW": [decision(i, True) for i in range(n)],
             "BLOCK": [decision(i, False) for i in range(n)]}
    privacies = {"full": NumberPrivacy(), "hash": NumberPrivacy("hash", "k" * 32)}
    results: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(args.rounds):
        for verdict, made in cases.items():
            built: list[AuditRecord] = []
            results.setdefault((verdict, "-", "build_record"), []).append(
                cpu_us(partial(build_into, built, made), n))
            for mode, privacy in privacies.items():
                results.setdefault((verdict, mode, "body + seal"), []).append(
                    cpu_us(partial(seal_all, built, privacy), n))
    print(f"{'body' if RECORD_BODY is None else 'RecordBody'} path, {n} records x "
          f"{args.rounds} rounds, median CPU µs per record\n")
    print("| decision | number_mode | stage | CPU µs/record (median) | min |")
    print("|---|---|---|---:|---:|")
    for (verdict, mode, stage), values in results.items():
        print(f"| {verdict} | {mode} | {stage} | {statistics.median(values):.1f} | "
              f"{min(values):.1f} |")


if __name__ == "__main__":
    main()
