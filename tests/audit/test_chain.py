"""Hash chains: roundtrip and detection of modified, removed, reordered, truncated records."""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.chain import (
    GENESIS_PREV,
    ChainHead,
    canonical,
    next_link,
    record_hash,
    seal,
    verify,
)
from gateway.audit.record import NumberPrivacy
from tests.audit.helpers import make_record

FULL = NumberPrivacy("full")


def build_chain(n: int, instance: str = "gw-a") -> tuple[list[str], ChainHead]:
    lines: list[str] = []
    head: ChainHead | None = None
    for i in range(n):
        seq, prev = next_link(head)
        line, digest = seal(make_record(i, instance=instance).to_body(FULL), seq=seq, prev=prev)
        lines.append(line)
        head = ChainHead(seq, digest)
    assert head is not None
    return lines, head


def pos(lines: list[str]) -> list[tuple[str, str]]:
    return [(f"line {i + 1}", line) for i, line in enumerate(lines)]


def kinds(report_problems: list[object]) -> set[str]:
    return {p.kind for p in report_problems}  # type: ignore[attr-defined]


CHAIN, HEAD = build_chain(6)
CHAIN_A, HEAD_A = build_chain(4, "gw-a")
CHAIN_B, HEAD_B = build_chain(4, "gw-b")


def test_roundtrip_is_ok_and_summarised() -> None:
    report = verify(pos(CHAIN), heads={"gw-a": HEAD})
    assert report.ok, report.problems
    assert report.records == 6
    chain = report.chains["gw-a"]
    assert (chain.first_seq, chain.last_seq, chain.count, chain.from_genesis) == (0, 5, 6, True)
    assert chain.anchor_prev == GENESIS_PREV


def test_lines_are_canonical_and_hash_covers_everything_but_hash() -> None:
    rec = json.loads(CHAIN[2])
    assert canonical(rec) == CHAIN[2]
    assert rec["hash"] == record_hash(rec)
    assert rec["prev"] == json.loads(CHAIN[1])["hash"]
    assert CHAIN[2].isascii()


def test_interleaved_chains_of_two_instances_verify() -> None:
    mixed = [x for pair in zip(CHAIN_A, CHAIN_B, strict=True) for x in pair]
    report = verify(pos(mixed), heads={"gw-a": HEAD_A, "gw-b": HEAD_B})
    assert report.ok, report.problems
    assert set(report.chains) == {"gw-a", "gw-b"}


def test_modified_record_is_detected() -> None:
    rec = json.loads(CHAIN[3])
    rec["verdict"] = "BLOCK"
    lines = list(CHAIN)
    lines[3] = canonical(rec)  # well-formed, canonical, but the hash no longer matches
    report = verify(pos(lines))
    assert not report.ok
    assert [(p.kind, p.position, p.seq) for p in report.problems] == [
        ("hash_mismatch", "line 4", 3)]


def test_modified_record_with_recomputed_hash_breaks_the_next_link() -> None:
    rec = json.loads(CHAIN[3])
    rec["reason"] = "opposition"
    rec["hash"] = record_hash(rec)
    lines = list(CHAIN)
    lines[3] = canonical(rec)
    report = verify(pos(lines))
    assert [(p.kind, p.seq) for p in report.problems] == [("broken_link", 4)]


def test_removed_middle_record_is_detected() -> None:
    lines = CHAIN[:2] + CHAIN[3:]
    report = verify(pos(lines), heads={"gw-a": HEAD})
    assert [(p.kind, p.seq) for p in report.problems] == [("gap", 3)]


def test_reordered_records_are_detected() -> None:
    lines = list(CHAIN)
    lines[2], lines[3] = lines[3], lines[2]
    report = verify(pos(lines))
    assert not report.ok
    assert "reordered" in kinds(report.problems)


def test_truncated_tail_is_detected_with_the_kept_head() -> None:
    report = verify(pos(CHAIN[:-2]), heads={"gw-a": HEAD})
    assert [(p.kind, p.instance) for p in report.problems] == [("truncated_tail", "gw-a")]
    # without the kept head, a shorter chain is indistinguishable from an earlier one
    assert verify(pos(CHAIN[:-2])).ok


def test_replaced_tail_is_detected_with_the_kept_head() -> None:
    lines = list(CHAIN)
    rec = json.loads(lines[-1])
    rec["verdict"] = "BLOCK"
    rec["hash"] = record_hash(rec)
    lines[-1] = canonical(rec)
    report = verify(pos(lines), heads={"gw-a": HEAD})
    assert [p.kind for p in report.problems] == ["head_mismatch"]


def test_missing_chain_is_detected_with_the_kept_head() -> None:
    report = verify(pos(CHAIN_A), heads={"gw-a": HEAD_A, "gw-b": HEAD_B})
    assert [(p.kind, p.instance) for p in report.problems] == [("chain_missing", "gw-b")]


def test_trimmed_prefix_is_accepted_only_when_allowed() -> None:
    kept = CHAIN[2:]
    strict = verify(pos(kept))
    assert [p.kind for p in strict.problems] == ["missing_prefix"]
    lenient = verify(pos(kept), allow_trimmed_prefix=True, heads={"gw-a": HEAD})
    assert lenient.ok, lenient.problems
    chain = lenient.chains["gw-a"]
    assert not chain.from_genesis
    assert chain.anchor_prev == json.loads(CHAIN[1])["hash"]
    assert lenient.notes and "trimmed" in lenient.notes[0]
    # a gap after the first kept record is still a gap
    assert [p.kind for p in verify(pos(kept[:1] + kept[2:]), allow_trimmed_prefix=True)
            .problems] == ["gap"]


def test_restarted_chain_is_reported() -> None:
    again, _ = build_chain(2)
    report = verify(pos(CHAIN + again))
    assert "chain_restart" in kinds(report.problems)


def test_garbage_lines_are_reported_not_raised() -> None:
    lines: list[tuple[str, bytes | str]] = [
        ("line 1", b"\xff\xfe"), ("line 2", "{not json"), ("line 3", '{"seq": "1"}'),
        ("line 4", CHAIN[0] + " "),
    ]
    report = verify(lines)
    assert [p.kind for p in report.problems] == [
        "undecodable", "unparseable", "malformed", "non_canonical"]


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_any_single_byte_mutation_is_detected(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(CHAIN) - 1), label="record")
    raw = bytearray(CHAIN[index].encode("ascii"))
    at = data.draw(st.integers(0, len(raw) - 1), label="offset")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[at]), label="byte")
    raw[at] = new
    lines: list[tuple[str, bytes | str]] = [(f"line {i + 1}", x) for i, x in enumerate(CHAIN)]
    lines[index] = (f"line {index + 1}", bytes(raw))
    report = verify(lines, heads={"gw-a": HEAD})
    assert not report.ok


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


KEYS_AROUND_HASH = ["hash", "id", "h", "ha", "has", "hasa", "hasi", "hashx", "seq", "prev",
                    "pre", "v", "a"]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6) | st.sampled_from(KEYS_AROUND_HASH), json_values,
                       max_size=8),
       st.integers(min_value=0, max_value=2**40), st.text(min_size=1, max_size=64))
def test_a_sealed_line_is_the_canonical_record_and_its_hash(
        body: dict[str, object], seq: int, prev: str) -> None:
    """seal() serialises the record once, in two halves around ``hash``: the line is
    still exactly the canonical serialisation of the sealed record, and the hash the
    one of the record without it, whatever the keys (before, after or equal to hash)."""
    line, digest = seal(body, seq=seq, prev=prev)
    record = {**{k: v for k, v in body.items() if k != "hash"}, "seq": seq, "prev": prev}
    assert digest == record_hash(record)
    assert line == canonical({**record, "hash": digest})


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=8)
       | st.dictionaries(st.text(max_size=3), st.floats(), max_size=3))
def test_canonical_is_json_dumps_with_the_canonical_options(body: dict[str, object]) -> None:
    """canonical() keeps one encoder instead of json.dumps building one per call: the
    same text, and the same refusal of NaN and the infinities."""
    def dumps(obj: object) -> str:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False)
    def outcome(encode: Callable[[dict[str, object]], str]) -> str:
        try:
            return encode(body)
        except ValueError as exc:
            return f"ValueError: {exc}"
    assert outcome(canonical) == outcome(dumps)
