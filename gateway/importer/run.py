"""Two-pass atomic imports: validate the whole file, then stream it into the store.

Pass 1 reads the file once, checks every row, counts rows and duplicates, hashes the
bytes and spools the converted records to an anonymous temporary file (compact
pickled batches: bounded memory, no second parse of the numbers). Nothing reaches
the store unless the whole file is clean. Pass 2 streams the spool, in batches, into
the store's atomic import, so what is imported is exactly what was validated and
hashed, even if the file changes meanwhile.

A plain opposition list takes :func:`gateway.importer.fastlist.validate_plain` instead:
whole chunks checked by compiled patterns, the numbers kept grouped per bucket in memory
(no spool) and handed to the store as they are.

A consent replace into a store that builds it aside (Redis: a new generation, switched in
at the commit) overlaps the two passes instead (:func:`_overlapped_consents`): each chunk
the chunked pass found clean goes, through a bounded queue, to the store's pending version
while the rest of the file is checked; the commit, with the file's hash, comes only after
the whole file was validated, and anything else (a refused row, an error, a crash) leaves
the pending version to be discarded as any aborted import's.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import io
import os
import pickle
import queue
import tempfile
import threading
from array import array
from collections.abc import AsyncGenerator, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import structlog

from gateway.core.model import ListInfo
from gateway.importer.fastconsent import CHUNK_BYTES as CONSENT_CHUNK_BYTES
from gateway.importer.fastconsent import Fallback, Sink, key64, validate_consents
from gateway.importer.fastlist import NotPlain, PlainResult, stream_size, validate_plain
from gateway.importer.reader import (
    MAX_REPORTED_ERRORS,
    Aborted,
    ImportFileError,
    LineSource,
    RowError,
)
from gateway.importer.rows import SPECS as SPECS  # re-exported: where callers found it
from gateway.importer.rows import (
    Converted,
    FieldProblem,
    FileProblem,
    ImportKind,
    Spec,
    check_source,
    file_records,
)
from gateway.store.base import ImportMode, Store
from gateway.store.compact import CompactNumbers
from gateway.store.consent_pack import Pre, PreEncoded

log = structlog.get_logger(__name__)

IMPORT_BATCH_ROWS = 1000  # records per spooled batch (one worker-thread hop on import)
PROGRESS_EVERY_ROWS = 10_000  # progress callback period
DEDUP_CHUNK_KEYS = 262_144  # duplicate detection: keys sorted in memory at once
#: Checked chunks (of about 1 MiB of file each) waiting for the store in an overlapped
#: consent replace: the validating thread waits when the writer is this far behind.
OVERLAP_QUEUE_CHUNKS = 4
#: Smaller consent files are imported in two passes: their store writes already overlap the
#: encoding of the next run, and the overlap's checks and thread hand-offs cost more than
#: they save (measured: ≈ 7 % more CPU and wall at 100 000 rows, docs/benchmarks.md);
#: bigger lists have fuller buckets, each write costs redis-server more (≈ 5.5 µs per row at
#: a million against 2.6) and the overlap hides it when a core is free.
OVERLAP_MIN_BYTES = 64 << 20
#: A replace import smaller than this share of the list it replaces is refused
#: unless ``allow_shrink`` (a truncated download must not silently unblock numbers).
DEFAULT_SHRINK_GUARD = 0.5


DEFAULT_MODES = {
    ImportKind.CONSENTS: ImportMode.MERGE,
    ImportKind.CONTRACTS: ImportMode.MERGE,
    ImportKind.OPPOSITION: ImportMode.REPLACE,
}

ImportSource = str | os.PathLike[str] | bytes
Progress = Callable[[str, int], None]  # (phase "validating"|"importing"|"done", rows so far)
ProgressFraction = Callable[[str, float], None]  # (phase, share done 0..1)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Validation:
    """What the validating pass learnt about a clean file."""

    rows: int
    duplicates: int
    without_proof: int
    content_hash: str
    size_bytes: int
    format: str  # "csv" | "plain"
    outside_metadata: int = 0  # possible numbers unknown to phonenumbers (opposition lists)
    #: consents: rows whose number an earlier row has (-1: not counted); with none, a
    #: replace import writes each number once and needs no read of what is stored
    repeated_numbers: int = -1


@dataclass(frozen=True, slots=True)
class ImportReport:
    kind: str
    list: str  # ListInfo.name
    path: str
    mode: str
    format: str
    rows_read: int
    imported: int  # distinct rows handed to the store
    duplicates: int  # rows whose key was already seen in the file (the last one wins)
    without_proof: int
    outside_metadata: int  # opposition numbers kept though phonenumbers calls them invalid
    version: int
    size: int  # list size after the import (dry run: the list's size now)
    imported_at: str
    content_hash: str
    dry_run: bool = False  # validated and reported only; nothing changed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DuplicateCounter:
    """Exact duplicate count in 8 bytes per key: sorted chunks merged at the end."""

    def __init__(self, chunk_keys: int = DEDUP_CHUNK_KEYS) -> None:
        self._chunk_keys = chunk_keys
        self._chunks: list[array[int]] = []
        self._pending: list[int] = []

    def add(self, key: str) -> None:
        self._pending.append(key64(key))
        if len(self._pending) >= self._chunk_keys:
            self._flush()

    def add_many(self, keys: array[int]) -> None:
        """Keys already reduced by :func:`~gateway.importer.fastconsent.key64`."""
        self._pending.extend(keys)
        if len(self._pending) >= self._chunk_keys:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._pending.sort()
            self._chunks.append(array("Q", self._pending))
            self._pending = []

    def count(self) -> int:
        self._flush()
        dups = 0
        previous: int | None = None
        for key in heapq.merge(*self._chunks):
            if key == previous:
                dups += 1
            previous = key
        return dups


def _size(source: ImportSource) -> int:
    """Bytes of the source (0 when it cannot be read: the import reports it)."""
    if isinstance(source, bytes):
        return len(source)
    try:
        return Path(source).stat().st_size
    except OSError:
        return 0


def _opener(source: ImportSource) -> tuple[Callable[[], BinaryIO], str]:
    if isinstance(source, bytes):
        data = source
        return (lambda: io.BytesIO(data)), "<data>"
    path = Path(source)
    return (lambda: path.open("rb")), str(path)


def validate(spec: Spec[Any], source: ImportSource, *, region: str = "FR",
             progress: Progress | None = None, label: str | None = None,
             spool: BinaryIO | None = None,
             fraction: ProgressFraction | None = None, fast: bool = True) -> Validation:
    """The validating pass (blocking I/O): raises ImportFileError listing bad rows.

    With ``spool``, the converted records of a clean file are written there (pickled
    batches of :data:`IMPORT_BATCH_ROWS` compact tuples) for :func:`read_spool`, so
    the import pass neither re-parses nor re-reads the (possibly changed) file.
    A consent file is first read by the chunked pass of
    :mod:`gateway.importer.fastconsent` (``fast``); when it cannot vouch for the file
    (quotes, a refused row...), the generic reader reads it again from the start.
    """
    opener, name = _opener(source)
    name = label or name
    if fast and spec.kind is ImportKind.CONSENTS:
        checked = validate_fast_consents(opener, region, progress, spool, fraction)
        if checked is not None:
            return checked
        if spool is not None:
            spool.seek(0)
            spool.truncate()
    errors: list[RowError] = []
    dups = DuplicateCounter()
    numbers = DuplicateCounter() if spec.kind is ImportKind.CONSENTS else None
    rows = without_proof = outside = 0
    fmt = "csv"
    batch: list[tuple[Any, ...]] = []
    try:
        stream = opener()
    except OSError as exc:
        raise ImportFileError(name, [RowError(0, None, f"cannot read: {exc.strerror}")]) from exc
    with stream:
        lines = LineSource(stream)
        size = stream_size(stream) if fraction is not None else 0
        try:
            records, fmt = file_records(lines, spec)
            for rec in records:
                rows += 1
                if rows % PROGRESS_EVERY_ROWS == 0:
                    if fraction is not None and size:
                        fraction("validating", min(1.0, lines.bytes_read / size))
                    if progress is not None:
                        progress("validating", rows)
                if rec.error is not None:
                    errors.append(RowError(rec.line, None, rec.error))
                else:
                    try:
                        conv: Converted[Any] = spec.convert(rec.fields, region)
                    except FieldProblem as problem:
                        errors.append(RowError(rec.line, problem.column, problem.problem))
                    else:
                        dups.add(conv.key)
                        if numbers is not None:
                            numbers.add(conv.record.e164)  # exact: E.164 digits
                        without_proof += conv.without_proof
                        outside += conv.outside_metadata
                        if spool is not None and not errors:
                            batch.append(spec.pack(conv.record))
                            if len(batch) >= IMPORT_BATCH_ROWS:
                                pickle.dump(batch, spool, protocol=pickle.HIGHEST_PROTOCOL)
                                batch = []
                if len(errors) >= MAX_REPORTED_ERRORS:
                    raise ImportFileError(name, errors, truncated=True)
        except Aborted as abort:
            errors.append(abort.error)
        except FileProblem as problem:
            errors.extend(problem.errors)
        if errors:
            raise ImportFileError(name, errors)
        lines.drain()
    if spool is not None and batch:
        pickle.dump(batch, spool, protocol=pickle.HIGHEST_PROTOCOL)
    if progress is not None:
        progress("validating", rows)
    return Validation(rows=rows, duplicates=dups.count(), without_proof=without_proof,
                      content_hash=lines.sha256.hexdigest(), size_bytes=lines.bytes_read,
                      format=fmt, outside_metadata=outside,
                      repeated_numbers=-1 if numbers is None else numbers.count())


def validate_fast_consents(opener: Callable[[], BinaryIO], region: str,
                           progress: Progress | None, spool: Sink | None,
                           fraction: ProgressFraction | None, *,
                           chunk_bytes: int | None = None) -> Validation | None:
    """The chunked pass of a consent CSV; None when the generic reader must read it."""
    dups = DuplicateCounter()
    numbers = DuplicateCounter()
    try:
        stream = opener()
    except OSError:
        return None  # the generic reader reports it
    with stream:
        try:
            rows, without_proof, digest, size_bytes = validate_consents(
                stream, region=region, spool=spool, batch_rows=IMPORT_BATCH_ROWS,
                add_keys=dups.add_many, add_numbers=numbers.add_many, progress=progress,
                fraction=fraction,
                size=stream_size(stream) if fraction is not None else 0,
                progress_every=PROGRESS_EVERY_ROWS,
                chunk_bytes=CONSENT_CHUNK_BYTES if chunk_bytes is None else chunk_bytes)
        except Fallback:
            log.debug("import.generic_reader", kind="consents")
            return None
    if progress is not None:
        progress("validating", rows)
    return Validation(rows=rows, duplicates=dups.count(), without_proof=without_proof,
                      content_hash=digest, size_bytes=size_bytes, format="csv",
                      repeated_numbers=numbers.count())


def _validate_plain(source: ImportSource, name: str, region: str, progress: Progress | None,
                    fraction: ProgressFraction | None) -> PlainResult | None:
    """The chunked pass of a plain opposition list; None for a CSV file (generic pass)."""
    opener, _ = _opener(source)
    try:
        return validate_plain(opener, name, region=region, progress=progress,
                              fraction=fraction)
    except NotPlain:
        return None


def _importing(progress: Progress | None, fraction: ProgressFraction | None,
               total: int) -> Callable[[int], None] | None:
    if progress is None and fraction is None:
        return None

    def report(done: int) -> None:
        if fraction is not None and total:
            fraction("importing", min(1.0, done / total))
        if progress is not None:
            progress("importing", done)

    return report


def spec_list_name(kind: ImportKind, source: str) -> str:
    """The store's name of the list an import writes."""
    return f"opposition:{source}" if kind is ImportKind.OPPOSITION else kind.value


def _dry_report(kind: ImportKind, list_name: str, path: str, mode: ImportMode,
                checked: Validation, current: ListInfo | None) -> ImportReport:
    report = ImportReport(
        kind=kind.value, list=list_name, path=path, mode=mode.value, format=checked.format,
        rows_read=checked.rows, imported=0, duplicates=checked.duplicates,
        without_proof=checked.without_proof, outside_metadata=checked.outside_metadata,
        version=current.version if current else 0, size=current.size if current else 0,
        imported_at=current.imported_at.isoformat() if current else "",
        content_hash=checked.content_hash, dry_run=True,
    )
    log.info("import.dry_run", kind=report.kind, list=report.list, rows=report.rows_read,
             duplicates=report.duplicates, outside_metadata=report.outside_metadata)
    return report


def _new_spool() -> BinaryIO:
    """An anonymous temporary file (unlinked at once where the OS allows it)."""
    spool: BinaryIO = tempfile.TemporaryFile(mode="w+b", prefix="dialer-gateway-import-")
    return spool


def _read_batch(spool: BinaryIO) -> list[tuple[Any, ...]]:
    try:
        batch: list[tuple[Any, ...]] = pickle.load(spool)  # noqa: S301 -- our own anonymous temp file, written by validate() in this process
    except EOFError:
        return []
    return batch


async def spool_batches(spool: BinaryIO, *, progress: Progress | None = None,
                        fraction: ProgressFraction | None = None, total: int = 0
                        ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
    """The batches :func:`validate` spooled (spool form), one worker-thread hop each;
    the share imported is the rows handed to the store over ``total``."""
    await asyncio.to_thread(spool.seek, 0)
    done = 0
    report = _importing(progress, fraction, total)
    while batch := await asyncio.to_thread(_read_batch, spool):
        yield batch
        done += len(batch)
        if report is not None:
            report(done)


async def read_spool(spec: Spec[T], spool: BinaryIO, *,
                     progress: Progress | None = None) -> AsyncGenerator[T, None]:
    """The records :func:`validate` spooled, a batch per worker-thread hop."""
    async with contextlib.aclosing(spool_batches(spool, progress=progress)) as found:
        async for batch in found:
            for values in batch:
                yield spec.unpack(values)


class _Stopped(Exception):
    """The writer of an overlapped import gave up: the validating thread stops."""


class _Restart(Exception):
    """The chunked pass handed an overlapped file to the generic reader."""


_END = b""  # after the last chunk (a checked chunk's batches are never empty)
_WAKE_S = 0.1  # a side blocked on the queue looks at ``stopped`` this often


class _QueueSink:
    """The spool of an overlapped import: each checked chunk's pickled batches into a
    bounded queue (the validating thread waits while the store is behind)."""

    def __init__(self, size: int) -> None:
        self.chunks: queue.Queue[bytes] = queue.Queue(maxsize=size)
        self.stopped = threading.Event()

    def write(self, data: bytes, /) -> int:
        self._put(data)
        return len(data)

    def _put(self, data: bytes) -> None:
        while True:
            if self.stopped.is_set():
                raise _Stopped
            with contextlib.suppress(queue.Full):
                self.chunks.put(data, timeout=_WAKE_S)
                return

    def produce(self, run: Callable[[], Validation | None]) -> Validation | None:
        """``run`` (the validating pass, in a worker thread), then _END unless stopped."""
        try:
            return run()
        finally:
            with contextlib.suppress(_Stopped):
                self._put(_END)

    def _get(self) -> bytes:
        while True:
            if self.stopped.is_set():
                raise _Stopped
            with contextlib.suppress(queue.Empty):
                return self.chunks.get(timeout=_WAKE_S)

    async def take(self) -> bytes:
        return await asyncio.to_thread(self._get)


def _check_replace(name: str, checked: Validation, current: ListInfo | None, *,
                   mode: ImportMode, allow_empty: bool, allow_shrink: bool,
                   shrink_guard: float) -> None:
    """The refusals of a clean file: no rows, or a replace shrinking the list too far."""
    if checked.rows == 0 and not allow_empty:
        raise ImportFileError(name, [RowError(
            0, None, "no rows (an empty list is refused unless explicitly allowed)")])
    distinct = checked.rows - checked.duplicates
    emptying = allow_empty and checked.rows == 0  # asked for explicitly
    if (mode is ImportMode.REPLACE and current is not None and not allow_shrink
            and not emptying and distinct < shrink_guard * current.size):
        raise ImportFileError(name, [RowError(0, None, (
            f"{distinct} distinct rows would replace the {current.size} entries of "
            f"{current.name} (under {shrink_guard:.0%}): refused, the file may be truncated;"
            " check it, or pass --allow-shrink"))])


async def _overlapped_consents(
        store: Store, opener: Callable[[], BinaryIO], name: str, *, now: datetime,
        region: str, allow_empty: bool, allow_shrink: bool, shrink_guard: float,
        progress: Progress | None, fraction: ProgressFraction | None,
        queue_chunks: int = OVERLAP_QUEUE_CHUNKS) -> tuple[Validation, ListInfo] | None:
    """A consent replace validated and written at once (see the module docstring).

    None when the chunked pass cannot vouch for the file: the caller imports it in two
    passes (the generic reader reports its problems), and a pending version begun
    meanwhile was discarded by the store's abort. Raises as :func:`import_file`.
    """
    sink = _QueueSink(queue_chunks)
    worker = asyncio.ensure_future(asyncio.to_thread(
        sink.produce, lambda: validate_fast_consents(opener, region, progress, sink,
                                                     fraction)))
    checked: list[Validation] = []
    try:
        head = await sink.take()
        if head == _END:
            return None  # refused at once or empty: nothing begun, two passes decide

        async def batches() -> AsyncGenerator[list[Pre], None]:
            chunk = head
            while chunk != _END:
                spool = io.BytesIO(chunk)
                while batch := _read_batch(spool):
                    yield batch
                chunk = await sink.take()
            result = await worker
            if result is None:
                raise _Restart
            current = {i.name: i for i in await store.lists_status()}.get(
                spec_list_name(ImportKind.CONSENTS, ""))
            _check_replace(name, result, current, mode=ImportMode.REPLACE,
                           allow_empty=allow_empty, allow_shrink=allow_shrink,
                           shrink_guard=shrink_guard)
            rows.content_hash = result.content_hash  # what the commit records
            checked.append(result)

        found = batches()
        rows = PreEncoded(found, unique_numbers=None)
        log.debug("import.overlapped", kind="consents")
        try:
            async with contextlib.aclosing(found):
                info = await store.import_consents(rows, mode=ImportMode.REPLACE, now=now)
        except _Restart:
            return None
        return checked[0], info
    finally:
        sink.stopped.set()  # a thread still validating stops at its next chunk
        await asyncio.wait([worker])
        if not worker.cancelled():
            worker.exception()  # raised above, or superseded by the writer's error


async def import_file(
    store: Store,
    kind: ImportKind | str,
    source: ImportSource,
    *,
    now: datetime,
    mode: ImportMode | None = None,
    list_source: str | None = None,
    region: str = "FR",
    allow_empty: bool = False,
    progress: Progress | None = None,
    label: str | None = None,
    dry_run: bool = False,
    allow_shrink: bool = False,
    shrink_guard: float = DEFAULT_SHRINK_GUARD,
    progress_fraction: ProgressFraction | None = None,
    overlap: bool = True,
) -> ImportReport:
    """Validate ``source`` fully, then import it atomically; ImportFileError if bad.

    ``list_source`` names the opposition list (required for ``opposition``).
    ``mode`` defaults to replace for opposition lists, merge for consents/contracts.
    Raises ``StoreUnavailable`` from the store; nothing is visible unless it all is.
    ``dry_run`` validates and reports (shrink guard included) without changing anything.
    A replace import with fewer distinct rows than ``shrink_guard`` times the current
    list size is refused unless ``allow_shrink``.
    ``progress_fraction(phase, share)`` learns the share done (0..1) where the size is
    known (bytes read while validating; then numbers written for a plain opposition list,
    rows handed to the store for consents), for a percentage and an ETA.

    A consent replace of at least :data:`OVERLAP_MIN_BYTES` into the Redis store is written
    while it is validated (see the module docstring) unless ``overlap`` is False; the
    result is the same.

    A plain opposition list (one number per line) takes the chunked validating pass of
    :mod:`gateway.importer.fastlist` and reaches the store as compact buckets; CSV files
    and other kinds take the generic record reader and spool.
    """
    kind = ImportKind(kind)
    mode = DEFAULT_MODES[kind] if mode is None else ImportMode(mode)
    name = label or _opener(source)[1]
    list_name = ""
    if kind is ImportKind.OPPOSITION:
        if list_source is None:
            raise ValueError("an opposition import needs a list name (source)")
        list_name = check_source(list_source)
    spec = SPECS[kind]
    if (overlap and kind is ImportKind.CONSENTS and mode is ImportMode.REPLACE and not dry_run
            and store.consent_replace_aside and _size(source) >= OVERLAP_MIN_BYTES):
        overlapped = await _overlapped_consents(
            store, _opener(source)[0], name, now=now, region=region, allow_empty=allow_empty,
            allow_shrink=allow_shrink, shrink_guard=shrink_guard, progress=progress,
            fraction=progress_fraction)
        if overlapped is not None:
            return _done(kind, name, mode, *overlapped, progress)
    spool = await asyncio.to_thread(_new_spool)
    numbers: CompactNumbers | None = None
    try:
        plain = None
        if kind is ImportKind.OPPOSITION:
            plain = await asyncio.to_thread(_validate_plain, source, name, region, progress,
                                            progress_fraction)
        if plain is not None:
            numbers = plain.numbers
            checked = Validation(rows=plain.rows, duplicates=plain.duplicates, without_proof=0,
                                 content_hash=plain.content_hash, size_bytes=plain.size_bytes,
                                 format="plain", outside_metadata=plain.outside_metadata)
        else:
            checked = await asyncio.to_thread(validate, spec, source, region=region,
                                              progress=progress, label=name, spool=spool,
                                              fraction=progress_fraction)
        if checked.rows == 0 and not allow_empty:
            raise ImportFileError(name, [RowError(
                0, None, "no rows (an empty list is refused unless explicitly allowed)")])
        digest = checked.content_hash
        full_name = spec_list_name(kind, list_name)
        current = {i.name: i for i in await store.lists_status()}.get(full_name)
        _check_replace(name, checked, current, mode=mode, allow_empty=allow_empty,
                       allow_shrink=allow_shrink, shrink_guard=shrink_guard)
        if dry_run:
            return _dry_report(kind, full_name, name, mode, checked, current)
        info: ListInfo
        if numbers is not None:
            numbers.watch(_importing(progress, progress_fraction, len(numbers)))
            info = await store.import_opposition(list_name, numbers, mode=mode, now=now,
                                                 content_hash=digest)
            numbers = None
        elif kind is ImportKind.CONSENTS:
            # the spool holds consent_pack.Pre tuples: the compact Redis layout takes them
            # as they are, any other store reads them as records
            async with contextlib.aclosing(spool_batches(
                    spool, progress=progress, fraction=progress_fraction,
                    total=checked.rows)) as pres:
                info = await store.import_consents(
                    PreEncoded(pres, unique_numbers=checked.repeated_numbers == 0),
                    mode=mode, now=now, content_hash=digest)
        else:
            async with contextlib.aclosing(read_spool(spec, spool, progress=progress)) as rows:
                if kind is ImportKind.CONTRACTS:
                    info = await store.import_contracts(rows, mode=mode, now=now,
                                                        content_hash=digest)
                else:
                    info = await store.import_opposition(list_name, rows, mode=mode, now=now,
                                                         content_hash=digest)
    finally:
        spool.close()
    return _done(kind, name, mode, checked, info, progress)


def _done(kind: ImportKind, name: str, mode: ImportMode, checked: Validation, info: ListInfo,
          progress: Progress | None) -> ImportReport:
    """The report of a committed import (logged)."""
    if progress is not None:
        progress("done", checked.rows)
    report = ImportReport(
        kind=kind.value, list=info.name, path=name, mode=mode.value, format=checked.format,
        rows_read=checked.rows, imported=checked.rows - checked.duplicates,
        duplicates=checked.duplicates, without_proof=checked.without_proof,
        outside_metadata=checked.outside_metadata, version=info.version, size=info.size,
        imported_at=info.imported_at.isoformat(),
        content_hash=checked.content_hash,
    )
    log.info("import.done", kind=report.kind, list=report.list, rows=report.rows_read,
             duplicates=report.duplicates, outside_metadata=report.outside_metadata,
             version=report.version, mode=report.mode)
    if report.outside_metadata:
        log.warning("import.outside_metadata", list=report.list, count=report.outside_metadata,
                    detail="possible numbers unknown to the numbering metadata, kept (blocking "
                           "is the safe direction)")
    return report
