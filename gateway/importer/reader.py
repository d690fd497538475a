"""Bounded, line-numbered reading of import files (CSV with a header, or plain lists).

The file is read as bytes, one physical line at a time with a length limit, so a
multi-gigabyte "line" of binary garbage never sits in memory and every problem is
reported with the line it is on. Each line is decoded as UTF-8 on its own (a BOM on
the first line is dropped) and the raw bytes feed the file's SHA-256.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

# --- named limits (docs/import-formats.md) ---------------------------------------
MAX_LINE_BYTES = 64 * 1024  # one physical line of an import file
MAX_FIELD_CHARS = 1024  # one CSV field, after decoding
MAX_REPORTED_ERRORS = 20  # a validating pass stops after this many bad rows
MAX_COLUMNS = 32  # header cells

_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem of an import file: where it is and what is wrong."""

    line: int  # 1-based physical line where the record starts (0: the file as a whole)
    column: str | None
    problem: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.problem}"


class ImportFileError(ValueError):
    """The file cannot be imported; nothing was changed. ``errors`` says where and why."""

    def __init__(self, path: str, errors: list[RowError] | tuple[RowError, ...],
                 *, truncated: bool = False) -> None:
        self.path = path
        self.errors = tuple(errors)
        self.truncated = truncated
        lines = [f"{path}: {e}" for e in self.errors]
        if truncated:
            lines.append(f"{path}: stopped after {len(self.errors)} errors")
        super().__init__("\n".join(lines) or f"{path}: invalid file")


class Aborted(Exception):
    """A line the reader cannot go past (too long, not UTF-8)."""

    def __init__(self, error: RowError) -> None:
        super().__init__(str(error))
        self.error = error



class LineSource:
    """Iterates decoded physical lines of a binary stream, hashing every byte."""

    def __init__(self, stream: BinaryIO, *, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._stream = stream
        self._max = max_line_bytes
        self.sha256 = hashlib.sha256()
        self.line_no = 0  # number of the last line returned
        self.bytes_read = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self._stream.readline(self._max + 1)
        if not raw:
            raise StopIteration
        self.line_no += 1
        self.sha256.update(raw)
        self.bytes_read += len(raw)
        if len(raw) > self._max and not raw.endswith(b"\n"):
            raise Aborted(RowError(self.line_no, None,
                                  f"line longer than {self._max} bytes (not a text file?)"))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Aborted(RowError(self.line_no, None,
                                  f"not UTF-8 (byte {exc.start + 1} of the line)")) from None
        if self.line_no == 1 and text.startswith(_BOM):
            text = text[1:]
        if "\x00" in text:
            raise Aborted(RowError(self.line_no, None, "NUL byte (binary file?)"))
        return text

    def drain(self) -> None:
        """Hash the rest of the stream without decoding it (for the content hash)."""
        while chunk := self._stream.read(1 << 16):
            self.sha256.update(chunk)
            self.bytes_read += len(chunk)


@dataclass(frozen=True, slots=True)
class LineChunk:
    """One read of :func:`line_chunks`."""

    lines: bytes  # whole lines ("" possible); the last chunk: the unterminated tail, if any
    carry: bytes  # the partial line held back for the next read
    bytes_read: int  # bytes read so far
    last: bool  # the stream is exhausted


def line_chunks(stream: BinaryIO, chunk_bytes: int, sha256: Any,
                bytes_read: int = 0) -> Iterator[LineChunk]:
    """The rest of ``stream`` in reads of ``chunk_bytes``, each cut after its last line
    end (the bulk readers' unit), every byte added to ``sha256``."""
    carry = b""
    while True:
        block = stream.read(chunk_bytes)
        if not block:
            yield LineChunk(carry, b"", bytes_read, True)
            return
        sha256.update(block)
        bytes_read += len(block)
        data = carry + block if carry else block
        cut = data.rfind(b"\n") + 1
        lines, carry = data[:cut], data[cut:]
        yield LineChunk(lines, carry, bytes_read, False)


@dataclass(frozen=True, slots=True)
class Record:
    """One logical record: the line where it starts and its fields by column name."""

    line: int
    fields: dict[str, str]
    error: str | None = None  # a record-level problem (wrong number of fields)


def _delimiter(header_line: str) -> str:
    # Spreadsheets set to French locales export with ';'
    return ";" if header_line.count(";") > header_line.count(",") else ","


def _is_comment_or_blank(text: str) -> bool:
    stripped = text.strip()
    return not stripped or stripped.startswith("#")


@dataclass(frozen=True, slots=True)
class FirstLine:
    """The first line that is neither blank nor a ``#`` comment."""

    text: str
    line: int
    delimiter: str
    cells: list[str] | None  # lower-cased, stripped header cells; None if not CSV


def header_cells(text: str) -> list[str] | None:
    """Lower-cased, stripped cells of a would-be header line; None if not CSV."""
    try:
        return [c.strip().lower() for c in next(csv.reader([text], delimiter=_delimiter(text)))]
    except (csv.Error, StopIteration):
        return None


def first_line(lines: LineSource) -> FirstLine | None:
    for text in lines:
        if _is_comment_or_blank(text):
            continue
        return FirstLine(text, lines.line_no, _delimiter(text), header_cells(text))
    return None


def check_header(header: list[str], *, required: tuple[str, ...], optional: tuple[str, ...],
                 line: int) -> list[RowError]:
    errors: list[RowError] = []
    known = set(required) | set(optional)
    seen: set[str] = set()
    if len(header) > MAX_COLUMNS:
        return [RowError(line, None, f"more than {MAX_COLUMNS} columns")]
    for name in header:
        if name in seen:
            errors.append(RowError(line, name, "column given twice"))
        elif name not in known:
            shown = name if len(name) <= 40 else name[:40] + "..."
            errors.append(RowError(line, shown or "(empty)", "unknown column (expected: "
                                   + ", ".join((*required, *optional)) + ")"))
        seen.add(name)
    for name in required:
        if name not in seen:
            errors.append(RowError(line, name, "required column missing"))
    return errors


def csv_records(lines: LineSource, header: list[str], delimiter: str) -> Iterator[Record]:
    """Records after the header; raises Aborted on unreadable lines.

    A physical line starting with ``#`` is a comment (also inside a quoted field).
    Records report the line they start on, even when a quoted field spans lines.
    """
    start: list[int] = [0]

    def content() -> Iterator[str]:
        for text in lines:
            if text.startswith("#"):
                continue
            if not start[0]:
                start[0] = lines.line_no
            yield text

    reader = csv.reader(content(), delimiter=delimiter, strict=True)
    while True:
        start[0] = 0
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise Aborted(RowError(start[0] or lines.line_no, None, f"bad CSV: {exc}")) from None
        if not cells or all(not c.strip() for c in cells):
            continue  # blank line
        if len(cells) != len(header):
            yield Record(start[0], {}, f"{len(cells)} fields where the header has {len(header)}")
            continue
        yield Record(start[0], {name: value.strip() for name, value in zip(header, cells,
                                                                            strict=True)})


def plain_records(lines: LineSource, first: FirstLine) -> Iterator[Record]:
    """One number per line; blank lines and ``#`` comments skipped."""
    yield Record(first.line, {"number": first.text.strip()})
    for text in lines:
        if _is_comment_or_blank(text):
            continue
        yield Record(lines.line_no, {"number": text.strip()})

