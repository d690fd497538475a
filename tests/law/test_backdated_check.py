"""`dialer-gateway check --at` in the past judges with the facts as they were then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.engine import decide
from gateway.core.model import Attempt, Decision, Reason, Suppression
from gateway.service import Service
from gateway.store.base import ImportMode, OppositionRow
from gateway.store.memory import MemoryStore
from tests.core.support import facts, fresh_lists, paris, policy

IMPORTED = paris(2025, 12, 2, 9, 0)  # FR-2023 (Bloctel file required), a Tuesday
NUMBER = "06 12 34 56 78"


async def _service() -> tuple[Service, MemoryStore]:
    store = MemoryStore()
    await store.import_opposition("bloctel", [OppositionRow("+33699999999")],
                                  mode=ImportMode.REPLACE, now=IMPORTED)
    return Service(policy=policy(), store=store, audit=None), store


async def test_d223_9_bloctel_list_imported_after_the_instant_is_not_fresh_for_it() -> None:
    """A Bloctel file imported after the checked instant did not exist then: list_stale."""
    service, _ = await _service()
    before = await service.evaluate(Attempt(NUMBER, "promo"), IMPORTED - timedelta(days=7))
    assert before.reason is Reason.LIST_STALE
    assert any("after this instant" in line for line in before.trace)
    after = await service.evaluate(Attempt(NUMBER, "promo"), IMPORTED + timedelta(hours=2))
    assert after.reason is Reason.OK


async def test_d223_9_attempts_after_the_instant_do_not_count() -> None:
    """D.223-9: 4 attempts per 30 days; attempts made after the checked instant had not
    happened yet and do not count against it."""
    service, store = await _service()
    at = IMPORTED + timedelta(hours=2)
    for i in range(4):
        await store.reserve_attempt(e164="+33612345678", professional="acme",
                                    campaign_id="promo", now=at + timedelta(days=1, hours=i),
                                    window_s=30 * 86400, limit=None, attempt_id=f"a{i}")
    then = await service.evaluate(Attempt(NUMBER, "promo"), at)
    assert then.reason is Reason.OK and then.attempts_seen == 0
    later = await service.evaluate(Attempt(NUMBER, "promo"), at + timedelta(days=2))
    assert later.reason is Reason.FREQUENCY_CAP


async def test_tsr_abandon_ratio_counts_no_call_answered_after_the_instant() -> None:
    """Ofcom 2016 / 16 CFR 310.4(b)(4)(i) ratio as it was: calls answered (and abandoned)
    after the checked instant had not happened yet and do not count against it."""
    service, store = await _service()
    at = IMPORTED + timedelta(hours=2)
    for i in range(25):  # bridged calls before the instant
        await store.record_answer(campaign_id="promo", call_id=f"ok{i}",
                                  at=at - timedelta(minutes=30 - i), abandoned=False)
    for i in range(5):  # abandons afterwards: 5/30 = 17 %
        await store.record_answer(campaign_id="promo", call_id=f"ab{i}",
                                  at=at + timedelta(minutes=10 + i), abandoned=True)
    then = await service.evaluate(Attempt(NUMBER, "promo"), at)
    assert then.reason is Reason.OK
    assert any(line.startswith("abandon: 0 abandoned / 25 answered") for line in then.trace)
    later = await service.evaluate(Attempt(NUMBER, "promo"), at + timedelta(minutes=20))
    assert later.reason is Reason.ABANDON_RATE


def test_ofcom_2016_abandoned_call_recorded_after_the_instant_does_not_count() -> None:
    """Ofcom 2016 (no repeat call within 72 h of an abandoned call): the per-number abandon
    recorded after the checked instant did not exist then; it blocks from its own instant."""
    uk = policy(jurisdiction="UK", caller_id="+442079460001")
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    e164 = "+442079460000"
    abandoned = (Suppression(professional="acme", since=at + timedelta(hours=1), until=None,
                             reason="abandoned"),)

    def judged(now: datetime) -> Decision:
        return decide(Attempt(e164, "promo"),
                      facts(now, e164, lists=fresh_lists(now, "opposition:tps"),
                            suppressions=abandoned), uk, now)

    assert judged(at).reason is Reason.OK
    later = judged(at + timedelta(hours=2))
    assert later.reason is Reason.REFUSAL_COOLDOWN
    assert any("72 h of an abandoned call" in line for line in later.trace)
