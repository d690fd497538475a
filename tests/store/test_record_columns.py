"""Contract `kind` and consent/contract `address_region` survive the store, every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.model import ConsentRecord, ContractRecord
from gateway.store.base import ImportMode, Store
from tests.store.test_contract import NOW, A, facts


async def test_inquiry_and_address_region_round_trip(store: Store) -> None:
    inquiry = ContractRecord(id="Q-1", e164=A, professional="acme", product_category="telecom",
                             started_at=datetime(2026, 8, 1, 9, 0, tzinfo=UTC), kind="inquiry",
                             address_region="67")
    purchase = ContractRecord(id="P-1", e164=A, professional="acme", product_category="telecom",
                              started_at=datetime(2025, 1, 1, tzinfo=UTC))
    await store.import_contracts([inquiry, purchase], mode=ImportMode.REPLACE, now=NOW)
    assert set((await facts(store)).contracts) == {inquiry, purchase}
    consent = ConsentRecord(id="c1", e164=A, professional="acme", product_category="telecom",
                            collected_at=NOW - timedelta(days=1), expires_at=None,
                            channel="web", proof_ref="p", address_region="2A")
    await store.import_consents([consent], mode=ImportMode.REPLACE, now=NOW)
    assert (await facts(store)).consents == (consent,)
