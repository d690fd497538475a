"""The store contract: every test runs against memory, Redis and Redis Cluster."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.core.model import (
    CampaignStats,
    ConsentRecord,
    ContractRecord,
    Facts,
    OppositionEntry,
    Suppression,
)
from gateway.store.base import ImportMode, OppositionRow, Store, StoreError
from gateway.store.compact import CompactNumbers

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
PARIS = timezone(timedelta(hours=2))
DAY = 24 * 3600
A = "+33612345678"
B = "+33698765432"
C = "+262692000001"


async def facts(store: Store, e164: str = A, *, professional: str = "acme",
                campaign: str = "spring", now: datetime = NOW) -> Facts:
    return await store.load_facts(e164=e164, professional=professional, campaign_id=campaign,
                                  now=now, attempt_window_s=30 * DAY, abandon_window_s=DAY)


def consent(e164: str = A, cid: str = "c1", **kw: object) -> ConsentRecord:
    base: dict[str, object] = dict(
        id=cid, e164=e164, professional="acme", product_category="telecom",
        collected_at=NOW - timedelta(days=10), expires_at=NOW + timedelta(days=300),
        channel="web", proof_ref=f"proof-{cid}",
    )
    base.update(kw)
    return ConsentRecord(**base)  # type: ignore[arg-type]


def numbers(n: int, start: int = 0) -> Iterator[OppositionRow]:
    for i in range(start, start + n):
        yield OppositionRow(e164=f"+3361{i:07d}")


class Boom(Exception):
    pass


def failing(rows: Iterator[OppositionRow], after: int) -> Iterator[OppositionRow]:
    for i, row in enumerate(rows):
        if i == after:
            raise Boom("bad line")
        yield row


# --- basics -------------------------------------------------------------------------


async def test_unknown_number_has_no_facts(store: Store) -> None:
    assert await facts(store) == Facts()
    assert await store.lists_status() == []


async def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.load_facts(e164=A, professional="acme", campaign_id="x",
                               now=datetime(2026, 1, 1), attempt_window_s=1, abandon_window_s=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.import_consents([consent(collected_at=datetime(2026, 1, 1))],
                                    mode=ImportMode.REPLACE, now=NOW)
    assert await store.lists_status() == []


async def test_consent_keeps_every_field_and_returns_utc(store: Store) -> None:
    full = consent(
        collected_at=datetime(2026, 8, 20, 11, 30, 15, 123456, tzinfo=PARIS),
        expires_at=datetime(2027, 8, 20, 11, 30, tzinfo=PARIS),
        withdrawn_at=None, timezone="Indian/Reunion",
        agreed_slot_start=datetime(2026, 9, 5, 18, 0, tzinfo=PARIS),
        agreed_slot_end=datetime(2026, 9, 5, 18, 30, tzinfo=PARIS),
        call_centre="cc-lyon", channel="phone", proof_ref="rec/2026/0001.wav",
    )
    minimal = consent(B, "c2", expires_at=None)
    info = await store.import_consents([full, minimal], mode=ImportMode.REPLACE, now=NOW,
                                       content_hash="sha256:ab")
    assert (info.name, info.size, info.content_hash, info.imported_at) == (
        "consents", 2, "sha256:ab", NOW)
    got = (await facts(store)).consents
    assert got == (full,)
    assert got[0].collected_at.tzinfo is UTC and got[0].agreed_slot_end is not None
    assert got[0].agreed_slot_end.tzinfo is UTC
    assert (await facts(store, B)).consents == (minimal,)


async def test_facts_only_hold_the_professionals_records(store: Store) -> None:
    await store.import_consents([consent(), consent(cid="c9", professional="other")],
                                mode=ImportMode.REPLACE, now=NOW)
    await store.import_contracts(
        [ContractRecord(id="k1", e164=A, professional="other", product_category="energy",
                        started_at=NOW - timedelta(days=100))],
        mode=ImportMode.REPLACE, now=NOW)
    f = await facts(store)
    assert [c.id for c in f.consents] == ["c1"]
    assert f.contracts == ()
    assert [c.id for c in (await facts(store, professional="other")).consents] == ["c9"]


async def test_contract_round_trip(store: Store) -> None:
    k = ContractRecord(id="K-1", e164=A, professional="acme", product_category="telecom",
                       started_at=datetime(2025, 1, 1, 9, 0, tzinfo=PARIS),
                       ends_at=datetime(2027, 1, 1, tzinfo=UTC), timezone="Europe/Paris")
    info = await store.import_contracts([k], mode=ImportMode.REPLACE, now=NOW)
    assert (info.name, info.size) == ("contracts", 1)
    assert (await facts(store)).contracts == (k,)


# --- opposition lists and versions --------------------------------------------------


async def test_replace_import_switches_the_whole_list(store: Store) -> None:
    reg = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    v1 = await store.import_opposition(
        "bloctel", [OppositionRow(A, reg), OppositionRow(B), OppositionRow(A, reg)],
        mode=ImportMode.REPLACE, now=NOW, content_hash="h1")
    assert (v1.name, v1.size, v1.content_hash) == ("opposition:bloctel", 2, "h1")
    # compact snapshots keep membership only: "since" is the list's import time
    assert (await facts(store)).oppositions == (OppositionEntry("bloctel", None),)
    later = NOW + timedelta(days=30)
    v2 = await store.import_opposition("bloctel", [OppositionRow(B), OppositionRow(C)],
                                       mode=ImportMode.REPLACE, now=later)
    assert v2.version > v1.version and v2.size == 2 and v2.imported_at == later
    assert (await facts(store)).oppositions == ()
    assert (await facts(store, C)).oppositions == (OppositionEntry("bloctel", None),)
    assert await store.lists_status() == [v2]
    assert (await facts(store)).lists == (v2,)


async def test_merge_import_adds_and_updates(store: Store) -> None:
    await store.import_opposition("internal", [OppositionRow(A)], mode=ImportMode.REPLACE,
                                  now=NOW)
    reg = NOW - timedelta(days=1)
    info = await store.import_opposition(
        "internal", [OppositionRow(A, reg), OppositionRow(B)], mode=ImportMode.MERGE, now=NOW)
    assert info.size == 2
    assert (await facts(store)).oppositions == (OppositionEntry("internal", None),)
    assert (await facts(store, B)).oppositions == (OppositionEntry("internal", None),)


async def test_sources_are_separate_lists(store: Store) -> None:
    await store.import_opposition("bloctel", [OppositionRow(A)], mode=ImportMode.REPLACE,
                                  now=NOW)
    await store.import_opposition("internal", [OppositionRow(A)], mode=ImportMode.REPLACE,
                                  now=NOW)
    assert [o.source for o in (await facts(store)).oppositions] == ["bloctel", "internal"]
    assert [i.name for i in await store.lists_status()] == [
        "opposition:bloctel", "opposition:internal"]
    with pytest.raises(ValueError, match="invalid opposition source"):
        await store.import_opposition("Bad|Source", [], mode=ImportMode.REPLACE, now=NOW)


@pytest.mark.parametrize("mode", [ImportMode.REPLACE, ImportMode.MERGE])
async def test_a_failed_import_changes_nothing(store: Store, mode: ImportMode) -> None:
    before = await store.import_opposition("bloctel", numbers(150), mode=ImportMode.REPLACE,
                                           now=NOW)
    with pytest.raises(Boom):
        await store.import_opposition("bloctel", failing(numbers(500, start=100), 350),
                                      mode=mode, now=NOW + timedelta(days=1))
    assert await store.lists_status() == [before]
    assert (await facts(store, "+33610000400")).oppositions == ()  # written, never visible
    assert len((await facts(store, "+33610000000")).oppositions) == 1
    # a later successful merge must not resurrect the failed import's rows
    after = await store.import_opposition("bloctel", [OppositionRow(B)], mode=ImportMode.MERGE,
                                          now=NOW + timedelta(days=2))
    assert after.size == 151 and after.version > before.version
    assert (await facts(store, "+33610000400")).oppositions == ()
    assert len((await facts(store, B)).oppositions) == 1


async def test_failed_consent_and_contract_imports_change_nothing(store: Store) -> None:
    def bad_consents() -> Iterator[ConsentRecord]:
        for i in range(250):
            yield consent(f"+3362{i:07d}", f"c{i}")
        raise Boom("line 252")

    with pytest.raises(Boom):
        await store.import_consents(bad_consents(), mode=ImportMode.REPLACE, now=NOW)
    assert (await facts(store, "+33620000001")).consents == ()

    def bad_contracts() -> Iterator[ContractRecord]:
        yield ContractRecord(id="k", e164=A, professional="acme", product_category="t",
                             started_at=NOW)
        raise Boom("line 3")

    with pytest.raises(Boom):
        await store.import_contracts(bad_contracts(), mode=ImportMode.MERGE, now=NOW)
    assert (await facts(store)).contracts == ()
    assert await store.lists_status() == []


async def test_readers_never_see_half_a_list(store: Store) -> None:
    await store.import_opposition("bloctel", [OppositionRow(A)], mode=ImportMode.REPLACE,
                                  now=NOW)
    seen: list[tuple[int, int]] = []

    async def rows() -> AsyncIterator[OppositionRow]:
        for i, row in enumerate(numbers(450)):
            if i in (150, 300):  # earlier batches are written by now
                seen.append((len((await facts(store)).oppositions),
                             len((await facts(store, "+33610000001")).oppositions)))
            yield row

    info = await store.import_opposition("bloctel", rows(), mode=ImportMode.REPLACE, now=NOW)
    assert seen == [(1, 0), (1, 0)]  # the old list, whole; nothing of the new one
    assert info.size == 450
    assert (await facts(store)).oppositions == ()
    assert len((await facts(store, "+33610000001")).oppositions) == 1


async def test_concurrent_readers_during_a_swap_never_see_a_mix(store: Store) -> None:
    """Readers running while a replace swaps see the old list, then the new one: a
    number of the old list only is never gone while one of the new list only is absent."""
    await store.import_opposition("bloctel", numbers(600), mode=ImportMode.REPLACE, now=NOW)
    old_only, new_only = "+33610000001", "+33610005001"
    reads: list[tuple[bool, bool]] = []
    per_reader: list[list[tuple[bool, bool]]] = [[], [], []]
    stop = asyncio.Event()
    progressed = asyncio.Event()

    async def reads_reach(count: int) -> None:
        async with asyncio.timeout(10):
            while len(reads) < count:
                progressed.clear()
                await progressed.wait()

    async def reader(mine: list[tuple[bool, bool]]) -> None:
        while not stop.is_set():
            x = bool((await facts(store, old_only)).oppositions)
            y = bool((await facts(store, new_only)).oppositions)
            reads.append((x, y))
            mine.append((x, y))
            progressed.set()
            await asyncio.sleep(0)  # the memory store never suspends on its own

    async def rows() -> AsyncIterator[OppositionRow]:
        for i, row in enumerate(numbers(600, start=5000)):
            if i % 200 == 0:  # readers read while the new version is being built
                await reads_reach(len(reads) + 2)
            yield row

    tasks = [asyncio.create_task(reader(mine)) for mine in per_reader]
    await asyncio.sleep(0)
    await store.import_opposition("bloctel", rows(), mode=ImportMode.REPLACE, now=NOW)
    await reads_reach(len(reads) + 6)
    stop.set()
    await asyncio.gather(*tasks)
    assert (False, False) not in reads  # old gone => new there (the new is read after)
    assert reads[:2] == [(True, False)] * 2 and reads[-1] == (False, True)
    for mine in per_reader:  # each reader: the old list, then the new one, never back
        assert sum(1 for a, b in itertools.pairwise(mine) if a[0] != b[0]) <= 1
        assert sum(1 for a, b in itertools.pairwise(mine) if a[1] != b[1]) <= 1


async def test_add_and_remove_one_opposition(store: Store) -> None:
    assert await store.remove_opposition("internal", A) is False
    await store.add_opposition("internal", A, at=NOW)
    await store.add_opposition("internal", A, at=NOW + timedelta(hours=1))
    (info,) = await store.lists_status()
    assert (info.name, info.size) == ("opposition:internal", 1)
    assert (await facts(store)).oppositions == (OppositionEntry("internal", NOW),)
    await store.import_opposition("internal", [OppositionRow(B)], mode=ImportMode.MERGE,
                                  now=NOW)
    await store.add_opposition("internal", C, at=NOW)
    assert (await store.lists_status())[0].size == 3
    assert await store.remove_opposition("internal", A) is True
    assert await store.remove_opposition("internal", A) is False
    assert await store.remove_opposition("internal", B) is True
    assert (await facts(store)).oppositions == ()
    assert (await store.lists_status())[0].size == 1


# --- consent versions ----------------------------------------------------------------


async def test_consent_merge_updates_by_id_and_replace_drops_the_rest(store: Store) -> None:
    first = await store.import_consents([consent(), consent(B, "c2")],
                                        mode=ImportMode.REPLACE, now=NOW)
    assert first.size == 2
    updated = consent(product_category="energy", proof_ref="proof-c1-v2")
    merged = await store.import_consents([updated, consent(cid="c3")], mode=ImportMode.MERGE,
                                         now=NOW)
    assert merged.size == 3 and merged.version > first.version
    assert [(c.id, c.product_category) for c in (await facts(store)).consents] == [
        ("c1", "energy"), ("c3", "telecom")]
    assert (await facts(store, B)).consents == (consent(B, "c2"),)
    replaced = await store.import_consents([consent(cid="c3")], mode=ImportMode.REPLACE,
                                           now=NOW)
    assert replaced.size == 1
    assert [c.id for c in (await facts(store)).consents] == ["c3"]
    assert (await facts(store, B)).consents == ()
    # a duplicate id in one file: the last row wins, counted once
    again = await store.import_consents([consent(cid="c4", channel="sms"),
                                         consent(cid="c4", channel="mail")],
                                        mode=ImportMode.REPLACE, now=NOW)
    assert again.size == 1
    assert [(c.id, c.channel) for c in (await facts(store)).consents] == [("c4", "mail")]


async def test_many_consents_of_one_number_are_all_kept(store: Store) -> None:
    many = [consent(cid=f"consent-{i:03d}", proof_ref=f"https://proofs.example/{i:06d}/" + "x" * 40,
                    professional="acme" if i % 2 else "other", call_centre=f"cc-{i % 3}",
                    collected_at=NOW - timedelta(days=i + 1), timezone="Europe/Paris")
            for i in range(24)]
    await store.import_consents([*many, consent(B, "c2")], mode=ImportMode.REPLACE, now=NOW)
    assert (await facts(store)).consents == tuple(
        sorted((c for c in many if c.professional == "acme"),
               key=lambda c: (c.collected_at, c.id)))
    assert len((await facts(store, professional="other")).consents) == 12
    assert (await facts(store, B)).consents == (consent(B, "c2"),)


async def test_readers_never_see_half_a_consent_list(store: Store) -> None:
    await store.import_consents([consent()], mode=ImportMode.REPLACE, now=NOW)
    seen: list[tuple[int, int]] = []

    async def rows() -> AsyncIterator[ConsentRecord]:
        for i in range(450):
            if i in (150, 300):  # earlier batches may be written by now
                seen.append((len((await facts(store)).consents),
                             len((await facts(store, "+33620000001")).consents)))
            yield consent(f"+3362{i:07d}", f"n{i}")

    info = await store.import_consents(rows(), mode=ImportMode.REPLACE, now=NOW)
    assert seen == [(1, 0), (1, 0)]  # the old list, whole; nothing of the new one
    assert info.size == 450
    assert (await facts(store)).consents == ()
    assert (await facts(store, "+33620000001")).consents == (consent("+33620000001", "n1"),)


# --- consents withdrawn, suppressions -----------------------------------------------


async def test_withdrawal_applies_to_earlier_consents_only(store: Store) -> None:
    await store.import_consents([consent(), consent(cid="c2", professional="other")],
                                mode=ImportMode.REPLACE, now=NOW)
    at = NOW - timedelta(days=1)
    assert await store.withdraw_consent(e164=A, professional="acme", at=at) == 1
    (c1,) = (await facts(store)).consents
    assert c1.withdrawn_at == at
    assert (await facts(store, professional="other")).consents[0].withdrawn_at is None
    # re-importing the old file does not resurrect it; a newer consent is valid
    fresh = consent(cid="c3", collected_at=NOW)
    await store.import_consents([consent(), fresh], mode=ImportMode.REPLACE, now=NOW)
    by_id = {c.id: c for c in (await facts(store)).consents}
    assert by_id["c1"].withdrawn_at == at and by_id["c3"].withdrawn_at is None
    assert await store.withdraw_consent(e164=A, professional=None, at=NOW) == 1
    assert all(c.withdrawn_at is not None for c in (await facts(store)).consents)


async def test_suppressions_are_per_professional(store: Store) -> None:
    s = Suppression(professional="acme", since=NOW - timedelta(days=2),
                    until=NOW + timedelta(days=58), reason="refused")
    forever = Suppression(professional="acme", since=NOW - timedelta(days=1), until=None,
                          reason="revoked")
    await store.add_suppression(A, s)
    await store.add_suppression(A, forever)
    await store.add_suppression(A, Suppression(professional="other", since=NOW, until=None))
    assert (await facts(store)).suppressions == (s, forever)


# --- attempts, pacing, abandon counters ---------------------------------------------


async def test_reservation_respects_the_cap_and_the_window(store: Store) -> None:
    for i in range(4):
        r = await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                        now=NOW + timedelta(days=i), window_s=30 * DAY,
                                        limit=4, attempt_id=f"a{i}")
        assert (r.ok, r.count) == (True, i + 1)
    refused = await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                          now=NOW + timedelta(days=5), window_s=30 * DAY,
                                          limit=4, attempt_id="a4")
    assert (refused.ok, refused.count) == (False, 4)
    again = await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                        now=NOW + timedelta(days=30, seconds=1),
                                        window_s=30 * DAY, limit=4, attempt_id="a5")
    assert (again.ok, again.count) == (True, 4)  # the first attempt left the window
    other = await store.reserve_attempt(e164=A, professional="other", campaign_id="x",
                                        now=NOW, window_s=30 * DAY, limit=1, attempt_id="o1")
    assert other.ok


async def test_reservation_is_idempotent_per_attempt_id_and_unlimited_without_limit(
        store: Store) -> None:
    for _ in range(2):
        r = await store.reserve_attempt(e164=A, professional="acme", campaign_id="s", now=NOW,
                                        window_s=60, limit=1, attempt_id="same")
        assert (r.ok, r.count) == (True, 1)
    for i in range(5):
        r = await store.reserve_attempt(e164=B, professional="acme", campaign_id="s", now=NOW,
                                        window_s=60, limit=None, attempt_id=f"u{i}")
        assert (r.ok, r.count) == (True, i + 1)


async def test_attempts_show_in_facts_within_the_window(store: Store) -> None:
    t1 = NOW - timedelta(days=31)
    t2 = NOW - timedelta(days=3, milliseconds=250)
    for aid, t in (("x1", t1), ("x2", t2)):
        await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring", now=t,
                                    window_s=40 * DAY, limit=None, attempt_id=aid)
    assert (await facts(store)).attempts == (t2,)
    assert (await facts(store, professional="other")).attempts == ()


@pytest.mark.parametrize("contenders", [2, 50])
async def test_concurrent_reservations_on_the_last_slot(store: Store, contenders: int) -> None:
    for i in range(3):
        await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring", now=NOW,
                                    window_s=30 * DAY, limit=4, attempt_id=f"prev{i}")
    results = await asyncio.gather(*(
        store.reserve_attempt(e164=A, professional="acme", campaign_id="spring", now=NOW,
                              window_s=30 * DAY, limit=4, attempt_id=f"race{i}")
        for i in range(contenders)
    ))
    assert sum(r.ok for r in results) == 1
    assert all(r.count == 4 for r in results)
    assert len((await facts(store)).attempts) == 4


async def test_pacing_counts_reserved_attempts_of_the_last_minute(store: Store) -> None:
    for i in range(3):
        await store.reserve_attempt(e164=f"+3361000000{i}", professional="acme",
                                    campaign_id="spring", now=NOW, window_s=DAY, limit=1,
                                    attempt_id=f"p{i}")
    await store.reserve_attempt(e164="+33610000000", professional="acme", campaign_id="spring",
                                now=NOW, window_s=DAY, limit=1, attempt_id="refused")
    assert (await facts(store)).campaign.attempts_last_minute == 3
    assert (await facts(store, now=NOW + timedelta(seconds=61))).campaign == CampaignStats()


async def test_answers_are_counted_once_per_call_id(store: Store) -> None:
    await store.record_answer(campaign_id="spring", call_id="c1", at=NOW - timedelta(hours=1),
                              abandoned=False)
    for _ in range(2):
        await store.record_answer(campaign_id="spring", call_id="c2",
                                  at=NOW - timedelta(minutes=5), abandoned=True)
    await store.record_answer(campaign_id="spring", call_id="old", at=NOW - timedelta(days=2),
                              abandoned=True)
    await store.record_answer(campaign_id="other", call_id="c3", at=NOW, abandoned=True)
    stats = (await facts(store)).campaign
    assert (stats.answered, stats.abandoned) == (2, 1)


async def test_campaign_stats_read_the_campaign_counters_alone(store: Store) -> None:
    await store.record_answer(campaign_id="spring", call_id="c1", at=NOW - timedelta(hours=1),
                              abandoned=False)
    await store.record_answer(campaign_id="spring", call_id="c2",
                              at=NOW - timedelta(minutes=5), abandoned=True)
    await store.record_answer(campaign_id="spring", call_id="old", at=NOW - timedelta(days=2),
                              abandoned=True)
    await store.record_answer(campaign_id="other", call_id="c3", at=NOW, abandoned=True)
    await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                now=NOW - timedelta(seconds=10), window_s=30 * DAY, limit=None,
                                attempt_id="a1")
    stats = await store.campaign_stats(campaign_id="spring", now=NOW, abandon_window_s=DAY)
    assert stats == CampaignStats(answered=2, abandoned=1, attempts_last_minute=1)
    assert stats == (await facts(store)).campaign
    wider = await store.campaign_stats(campaign_id="spring", now=NOW, abandon_window_s=3 * DAY)
    assert (wider.answered, wider.abandoned) == (3, 2)
    assert await store.campaign_stats(campaign_id="none", now=NOW,
                                      abandon_window_s=DAY) == CampaignStats()


async def test_large_imports_stream_in_batches(store: Store) -> None:
    async def rows() -> AsyncIterator[OppositionRow]:
        for row in numbers(2500):
            yield row

    info = await store.import_opposition("tps", rows(), mode=ImportMode.REPLACE, now=NOW)
    assert info.size == 2500
    assert len((await facts(store, "+33610002499")).oppositions) == 1


async def test_compact_numbers_import_dense_and_sparse_buckets(store: Store) -> None:
    """The fast importer's grouped numbers: a bucket over the intset limit (a bitmap on
    Redis, written at once), sparse ones, then a merge and a replace over them."""
    dense = [33_610_000_000 + 3 * i for i in range(700)]  # 700 members of one bucket
    sparse = [33_620_000_000 + 10_000 * i + 7 for i in range(50)]
    info = await store.import_opposition("bloctel", CompactNumbers.build(dense + sparse),
                                         mode=ImportMode.REPLACE, now=NOW)
    assert info.size == 750
    for n in (dense[0], dense[-1], dense[350], sparse[0], sparse[-1]):
        assert len((await facts(store, f"+{n}")).oppositions) == 1
    for n in (dense[0] + 1, dense[-1] + 3, sparse[0] + 1):
        assert (await facts(store, f"+{n}")).oppositions == ()
    # rows with duplicates in a dense bucket, merged: counted once each
    rows = [OppositionRow(f"+{33_610_000_000 + i}") for i in range(600)] * 2
    merged = await store.import_opposition("bloctel", rows, mode=ImportMode.MERGE, now=NOW)
    assert merged.size == 750 + 600 - 200  # 200 of them (multiples of 3) were listed
    assert len((await facts(store, "+33610000001")).oppositions) == 1
    replaced = await store.import_opposition("bloctel", CompactNumbers.build(sparse),
                                             mode=ImportMode.REPLACE, now=NOW)
    assert replaced.size == 50
    assert (await facts(store, f"+{dense[1]}")).oppositions == ()


async def test_smoke(smoke_store: Store) -> None:
    """The part of the contract the Sentinel deployment is checked with."""
    await smoke_store.ping()
    await smoke_store.import_opposition("bloctel", [OppositionRow(A)], mode=ImportMode.REPLACE,
                                        now=NOW)
    await smoke_store.import_consents([consent(B)], mode=ImportMode.REPLACE, now=NOW)
    r = await smoke_store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                          now=NOW, window_s=DAY, limit=1, attempt_id="s1")
    assert r.ok
    f = await facts(smoke_store)
    assert f.oppositions == (OppositionEntry("bloctel", None),)
    assert f.attempts == (NOW,) and f.campaign.attempts_last_minute == 1
    assert (await facts(smoke_store, B)).consents == (consent(B),)


async def test_a_replace_committed_meanwhile_supersedes_an_older_import(store: Store) -> None:
    inner: list[int] = []

    async def rows() -> AsyncIterator[OppositionRow]:
        yield OppositionRow(A)
        info = await store.import_opposition("bloctel", [OppositionRow(B)],
                                             mode=ImportMode.REPLACE, now=NOW)
        inner.append(info.version)
        yield OppositionRow(C)

    with pytest.raises(StoreError, match="superseded"):
        await store.import_opposition("bloctel", rows(), mode=ImportMode.REPLACE, now=NOW)
    (status,) = await store.lists_status()
    assert (status.version, status.size) == (inner[0], 1)
    assert (await facts(store)).oppositions == ()
    assert len((await facts(store, B)).oppositions) == 1
