"""``load_facts_many`` (bulk scrubbing) returns what one ``load_facts`` per number returns,
on every backend, and reads only."""

from __future__ import annotations

from datetime import timedelta

from gateway.core.model import ContractRecord, Suppression
from gateway.store.base import FactsQuery, ImportMode, OppositionRow, Store
from tests.store.test_contract import DAY, NOW, A, B, C, consent, facts


async def _seed(store: Store) -> None:
    await store.import_consents([consent(), consent(B, "c2", professional="other")],
                                mode=ImportMode.REPLACE, now=NOW)
    await store.import_contracts([ContractRecord(
        id="k1", e164=C, professional="acme", product_category="telecom",
        started_at=NOW - timedelta(days=3))], mode=ImportMode.REPLACE, now=NOW)
    await store.import_opposition("bloctel", [OppositionRow(B, NOW - timedelta(days=40))],
                                  mode=ImportMode.REPLACE, now=NOW)
    await store.add_suppression(A, Suppression(professional="acme",
                                               since=NOW - timedelta(days=1), until=None))
    for i in range(2):
        await store.reserve_attempt(e164=A, professional="acme", campaign_id="spring",
                                    now=NOW - timedelta(hours=i + 1), window_s=30 * DAY,
                                    limit=None, attempt_id=f"a{i}")
    await store.record_answer(campaign_id="spring", call_id="x1", at=NOW - timedelta(hours=1),
                              abandoned=True)
    await store.record_answer(campaign_id="autumn", call_id="x2", at=NOW - timedelta(hours=1),
                              abandoned=False)


async def test_many_equals_one_by_one(smoke_store: Store) -> None:
    store = smoke_store  # Sentinel too: a batch is read by a script on plain Redis
    await _seed(store)
    unknown = "+33611111111"
    queries = [FactsQuery(e, "acme", camp, 30 * DAY, DAY)
               for e, camp in ((A, "spring"), (B, "spring"), (C, "autumn"), (unknown, "spring"),
                               (A, "autumn"))]
    many = await store.load_facts_many(queries, now=NOW)
    one = [await facts(store, q.e164, campaign=q.campaign_id) for q in queries]
    assert many == one
    # the facts are not all empty: the comparison covers consents, contracts, oppositions,
    # suppressions, attempts and both campaigns' counters
    assert many[0].consents and len(many[0].attempts) == 2 and many[0].suppressions
    assert many[1].oppositions and not many[1].consents  # B's consent is another pro's
    assert many[2].contracts and many[2].campaign.answered == 1
    assert many[0].campaign.abandoned == 1 and many[4].campaign.abandoned == 0


async def test_many_reads_only(store: Store) -> None:
    await _seed(store)
    before = await facts(store, A)
    await store.load_facts_many([FactsQuery(A, "acme", "spring", 30 * DAY, DAY)] * 3, now=NOW)
    assert await facts(store, A) == before


async def test_empty_batch(store: Store) -> None:
    assert await store.load_facts_many([], now=NOW) == []
