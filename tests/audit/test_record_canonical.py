"""The record's own serialisation (``RecordBody``, ``AuditRecord.canonical_parts``) writes
the very bytes the dict path wrote: the same sealed lines, hashes and chains.

The reference below is the implementation the trail used before (``to_body`` then the
instance set, ``seal`` splitting the dict and serialising both halves with ``json``;
``format_instant`` with ``strftime``; ``_clean_context`` searching every key), kept here
verbatim so that any drift of the fast path, for any record, is a failing example.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.audit.chain import (
    GENESIS_PREV,
    ChainHead,
    canonical,
    canonical_value,
    next_link,
    seal,
    verify,
)
from gateway.audit.record import (
    MAX_CONTEXT_ITEMS,
    MAX_CONTEXT_KEY_CHARS,
    MAX_CONTEXT_VALUE_CHARS,
    SCHEMA_VERSION,
    AuditRecord,
    NumberPrivacy,
    RecordBody,
    _clean_context,
    _mask,
    _number_masks,
    build_record,
    digits_or_text,
    format_instant,
)
from gateway.audit.trail import AuditSettings, open_audit_trail
from gateway.core.model import Attempt, Campaign, Decision, FailMode, Reason, Verdict
from tests.audit.helpers import make_record

KEY = "k" * 32
_SECRET = re.compile(r"secret|passw|token|credential|authoriz|cookie|(^|_)key$|^auth$", re.I)


# --- the reference: the dict path as it was ------------------------------------------

def ref_canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def ref_format_instant(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ref_clean_context(context: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    items: list[tuple[str, str]] = []
    for key in sorted(context)[:MAX_CONTEXT_ITEMS]:
        if _SECRET.search(key):
            continue
        items.append((key[:MAX_CONTEXT_KEY_CHARS], str(context[key])[:MAX_CONTEXT_VALUE_CHARS]))
    return tuple(items)


def ref_body(rec: AuditRecord, privacy: NumberPrivacy, instance: str) -> dict[str, Any]:
    context = dict(rec.context)
    trace = list(rec.trace)
    number: str | None
    number_input: str | None
    if privacy.mode == "hash":
        subject = rec.number or digits_or_text(rec.number_input)
        number = privacy.protect(subject) if subject else None
        number_input = None
        masks = _number_masks(rec.number, rec.number_input)
        context = {k: _mask(v, masks) for k, v in context.items()}
        trace = [_mask(t, masks) for t in trace]
    else:
        number, number_input = rec.number, rec.number_input
    return {
        "v": SCHEMA_VERSION, "id": rec.decision_id, "ts": ref_format_instant(rec.at),
        "instance": instance, "source": rec.source, "campaign": rec.campaign,
        "professional": rec.professional, "number": number, "number_input": number_input,
        "number_mode": privacy.mode, "key_id": privacy.key_id, "caller_id": rec.caller_id,
        "verdict": str(rec.verdict), "reason": str(rec.reason),
        "engine": {"verdict": str(rec.engine_verdict), "reason": str(rec.engine_reason)},
        "retry_after_s": rec.retry_after_s, "shadow": rec.shadow, "fail_open": rec.fail_open,
        "fail_mode": rec.fail_mode, "pack": {"id": rec.pack_id, "hash": rec.pack_hash},
        "consent_id": rec.consent_id, "contract_id": rec.contract_id,
        "lists": [{"name": n, "version": v, "age_s": a} for n, v, a in rec.lists],
        "zones": list(rec.zones), "local_times": dict(rec.local_times),
        "counters": {"attempts_seen": rec.attempts_seen, "attempts_limit": rec.attempts_limit,
                     "attempt_window_s": rec.attempt_window_s},
        "latency_us": rec.latency_us, "context": context, "trace": trace,
    }


def ref_seal(body: Mapping[str, Any], *, seq: int, prev: str) -> tuple[str, str]:
    unsealed = {**body, "seq": seq, "prev": prev}
    digest = hashlib.sha256(ref_canonical(unsealed).encode("ascii")).hexdigest()
    return ref_canonical({**unsealed, "hash": digest}), digest


# --- strategies ----------------------------------------------------------------------

# any code point, lone surrogates included (json escapes them as \udXXX)
ANY_CHAR = st.characters(codec=None, exclude_categories=())
TEXT = st.one_of(st.text(ANY_CHAR, max_size=40), st.text(ANY_CHAR, min_size=250, max_size=400),
                 st.sampled_from(["", "agi", "+33612345678", "06 12 34 56 78", "é\u2028\"\\/",
                                  "\x00\x1f\x7f"]))
OPT_TEXT = st.none() | TEXT
INT = st.integers(min_value=-(2**70), max_value=2**70)
OPT_INT = st.none() | INT
CONTEXT_KEY = st.one_of(TEXT, st.sampled_from(
    ["edge", "peer", "channel", "uniqueid", "api_key", "Token", "auth", "x" * 70,
     "x" * 64 + "a", "x" * 64 + "b", "prescreen", "prescreen_decision_id"]))
CONTEXTS = st.dictionaries(CONTEXT_KEY, TEXT, max_size=40)
INSTANTS = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                   timezone(-timedelta(hours=11))]))
PRIVACIES = st.sampled_from([NumberPrivacy("full"), NumberPrivacy("hash", KEY),
                             NumberPrivacy("hash", "another key é")])


@st.composite
def records(draw: st.DrawFn) -> AuditRecord:
    """Any record: field by field (pairs unsorted, duplicated keys, every JSON scalar)."""
    pairs = st.lists(st.tuples(TEXT, TEXT), max_size=8)
    return AuditRecord(
        decision_id=draw(TEXT), at=draw(INSTANTS), source=draw(TEXT), campaign=draw(TEXT),
        professional=draw(TEXT), number=draw(OPT_TEXT), number_input=draw(TEXT),
        caller_id=draw(OPT_TEXT), verdict=draw(st.sampled_from(Verdict)),
        reason=draw(st.sampled_from(Reason)), engine_verdict=draw(st.sampled_from(Verdict)),
        engine_reason=draw(st.sampled_from(Reason)), retry_after_s=draw(OPT_INT),
        shadow=draw(st.booleans()), fail_open=draw(st.booleans()),
        fail_mode=draw(st.none() | st.sampled_from(["closed", "open"]) | TEXT),
        pack_id=draw(TEXT), pack_hash=draw(TEXT), consent_id=draw(OPT_TEXT),
        contract_id=draw(OPT_TEXT),
        lists=tuple(draw(st.lists(st.tuples(TEXT, INT, INT), max_size=4))),
        zones=tuple(draw(st.lists(TEXT, max_size=3))),
        local_times=tuple(draw(pairs)), attempts_seen=draw(INT), attempts_limit=draw(OPT_INT),
        attempt_window_s=draw(OPT_INT), latency_us=draw(INT),
        context=tuple(draw(pairs)), trace=tuple(draw(st.lists(TEXT, max_size=12))),
        instance=draw(TEXT),
    )


NUMBERS = st.sampled_from([
    ("06 12 34 56 78", "+33612345678"), ("+44 20 7946 0958", "+442079460958"),
    ("(202) 555-0143", "+12025550143"), ("12", None), ("", None),
    ("0033 6 12 34 56 78", "+33612345678")])


@st.composite
def built_records(draw: st.DrawFn) -> AuditRecord:
    """Records as the service builds them: ALLOW/BLOCK, prescreen contexts, odd contexts."""
    number, e164 = draw(NUMBERS)
    verdict = draw(st.sampled_from(Verdict))
    reason = Reason.OK if verdict is Verdict.ALLOW else draw(st.sampled_from(Reason))
    trace = tuple(draw(st.lists(TEXT, max_size=70)))
    if e164:
        trace += (f"number: valid, {e164}", f"frequency: 1/4 {number}")
    decision = Decision(
        verdict=verdict, reason=reason, e164=e164, retry_after_s=draw(OPT_INT), trace=trace,
        pack_id="fr-2026-08", pack_hash="ab" * 32,
        zones=tuple(draw(st.lists(st.sampled_from(["Europe/Paris", "America/New_York",
                                                    "Indian/Reunion", "Not/AZone"]),
                                  max_size=3, unique=True))),
        consent_id=draw(OPT_TEXT), contract_id=draw(OPT_TEXT),
        list_versions=(("opposition:bloctel", 7, 86400), ("consents", 3, 3600)),
        attempts_seen=draw(st.integers(0, 10)), attempts_limit=draw(st.none() | st.just(4)),
        attempt_window_s=30 * 86400)
    context = draw(CONTEXTS)
    if draw(st.booleans()):  # as the service links a screen to the AMI proxy's prescreen
        context = {**context, "prescreen_decision_id": draw(TEXT)[:64],
                   "prescreen": draw(st.sampled_from([
                       "attempt already counted by the prescreen",
                       "no valid token (unknown, used, expired, another number or not "
                       "read): a new attempt"]))}
    campaign = Campaign(id="spring-promo", professional="acme", product_category="telecom",
                        caller_id=draw(OPT_TEXT), fail_mode=draw(st.sampled_from(FailMode)))
    return build_record(
        decision_id=draw(TEXT), now=draw(INSTANTS),
        attempt=Attempt(number=number, campaign_id=campaign.id,
                        source=draw(st.sampled_from(["agi", "ami", "cli"])),
                        caller_id=draw(OPT_TEXT)),
        decision=decision, returned_verdict=verdict, returned_reason=reason,
        shadow=draw(st.booleans()), fail_open=draw(st.booleans()),
        latency_s=draw(st.floats(0, 10)), context=context, campaign=campaign,
        professional=None, instance_id="gw-a")


def check_same_bytes(rec: AuditRecord, privacy: NumberPrivacy, instance: str, seq: int,
                     prev: str) -> None:
    body = RecordBody(rec, privacy, instance)
    want = ref_body(rec, privacy, instance)  # a lone surrogate is hashed too (hash_number)
    want_line, want_digest = ref_seal(want, seq=seq, prev=prev)
    assert seal(body, seq=seq, prev=prev) == (want_line, want_digest)
    assert canonical(body) == ref_canonical(want)
    # read as a mapping (a superseding record, a log line): the same body
    assert dict(body) == want
    # the dict path, which superseding and backlog records still take
    assert seal(dict(body), seq=seq, prev=prev) == (want_line, want_digest)


SEQS = st.integers(0, 2**63)
PREVS = st.sampled_from([GENESIS_PREV, "f" * 64])
FAST = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FAST
@given(records(), PRIVACIES, TEXT, SEQS, PREVS)
def test_any_record_seals_to_the_bytes_of_the_dict_path(
        rec: AuditRecord, privacy: NumberPrivacy, instance: str, seq: int, prev: str) -> None:
    check_same_bytes(rec, privacy, instance, seq, prev)


@FAST
@given(built_records(), PRIVACIES, SEQS, PREVS)
def test_built_records_seal_to_the_bytes_of_the_dict_path(
        rec: AuditRecord, privacy: NumberPrivacy, seq: int, prev: str) -> None:
    check_same_bytes(rec, privacy, "gw-a", seq, prev)


@FAST
@given(CONTEXTS)
def test_context_cleaning_keeps_what_it_kept(context: dict[str, str]) -> None:
    assert _clean_context(context) == ref_clean_context(context)
    assert _clean_context(context) == ref_clean_context(context)  # keys now known


def test_context_cleaning_after_the_key_memo_filled() -> None:
    """The memo of known keys is bounded: emptied when full, still the same answers."""
    for i in range(3000):
        context = {f"k{i}": "v", "api_key": "s", f"x{i}_token": "s", "edge": "agi"}
        assert _clean_context(context) == ref_clean_context(context)


@FAST
@given(INSTANTS)
def test_instants_format_as_strftime_did(at: datetime) -> None:
    assert format_instant(at) == ref_format_instant(at)


@FAST
@given(st.one_of(TEXT, OPT_INT, st.booleans(), st.lists(TEXT), st.dictionaries(TEXT, TEXT),
                 st.lists(st.none() | INT | TEXT), st.dictionaries(TEXT, OPT_INT),
                 st.tuples(TEXT, INT), st.floats(allow_nan=False, allow_infinity=False)))
def test_one_value_is_written_as_json_writes_it(value: Any) -> None:
    assert canonical_value(value) == ref_canonical(value)


def ref_chain(recs: list[AuditRecord], privacy: NumberPrivacy, instance: str) -> list[str]:
    lines: list[str] = []
    head: ChainHead | None = None
    for rec in recs:
        seq, prev = next_link(head)
        line, digest = ref_seal(ref_body(rec, privacy, instance), seq=seq, prev=prev)
        lines.append(line)
        head = ChainHead(seq, digest)
    return lines


@pytest.mark.parametrize("mode", ["full", "hash"])
async def test_a_jsonl_trail_holds_the_lines_of_the_dict_path_and_verifies(
        tmp_path: Any, mode: str) -> None:
    """A real JSONL trail: its file is, byte for byte, the chain the old path sealed (so a
    trail written before verifies as before), and ``verify`` accepts it."""
    path = os.path.join(tmp_path, "audit.jsonl")
    settings_ = AuditSettings(path=path, instance_id="gw-a", anchor_path="", number_mode=mode,
                              hash_key=KEY if mode == "hash" else None)
    trail = open_audit_trail(settings_)
    recs = [make_record(i, verdict=Verdict.BLOCK if i % 3 else Verdict.ALLOW,
                        reason=Reason.OPPOSITION if i % 3 else Reason.OK,
                        context={"edge": "agi", "uniqueid": f"17.{i}", "note": "é\u00e9 ☎",
                                 "api_key": "secret", "long": "v" * 400})
            for i in range(20)]
    for rec in recs:
        await trail.append(rec)
    await trail.close()
    stored = (await asyncio.to_thread(Path(path).read_text, encoding="ascii")).splitlines()
    assert stored == ref_chain(recs, trail.privacy, "gw-a")
    report = verify((f"line {n}", line) for n, line in enumerate(stored, 1))
    assert report.ok and report.records == 20


async def test_a_redis_stream_holds_the_lines_of_the_dict_path_and_verifies(
        redis_url: str) -> None:
    """A real Redis stream written in group commits (the records appended together):
    each stored line is the old path's seal of that record after the one before it."""
    settings_ = AuditSettings(sink="redis", redis_url=redis_url,
                              stream_key="test:audit:canonical", instance_id="gw-a",
                              anchor_path="", write_timeout_s=2.0)
    trail = open_audit_trail(settings_)
    recs = {f"d-gw-a-{i}": make_record(i, context={"edge": "agi", "n": "☎ é", "i": str(i)})
            for i in range(30)}
    await asyncio.gather(*(trail.append(rec) for rec in recs.values()))
    stored = [line.decode("ascii") async for _, line in trail.iter_lines()]
    report = await trail.verify()
    await trail.close()
    order = [recs[json.loads(line)["id"]] for line in stored]
    assert stored == ref_chain(order, NumberPrivacy("full"), "gw-a")
    assert report.ok and report.records == 30


async def test_a_number_with_a_lone_surrogate_is_hashed_and_written_with_its_group(
        redis_url: str) -> None:
    """A dial string that is not UTF-8 (the AMI codec keeps such bytes as lone
    surrogates) with no digit: in hash mode its text is hashed (``surrogatepass``) and
    its record written in the same group commit as its neighbours. It raised
    UnicodeEncodeError before: the call was answered BLOCK by the edge's bug path,
    with a traceback, and nothing audited."""
    settings_ = AuditSettings(sink="redis", redis_url=redis_url,
                              stream_key="test:audit:surrogate", instance_id="gw-a",
                              anchor_path="", write_timeout_s=2.0, number_mode="hash",
                              hash_key=KEY)
    trail = open_audit_trail(settings_)
    bad = make_record(99, number="\udc80-x", e164=None)  # no digit: the text is hashed
    results = await asyncio.gather(
        trail.append(make_record(0)), trail.append(bad), trail.append(make_record(1)),
        return_exceptions=True)
    report = await trail.verify()
    lines = [line async for _, line in trail.iter_lines()]
    await trail.close()
    assert [type(r) for r in results] == [str, str, str]
    assert report.ok and report.records == 3
    want = hmac.new(KEY.encode(), "\udc80-x".encode("utf-8", "surrogatepass"),
                    hashlib.sha256).hexdigest()
    assert any(json.loads(line)["number"] == want for line in lines)


def test_a_trail_sealed_by_the_dict_path_verifies() -> None:
    """Lines sealed the old way (a trail written by an older version) still verify."""
    recs = [make_record(i) for i in range(5)]
    lines = ref_chain(recs, NumberPrivacy("full"), "gw-a")
    report = verify((f"line {n}", line) for n, line in enumerate(lines, 1))
    assert report.ok and report.chains["gw-a"].last_seq == 4


# --- the check fails a serialisation that drifts -------------------------------------

class _NoSortedContext(AuditRecord):
    """Broken: writes the context in the record's order, not sorted."""

    __slots__ = ()

    def canonical_parts(self, privacy: NumberPrivacy, instance: str
                        ) -> tuple[str, str, str, str]:
        before, to_prev, to_seq, after = super().canonical_parts(privacy, instance)
        start = before.index('"context":') + len('"context":')
        end = before.index(',"contract_id":')
        unsorted = json.dumps(dict(self.context), separators=(",", ":"))
        return before[:start] + unsorted + before[end:], to_prev, to_seq, after


class _Utf8(AuditRecord):
    """Broken: writes non-ASCII trace lines as UTF-8 instead of ``\\uXXXX``."""

    __slots__ = ()

    def canonical_parts(self, privacy: NumberPrivacy, instance: str
                        ) -> tuple[str, str, str, str]:
        before, to_prev, to_seq, after = super().canonical_parts(privacy, instance)
        start = after.index('"trace":') + len('"trace":')
        end = after.index(',"ts":')
        trace = json.dumps(list(self.trace), separators=(",", ":"), ensure_ascii=False)
        return before, to_prev, to_seq, after[:start] + trace + after[end:]


class _IsoformatTs(AuditRecord):
    """Broken: ``ts`` from isoformat alone (years before 1000 are not written so)."""

    __slots__ = ()

    def canonical_parts(self, privacy: NumberPrivacy, instance: str
                        ) -> tuple[str, str, str, str]:
        before, to_prev, to_seq, after = super().canonical_parts(privacy, instance)
        ts = self.at.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
        return (before, to_prev, to_seq,
                after.replace(f'"ts":"{format_instant(self.at)}"', f'"ts":"{ts}"'))


@pytest.mark.parametrize("broken", [_NoSortedContext, _Utf8, _IsoformatTs])
def test_the_property_catches_a_broken_serialisation(broken: type[AuditRecord]) -> None:
    @settings(max_examples=500, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(records(), PRIVACIES)
    def property_(rec: AuditRecord, privacy: NumberPrivacy) -> None:
        fields = {name: getattr(rec, name) for name in AuditRecord.__dataclass_fields__}
        check_same_bytes(broken(**fields), privacy, "gw-a", 0, GENESIS_PREV)

    # a wrong byte fails the comparison; a non-ASCII one already fails sealing
    with pytest.raises((AssertionError, UnicodeEncodeError, ExceptionGroup)):
        property_()
