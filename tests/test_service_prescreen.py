"""Belt and braces: a call screened by the AMI proxy and again by the carrier context's
FastAGI screen counts as ONE attempt and is never blocked by its own reservation.

The proxy's screen is ``Attempt(source="ami", issue_prescreen=True)``; the carrier
screen presents its decision id (``prescreen_id``). Real stores (memory, redis-server).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.audit import AuditSettings, open_audit_trail
from gateway.core.model import Attempt, Reason, Verdict
from gateway.service import Service
from gateway.store.base import ImportMode, OppositionRow, Store
from gateway.store.factory import open_store
from gateway.store.memory import MemoryStore
from tests.test_service import (
    E164,
    LEGAL_NOW,
    NUMBER,
    PRO,
    attempts_recorded,
    policy,
    with_consent,
)

CAP = 4  # FR-2026: 4 attempts per professional per 30 days
BUDGET_S = 5.0  # behaviour, not speed: the shared test machine is slow at times


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        s: Store = MemoryStore()
    else:
        s = open_store(request.getfixturevalue("redis_url"),
                       key_prefix=request.getfixturevalue("key_prefix"), socket_timeout_s=2.0)
    yield s
    await s.close()


def service(store: Store, **changes: object) -> Service:
    return Service(policy=policy(**changes), store=store, audit=None, budget_s=BUDGET_S,
                   clock=lambda: LEGAL_NOW)


def proxy(number: str = NUMBER) -> Attempt:
    return Attempt(number, "spring", source="ami", issue_prescreen=True)


def carrier(prescreen_id: str | None, number: str = NUMBER) -> Attempt:
    return Attempt(number, "spring", source="agi", prescreen_id=prescreen_id)


async def test_cap_n_calls_screened_twice_are_all_placed_and_counted_once(
        store: Store) -> None:
    svc = service(await with_consent(store))
    for _ in range(CAP):
        first = await svc.screen(proxy())
        assert (first.verdict, first.reason) == (Verdict.ALLOW, Reason.OK)
        second = await svc.screen(carrier(first.decision_id))
        assert (second.verdict, second.reason) == (Verdict.ALLOW, Reason.OK), (
            second.decision.trace)
        assert second.decision_id != first.decision_id
    assert await attempts_recorded(store) == CAP
    over = await svc.screen(proxy())
    assert (over.verdict, over.reason) == (Verdict.BLOCK, Reason.FREQUENCY_CAP)
    assert await attempts_recorded(store) == CAP


async def test_the_last_allowed_attempt_is_not_blocked_by_its_own_reservation(
        store: Store) -> None:
    await with_consent(store)
    for i in range(CAP - 1):
        await store.reserve_attempt(e164=E164, professional=PRO, campaign_id="spring",
                                    now=LEGAL_NOW - timedelta(days=i + 1), window_s=30 * 86400,
                                    limit=CAP, attempt_id=f"earlier-{i}")
    svc = service(store)
    first = await svc.screen(proxy())
    assert first.verdict is Verdict.ALLOW
    second = await svc.screen(carrier(first.decision_id))
    assert (second.verdict, second.reason) == (Verdict.ALLOW, Reason.OK)
    assert second.decision.attempts_seen == CAP - 1
    assert any("already counted" in line for line in second.decision.trace)
    assert await attempts_recorded(store) == CAP


async def test_every_other_rule_is_checked_again(store: Store) -> None:
    svc = service(await with_consent(store))
    first = await svc.screen(proxy())
    assert first.verdict is Verdict.ALLOW
    # opposition registered between the proxy's screen and the carrier's
    await store.import_opposition("internal", [OppositionRow(E164)], mode=ImportMode.MERGE,
                                  now=LEGAL_NOW)
    second = await svc.screen(carrier(first.decision_id))
    assert (second.verdict, second.reason) == (Verdict.BLOCK, Reason.OPPOSITION)
    assert await attempts_recorded(store) == 1  # the proxy's, never a second one


async def test_pacing_does_not_count_the_call_twice(store: Store) -> None:
    svc = service(await with_consent(store, E164, "+33612345679"), max_attempts_per_minute=1)
    first = await svc.screen(proxy())
    assert first.verdict is Verdict.ALLOW
    second = await svc.screen(carrier(first.decision_id))
    assert (second.verdict, second.reason) == (Verdict.ALLOW, Reason.OK)
    # the campaign's one attempt of the minute is spent: another number is paced
    other = await svc.screen(carrier(None, "06 12 34 56 79"))
    assert (other.verdict, other.reason) == (Verdict.BLOCK, Reason.PACING)


async def test_a_token_is_used_once_and_only_for_its_number(store: Store) -> None:
    svc = service(await with_consent(store, E164, "+33612345679"))
    first = await svc.screen(proxy())
    wrong_number = await svc.screen(carrier(first.decision_id, "06 12 34 56 79"))
    assert wrong_number.verdict is Verdict.ALLOW  # screened as a new attempt: counted
    assert await attempts_recorded(store, "+33612345679") == 1
    # the other number's screen did not spend the token of this one
    used = await svc.screen(carrier(first.decision_id))
    assert any("already counted" in line for line in used.decision.trace)
    reused = await svc.screen(carrier(first.decision_id))
    assert not any("already counted" in line for line in reused.decision.trace)
    # the proxy's attempt, then the reuse counted as a new one
    assert await attempts_recorded(store) == 2


async def test_only_the_proxys_originate_screen_issues_a_token(store: Store) -> None:
    svc = service(await with_consent(store))
    agi = await svc.screen(carrier(None))  # a FastAGI screen issues none
    transfer = await svc.screen(Attempt(NUMBER, "spring", source="ami"))  # nor a Redirect's
    for first in (agi, transfer):
        again = await svc.screen(carrier(first.decision_id))
        assert not any("already counted" in line for line in again.decision.trace)
    assert await attempts_recorded(store) == 4


async def test_a_dry_run_does_not_consume_the_token(store: Store) -> None:
    svc = service(await with_consent(store))
    first = await svc.screen(proxy())
    await svc.evaluate(carrier(first.decision_id), LEGAL_NOW)
    second = await svc.screen(carrier(first.decision_id))
    assert any("already counted" in line for line in second.decision.trace)
    assert await attempts_recorded(store) == 1


async def test_the_audit_record_links_the_two_screens(tmp_path: Path) -> None:
    store = await with_consent(MemoryStore())
    trail = open_audit_trail(
        AuditSettings(sink="jsonl", path=str(tmp_path / "audit.jsonl"), instance_id="t1"))
    svc = Service(policy=policy(), store=store, audit=trail, budget_s=BUDGET_S,
                  clock=lambda: LEGAL_NOW)
    first = await svc.screen(proxy(), context={"dialer_account": "vicidial"})
    second = await svc.screen(carrier(first.decision_id), context={"channel": "Local/x;2"})
    forged = await svc.screen(carrier("0" * 24))
    await trail.close()
    by_id = {r["id"]: r for r in map(json.loads,
                                     (tmp_path / "audit.jsonl").read_text().splitlines())}
    linked = dict(by_id[second.decision_id]["context"])
    assert linked["prescreen_decision_id"] == first.decision_id
    assert linked["prescreen"] == "attempt already counted by the prescreen"
    assert linked["channel"] == "Local/x;2"
    assert any("already counted" in t for t in by_id[second.decision_id]["trace"])
    assert "prescreen_decision_id" not in dict(by_id[first.decision_id]["context"])
    assert dict(by_id[forged.decision_id]["context"])["prescreen"].startswith("no valid token")
