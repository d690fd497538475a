"""A consent replace written while it is validated leaves Redis exactly as the two-pass one.

``import_file`` writes a consent replace into the Redis store's pending generation chunk by
chunk while the rest of the file is checked (``overlap``, the default); ``overlap=False``
validates the whole file first. On generated files -- distinct numbers, repeated numbers
(several consents of a number, duplicate rows: the last one wins), proofs of several
listpack chunks, a refused row after clean chunks were written -- with chunks, batches,
runs and the queue cut small, every key of the store's prefix, every field and value,
is the same after both (the metadata too, but for the version an aborted overlapped
import used up, and terms it interned). ``PUT_FIRST`` (the overlapped write) is checked
alone: a call finding a number stored writes nothing, a replayed call returns its first
count.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from gateway.importer import ImportFileError, ImportKind, import_file
from gateway.importer import run as importer_run
from gateway.importer.rows import CONSENTS
from gateway.store import consent_pack
from gateway.store.base import ImportMode
from gateway.store.factory import open_store
from gateway.store.keys import LIST_CONSENTS
from gateway.store.redis import RedisStore
from tests.importer.test_consent_bulk_store import layout

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HEADER = "number,professional,product_category,collected_at,expires_at,channel,proof_ref,consent_id"


def _line(number: int, professional: str, day: int, proof: str, cid: str) -> str:
    return (f"+336{number:08d},{professional},telecom,2025-01-{day:02d}T10:00:00Z,"
            f"2028-01-01T10:00:00Z,web,{proof},{cid}")


@st.composite
def _file(draw: st.DrawFn) -> tuple[str, bool]:
    """(file text, whether it holds a refused row)."""
    unique = draw(st.booleans())
    spread = draw(st.sampled_from([50, 30_000, 10**8 - 1]))  # one bucket .. many
    count = draw(st.integers(0, 40))
    if unique:
        numbers = draw(st.lists(st.integers(0, spread), min_size=count, max_size=count,
                                unique=True))
    else:
        pool = draw(st.lists(st.integers(0, spread), min_size=1, max_size=8, unique=True))
        numbers = [draw(st.sampled_from(pool)) for _ in range(count)]
    lines = [HEADER]
    for n in numbers:
        lines.append(_line(n, draw(st.sampled_from(["acme", "energia"])), draw(
            st.integers(1, 28)), draw(st.sampled_from(["", "r", "p" * 90, "q" * 300])),
            draw(st.sampled_from(["", "crm-1", "crm-2"]))))
    bad = draw(st.booleans()) and count > 0
    if bad:
        at = draw(st.integers(1, len(lines)))
        lines.insert(at, _line(1, "acme", 1, "", "").replace("2025-01-01", "2025-13-01"))
    return "\n".join(lines) + "\n", bad


def _without_meta(dump: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dump.items() if v[0] != "hash" or k.startswith(":k")}


async def _import(store: RedisStore, path: Path, *, overlap: bool) -> Any:
    try:
        report = await import_file(store, ImportKind.CONSENTS, path, now=NOW,
                                   mode=ImportMode.REPLACE, allow_shrink=True,
                                   overlap=overlap)
    except ImportFileError as exc:
        return ("refused", [str(e) for e in exc.errors])
    return report.to_dict()


def _open(url: str, prefix: str) -> RedisStore:
    store = open_store(url, key_prefix=prefix, socket_timeout_s=5.0)
    assert isinstance(store, RedisStore)
    return store


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(file=_file(), chunk_bytes=st.integers(100, 3000), batch_rows=st.integers(1, 6),
       run_rows=st.integers(1, 12), queue_chunks=st.integers(1, 3))
def test_an_overlapped_replace_stores_what_the_two_pass_replace_stores(
        redis_url: str, key_prefix: str, tmp_path: Path, file: tuple[str, bool],
        chunk_bytes: int, batch_rows: int, run_rows: int, queue_chunks: int) -> None:
    text, bad = file
    path = tmp_path / "consents.csv"
    path.write_text(text, encoding="utf-8")
    before = tmp_path / "before.csv"
    before.write_text("\n".join([HEADER, _line(7, "acme", 3, "old", ""),
                                 _line(20_007, "acme", 3, "old", "")]) + "\n")

    async def check() -> None:
        sides = [_open(redis_url, f"{key_prefix}{n}") for n in ("o", "s")]
        try:
            for store in sides:
                store.consents.run_rows = run_rows
                await import_file(store, ImportKind.CONSENTS, before, now=NOW,
                                  mode=ImportMode.REPLACE, overlap=False)
            with capture_logs() as logs:
                overlapped = await _import(sides[0], path, overlap=True)
            took = any(e["event"] == "import.overlapped" for e in logs)
            assert took or bad or overlapped[0] == "refused"  # refused: no rows
            two_pass = await _import(sides[1], path, overlap=False)
            assert overlapped == two_pass
            got, want = await layout(sides[0]), await layout(sides[1])
            if bad:  # the overlapped side may have begun (and aborted) a version and
                # interned its terms: readers see the same list, every bucket, index and
                # generation is the same, the dictionary holds the same ids and maybe more
                assert overlapped[0] == "refused"
                assert await sides[0].lists_status() == await sides[1].lists_status()
                terms, known = got.pop(":kd")[1], want.pop(":kd")[1]
                assert {k: v for k, v in known.items() if k != b"#"}.items() <= terms.items()
                assert _without_meta(got) == _without_meta(want)
            else:
                assert got == want
                assert any(k.startswith(":k:") for k in got)
        finally:
            for store in sides:
                await store.conn.client.flushdb()
                await store.close()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importer_run, "OVERLAP_MIN_BYTES", 0)
        patch.setattr(importer_run, "CONSENT_CHUNK_BYTES", chunk_bytes)
        patch.setattr(importer_run, "IMPORT_BATCH_ROWS", batch_rows)
        patch.setattr(importer_run, "OVERLAP_QUEUE_CHUNKS", queue_chunks)
        asyncio.run(check())


@pytest.fixture
async def pair(redis_or_cluster_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch
               ) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    monkeypatch.setattr(importer_run, "OVERLAP_MIN_BYTES", 0)  # every file overlapped
    sides = (_open(redis_or_cluster_url, f"{key_prefix}o"),
             _open(redis_or_cluster_url, f"{key_prefix}s"))
    yield sides
    for store in sides:
        await store.close()


async def test_a_repeat_found_after_fresh_writes_is_merged_as_the_two_pass_import_does(
        pair: tuple[RedisStore, RedisStore], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Numbers written fresh in earlier runs come back later in the file (another
    consent, a duplicate row whose last copy wins, a longer proof): on a Cluster too."""
    monkeypatch.setattr(importer_run, "CONSENT_CHUNK_BYTES", 200)
    monkeypatch.setattr(importer_run, "IMPORT_BATCH_ROWS", 2)
    rows = [_line(n, "acme", 1 + n % 28, f"r{n}", "") for n in range(0, 60_000, 2_000)]
    rows += [_line(0, "energia", 2, "p" * 300, "crm-9"),  # a second consent of number 0
             _line(2_000, "acme", 3, "q" * 120, ""),  # number 2000 again, other facts
             _line(4_000, "acme", 1 + 4_000 % 28, "r4000", "")]  # a duplicate row
    path = tmp_path / "consents.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    overlapped, two_pass = pair
    for store in pair:
        store.consents.run_rows = 4
    with capture_logs() as logs:
        got = await import_file(overlapped, ImportKind.CONSENTS, path, now=NOW,
                                mode=ImportMode.REPLACE)
    assert [e for e in logs if e["event"] == "import.overlapped"]
    want = await import_file(two_pass, ImportKind.CONSENTS, path, now=NOW,
                             mode=ImportMode.REPLACE, overlap=False)
    assert got.to_dict() == want.to_dict()
    assert got.size == len(rows) - 1 and got.duplicates == 1
    assert await layout(overlapped) == await layout(two_pass)
    facts = await overlapped.load_facts(e164="+33600000000", professional="energia",
                                        campaign_id="c", now=NOW, attempt_window_s=60,
                                        abandon_window_s=60)
    assert [c.proof_ref for c in facts.consents] == ["p" * 300]


async def test_put_first_writes_nothing_on_a_stored_number_and_counts_a_replay_once(
        pair: tuple[RedisStore, RedisStore]) -> None:
    store = pair[0]
    consents = store.consents
    meta = await store.conn.meta("begin", LIST_CONSENTS, 0)
    chunk = await consents.chunk_size()

    async def writes(lines: list[str], call: int) -> Any:
        path_rows = [_decode(line) for line in lines]
        return await consents._prepare(path_rows, meta.seq, meta.seq, ImportMode.REPLACE,
                                       meta, chunk, set(), checked=True,
                                       receipts=iter(range(call, call + 100)))

    async def buckets() -> dict[str, Any]:
        return {k: v for k, v in (await layout(store)).items() if k.startswith(":k:")}

    first = await writes([_line(5, "acme", 1, "a", "")], 0)
    assert await consents._send_all(first) == 1
    stored = await buckets()
    assert len(stored) == 1
    assert await consents._send_all(first) == 1  # a replay: its receipt, nothing written
    assert await buckets() == stored
    again = await writes([_line(5, "energia", 1, "b", "")], 100)  # the number is stored
    refused = await consents._send(consents.put_first, again.calls)
    assert refused == [-1] and await buckets() == stored  # nothing written
    twice = await writes([_line(6, "acme", 1, "a", ""), _line(6, "energia", 1, "b", "")], 200)
    assert await consents._send(consents.put_first, twice.calls) == [-1]  # twice in a call
    assert await buckets() == stored
    assert await consents._send_all(again) == 1  # PUT then merges them
    assert await consents._send_all(twice) == 2
    (fields,) = [v[1] for v in (await buckets()).values()]
    assert [len(list(consent_pack.records(fields[m]))) for m in (b"5", b"6")] == [2, 2]


def _decode(line: str) -> consent_pack.Pre:
    fields = dict(zip(HEADER.split(","), line.split(","), strict=True))
    converted = CONSENTS.convert(fields, "FR")
    packed: consent_pack.Pre = CONSENTS.pack(converted.record)
    return packed


async def test_a_dry_run_writes_nothing_and_the_share_validated_is_reported(
        pair: tuple[RedisStore, RedisStore], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer_run, "CONSENT_CHUNK_BYTES", 4096)
    rows = [_line(n, "acme", 1 + n % 28, f"r{n}", "") for n in range(0, 3_000_000, 97)]
    path = tmp_path / "consents.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    store = pair[0]
    await import_file(store, ImportKind.CONSENTS, path, now=NOW, mode=ImportMode.REPLACE,
                      dry_run=True)
    assert await layout(store) == {}
    shares: list[tuple[str, float]] = []
    phases: list[str] = []
    report = await import_file(store, ImportKind.CONSENTS, path, now=NOW,
                               mode=ImportMode.REPLACE,
                               progress=lambda phase, rows: phases.append(phase),
                               progress_fraction=lambda p, f: shares.append((p, f)))
    assert report.size == len(rows)
    validated = [f for phase, f in shares if phase == "validating"]
    assert len(validated) > 1 and validated == sorted(validated) and 0 < validated[0] < 1
    assert {phase for phase, _ in shares} == {"validating"} and phases[-1] == "done"


async def test_a_crashed_overlapped_import_stays_invisible_then_is_dropped(
        pair: tuple[RedisStore, RedisStore], tmp_path: Path) -> None:
    """What a process that died while writing an overlapped replace leaves: a pending
    version with its generation (buckets, receipts, index), dropped by the next purge."""
    store = pair[0]
    path = tmp_path / "consents.csv"
    path.write_text("\n".join([HEADER, _line(1, "acme", 1, "kept", "")]) + "\n")
    await import_file(store, ImportKind.CONSENTS, path, now=NOW, mode=ImportMode.REPLACE)
    before = await layout(store)
    consents = store.consents
    meta = await store.conn.meta("begin", LIST_CONSENTS, 0)
    await store.conn.client.sadd(store.keys.consent_generations(), meta.seq)
    ghost = await consents._prepare([_decode(_line(2, "acme", 1, "ghost", ""))], meta.seq,
                                    meta.seq, ImportMode.REPLACE, meta,
                                    await consents.chunk_size(), set(), checked=True)
    assert await consents._send_all(ghost) == 1
    facts = await store.load_facts(e164="+33600000002", professional="acme", campaign_id="c",
                                   now=NOW, attempt_window_s=60, abandon_window_s=60)
    assert facts.consents == ()
    await store.purge_superseded(now=NOW.replace(year=2027))
    after = await layout(store)
    assert {k: v for k, v in after.items() if k.startswith(":k")} == {
        k: v for k, v in before.items() if k.startswith(":k")}


async def test_a_small_file_takes_the_two_passes(redis_url: str, key_prefix: str,
                                                 tmp_path: Path) -> None:
    path = tmp_path / "consents.csv"
    path.write_text("\n".join([HEADER, _line(1, "acme", 1, "r", "")]) + "\n")
    assert path.stat().st_size < importer_run.OVERLAP_MIN_BYTES
    store = _open(redis_url, key_prefix)
    try:
        with capture_logs() as logs:
            report = await import_file(store, ImportKind.CONSENTS, path, now=NOW,
                                       mode=ImportMode.REPLACE)
        assert report.size == 1
        assert not [e for e in logs if e["event"] == "import.overlapped"]
    finally:
        await store.close()


async def test_a_shrinking_replace_found_at_the_end_discards_what_it_wrote(
        pair: tuple[RedisStore, RedisStore], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The shrink guard needs the file's distinct rows, known once all of it was written:
    the refusal aborts the pending version, the list stays as it was."""
    monkeypatch.setattr(importer_run, "CONSENT_CHUNK_BYTES", 512)
    store = pair[0]
    big = tmp_path / "big.csv"
    big.write_text("\n".join([HEADER, *(_line(n, "acme", 1, "r", "")
                                        for n in range(0, 400_000, 1_000))]) + "\n")
    small = tmp_path / "small.csv"
    small.write_text("\n".join([HEADER, *(_line(n, "acme", 2, "s", "")
                                          for n in range(0, 150_000, 1_000))]) + "\n")
    await import_file(store, ImportKind.CONSENTS, big, now=NOW, mode=ImportMode.REPLACE)
    before, status = await layout(store), await store.lists_status()
    store.consents.run_rows = 10  # written run by run while the file is read
    with capture_logs() as logs, pytest.raises(ImportFileError, match="distinct rows"):
        await import_file(store, ImportKind.CONSENTS, small, now=NOW, mode=ImportMode.REPLACE)
    assert [e for e in logs if e["event"] == "import.overlapped"]
    assert [e for e in logs if e["event"] == "store.import_aborted"]
    (dropped,) = [e for e in logs if e["event"] == "store.consent_generation_deleted"]
    assert dropped["buckets"] > 0  # what it had written
    assert await store.lists_status() == status
    after = await layout(store)
    assert {k: v for k, v in after.items() if k.startswith(":k")} == {
        k: v for k, v in before.items() if k.startswith(":k")}
