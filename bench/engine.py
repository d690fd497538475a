#!/usr/bin/env python3
"""``make bench``: the pure engine alone, CPU microseconds per ``plan`` + ``decide``.

No store, no I/O: the facts are built in memory once, then each case plans and decides
``--calls`` distinct numbers (a cold number cache, as in a scrub where every lead is a new
number) the way the service does: ``plan``, then ``decide`` with the caller's plan (an
engine that takes none plans again inside ``decide``, as it did before). An early BLOCK
(the invalid number) is ``plan`` alone: the service calls no ``decide`` for it.

Cases (FR-2026 pack, a consented mobile unless said otherwise, Tuesday 2026-12-01):
- allow: 10:30 Paris, consent in force, fresh Bloctel list -> ALLOW;
- block-retry: the same at 21:30 -> BLOCK outside_hours with a retry_after;
- block-no-consent: 10:30, no consent (most leads of a scrub) -> BLOCK no_consent;
- block-opposition: 10:30, no consent, on the Bloctel list -> BLOCK opposition;
- invalid: a number too short -> BLOCK invalid_number (plan only);
- us-layered: a Miami number at 10:30 New York, US-FEDERAL with the Florida layer -> ALLOW.

CPU time (``time.process_time``) of this process over ``--rounds`` rounds; the table shows
the median round, and a "scrub mix" row weighs the FR cases like bench/scrub_report.py's
lead file (30 % consented, 10 % on the opposition list, 55 % unknown, 5 % invalid). Prints a
markdown table (docs/benchmarks.md, "Engine alone").
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.core import numbers
from gateway.core.engine import decide, plan
from gateway.core.model import (
    Attempt,
    Campaign,
    ConsentRecord,
    ContractRecord,
    Decision,
    Facts,
    ListInfo,
    OppositionEntry,
)
from gateway.core.policy import Policy
from gateway.packs import builtin_packs

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
MORNING = datetime(2026, 12, 1, 10, 30, tzinfo=PARIS)
EVENING = datetime(2026, 12, 1, 21, 30, tzinfo=PARIS)
US_MORNING = datetime(2026, 12, 1, 10, 30, tzinfo=NEW_YORK)
#: ``decide`` takes the caller's plan (since the engine change measured here)
TAKES_PLAN = "planned" in inspect.signature(decide).parameters


@dataclass(frozen=True)
class Case:
    name: str
    campaign: str
    at: datetime
    number: Callable[[int], str]  # i -> the number as a dialer writes it
    facts: Callable[[str], Facts]  # e164 -> the store's facts


def fr_facts(e164: str, *, consent: bool = True, listed: bool = False) -> Facts:
    consents = (ConsentRecord("c-1", e164, "acme", "telecom", datetime(2026, 10, 1, tzinfo=PARIS),
                              None, "web", "proof-1"),) if consent else ()
    return Facts(consents=consents, oppositions=(OppositionEntry("bloctel"),) if listed else (),
                 lists=(
        ListInfo("opposition:bloctel", 3, datetime(2026, 11, 28, tzinfo=PARIS), 1000),))


def us_facts(e164: str) -> Facts:
    imported = datetime(2026, 11, 28, tzinfo=NEW_YORK)
    return Facts(contracts=(ContractRecord("k-1", e164, "acme", "telecom",
                                           datetime(2026, 6, 1, tzinfo=NEW_YORK)),),
                 lists=tuple(ListInfo(name, 3, imported, 1000) for name in (
                     "opposition:ndnc", "opposition:fl_dnc")))


CASES = (
    Case("allow", "fr", MORNING, lambda i: f"06 {i:08d}", fr_facts),
    Case("block-retry", "fr", EVENING, lambda i: f"06 {i:08d}", fr_facts),
    Case("block-no-consent", "fr", MORNING, lambda i: f"06 {i:08d}",
         lambda e164: fr_facts(e164, consent=False)),
    Case("block-opposition", "fr", MORNING, lambda i: f"06 {i:08d}",
         lambda e164: fr_facts(e164, consent=False, listed=True)),
    Case("invalid", "fr", MORNING, lambda i: f"06 {i:05d}", lambda e164: Facts()),
    Case("us-layered", "us", US_MORNING, lambda i: f"+1 305 {200 + i // 10000:03d} {i % 10000:04d}",
         us_facts),
)


#: The lead file of bench/scrub_report.py, by case.
SCRUB_MIX = {"allow": 0.30, "block-opposition": 0.10, "block-no-consent": 0.55, "invalid": 0.05}


def policy() -> Policy:
    return Policy(packs=builtin_packs(), campaigns={
        "fr": Campaign(id="fr", professional="acme", product_category="telecom",
                       caller_id="+33162000001"),
        "us": Campaign(id="us", professional="acme", product_category="telecom",
                       jurisdiction="US", caller_id="+12025550100"),
    })


def run_case(case: Case, pol: Policy, calls: int, offset: int) -> tuple[float, float, Decision]:
    """(plan µs, decide µs, last decision) per call, over ``calls`` new numbers."""
    attempts = [Attempt(case.number(offset + i), case.campaign) for i in range(calls)]
    facts = [case.facts(p.e164) if not isinstance(p := plan(a, pol, case.at), Decision)
             else Facts() for a in attempts]
    numbers._parse_cached.cache_clear()  # every number new, as in a scrub
    started = time.process_time()
    plans = [plan(a, pol, case.at) for a in attempts]
    plan_s = time.process_time() - started
    last: Decision | None = None
    started = time.process_time()
    for a, p, f in zip(attempts, plans, facts, strict=True):
        if isinstance(p, Decision):
            last = p
        elif TAKES_PLAN:
            last = decide(a, f, pol, case.at, p)  # type: ignore[call-arg, unused-ignore]
        else:
            last = decide(a, f, pol, case.at)
    decide_s = time.process_time() - started
    assert last is not None
    return plan_s / calls * 1e6, decide_s / calls * 1e6, last


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--calls", type=int, default=5000, help="numbers per case and round")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    pol = policy()
    rows: dict[str, list[tuple[float, float, Decision]]] = {c.name: [] for c in CASES}
    for r in range(args.rounds):  # rounds interleave the cases (a shared machine's load)
        for case in CASES:
            rows[case.name].append(run_case(case, pol, args.calls, 1_000_000 + r * args.calls))
    print(f"engine takes the caller's plan: {TAKES_PLAN}; {args.calls} numbers x "
          f"{args.rounds} rounds; load average at the end: {os.getloadavg()[0]:.1f}\n")
    medians: dict[str, tuple[float, float]] = {}
    print("| case | decision | plan µs | decide µs | plan + decide µs | calls/CPU-s |")
    print("|---|---|---:|---:|---:|---:|")
    for case in CASES:
        plan_us, decide_us, last = sorted(rows[case.name], key=lambda t: t[0] + t[1])[
            len(rows[case.name]) // 2]
        total = plan_us + decide_us
        retry = f", retry {last.retry_after_s} s" if last.retry_after_s is not None else ""
        print(f"| {case.name} | {last.verdict} {last.reason}{retry} | {plan_us:.1f} | "
              f"{decide_us:.1f} | {total:.1f} | {1e6 / total:,.0f} |")
        medians[case.name] = (plan_us, decide_us)
    mix = [sum(w * medians[name][i] for name, w in SCRUB_MIX.items()) for i in (0, 1)]
    print(f"| scrub mix | 30 % allow, 10 % opposition, 55 % no consent, 5 % invalid | "
          f"{mix[0]:.1f} | {mix[1]:.1f} | {sum(mix):.1f} | {1e6 / sum(mix):,.0f} |")


if __name__ == "__main__":
    main()
