"""The audit record: what one decision proves, and how it is serialised.

An :class:`AuditRecord` is built by the service from the engine's
:class:`~gateway.core.model.Decision` (see :func:`build_record`). The trail turns it
into a *body* (a JSON object, :meth:`AuditRecord.to_body`) applying the privacy
setting, then seals it into the chain (``gateway.audit.chain``).

Every value of a body is a string, an integer, a boolean, null, a list or an
object: no floats, so that the canonical serialisation is unambiguous.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from gateway.audit.canonical import PresealedBody, canonical_value
from gateway.audit.errors import AuditConfigError
from gateway.core.model import Attempt, Campaign, Decision, Reason, Verdict

SCHEMA_VERSION = 1
NumberMode = Literal["full", "hash"]

# Limits on what an edge may put into a record (named, documented in docs/audit.md).
MAX_CONTEXT_ITEMS = 32
MAX_CONTEXT_KEY_CHARS = 64
MAX_CONTEXT_VALUE_CHARS = 256
MAX_NUMBER_INPUT_CHARS = 64
MAX_TRACE_ITEMS = 64
MAX_TRACE_ITEM_CHARS = 256

_SECRET_KEY = re.compile(r"secret|passw|token|credential|authoriz|cookie|(^|_)key$|^auth$", re.I)


def format_instant(at: datetime) -> str:
    """UTC instant as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (fixed width, sorts as text)."""
    if at.tzinfo is None:
        raise ValueError("audit instants must be timezone-aware")
    at = at.astimezone(UTC)
    if at.year < 1000:  # strftime's %Y does not pad them everywhere: kept as it was
        return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # the same text, several times cheaper than strftime: "...+00:00" ends the isoformat
    return at.isoformat(timespec="microseconds")[:-6] + "Z"


def parse_instant(text: str) -> datetime:
    """Inverse of :func:`format_instant` (also accepts any ISO-8601 with an offset)."""
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError(f"instant without offset: {text!r}")
    return at


def key_id(key: str) -> str:
    """A short public identifier of a hashing key (never the key itself)."""
    return hashlib.sha256(b"dialer-gateway/audit-key-id\x00" + key.encode()).hexdigest()[:16]


def hash_number(key: str, number: str) -> str:
    """HMAC-SHA256 of a number (E.164 when valid) under the audit key, hex.

    The text is UTF-8 with lone surrogates passed through (``surrogatepass``): a dial
    string the AMI codec decoded with ``surrogateescape`` (bytes that are not UTF-8)
    has a hash too, and every other text hashes exactly as with a plain ``encode()``."""
    return hmac.new(key.encode(), number.encode("utf-8", "surrogatepass"),
                    hashlib.sha256).hexdigest()


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


@dataclass(frozen=True, slots=True)
class NumberPrivacy:
    """How numbers appear in records: ``full`` (E.164) or ``hash`` (keyed HMAC)."""

    mode: NumberMode = "full"
    key: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("full", "hash"):
            raise AuditConfigError(f"number_mode must be 'full' or 'hash', not {self.mode!r}")
        if self.mode == "hash" and not self.key:
            raise AuditConfigError("number_mode='hash' needs a hash_key (a secret)")
        if self.key is not None and not _is_utf8(self.key):
            # bytes that are not UTF-8 in an environment variable: every hash would raise
            raise AuditConfigError("hash_key holds bytes that are not UTF-8 text (its "
                                   "value is not shown): give it as text, e.g. hex")

    def __repr__(self) -> str:  # the key is a secret
        return f"NumberPrivacy(mode={self.mode!r}, key_id={self.key_id!r})"

    @property
    def key_id(self) -> str | None:
        return key_id(self.key) if self.mode == "hash" and self.key else None

    def protect(self, number: str) -> str:
        if self.mode == "hash" and self.key:
            return hash_number(self.key, number)
        return number


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One screening decision, as the audit trail keeps it (before privacy and chaining)."""

    decision_id: str
    at: datetime
    source: str
    campaign: str
    professional: str
    number: str | None  # E.164 when the number was valid
    number_input: str  # as the edge gave it (truncated)
    caller_id: str | None
    verdict: Verdict  # what the edge enforced
    reason: Reason  # what the edge returned as GW_REASON
    engine_verdict: Verdict  # what the engine (or the fail-mode path) decided
    engine_reason: Reason
    retry_after_s: int | None
    shadow: bool
    fail_open: bool
    fail_mode: str | None
    pack_id: str
    pack_hash: str
    consent_id: str | None
    contract_id: str | None
    lists: tuple[tuple[str, int, int], ...]  # (name, version, age_s)
    zones: tuple[str, ...]
    local_times: tuple[tuple[str, str], ...]  # (zone, ISO local instant)
    attempts_seen: int
    attempts_limit: int | None
    attempt_window_s: int | None
    latency_us: int
    context: tuple[tuple[str, str], ...]
    trace: tuple[str, ...]
    instance: str

    def _private(self, privacy: NumberPrivacy) -> tuple[
            str | None, str | None, Mapping[str, str] | tuple[tuple[str, str], ...],
            list[str] | tuple[str, ...]]:
        """(number, number_input, context, trace) as ``privacy`` lets them be stored;
        ``context`` a mapping or (in mode ``full``) the record's own pairs."""
        if privacy.mode == "hash":
            subject = self.number or digits_or_text(self.number_input)
            number = privacy.protect(subject) if subject else None
            masks = _number_masks(self.number, self.number_input)
            context = {k: _mask(v, masks) for k, v in self.context}
            return number, None, context, [_mask(t, masks) for t in self.trace]
        return self.number, self.number_input, self.context, self.trace

    def to_body(self, privacy: NumberPrivacy) -> dict[str, Any]:
        """The JSON object stored (without the chain fields ``seq``/``prev``/``hash``)."""
        number, number_input, private_context, private_trace = self._private(privacy)
        context = dict(private_context)
        trace = list(private_trace)
        return {
            "v": SCHEMA_VERSION,
            "id": self.decision_id,
            "ts": format_instant(self.at),
            "instance": self.instance,
            "source": self.source,
            "campaign": self.campaign,
            "professional": self.professional,
            "number": number,
            "number_input": number_input,
            "number_mode": privacy.mode,
            "key_id": privacy.key_id,
            "caller_id": self.caller_id,
            "verdict": str(self.verdict),
            "reason": str(self.reason),
            "engine": {"verdict": str(self.engine_verdict), "reason": str(self.engine_reason)},
            "retry_after_s": self.retry_after_s,
            "shadow": self.shadow,
            "fail_open": self.fail_open,
            "fail_mode": self.fail_mode,
            "pack": {"id": self.pack_id, "hash": self.pack_hash},
            "consent_id": self.consent_id,
            "contract_id": self.contract_id,
            "lists": [{"name": n, "version": v, "age_s": a} for n, v, a in self.lists],
            "zones": list(self.zones),
            "local_times": dict(self.local_times),
            "counters": {
                "attempts_seen": self.attempts_seen,
                "attempts_limit": self.attempts_limit,
                "attempt_window_s": self.attempt_window_s,
            },
            "latency_us": self.latency_us,
            "context": context,
            "trace": trace,
        }

    def canonical_parts(self, privacy: NumberPrivacy, instance: str
                        ) -> tuple[str, str, str, str]:
        """The canonical serialisation of ``to_body(privacy)`` with ``instance``, in the
        parts ``PresealedBody.canonical_parts`` describes, written member by member in
        sorted key order (the same bytes ``canonical`` writes for the dict: checked
        against it by tests/audit/test_record_canonical.py)."""
        value = canonical_value
        number, number_input, context, trace = self._private(privacy)
        if type(context) is not dict:
            context = dict(context)
        lists = ",".join([f'{{"age_s":{value(a)},"name":{value(n)},"version":{value(v)}}}'
                          for n, v, a in self.lists])
        before = (
            f'"caller_id":{value(self.caller_id)},"campaign":{value(self.campaign)},'
            f'"consent_id":{value(self.consent_id)},"context":{value(context)},'
            f'"contract_id":{value(self.contract_id)},'
            f'"counters":{{"attempt_window_s":{value(self.attempt_window_s)},'
            f'"attempts_limit":{value(self.attempts_limit)},'
            f'"attempts_seen":{value(self.attempts_seen)}}},'
            f'"engine":{{"reason":{value(str(self.engine_reason))},'
            f'"verdict":{value(str(self.engine_verdict))}}},'
            f'"fail_mode":{value(self.fail_mode)},"fail_open":{value(self.fail_open)}')
        to_prev = (
            f'"id":{value(self.decision_id)},"instance":{value(instance)},'
            f'"key_id":{value(privacy.key_id)},"latency_us":{value(self.latency_us)},'
            f'"lists":[{lists}],"local_times":{value(dict(self.local_times))},'
            f'"number":{value(number)},"number_input":{value(number_input)},'
            f'"number_mode":{value(privacy.mode)},'
            f'"pack":{{"hash":{value(self.pack_hash)},"id":{value(self.pack_id)}}}')
        to_seq = (f'"professional":{value(self.professional)},'
                  f'"reason":{value(str(self.reason))},'
                  f'"retry_after_s":{value(self.retry_after_s)}')
        after = (
            f'"shadow":{value(self.shadow)},"source":{value(self.source)},'
            f'"trace":{value(trace)},"ts":{value(format_instant(self.at))},'
            f'"v":{SCHEMA_VERSION},"verdict":{value(str(self.verdict))},'
            f'"zones":{value(self.zones)}')
        return before, to_prev, to_seq, after


class RecordBody(PresealedBody):
    """``record.to_body(privacy)`` with ``instance``, for a sink to seal: ``seal`` takes
    its serialisation from the record (:meth:`AuditRecord.canonical_parts`) without
    building the dict, which is built only if something reads the body as a mapping
    (a failed write's superseding record, a log line)."""

    __slots__ = ("_body", "_instance", "_parts", "_privacy", "_record")

    def __init__(self, record: AuditRecord, privacy: NumberPrivacy, instance: str) -> None:
        self._record, self._privacy, self._instance = record, privacy, instance
        self._body: dict[str, Any] | None = None
        self._parts: tuple[str, str, str, str] | None = None

    def _dict(self) -> dict[str, Any]:
        if self._body is None:
            body = self._record.to_body(self._privacy)
            body["instance"] = self._instance
            self._body = body
        return self._body

    def __getitem__(self, key: str) -> Any:
        return self._dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def canonical_parts(self) -> tuple[str, str, str, str]:
        # (the JSONL sink seals in its writer thread: at worst two threads build the
        # same parts once each)
        if self._parts is None:
            self._parts = self._record.canonical_parts(self._privacy, self._instance)
        return self._parts


def build_record(
    *,
    decision_id: str,
    now: datetime,
    attempt: Attempt,
    decision: Decision,
    returned_verdict: Verdict,
    returned_reason: Reason,
    shadow: bool,
    fail_open: bool,
    latency_s: float,
    context: Mapping[str, str] | None,
    campaign: Campaign | None,
    professional: str | None,
    instance_id: str,
) -> AuditRecord:
    """Assemble the record of one decision. Pure: no clock, no I/O.

    ``now`` is the decision instant; callee-local instants are computed from it for
    each zone in ``decision.zones``. Context keys that look like secrets are dropped.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return AuditRecord(
        decision_id=decision_id,
        at=now.astimezone(UTC),
        source=attempt.source,
        campaign=attempt.campaign_id,
        professional=professional or (campaign.professional if campaign else ""),
        number=decision.e164,
        number_input=attempt.number[:MAX_NUMBER_INPUT_CHARS],
        caller_id=attempt.caller_id or (campaign.caller_id if campaign else None),
        verdict=returned_verdict,
        reason=returned_reason,
        engine_verdict=decision.verdict,
        engine_reason=decision.reason,
        retry_after_s=decision.retry_after_s,
        shadow=shadow,
        fail_open=fail_open,
        fail_mode=str(campaign.fail_mode) if campaign else None,
        pack_id=decision.pack_id,
        pack_hash=decision.pack_hash,
        consent_id=decision.consent_id,
        contract_id=decision.contract_id,
        lists=tuple((str(n), int(v), int(a)) for n, v, a in decision.list_versions),
        zones=tuple(decision.zones),
        local_times=_local_times(now, decision.zones),
        attempts_seen=decision.attempts_seen,
        attempts_limit=decision.attempts_limit,
        attempt_window_s=decision.attempt_window_s,
        latency_us=max(0, round(latency_s * 1_000_000)),
        context=_clean_context(context or {}),
        trace=tuple(t[:MAX_TRACE_ITEM_CHARS] for t in decision.trace[:MAX_TRACE_ITEMS]),
        instance=instance_id,
    )


def _local_times(now: datetime, zones: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for zone in zones:
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        out.append((zone, now.astimezone(tz).isoformat(timespec="seconds")))
    return tuple(out)


# Context keys seen, with the key a record keeps (None: a secret's, dropped): an edge
# sends the same few keys on every call. Bounded: emptied when full.
_KEPT_KEYS: dict[str, str | None] = {}
_KEPT_KEYS_MAX = 1024
_KEPT_KEY_MAX_CHARS = 4 * MAX_CONTEXT_KEY_CHARS  # longer keys are checked, never kept


def _kept_key(key: str) -> str | None:
    kept = _KEPT_KEYS.get(key, "")
    if kept == "":  # not seen ("" itself is searched every time: it is never a secret)
        kept = None if _SECRET_KEY.search(key) else key[:MAX_CONTEXT_KEY_CHARS]
        if key and type(key) is str and len(key) <= _KEPT_KEY_MAX_CHARS:
            if len(_KEPT_KEYS) >= _KEPT_KEYS_MAX:
                _KEPT_KEYS.clear()
            _KEPT_KEYS[key] = kept
    return kept


def _clean_context(context: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    items: list[tuple[str, str]] = []
    for key in sorted(context)[:MAX_CONTEXT_ITEMS]:
        kept = _kept_key(key)
        if kept is None:
            continue
        items.append((kept, str(context[key])[:MAX_CONTEXT_VALUE_CHARS]))
    return tuple(items)


def digits_or_text(text: str) -> str:
    """What a record hashes of a number with no E.164 form: the input's digits, else its
    text (a dial string without a digit); the export's number filter hashes the same."""
    digits = "".join(c for c in text if c.isdigit())
    return digits or text.strip()


def _number_masks(e164: str | None, number_input: str) -> tuple[str, ...]:
    """Substrings that reveal the number inside free text (context, trace)."""
    masks: set[str] = set()
    if e164:
        masks.add(e164)
        try:
            parsed = phonenumbers.parse(e164, None)
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is not None and len(str(parsed.national_number)) >= 6:
            masks.add(str(parsed.national_number))
    stripped = number_input.strip()
    if len(stripped) >= 4:
        masks.add(stripped)
    digits = digits_or_text(number_input)
    if len(digits) >= 6 and digits.isdigit():
        masks.add(digits)
    return tuple(sorted(masks, key=len, reverse=True))


def _mask(text: str, masks: tuple[str, ...]) -> str:
    for m in masks:
        text = text.replace(m, "<number>")
    return text
