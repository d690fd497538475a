"""The chunked pass of plain opposition lists equals the generic reader, line for line.

The generic reader (``validate`` with the opposition spec: a record per line, then
``listed_fast`` or ``parse_listed_number``) is the reference. For generated files --
canonical E.164 and national lines, overseas prefixes, numbers outside the metadata,
other countries, separators, comments, blank lines, CRLF, a BOM, letters, garbage,
invalid UTF-8, chunk sizes that cut anywhere -- the fast pass gives the same numbers,
rows, duplicates, outside-metadata count and content hash, or the same errors.
"""

from __future__ import annotations

import io
import pickle
import tempfile
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from gateway.importer import ImportFileError
from gateway.importer.fastlist import SMALL_FILE_BYTES, NotPlain, PlainResult, validate_plain
from gateway.importer.listforms import forms_for
from gateway.importer.reader import MAX_LINE_BYTES, MAX_REPORTED_ERRORS, LineSource, first_line
from gateway.importer.run import SPECS, ImportKind, validate
from gateway.store.compact import number_int

_OVERSEAS = ["590", "690", "691", "594", "694", "596", "696", "697", "262", "263", "692",
             "693", "269", "639"]
_REGIONS = ["GB", "US", "DE", "BE", "RE", "GP", "IM", "CH", "ES", "PR"]


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


_french_nsn = st.one_of(
    st.builds(lambda a, b: a + b, st.sampled_from(["6", "7", "1", "9", "8", "5"]), _digits(8)),
    st.builds(lambda a, b: a + b, st.sampled_from(_OVERSEAS), _digits(6)),
    _digits(9),
)


@st.composite
def _other_country(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(_REGIONS))
    example_number = phonenumbers.example_number(region)
    assert example_number is not None
    nsn = str(example_number.national_number)
    keep = draw(st.integers(min_value=0, max_value=len(nsn)))
    tail = draw(_digits(len(nsn) - keep))
    return f"+{example_number.country_code}{nsn[:keep]}{tail}"


_line = st.one_of(
    st.builds(lambda n: f"+33{n}", _french_nsn),  # canonical E.164 (most lines)
    st.builds(lambda n: f"+33{n}", _french_nsn),
    st.builds(lambda n: f"0{n}", _french_nsn),  # national
    _other_country(),
    st.builds(lambda n: f"06 {n[:2]} {n[2:4]} {n[4:6]} {n[6:]}", _digits(8)),  # separators
    st.builds(lambda n: f"  +33{n} ", _french_nsn),  # blanks around
    st.sampled_from(["", "   ", "# a comment", "  # indented comment", "06 12 AB CD EF",
                     "hello 0612345679", "+33", "+0612345678", "0033612345678", "+33 (0)6 12 34",
                     "\u00a00612345678", "\t+33612345678", "number", "+33612345678;x", "\x00",
                     "0612345678\u2028", "+٣٣612345678"]),
    st.text(max_size=12),
)


def _reference(data: bytes, region: str) -> tuple[Any, ...]:
    """(rows, duplicates, outside, hash, size, numbers) by the generic reader, or its errors."""
    with tempfile.TemporaryFile() as spool:
        try:
            checked = validate(SPECS[ImportKind.OPPOSITION], data, region=region, spool=spool,
                               label="f")
        except ImportFileError as exc:
            return ("error", exc.errors, exc.truncated)
        spool.seek(0)
        numbers: set[int] = set()
        while True:
            try:
                batch = pickle.load(spool)  # noqa: S301 -- the test's own spool
            except EOFError:
                break
            numbers.update(number_int(values[0]) for values in batch)
    if checked.format != "plain":
        return ("csv",)
    return (checked.rows, checked.duplicates, checked.outside_metadata, checked.content_hash,
            checked.size_bytes, numbers)


def _fast(data: bytes, region: str, chunk_bytes: int, pool_min_lines: int = 10**9,
          small_file_bytes: int = 0) -> tuple[Any, ...]:
    """The fast pass; in bulk unless ``small_file_bytes`` lets a small file be read exactly."""
    try:
        got: PlainResult = validate_plain(lambda: io.BytesIO(data), "f", region=region,
                                          chunk_bytes=chunk_bytes,
                                          pool_min_lines=pool_min_lines,
                                          small_file_bytes=small_file_bytes)
    except ImportFileError as exc:
        return ("error", exc.errors, exc.truncated)
    except NotPlain:
        # the generic reader takes the file: it must see the same CSV header
        first = first_line(LineSource(io.BytesIO(data)))
        assert first is not None and first.cells is not None and "number" in first.cells
        return _reference(data, region)
    return (got.rows, got.duplicates, got.outside_metadata, got.content_hash, got.size_bytes,
            set(got.numbers))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line, max_size=60), st.sampled_from(["\n", "\r\n"]), st.booleans(),
       st.booleans(), st.integers(min_value=1, max_value=400), st.sampled_from(["FR", "GB", "US"]))
@example(["+33612345678", "+33612345678", "+33700123456", "+33696123456"], "\n", False, True,
         7, "FR")
@example(["0612345678", "06 12 34 56 78", "+33612345678"], "\r\n", True, False, 3, "FR")
@example(["number", "0612345678"], "\n", False, True, 5, "FR")
@example(["0696123456", "0690001234", "0262123456", "+33639123456", "0639000000"], "\n",
         False, True, 64, "FR")  # overseas prefixes written nationally
@example(["+447700900123", "+447624123456", "07700900123"], "\n", False, False, 400, "GB")
def test_fast_pass_equals_the_generic_reader(lines: list[str], eol: str, bom: bool,
                                             final_eol: bool, chunk_bytes: int,
                                             region: str) -> None:
    text = eol.join(lines) + (eol if final_eol and lines else "")
    data = ("\ufeff" if bom else "").encode() + text.encode("utf-8")
    assert _fast(data, region, chunk_bytes) == _reference(data, region)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(_line, st.binary(max_size=8)), max_size=30),
       st.integers(min_value=1, max_value=64))
def test_arbitrary_bytes_give_the_same_answer(parts: list[str | bytes], chunk_bytes: int) -> None:
    data = b"\n".join(p if isinstance(p, bytes) else p.encode() for p in parts)
    assert _fast(data, "FR", chunk_bytes) == _reference(data, "FR")


def test_bulk_lines_of_a_canonical_list(tmp_path: Any) -> None:
    """A large canonical list: counts, numbers outside the metadata kept, duplicates."""
    numbers = [33_600_000_000 + i * 7919 for i in range(30_000)]
    lines = [f"+{n}" for n in numbers] + ["+33612345678", "+33612345678", "+33700000001"]
    data = ("\n".join(lines) + "\n").encode()
    fast = _fast(data, "FR", 1 << 16)
    assert fast == _reference(data, "FR")
    rows, duplicates, outside = fast[:3]
    assert rows == len(lines) and duplicates >= 1 and outside > 0


def test_problems_keep_their_line_and_order_across_chunks() -> None:
    good = [f"+3361234{i:04d}" for i in range(3000)]
    lines = [*good[:1000], "06 12 AB CD EF", *good[1000:2000], "hello", *good[2000:]]
    data = "\n".join(lines).encode()
    got = _fast(data, "FR", 4096)
    assert got == _reference(data, "FR")
    assert [e.line for e in got[1]] == [1001, 2002]
    assert "letter 'A'" in str(got[1][0])


def test_a_long_line_stops_the_pass_where_it_is() -> None:
    data = b"+33612345678\nxx\n" + b"7" * (MAX_LINE_BYTES + 1) + b"\n+33612345679\n"
    got = _fast(data, "FR", 1024)
    assert got == _reference(data, "FR")
    assert got[0] == "error" and [e.line for e in got[1]] == [2, 3]


def test_errors_stop_at_the_limit_in_line_order() -> None:
    lines = ["+33612345678"] + ["x"] * (MAX_REPORTED_ERRORS + 5)
    data = "\n".join(lines).encode()
    got = _fast(data, "FR", 16)
    assert got == _reference(data, "FR")
    assert got[2] is True and len(got[1]) == MAX_REPORTED_ERRORS


@pytest.mark.parametrize("bad_at", [None, 150])
def test_left_over_lines_in_a_process_pool(bad_at: int | None) -> None:
    """Lines only phonenumbers can read (other formats) go to worker processes: same result."""
    lines = [f"06 12 34 {i // 100:02d} {i % 100:02d}" for i in range(400)]
    lines += [f"+4420{i:08d}" for i in range(200)] + ["+33612345678"] * 3
    if bad_at is not None:
        lines[bad_at] = "06 12 34 56 7x"
    data = "\n".join(lines).encode()
    got = _fast(data, "FR", 2048, pool_min_lines=10)
    assert got == _reference(data, "FR")
    if bad_at is None:
        assert got[0] == len(lines)
    else:
        assert [e.line for e in got[1]] == [bad_at + 1]


def test_overseas_prefixes_in_both_writings() -> None:
    """+33 / 0 + an overseas prefix: listed under the overseas code when valid there, else
    kept as +33 (valid or not as France says) -- in bulk, as the reference does one by one."""
    tails = ["000000", "123456", "301234", "601234", "999999", "700123", "450000", "201234"]
    lines = [f"{lead}{prefix}{tail}" for lead in ("+33", "0") for prefix in _OVERSEAS
             for tail in tails]
    data = ("\n".join(lines) + "\n").encode()
    got = _fast(data, "FR", 512)
    assert got == _reference(data, "FR")
    numbers = got[5]
    assert 596_696_123_456 in numbers or 33_696_123_456 in numbers
    assert any(n // 10**9 in (262, 590, 594, 596) for n in numbers)
    assert any(n // 10**9 == 33 for n in numbers)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_line, max_size=40), region=st.sampled_from(["FR", "GB", "US"]))
def test_a_small_file_is_read_exactly_without_compiling_the_bulk_forms(
        lines: list[str], region: str) -> None:
    """`check` seeds its demo lists at every start: the forms' ~40 ms are not paid for them."""
    data = "\n".join(lines).encode()
    assume(len(data) <= SMALL_FILE_BYTES)
    compiled = forms_for.cache_info().misses + forms_for.cache_info().hits
    assert _fast(data, region, 64, small_file_bytes=SMALL_FILE_BYTES) == _reference(data, region)
    assert forms_for.cache_info().misses + forms_for.cache_info().hits == compiled
