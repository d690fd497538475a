"""The demo seed: the store it fills is the one the regular importer fills, memory or
Redis (the workers' tests seed a Redis store with it).

``gateway.demo.seed`` checks each row by the importer's row rules and hands the lists
to the store's atomic imports itself (``check`` seeds at every start, without the
two-pass import: docs/benchmarks.md, CLI start-up); ``import_file`` of the same rendered
files must give the same lists (versions, sizes, content hashes) and the same facts for
every demo number.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from gateway.demo import DEMO_FILES, demo_file, demo_rows, seed
from gateway.importer import import_file
from gateway.store.base import ImportMode, Store
from gateway.store.factory import open_store
from gateway.store.memory import MemoryStore

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["memory", "redis"])
async def two_stores(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Store, Store]]:
    """Two empty stores of one kind: one to seed, one to import into."""
    if request.param == "memory":
        yield MemoryStore(), MemoryStore()
        return
    url: str = request.getfixturevalue("redis_url")
    seeded, imported = open_store(url, key_prefix="seeded"), open_store(url, key_prefix="imported")
    try:
        yield seeded, imported
    finally:
        await seeded.close()
        await imported.close()


async def test_the_seed_fills_the_store_as_the_importer_does(
    two_stores: tuple[Store, Store],
) -> None:
    seeded, imported = two_stores
    infos = await seed(seeded, NOW)
    for item in DEMO_FILES:
        await import_file(imported, item.kind, demo_file(item.name, NOW), now=NOW,
                          mode=ImportMode.REPLACE, list_source=item.source,
                          label=f"demo/{item.name}")
    status = sorted(await imported.lists_status(), key=lambda i: i.name)
    assert sorted(infos, key=lambda i: i.name) == status
    assert sorted(await seeded.lists_status(), key=lambda i: i.name) == status
    assert [i.size for i in status] == [9, 1, 2, 1]  # consents, contracts, two oppositions
    numbers = {row.e164 for item in DEMO_FILES for row in demo_rows(item, NOW)[0]}
    assert len(numbers) >= 10
    found = {"consents": 0, "contracts": 0, "oppositions": 0}
    for e164 in sorted(numbers):
        query = {"e164": e164, "professional": "demo-pro", "campaign_id": "demo", "now": NOW,
                 "attempt_window_s": 86_400, "abandon_window_s": 86_400}
        facts = await seeded.load_facts(**query)
        assert facts == await imported.load_facts(**query), e164
        for kind in found:
            found[kind] += len(getattr(facts, kind))
    assert all(found.values()), found  # the comparison saw records of every kind


async def test_seeding_twice_replaces_the_lists() -> None:
    store = MemoryStore()
    first = await seed(store, NOW)
    second = await seed(store, NOW)
    assert [i.size for i in second] == [i.size for i in first]
    assert [i.version for i in second] == [i.version + 1 for i in first]
