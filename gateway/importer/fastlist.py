"""The validating pass of plain opposition lists, a chunk at a time.

A national list is tens or hundreds of millions of lines of one shape (``+33612345678``
or ``0612345678``). Instead of a record per line, the file is read in chunks of
:data:`CHUNK_BYTES` cut at a line end, and each chunk is checked whole:

1. one compiled regex per accepted form (E.164 of the region's country code, the
   national form for ``FR``) finds the lines that :func:`gateway.core.e164.listed_fast`
   would accept as *valid*; if they are all the chunk's lines, it is done: the numbers
   go, as integers, into a :class:`~gateway.store.compact.CompactBuilder` (2 bytes per
   distinct number, duplicates counted at the end);
2. otherwise a second regex finds the *possible* ones (kept and counted as outside the
   metadata, like the generic reader does), and the lines left over (other formats,
   other countries, overseas prefixes, comments, text) go one by one through the very
   converter of the generic reader (``phonenumbers``), in a process pool when there are
   many of them (:data:`POOL_MIN_LINES`);
3. a chunk where any line has a problem is read again line by line exactly as the
   generic reader does, so every problem keeps its line, column and wording.

The patterns are derived from the same metadata as ``listed_fast``; a Hypothesis property
(tests/importer/test_fastlist.py) checks that the result (numbers, outside count, rows,
duplicates, errors) equals the generic reader's on generated files.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from gateway.core.e164 import listed_fast
from gateway.importer.listforms import Form, forms_for
from gateway.importer.reader import (
    MAX_LINE_BYTES,
    MAX_REPORTED_ERRORS,
    ImportFileError,
    RowError,
    header_cells,
    line_chunks,
)
from gateway.importer.rows import OPPOSITION, FieldProblem
from gateway.store.compact import CompactBuilder, CompactNumbers, number_int

# The process pool (multiprocessing) is imported when a pass first needs one: a small
# list, such as the demo data `check` seeds, is read without it (docs/benchmarks.md).
if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

# --- named limits (docs/import-formats.md) ---------------------------------------------
CHUNK_BYTES = 1 << 20  # read and checked at once (plus one partial line carried over)
POOL_MIN_LINES = 20_000  # left-over lines seen before a process pool is started
# A file this small is read line by line, exactly: compiling the bulk forms' expressions
# costs about 40 ms of CPU, what some hundreds of lines cost read one by one (`check`
# seeds the demo lists at every start).
SMALL_FILE_BYTES = 4096
POOL_BATCH_LINES = 4_096  # left-over lines sent to a worker at once
POOL_WORKERS = max(1, min(4, os.cpu_count() or 1))
POOL_INFLIGHT = 2 * POOL_WORKERS  # batches in flight (bounds memory)
PROGRESS_EVERY_ROWS = 10_000  # progress callbacks at most this often (rows)

_BOM = "\ufeff"

Fraction = Callable[[str, float], None]  # (phase, share done 0..1)
Rows = Callable[[str, int], None]


class NotPlain(Exception):
    """The first row is a CSV header naming ``number``: the generic reader takes it."""


@dataclass(frozen=True, slots=True)
class PlainResult:
    rows: int
    duplicates: int
    outside_metadata: int
    content_hash: str
    size_bytes: int
    numbers: CompactNumbers


# --- one line, exactly as the generic reader ------------------------------------------

SKIP = -1  # blank or comment
TROUBLE = -2  # a problem: the chunk is re-read line by line for its line numbers


def convert_line(raw: bytes, region: str) -> tuple[int, bool]:
    """(number, outside metadata) of one physical line (no LF), or (SKIP|TROUBLE, False)."""
    if len(raw) > MAX_LINE_BYTES:
        return TROUBLE, False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return TROUBLE, False
    if "\x00" in text:
        return TROUBLE, False
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return SKIP, False
    try:
        conv = OPPOSITION.convert({"number": stripped}, region)
    except FieldProblem:
        return TROUBLE, False
    return number_int(conv.record.e164), conv.outside_metadata


def convert_lines(lines: list[bytes], region: str) -> tuple[list[int], int, int, bool]:
    """(numbers, rows, outside, trouble) of left-over lines (also a pool worker's job)."""
    numbers: list[int] = []
    rows = outside = 0
    for raw in lines:
        n, out = convert_line(raw, region)
        if n == TROUBLE:
            return [], 0, 0, True
        if n != SKIP:
            numbers.append(n)
            rows += 1
            outside += out
    return numbers, rows, outside, False


class _Pass:
    """State of one validating pass."""

    def __init__(self, name: str, region: str, *, pool_min_lines: int) -> None:
        self.name = name
        self.region = region
        self.extra_cc: int | None = None  # a single-region list of another country
        self._forms: tuple[Form, ...] | None = None  # compiled on the first bulk chunk
        self.clean: list[bool] = []  # per form: the last chunk was all valid
        self.builder = CompactBuilder()
        self.rows = 0
        self.outside = 0
        self.errors: list[RowError] = []
        self.started = False  # the first content line was seen (and is not a header)
        self.leftover_seen = 0
        self.pool_min_lines = pool_min_lines
        self.pool: ProcessPoolExecutor | None = None
        # left-over lines in the pool: (future, lines, their chunk, its first line number)
        self.inflight: deque[tuple[Future[tuple[list[int], int, int, bool]], list[bytes],
                                   bytes, int]] = deque()

    # -- exact, line by line (the generic reader's semantics) ---------------------------

    def exact(self, chunk: bytes, first_no: int) -> None:
        """Every line of ``chunk`` (ending with LF) as the generic reader reads it."""
        lines = chunk.split(b"\n")
        lines.pop()
        for i, raw in enumerate(lines):
            no = first_no + i
            if len(raw) > MAX_LINE_BYTES:
                self._abort(RowError(no, None, f"line longer than {MAX_LINE_BYTES} bytes "
                                               "(not a text file?)"))
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self._abort(RowError(no, None, f"not UTF-8 (byte {exc.start + 1} of the line)"))
            if no == 1 and text.startswith(_BOM):
                text = text[1:]
            if "\x00" in text:
                self._abort(RowError(no, None, "NUL byte (binary file?)"))
            stripped = text.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if not self.started:
                cells = header_cells(text)
                if cells is not None and "number" in cells:
                    raise NotPlain
                self.started = True
                self._learn_country(stripped)
            self.rows += 1
            try:
                conv = OPPOSITION.convert({"number": stripped}, self.region)
            except FieldProblem as problem:
                self.errors.append(RowError(no, problem.column, problem.problem))
                if len(self.errors) >= MAX_REPORTED_ERRORS:
                    raise ImportFileError(self.name, self.errors, truncated=True) from None
                continue
            if not self.errors:
                self.builder.add_many((number_int(conv.record.e164),))
                self.outside += conv.outside_metadata

    def _abort(self, error: RowError) -> None:
        self.errors.append(error)
        raise ImportFileError(self.name, self.errors)

    def _learn_country(self, first: str) -> None:
        """A list of another single-region country: its E.164 form in bulk too."""
        listed = listed_fast(first)
        if listed is None or not listed.valid:
            return
        for size in (1, 2, 3):
            cc = int(first[1:1 + size])
            if cc in COUNTRY_CODE_TO_REGION_CODE:
                self.extra_cc = cc
                self._forms = None
                return

    @property
    def forms(self) -> tuple[Form, ...]:
        if self._forms is None:
            self._forms = forms_for(self.region, self.extra_cc)
            self.clean = [True] * len(self._forms)
        return self._forms

    # -- in bulk -----------------------------------------------------------------------

    def chunk(self, chunk: bytes, first_no: int) -> None:
        """Check a chunk (whole lines, ending with LF) whose first line is ``first_no``."""
        if not self.started:
            # up to and including the first content line: exactly (BOM, header, country)
            pos = 0
            while not self.started and pos < len(chunk):
                end = chunk.index(b"\n", pos) + 1
                self.exact(chunk[pos:end], first_no)
                first_no += 1
                pos = end
            chunk = chunk[pos:]
            if not chunk:
                return
        rest, lines = chunk, chunk.count(b"\n")
        forms = self.forms
        clean = self.clean
        for i, form in enumerate(forms):  # each reads only what the previous ones left
            if clean[i]:  # the last chunk was all valid for this form: one findall
                valid = form.valid.findall(rest)
                if len(valid) == lines:
                    self._add(form, valid)
                    self.rows += lines
                    return
                clean[i] = False
            parts = form.split.split(rest)  # [rest, valid, possible, rest, valid, ...]
            valid = list(filter(None, parts[1::3]))
            other = list(filter(None, parts[2::3]))
            found = len(valid) + len(other)
            if not found:
                continue
            self._add(form, valid)
            self._add(form, other)
            self.rows += found
            self.outside += len(other)
            if found == lines:
                clean[i] = not other
                return
            rest = b"".join(parts[0::3])
            lines -= found
        leftover = rest.split(b"\n")
        leftover.pop()
        self._leftover(leftover, chunk, first_no)

    def _add(self, form: Form, digits: list[bytes]) -> None:
        if not digits:
            return
        if form.offset:
            off = form.offset
            self.builder.add_many(int(d) + off for d in digits)
        else:
            self.builder.add_many(map(int, digits))

    def _leftover(self, lines: list[bytes], chunk: bytes, first_no: int) -> None:
        self.leftover_seen += len(lines)
        if self.pool is None and self.leftover_seen >= self.pool_min_lines:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(
                max_workers=POOL_WORKERS, mp_context=multiprocessing.get_context("spawn"))
        if self.pool is None:
            self._settle(convert_lines(lines, self.region), chunk, first_no)
            return
        from concurrent.futures.process import BrokenProcessPool

        for start in range(0, len(lines), POOL_BATCH_LINES):
            while len(self.inflight) >= POOL_INFLIGHT:
                self._collect()
            batch = lines[start:start + POOL_BATCH_LINES]
            try:
                future = self.pool.submit(convert_lines, batch, self.region)
            except (BrokenProcessPool, RuntimeError):
                # no pool (broken, or cannot start one here): the rest of the pass in-process
                self.pool_min_lines = sys.maxsize
                self.close_pool()
                self.drain()
                self._settle(convert_lines(lines[start:], self.region), chunk, first_no)
                return
            self.inflight.append((future, batch, chunk, first_no))

    def _collect(self) -> None:
        from concurrent.futures.process import BrokenProcessPool  # only with a pool

        future, batch, chunk, first_no = self.inflight.popleft()
        try:
            result = future.result()
        except (BrokenProcessPool, OSError):
            # a worker died (killed, out of memory): the same work, here
            result = convert_lines(batch, self.region)
        self._settle(result, chunk, first_no)

    def _settle(self, result: tuple[list[int], int, int, bool], chunk: bytes,
                first_no: int) -> None:
        numbers, rows, outside, trouble = result
        if trouble:
            # earlier chunks are settled (FIFO); the rest of this one is read exactly
            while self.inflight and self.inflight[0][2] is chunk:
                self.inflight.popleft()[0].cancel()
            self.exact(chunk, first_no)
            return
        self.builder.add_many(numbers)
        self.rows += rows
        self.outside += outside

    def drain(self) -> None:
        while self.inflight:
            self._collect()

    def close(self) -> None:
        for future, *_ in self.inflight:
            future.cancel()
        self.inflight.clear()
        self.close_pool()

    def close_pool(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def validate_plain(open_stream: Callable[[], BinaryIO], name: str, *, region: str = "FR",
                   progress: Rows | None = None, fraction: Fraction | None = None,
                   pool_min_lines: int = POOL_MIN_LINES,
                   chunk_bytes: int = CHUNK_BYTES,
                   small_file_bytes: int = SMALL_FILE_BYTES) -> PlainResult:
    """The validating pass of a plain list; NotPlain for a CSV file, ImportFileError if bad.

    Blocking (run it in a thread). A file of at most ``small_file_bytes`` is read line by
    line (the bulk forms are not compiled). The numbers are returned grouped and deduplicated;
    ``open_stream`` raising OSError is reported like the generic reader does.
    """
    try:
        stream = open_stream()
    except OSError as exc:
        raise ImportFileError(name, [RowError(0, None, f"cannot read: {exc.strerror}")]) from exc
    state = _Pass(name, region, pool_min_lines=pool_min_lines)
    sha = hashlib.sha256()
    size = stream_size(stream)
    small = 0 < size <= small_file_bytes
    read = reported = 0
    line_no = 0  # lines finished before the current chunk
    try:
        with stream:
            for part in line_chunks(stream, chunk_bytes, sha):
                read, carry = part.bytes_read, part.carry
                # the unterminated last line, as a line
                chunk = part.lines + b"\n" if part.last and part.lines else part.lines
                if chunk:
                    if small:
                        state.exact(chunk, line_no + 1)
                    else:
                        state.chunk(chunk, line_no + 1)
                    line_no += chunk.count(b"\n")
                if len(carry) > MAX_LINE_BYTES:
                    state.drain()
                    state.exact(carry[:MAX_LINE_BYTES + 1] + b"\n", line_no + 1)
                if part.last:
                    break
                if state.rows - reported >= PROGRESS_EVERY_ROWS:
                    reported = state.rows
                    if fraction is not None and size:
                        fraction("validating", min(1.0, read / size))
                    if progress is not None:
                        progress("validating", state.rows)
            state.drain()
        if state.errors:
            raise ImportFileError(name, state.errors)
        if not state.started:
            raise ImportFileError(name, [RowError(0, None, "empty file (no header and no rows)")])
    finally:
        state.close()
    if progress is not None:
        progress("validating", state.rows)
    numbers = state.builder.build()
    return PlainResult(rows=state.rows, duplicates=state.rows - len(numbers),
                       outside_metadata=state.outside, content_hash=sha.hexdigest(),
                       size_bytes=read, numbers=numbers)


def stream_size(stream: BinaryIO) -> int:
    """Bytes of the file (0 if unknown): the share of the pass done."""
    if isinstance(stream, io.BytesIO):
        return stream.getbuffer().nbytes
    try:
        return os.fstat(stream.fileno()).st_size
    except (OSError, io.UnsupportedOperation, AttributeError):
        return 0
