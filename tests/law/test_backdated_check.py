"""`dialer-gateway check --at` in the past judges with the facts as they were then."""

from __future__ import annotations

from datetime import timedelta

from gateway.core.model import Attempt, Reason
from gateway.service import Service
from gateway.store.base import ImportMode, OppositionRow
from gateway.store.memory import MemoryStore
from tests.core.support import paris, policy

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
