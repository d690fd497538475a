"""The common-line converters of consent files equal the per-line converter, byte for byte.

``LineShape.columns`` (a chunk checked a column at a time) and ``LineShape.convert`` (one
line) only ever take lines the per-line converter of the chunked pass would take, and give
the same spool records, duplicate keys, numbers and counts; anything else they decline.
The reference is ``check_chunk(..., shaped=False)`` (the per-line converter and, behind
it, the generic one), itself proven equal to the generic reader in test_fastconsent.py.
Generated chunks mix canonical lines with edge cases: quotes, a BOM, CRLF, blanks and
non-ASCII spaces, empty optional columns, offsets (``Z``, ``+05:30``, ``-00:00``,
``+24:00``), impossible dates, fractions, duplicate numbers, overseas and foreign numbers,
national forms, derived and odd ids, comments.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.importer.fastconsent import Fallback, _Converter, check_chunk

HEADER = ["number", "professional", "product_category", "collected_at", "expires_at",
          "channel", "proof_ref", "withdrawn_at", "timezone", "agreed_slot_start",
          "agreed_slot_end", "consent_id", "call_centre", "address_region"]
REQUIRED = HEADER[:6]

_OFFSETS = ["Z", "+00:00", "+02:00", "-05:00", "+05:30", "-00:00", "+23:59", "+24:00",
            "+0100", ""]


def _instant(year: int) -> st.SearchStrategy[str]:
    clean = st.builds(
        lambda d, h, s, off: f"{year}-{d // 28 + 1:02d}-{d % 28 + 1:02d}T{h:02d}:{s:02d}:"
                             f"{s:02d}{off}",
        st.integers(0, 12 * 28 - 1), st.integers(0, 23), st.integers(0, 59),
        st.sampled_from(["Z", "+00:00", "+02:00"]))
    odd = st.builds(
        lambda day, time, off: f"{year}-{day}T{time}{off}",
        st.sampled_from(["02-28", "02-29", "02-30", "13-01", "00-10", "06-1"]),
        st.sampled_from(["10:00:00", "23:59:59", "24:00:00", "10:60:00", "10:00:60",
                         "10:00", "10:00:00.5", "10:00:00.000000"]),
        st.sampled_from(_OFFSETS))
    return st.one_of(clean, clean, clean, odd,
                     st.sampled_from(["", f"{year}-06-01", f"{year}-06-01 10:00:00Z",
                                      f"{year}0601T100000Z", "not a date"]))


_NUMBER = st.one_of(
    st.builds(lambda n: f"+336{n:08d}", st.integers(0, 10**8 - 1)),
    st.builds(lambda n: f"07{n:08d}", st.integers(0, 10**8 - 1)),
    st.builds(lambda p, n: f"{p}{n:06d}", st.sampled_from(
        ["+33696", "0696", "+33262", "0262", "+33639", "0590", "+33801", "01", "+33969"]),
        st.integers(0, 10**6 - 1)),
    st.sampled_from(["+33612345678", "0612345678", "+447700900123", "+12025550123",
                     "0033612345678", "+3361234567", "061234567", "+33012345678", "",
                     "+33 612345678", "+33612345678\u00a0", "\ufeff+33612345678",
                     "+33\uff1612345678", "#+33612345678"]),
)
_CELLS: dict[str, st.SearchStrategy[str]] = {
    "number": _NUMBER,
    "professional": st.sampled_from(["acme", "energia", "", " acme", "Énergie", "a b",
                                     "a\tb", "x" * 1100]),
    "product_category": st.sampled_from(["telecom", "energy", "", "a\x1cb"]),
    "collected_at": _instant(2025),
    "expires_at": _instant(2027),
    "channel": st.sampled_from(["web", "phone", "", "web\u2028"]),
    "proof_ref": st.sampled_from(["", "rec/1.wav", "rec/2.wav", "scan 12", 'q"uote']),
    "withdrawn_at": st.one_of(st.just(""), _instant(2026), _instant(2024)),
    "timezone": st.sampled_from(["", "Europe/Paris", "America/New_York", "Mars/Base",
                                 "../etc"]),
    "agreed_slot_start": st.one_of(st.just(""), _instant(2025)),
    "agreed_slot_end": st.one_of(st.just(""), _instant(2025)),
    "consent_id": st.sampled_from(["", "crm-1", "crm-2", "é", "x" * 127, "x" * 128,
                                   "x" * 129, "a\x01b", "a\x7fb", "c-" + "ab" * 12,
                                   "c-" + "AB" * 12]),
    "call_centre": st.sampled_from(["", "cc-1", "Lyon"]),
    "address_region": st.sampled_from(["", "67", "FR-67", "2a", "971", "6AE", "99", "fr-2b"]),
}
_CANONICAL: dict[str, st.SearchStrategy[str]] = {
    "number": st.one_of(st.builds(lambda n: f"+336{n:08d}", st.integers(0, 10**8 - 1)),
                        st.builds(lambda n: f"06{n:08d}", st.integers(0, 10**8 - 1))),
    "professional": st.sampled_from(["acme", "energia"]),
    "product_category": st.sampled_from(["telecom", "energy"]),
    "collected_at": st.sampled_from(["2025-01-01T10:00:00+01:00", "2025-03-04T08:09:10Z"]),
    "expires_at": st.sampled_from(["2028-01-01T10:00:00Z", "2027-02-03T04:05:06-05:00"]),
    "channel": st.sampled_from(["web", "phone"]),
    "proof_ref": st.sampled_from(["rec/1.wav", "rec/2.wav"]),
    "withdrawn_at": st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", ""]),
    "timezone": st.sampled_from(["Europe/Paris", "Europe/Paris", ""]),
    "agreed_slot_start": st.just("2025-02-01T09:00:00+01:00"),
    "agreed_slot_end": st.just("2025-02-01T09:30:00+01:00"),
    "consent_id": st.sampled_from(["crm-1", "crm-2", "crm-3", ""]),
    "call_centre": st.sampled_from(["cc-1", "cc-2", ""]),
    "address_region": st.sampled_from(["67", "2A", ""]),
}


@st.composite
def _header(draw: st.DrawFn) -> list[str]:
    optional = draw(st.lists(st.sampled_from(HEADER[6:]), unique=True))
    return draw(st.permutations([*REQUIRED, *optional]))


@st.composite
def _chunk(draw: st.DrawFn) -> tuple[list[str], str, bytes, str]:
    """(header, delimiter, chunk of whole lines, region): canonical rows (each column the
    same kind of value on every row, so the chunk may be taken whole) with, now and
    then, a cell or a line from the edge cases."""
    header = draw(_header())
    delimiter = draw(st.sampled_from([",", ";"]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    noise = draw(st.sampled_from([0, 0, 1, 3]))
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        if noise and draw(st.integers(0, 20)) == 0:
            lines.append(draw(st.sampled_from(["", "# comment", "  ", delimiter * 3, "x",
                                               '"a,b"', "\r", "\u2028"])))
            continue
        row = {name: draw(_CANONICAL[name]) for name in header}
        if draw(st.booleans()):  # no agreed slot on this row
            row["agreed_slot_start"] = row["agreed_slot_end"] = ""
        for name in draw(st.lists(st.sampled_from(header), max_size=noise)):
            row[name] = draw(_CELLS[name])
        lines.append(delimiter.join(row[name] for name in header))
    region = draw(st.sampled_from(["FR", "FR", "GB"]))
    return header, delimiter, (eol.join(lines) + eol).encode(), region


def _outcome(header: list[str], delimiter: str, chunk: bytes, region: str,
             shaped: bool) -> Any:
    conv = _Converter(header, region)
    try:
        got = check_chunk(chunk, conv, delimiter, spool=True, batch_rows=5, shaped=shaped)
    except Fallback:
        return "fallback"
    out: list[Any] = []
    spooled = io.BytesIO(got.spooled)
    while spooled.tell() < len(got.spooled):
        out.extend(pickle.load(spooled))  # noqa: S301 -- the test's own bytes
    return (got.rows, got.without_proof, list(got.keys), list(got.numbers), out)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_chunk())
@example((HEADER, ",", b"+33612345678,acme,energy,2025-01-01T10:00:00+24:00,"
          b"2028-01-01T10:00:00Z,web,,,,,,,,\n", "FR"))
@example((HEADER, ",", b"+33612345678,acme,energy,2025-02-29T10:00:00Z,"
          b"2028-01-01T10:00:00Z,web,,,,,,,,\n", "FR"))
@example((REQUIRED, ",", b"\xef\xbb\xbf+33612345678,acme,energy,2025-01-01T10:00:00Z,"
          b"2028-01-01T10:00:00Z,web\n", "FR"))
@example((REQUIRED, ";", b"0262262123;acme;energy;2025-01-01T10:00:00Z;"
          b"2028-01-01T10:00:00Z;web\r\n", "FR"))
@example(([*REQUIRED, "consent_id"], ",", b"+33600000000,acme,energy,2025-01-01T10:00:00Z,"
          b"2028-01-01T10:00:00Z,web," + b"x" * 129 + b"\n+33600000001,acme,energy,"
          b"2025-01-01T10:00:00Z,2028-01-01T10:00:00Z,web,\n", "FR"))
def test_a_chunk_gives_what_the_per_line_converter_gives(
        case: tuple[list[str], str, bytes, str]) -> None:
    header, delimiter, chunk, region = case
    assert (_outcome(header, delimiter, chunk, region, shaped=True)
            == _outcome(header, delimiter, chunk, region, shaped=False))


@settings(max_examples=1500, deadline=None)
@given(_header().flatmap(lambda h: st.tuples(st.just(h), st.fixed_dictionaries(
    {name: st.one_of(_CANONICAL[name], _CELLS[name]) for name in h}))),
       st.sampled_from(["FR", "FR", "GB"]))
def test_a_line_taken_alone_gives_the_per_line_record(
        case: tuple[list[str], dict[str, str]], region: str) -> None:
    """``convert`` (lines of a chunk not taken whole) on cells without blanks: what it
    takes, the per-line converter takes with the same record and key."""
    header, row = case
    cells = [row[name] for name in header]
    if (any(c != c.strip() or " " in c or '"' in c or not c.isascii() for c in cells)
            or len(",".join(cells)) > 1024):
        return  # check_chunk hands such lines to the per-line converter only
    conv = _Converter(header, region)
    got = conv.shape.convert([*cells, ""])
    if got is None:
        return
    line = ",".join(cells).encode() + b"\n"
    reference = _outcome(header, ",", line, region, shaped=False)
    record, key = got
    assert reference == (1, int(not record[4]), [key], [record[0]], [record])


def test_a_canonical_chunk_is_taken_whole_even_with_partly_filled_columns() -> None:
    """The bench's shape of file: every column filled, taken a column at a time; a chunk
    where optional columns are empty on some rows is too, with the same result."""
    rows = [f"+3361234{i:04d},acme,energy,2025-01-0{i % 9 + 1}T10:00:00+01:00,"
            f"2028-01-01T10:00:00Z,web,rec/{i}.wav,2026-01-01T00:00:00Z,Europe/Paris,"
            f"2025-02-01T09:00:00+01:00,2025-02-01T09:30:00+01:00,crm-{i},cc-{i % 3},67"
            for i in range(50)]
    conv = _Converter(HEADER, "FR")
    whole = conv.shape.columns(rows, ",")
    assert whole is not None and len(whole[0]) == 50 and whole[3] == 0
    chunk = ("\n".join(rows) + "\n").encode()
    assert (_outcome(HEADER, ",", chunk, "FR", shaped=True)
            == _outcome(HEADER, ",", chunk, "FR", shaped=False))
    # optional columns filled on some rows only: still whole, the same records
    mixed = [*rows[:10], rows[10].replace(",2026-01-01T00:00:00Z,Europe/Paris,2025-02-01T09:00:00"
                                          "+01:00,2025-02-01T09:30:00+01:00,", ",,,,,")]
    assert mixed[-1].count(",,,,,") == 1
    assert conv.shape.columns(mixed, ",") is not None
    chunk = ("\n".join(mixed) + "\n").encode()
    shaped = _outcome(HEADER, ",", chunk, "FR", shaped=True)
    assert shaped == _outcome(HEADER, ",", chunk, "FR", shaped=False) and shaped[0] == 11
    # a slot with one end only: the chunk goes line by line (where the row is refused)
    broken = [*rows[:3], rows[3].replace(",2025-02-01T09:30:00+01:00,", ",,")]
    assert conv.shape.columns(broken, ",") is None
    chunk = ("\n".join(broken) + "\n").encode()
    assert _outcome(HEADER, ",", chunk, "FR", shaped=True) == "fallback"


_EDGES: dict[str, list[str]] = {
    "number": ["+33612345678", "0612345678", "+33696123456", "0696123456", "+33262262123",
               "0262262123", "+33639123456", "0590123456", "+33801123456", "0123456789",
               "+447700900123", "+12025550123", "0033612345678", "+3361234567",
               "061234567", "+33012345678", "", "+33 612345678", "+33612345678\u00a0",
               "\ufeff+33612345678", "#+33612345678", "+33612345678\t"],
    "professional": ["", "Énergie", "a b", " acme", "a\x1cb", "x" * 1100, "a\x0bb"],
    "collected_at": ["2025-02-29T10:00:00Z", "2025-02-30T10:00:00Z", "2025-13-01T10:00:00Z",
                     "2025-01-01T24:00:00Z", "2025-01-01T10:60:00Z",
                     "2025-01-01T10:00:00+24:00", "2025-01-01T10:00:00-00:00",
                     "2025-01-01T10:00:00+05:30", "2025-01-01T10:00:00.5Z",
                     "2025-01-01T10:00:00", "2025-01-01", "2025-01-01 10:00:00Z",
                     "20250101T100000Z", "2025-01-01T10:00:00+0100", "2028-01-02T10:00:00Z",
                     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"],
    "expires_at": ["2024-12-31T10:00:00Z", "2025-01-01T10:00:00+01:00",
                   "2028-01-01T10:00:00.000001Z", "2028-01-01T10:00:00"],
    "withdrawn_at": ["", "2024-12-31T10:00:00Z", "2025-01-01T09:00:00Z",
                     "2026-01-01T00:00:00.5Z", "nope"],
    "timezone": ["", "Mars/Base", "../etc", "UTC", "America/New_York"],
    "agreed_slot_start": ["", "2025-02-01T09:30:00+01:00", "2025-02-01T10:00:00+01:00"],
    "agreed_slot_end": ["", "2025-02-01T09:00:00+01:00", "2025-02-01T08:30:00Z"],
    "consent_id": ["", "é", "x" * 127, "x" * 128, "x" * 129, "a\x01b", "a\x7fb",
                   "c-" + "ab" * 12, "c-" + "AB" * 12, "c-" + "ab" * 11],
    "proof_ref": ["", "scan 12", "é"],
    "call_centre": ["", "Lyon"],
    "address_region": ["", "FR-67", "2a", "971", "6AE", "99", "fr-2b", "FR 67"],
}


def test_every_edge_value_alone_in_a_canonical_chunk() -> None:
    """Each edge value in one row of an otherwise canonical chunk (every column filled),
    on both line ends and delimiters: the same outcome as the per-line converter."""
    base = ["+3361234{:04d}", "acme", "energy", "2025-01-01T10:00:00+01:00",
            "2028-01-01T10:00:00Z", "web", "rec/{}.wav", "2026-01-01T00:00:00Z",
            "Europe/Paris", "2025-02-01T09:00:00+01:00", "2025-02-01T09:30:00+01:00",
            "crm-{}", "cc-1", "67"]
    rows = [[cell.format(i) for cell in base] for i in range(4)]
    checked = 0
    for name, values in _EDGES.items():
        at = HEADER.index(name)
        for value in values:
            for delimiter, eol, derived in ((",", "\n", False), (";", "\r\n", True)):
                edited = [list(r) for r in rows]
                edited[2][at] = value
                if derived:  # another row without an id: the chunk derives some ids
                    edited[0][HEADER.index("consent_id")] = ""
                chunk = (eol.join(delimiter.join(r) for r in edited) + eol).encode()
                for region in ("FR", "GB"):
                    shaped = _outcome(HEADER, delimiter, chunk, region, shaped=True)
                    assert shaped == _outcome(HEADER, delimiter, chunk, region,
                                              shaped=False), (name, value, region)
                    checked += 1
    assert checked == 4 * sum(map(len, _EDGES.values()))
