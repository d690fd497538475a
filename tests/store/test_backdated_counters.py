"""A back-dated read (``dialer-gateway check --at``) counts the campaign's answered,
abandoned and paced calls up to its instant only, on every backend."""

from __future__ import annotations

from datetime import timedelta

from gateway.store.base import Store
from tests.store.test_contract import NOW, A, facts


async def test_campaign_counters_stop_at_the_instant(store: Store) -> None:
    for i, abandoned in enumerate((False, False, True)):
        await store.record_answer(campaign_id="spring", call_id=f"before{i}",
                                  at=NOW - timedelta(minutes=i + 1), abandoned=abandoned)
    for i in range(4):
        await store.record_answer(campaign_id="spring", call_id=f"after{i}",
                                  at=NOW + timedelta(seconds=i + 1), abandoned=True)
    await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                now=NOW - timedelta(seconds=5), window_s=86400, limit=None,
                                attempt_id="paced-before")
    await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                now=NOW + timedelta(seconds=5), window_s=86400, limit=None,
                                attempt_id="paced-after")
    then = (await facts(store, now=NOW)).campaign
    assert (then.answered, then.abandoned, then.attempts_last_minute) == (3, 1, 1)
    stats = await store.campaign_stats(campaign_id="spring", now=NOW, abandon_window_s=86400)
    assert stats == then
    later = (await facts(store, now=NOW + timedelta(seconds=10))).campaign
    assert (later.answered, later.abandoned, later.attempts_last_minute) == (7, 5, 2)
