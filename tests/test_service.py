"""The screening service: budget, fail modes, shadow mode, atomic reservation, audit.

Real stores only: the memory store, a real redis-server (paused with CLIENT PAUSE to
produce a stall, killed to produce an outage) and a real JSONL / Redis-stream audit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_sync

from gateway.audit import AuditSettings, open_audit_trail
from gateway.core.model import (
    Attempt,
    Campaign,
    ConsentRecord,
    Decision,
    FailMode,
    Reason,
    Verdict,
)
from gateway.core.policy import Policy
from gateway.metrics import Metrics
from gateway.packs import builtin_packs
from gateway.service import Service
from gateway.store.base import ImportMode, Store
from gateway.store.factory import open_store
from gateway.store.memory import MemoryStore

# Tuesday 1 December 2026, 10:30 in Paris (09:30 UTC): inside the morning window.
LEGAL_NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
NUMBER = "06 12 34 56 78"
E164 = "+33612345678"
PRO = "acme"

CAMPAIGN = Campaign(
    id="spring",
    professional=PRO,
    product_category="telecom",
    sector="telecom",
    automated=True,
    caller_id="+33162000001",
)


def policy(**changes: object) -> Policy:
    campaign = dataclasses.replace(CAMPAIGN, **changes)  # type: ignore[arg-type]
    return Policy(packs=builtin_packs(), campaigns={campaign.id: campaign})


def consent(e164: str = E164) -> ConsentRecord:
    return ConsentRecord(
        id=f"c-{e164}",
        e164=e164,
        professional=PRO,
        product_category="telecom",
        collected_at=LEGAL_NOW - timedelta(days=30),
        expires_at=LEGAL_NOW + timedelta(days=300),
        channel="web",
        proof_ref="proof-1",
    )


async def with_consent(store: Store, *numbers: str) -> Store:
    await store.import_consents(
        [consent(n) for n in numbers or (E164,)], mode=ImportMode.REPLACE, now=LEGAL_NOW
    )
    return store


def service(store: Store, pol: Policy, **kw: object) -> Service:
    return Service(policy=pol, store=store, audit=None, clock=lambda: LEGAL_NOW, **kw)  # type: ignore[arg-type]


async def attempts_recorded(store: Store, e164: str = E164) -> int:
    facts = await store.load_facts(
        e164=e164,
        professional=PRO,
        campaign_id="spring",
        now=LEGAL_NOW,
        attempt_window_s=30 * 86400,
        abandon_window_s=86400,
    )
    return len(facts.attempts)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "memory":
        s: Store = MemoryStore()
    else:
        url = request.getfixturevalue("redis_url")
        s = open_store(url, key_prefix=request.getfixturevalue("key_prefix"))
    yield s  # type: ignore[misc]
    await s.close()


async def test_allowed_call_is_recorded_against_the_cap(store: Store) -> None:
    svc = service(await with_consent(store), policy())
    result = await svc.screen(Attempt(NUMBER, "spring"))
    assert (result.verdict, result.reason, result.e164) == (Verdict.ALLOW, Reason.OK, E164)
    assert result.decision_id and not result.shadow and not result.fail_open
    assert await attempts_recorded(store) == 1


async def test_blocked_call_is_not_recorded(store: Store) -> None:
    svc = service(store, policy())  # no consent under FR-2026
    result = await svc.screen(Attempt(NUMBER, "spring"))
    assert (result.verdict, result.reason) == (Verdict.BLOCK, Reason.NO_CONSENT)
    assert await attempts_recorded(store) == 0


async def test_shadow_mode_returns_allow_with_the_real_reason_and_counts(store: Store) -> None:
    metrics = Metrics(["spring"])
    svc = service(store, policy(shadow=True), observer=metrics)
    result = await svc.screen(Attempt(NUMBER, "spring"))
    assert result.verdict is Verdict.ALLOW
    assert result.reason is Reason.NO_CONSENT  # GW_REASON says what would have happened
    assert result.shadow and result.decision.verdict is Verdict.BLOCK
    assert await attempts_recorded(store) == 1  # the call is placed: it is an attempt
    text = metrics.render().decode()
    assert (
        'dialer_gateway_shadow_decisions_total{campaign="spring",engine_verdict="BLOCK"} 1.0'
        in text
    )


async def test_shadow_mode_never_dials_an_invalid_number(store: Store) -> None:
    svc = service(store, policy(shadow=True))
    result = await svc.screen(Attempt("12", "spring"))
    assert (result.verdict, result.reason) == (Verdict.BLOCK, Reason.INVALID_NUMBER)


async def test_unknown_campaign_blocks(store: Store) -> None:
    result = await service(store, policy()).screen(Attempt(NUMBER, "nope"))
    assert (result.verdict, result.reason) == (Verdict.BLOCK, Reason.CAMPAIGN_UNKNOWN)


@pytest.mark.parametrize("extra", [0, 3])
async def test_concurrent_checks_for_the_last_attempt_allow_exactly_one(
    store: Store, extra: int
) -> None:
    """Three earlier attempts in the window (cap 4): 50 concurrent screens, one ALLOW."""
    await with_consent(store)
    for i in range(3):
        await store.reserve_attempt(
            e164=E164,
            professional=PRO,
            campaign_id="spring",
            now=LEGAL_NOW - timedelta(days=i + 1),
            window_s=30 * 86400,
            limit=4,
            attempt_id=f"earlier-{i}",
        )
    # atomicity, not speed: a budget no machine load can exhaust, so every answer is the
    # reservation's own (a timeout here would hide, not prove, the single ALLOW)
    svc = service(store, policy(), budget_s=30.0)
    results = await asyncio.gather(
        *(svc.screen(Attempt(NUMBER, "spring")) for _ in range(50 + extra))
    )
    verdicts = [r.verdict for r in results]
    assert verdicts.count(Verdict.ALLOW) == 1
    assert {r.reason for r in results if r.verdict is Verdict.BLOCK} == {Reason.FREQUENCY_CAP}
    assert await attempts_recorded(store) == 4


async def test_unreachable_store_fails_closed() -> None:
    dead = open_store("redis://127.0.0.1:1/0", socket_timeout_s=0.2, connect_timeout_s=0.2)
    metrics = Metrics(["spring"])
    try:
        result = await service(dead, policy(), observer=metrics).screen(Attempt(NUMBER, "spring"))
    finally:
        await dead.close()
    assert (result.verdict, result.reason) == (Verdict.BLOCK, Reason.STORE_UNAVAILABLE)
    assert not result.fail_open
    assert 'dialer_gateway_store_errors_total{kind="unavailable"} 1.0' in metrics.render().decode()


async def test_unreachable_store_with_fail_open_campaign_allows_visibly() -> None:
    dead = open_store("redis://127.0.0.1:1/0", socket_timeout_s=0.2, connect_timeout_s=0.2)
    metrics = Metrics(["spring"])
    try:
        svc = service(dead, policy(fail_mode=FailMode.OPEN), observer=metrics)
        result = await svc.screen(Attempt(NUMBER, "spring"))
    finally:
        await dead.close()
    assert (result.verdict, result.reason) == (Verdict.ALLOW, Reason.STORE_UNAVAILABLE)
    assert result.fail_open
    assert result.e164 == E164  # a fail-open call still dials the normalised number
    assert 'dialer_gateway_fail_open_decisions_total{campaign="spring"} 1.0' in (
        metrics.render().decode()
    )


async def test_stalled_store_answers_timeout_within_the_budget(
    redis_url: str, key_prefix: str
) -> None:
    """A real Redis paused with CLIENT PAUSE: the budget (50 ms) runs out first."""
    store = open_store(redis_url, key_prefix=key_prefix, socket_timeout_s=5.0)
    admin = redis_sync.Redis.from_url(redis_url)
    try:
        await with_consent(store)
        admin.execute_command("CLIENT", "PAUSE", 3000, "ALL")
        try:
            result = await service(store, policy(), budget_s=0.05).screen(Attempt(NUMBER, "spring"))
        finally:
            admin.execute_command("CLIENT", "UNPAUSE")
    finally:
        admin.close()
        await store.close()
    assert (result.verdict, result.reason) == (Verdict.BLOCK, Reason.TIMEOUT)


async def test_every_decision_is_audited_and_the_chain_verifies(tmp_path: Path) -> None:
    store = await with_consent(MemoryStore())
    trail = open_audit_trail(
        AuditSettings(sink="jsonl", path=str(tmp_path / "audit.jsonl"), instance_id="t1")
    )
    svc = Service(policy=policy(), store=store, audit=trail, clock=lambda: LEGAL_NOW)
    allowed = await svc.screen(Attempt(NUMBER, "spring"), context={"channel": "Local/x"})
    blocked = await svc.screen(Attempt("07 81 23 45 67", "spring"))
    await trail.close()
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    by_id = {r["id"]: r for r in records}
    assert set(by_id) >= {allowed.decision_id, blocked.decision_id}
    rec = by_id[allowed.decision_id]
    assert rec["verdict"] == "ALLOW" and rec["reason"] == "ok"
    assert rec["pack"]["id"] == "FR-2026" and rec["pack"]["hash"]
    assert rec["consent_id"] == f"c-{E164}"
    assert by_id[blocked.decision_id]["reason"] == "no_consent"
    report = await open_audit_trail(
        AuditSettings(sink="jsonl", path=str(tmp_path / "audit.jsonl"), instance_id="t1")
    ).verify()
    assert report.ok, report


async def test_failing_audit_sink_blocks_a_closed_campaign(redis_server_factory: object) -> None:
    server = redis_server_factory.start()  # type: ignore[attr-defined]
    trail = open_audit_trail(
        AuditSettings(sink="redis", redis_url=server.url, instance_id="t1", write_timeout_s=0.2)
    )
    server.kill()
    metrics = Metrics(["spring"])
    store = await with_consent(MemoryStore())
    try:
        result = await Service(
            policy=policy(), store=store, audit=trail, clock=lambda: LEGAL_NOW, observer=metrics
        ).screen(Attempt(NUMBER, "spring"))
        open_result = await Service(
            policy=policy(fail_mode=FailMode.OPEN),
            store=store,
            audit=trail,
            clock=lambda: LEGAL_NOW,
        ).screen(Attempt(NUMBER, "spring"))
    finally:
        await trail.close()
    assert (result.verdict, result.reason) == (Verdict.BLOCK, Reason.STORE_UNAVAILABLE)
    assert (open_result.verdict, open_result.fail_open) == (Verdict.ALLOW, True)
    # only the first service reports to ``metrics``
    assert "dialer_gateway_audit_errors_total 1.0" in metrics.render().decode()


async def test_metrics_never_carry_numbers(store: Store) -> None:
    metrics = Metrics(["spring"])
    svc = service(await with_consent(store), policy(), observer=metrics)
    await svc.screen(Attempt(NUMBER, "spring"))
    await svc.screen(Attempt("+262 262 12 34 56", "garbage-campaign-id-0612345678"))
    text = metrics.render().decode()
    assert "612345678" not in text and "262123456" not in text
    assert 'campaign="unknown"' in text  # unknown campaign ids never become labels


@pytest.mark.parametrize("level", ["info", "debug"])
async def test_the_decision_line_is_logged_at_debug_only(level: str) -> None:
    """No log line per decision at info (the audit record is the record); at debug,
    one ``decision.made`` per call: the guard that skips the call follows the level."""
    import io
    import logging

    import structlog

    from gateway.logs import configure_logging

    root = logging.getLogger()
    handlers, old_level = list(root.handlers), root.level
    out = io.StringIO()
    try:
        configure_logging(level, "json", stream=out)
        svc = service(await with_consent(MemoryStore()), policy())
        await svc.screen(Attempt(NUMBER, "spring"))
        await svc.screen(Attempt(NUMBER, "spring"))
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        root.setLevel(old_level)
        structlog.reset_defaults()
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events.count("decision.made") == (2 if level == "debug" else 0)


def test_the_record_is_attached_as_dataclasses_replace_would() -> None:
    # _with_record names every field of ScreenResult: one added without it fails here
    from gateway.service import _with_record
    from gateway.service_api import ScreenResult

    decision = Decision(verdict=Verdict.BLOCK, reason=Reason.FREQUENCY_CAP, e164="+33612345678",
                        retry_after_s=60, trace=("t",))
    result = ScreenResult(Verdict.ALLOW, Reason.FREQUENCY_CAP, "+33612345678", 60, "d-1",
                          decision, shadow=True, fail_open=True, campaign_id="c",
                          reserved_for="pro", record="old")
    got, want = _with_record(result, "new"), dataclasses.replace(result, record="new")
    names = [f.name for f in dataclasses.fields(ScreenResult)]
    assert [getattr(got, n) for n in names] == [getattr(want, n) for n in names]
    assert got.record == "new" and got.reserved_for == "pro"
