"""Import guards: the shrink guard, --dry-run, and objections recorded one by one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from gateway.importer import ImportFileError, ImportKind, import_file
from gateway.store.base import ImportMode, Store
from gateway.store.factory import open_store
from gateway.store.memory import MemoryStore

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        s: Store = MemoryStore()
    else:
        s = open_store(request.getfixturevalue("redis_url"),
                       key_prefix=request.getfixturevalue("key_prefix"),
                       socket_timeout_s=5.0, connect_timeout_s=5.0)
    yield s
    await s.close()


def plain(start: int, count: int) -> bytes:
    return "".join(f"+3361{i:07d}\n" for i in range(start, start + count)).encode()


async def listed(store: Store, e164: str) -> list[str]:
    facts = await store.load_facts(e164=e164, professional="acme", campaign_id="c", now=NOW,
                                   attempt_window_s=60, abandon_window_s=60)
    return [o.source for o in facts.oppositions]


async def test_shrink_guard_refuses_a_truncated_snapshot(store: Store) -> None:
    await import_file(store, ImportKind.OPPOSITION, plain(0, 100), now=NOW,
                      list_source="bloctel")
    with pytest.raises(ImportFileError, match="allow-shrink") as err:
        await import_file(store, ImportKind.OPPOSITION, plain(0, 49), now=NOW,
                          list_source="bloctel")
    assert "49 distinct rows would replace the 100 entries" in str(err.value)
    (info,) = await store.lists_status()
    assert (info.size, info.version) == (100, 1)
    assert await listed(store, "+33610000099") == ["bloctel"]
    # half the list is not "much smaller"; an explicit --allow-shrink goes through
    report = await import_file(store, ImportKind.OPPOSITION, plain(0, 50), now=NOW,
                               list_source="bloctel")
    assert report.size == 50
    report = await import_file(store, ImportKind.OPPOSITION, plain(0, 10), now=NOW,
                               list_source="bloctel", allow_shrink=True)
    assert report.size == 10
    assert await listed(store, "+33610000011") == []


async def test_merge_imports_are_not_shrink_guarded(store: Store) -> None:
    await import_file(store, ImportKind.OPPOSITION, plain(0, 100), now=NOW,
                      list_source="bloctel")
    report = await import_file(store, ImportKind.OPPOSITION, plain(500, 1), now=NOW,
                               list_source="bloctel", mode=ImportMode.MERGE)
    assert report.size == 101


@pytest.mark.parametrize("kind", [ImportKind.OPPOSITION, ImportKind.CONSENTS])
async def test_dry_run_reports_and_changes_nothing(store: Store, kind: ImportKind) -> None:
    if kind is ImportKind.OPPOSITION:
        data = plain(0, 5) + b"+33700123456\n+33610000000\n"
    else:
        data = (b"number,professional,product_category,collected_at,expires_at,channel\n"
                b"+33610000001,acme,t,2026-09-01T10:00:00Z,2027-08-31T10:00:00Z,web\n")
    report = await import_file(store, kind, data, now=NOW, list_source="bloctel",
                               dry_run=True)
    assert report.dry_run and report.imported == 0 and report.version == 0
    if kind is ImportKind.OPPOSITION:
        assert (report.rows_read, report.duplicates, report.outside_metadata) == (7, 1, 1)
    assert await store.lists_status() == []
    assert await listed(store, "+33610000001") == []


async def test_dry_run_applies_the_shrink_guard(store: Store) -> None:
    await import_file(store, ImportKind.OPPOSITION, plain(0, 100), now=NOW,
                      list_source="bloctel")
    with pytest.raises(ImportFileError, match="allow-shrink"):
        await import_file(store, ImportKind.OPPOSITION, plain(0, 3), now=NOW,
                          list_source="bloctel", dry_run=True)


async def test_objections_recorded_one_by_one_survive_a_replace(store: Store) -> None:
    """An agent's do_not_call during a replace import of the same list is kept."""
    await import_file(store, ImportKind.OPPOSITION, plain(0, 10), now=NOW,
                      list_source="internal")
    added = "+33699999999"

    async def rows() -> AsyncIterator[object]:
        from gateway.store.base import OppositionRow
        yield OppositionRow("+33610000000")
        await store.add_opposition("internal", added, at=NOW)  # while the import runs
        assert await listed(store, added) == ["internal"]
        yield OppositionRow("+33610000001")

    await store.import_opposition("internal", rows(),  # type: ignore[arg-type]
                                  mode=ImportMode.REPLACE, now=NOW)
    assert await listed(store, added) == ["internal"]
    assert await listed(store, "+33610000005") == []
    await import_file(store, ImportKind.OPPOSITION, plain(0, 2), now=NOW,
                      list_source="internal")
    assert await listed(store, added) == ["internal"]
