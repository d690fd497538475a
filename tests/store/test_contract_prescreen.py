"""The store contract of prescreen tokens (memory, Redis, Redis Cluster).

The AMI proxy's reservation leaves a one-shot token bound to (number, decision id);
the carrier screen's ``load_facts(prescreen_id=...)`` consumes it and, when it matches,
leaves the proxy's own attempt out of the frequency and pacing counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.model import Facts, Prescreen
from gateway.store.base import Store

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
DAY = 24 * 3600
A = "+33612345678"
B = "+33698765432"
TTL_S = 120


async def reserve(store: Store, attempt_id: str, *, e164: str = A, professional: str = "acme",
                  campaign: str = "spring", now: datetime = NOW, limit: int | None = 4,
                  ttl_s: int | None = TTL_S) -> bool:
    r = await store.reserve_attempt(e164=e164, professional=professional,
                                    campaign_id=campaign, now=now, window_s=30 * DAY,
                                    limit=limit, attempt_id=attempt_id, prescreen_ttl_s=ttl_s)
    return r.ok


async def facts(store: Store, prescreen_id: str | None, *, e164: str = A,
                professional: str = "acme", campaign: str = "spring",
                now: datetime = NOW) -> Facts:
    return await store.load_facts(e164=e164, professional=professional, campaign_id=campaign,
                                  now=now, attempt_window_s=30 * DAY, abandon_window_s=DAY,
                                  prescreen_id=prescreen_id)


async def test_a_matching_token_is_returned_once_and_hides_its_own_attempt(
        store: Store) -> None:
    assert await reserve(store, "earlier", ttl_s=None, now=NOW - timedelta(days=2))
    assert await reserve(store, "proxy-1")
    later = NOW + timedelta(seconds=5)
    first = await facts(store, "proxy-1", now=later)
    assert first.prescreen == Prescreen(decision_id="proxy-1", campaign_id="spring", at=NOW)
    # the proxy's own attempt is not an earlier attempt; the one of 2 days ago is
    assert first.attempts == (NOW - timedelta(days=2),)
    assert first.campaign.attempts_last_minute == 0
    # one-shot: the second read finds nothing and counts everything
    second = await facts(store, "proxy-1", now=later)
    assert second.prescreen is None
    assert second.attempts == (NOW - timedelta(days=2), NOW)
    assert second.campaign.attempts_last_minute == 1


async def test_a_token_covers_only_its_own_number(store: Store) -> None:
    assert await reserve(store, "proxy-a")
    other = await facts(store, "proxy-a", e164=B)
    assert other.prescreen is None
    # B's read did not consume A's token
    assert (await facts(store, "proxy-a")).prescreen is not None


async def test_a_token_of_another_professional_does_not_match_and_is_spent(
        store: Store) -> None:
    assert await reserve(store, "proxy-x", professional="other")
    f = await facts(store, "proxy-x")
    assert f.prescreen is None
    assert (await facts(store, "proxy-x", professional="other")).prescreen is None
    assert len((await facts(store, None, professional="other")).attempts) == 1


async def test_an_expired_token_does_not_match(store: Store) -> None:
    assert await reserve(store, "proxy-old")
    f = await facts(store, "proxy-old", now=NOW + timedelta(seconds=TTL_S + 1))
    assert f.prescreen is None
    assert f.attempts == (NOW,)
    assert await reserve(store, "proxy-edge")
    assert (await facts(store, "proxy-edge", now=NOW + timedelta(seconds=TTL_S))
            ).prescreen is not None


async def test_no_token_without_a_ttl_or_without_a_reservation(store: Store) -> None:
    assert await reserve(store, "agi-1", ttl_s=None)
    assert (await facts(store, "agi-1")).prescreen is None
    for i in range(3):
        assert await reserve(store, f"fill-{i}", ttl_s=None)
    assert not await reserve(store, "refused", limit=4)  # the cap is full: nothing counted
    f = await facts(store, "refused")
    assert f.prescreen is None
    assert len(f.attempts) == 4


async def test_an_unknown_id_is_no_token(store: Store) -> None:
    assert await reserve(store, "proxy-1")
    f = await facts(store, "forged")
    assert f.prescreen is None
    assert f.attempts == (NOW,)
    assert (await facts(store, None)).prescreen is None
    assert (await facts(store, "proxy-1")).prescreen is not None


async def test_a_released_attempt_leaves_no_token(store: Store) -> None:
    """An attempt given back (the call was not placed: its ALLOW was overruled at the
    edge) takes its token with it: a later carrier screen presenting that decision id
    is screened and counted as any call."""
    assert await reserve(store, "proxy-1")
    await store.release_attempt(e164=A, professional="acme", campaign_id="spring",
                                attempt_id="proxy-1")
    f = await facts(store, "proxy-1")
    assert f.prescreen is None
    assert f.attempts == ()
    assert f.campaign.attempts_last_minute == 0
