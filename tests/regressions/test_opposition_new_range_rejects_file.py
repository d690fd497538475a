"""Regression: one opposition entry outside phonenumbers' metadata rejected the file.

A newly allocated range (here ``07 00``, possible but unknown to the metadata) made
the whole opposition import fail, so the list went stale and, once past the pack's
maximum age, every call was blocked ``list_stale``. Opposition lists now keep every
*possible* number, count and report the unknown ones; consents stay strict.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.importer import ImportFileError, ImportKind, import_file
from gateway.importer import run as import_run
from gateway.store.memory import MemoryStore

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NEW_RANGE = "07 00 12 34 56"  # possible length, no range in the metadata
NEW_RANGE_E164 = "+33700123456"


async def _listed(store: MemoryStore, e164: str) -> list[str]:
    facts = await store.load_facts(e164=e164, professional="acme", campaign_id="c", now=NOW,
                                   attempt_window_s=60, abandon_window_s=60)
    return [o.source for o in facts.oppositions]


@pytest.mark.parametrize("header", ["", "number\n"])
async def test_opposition_list_keeps_possible_numbers_and_reports_them(
        header: str, monkeypatch: pytest.MonkeyPatch) -> None:
    logs: list[dict[str, object]] = []

    class Recorder:  # the module's logger (structlog may be configured by other tests)
        def _record(self, event: str, **fields: object) -> None:
            logs.append({"event": event, **fields})

        info = warning = _record

    monkeypatch.setattr(import_run, "log", Recorder())
    store = MemoryStore()
    data = f"{header}06 12 34 56 78\n{NEW_RANGE}\n+33 7 00 99 88 77\n".encode()
    report = await import_file(store, ImportKind.OPPOSITION, data, now=NOW,
                               list_source="bloctel")
    assert (report.rows_read, report.outside_metadata, report.size) == (3, 2, 3)
    assert await _listed(store, NEW_RANGE_E164) == ["bloctel"]
    assert await _listed(store, "+33612345678") == ["bloctel"]
    warned = [e for e in logs if e["event"] == "import.outside_metadata"]
    assert warned and warned[0]["count"] == 2


async def test_impossible_numbers_are_still_refused_with_line_and_column() -> None:
    store = MemoryStore()
    data = b"number\n06 12 34 56 78\n07 00 12 34\n"
    with pytest.raises(ImportFileError) as err:
        await import_file(store, ImportKind.OPPOSITION, data, now=NOW, list_source="bloctel")
    assert [(e.line, e.column) for e in err.value.errors] == [(3, "number")]
    assert "not a possible phone number" in err.value.errors[0].problem


async def test_consents_stay_strict() -> None:
    store = MemoryStore()
    data = ("number,professional,product_category,collected_at,expires_at,channel\n"
            f"{NEW_RANGE},acme,telecom,2026-09-01T10:00:00Z,2027-08-31T10:00:00Z,web\n").encode()
    with pytest.raises(ImportFileError) as err:
        await import_file(store, ImportKind.CONSENTS, data, now=NOW)
    assert [(e.line, e.column) for e in err.value.errors] == [(2, "number")]
