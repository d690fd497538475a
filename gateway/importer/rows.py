"""Row converters: CSV fields -> the store's record types, with per-column problems."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.core.e164 import listed_fast
from gateway.core.model import CONTRACT_KINDS, ConsentRecord, ContractRecord
from gateway.core.numbers import InvalidNumber, parse_listed_number, parse_number
from gateway.importer.reader import (
    MAX_FIELD_CHARS,
    LineSource,
    Record,
    RowError,
    check_header,
    csv_records,
    first_line,
    plain_records,
)
from gateway.store import consent_pack
from gateway.store.base import OppositionRow

SOURCE_RE = re.compile(r"^[a-z0-9_-]{1,32}$")
_ID_RE = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces


class ImportKind(StrEnum):
    CONSENTS = "consents"
    CONTRACTS = "contracts"
    OPPOSITION = "opposition"


class FieldProblem(ValueError):
    def __init__(self, column: str | None, problem: str) -> None:
        super().__init__(problem)
        self.column = column
        self.problem = problem


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Converted(Generic[T]):
    record: T
    key: str  # what makes two rows "the same" (duplicates)
    without_proof: bool = False
    outside_metadata: bool = False  # a possible number phonenumbers calls invalid


@dataclass(frozen=True, slots=True)
class Spec(Generic[T]):
    kind: ImportKind
    required: tuple[str, ...]
    optional: tuple[str, ...]
    convert: Callable[[Mapping[str, str], str], Converted[T]]
    record_type: type[T]
    #: the spool form and back, when not the field values in declaration order
    packer: Callable[[T], tuple[Any, ...]] | None = None
    unpacker: Callable[[Any], T] | None = None

    def pack(self, record: T) -> tuple[Any, ...]:
        """Compact form for the spool (field values in declaration order)."""
        if self.packer is not None:
            return self.packer(record)
        names: tuple[str, ...] = getattr(type(record), "__slots__")  # noqa: B009 -- keeps mypy quiet on a TypeVar
        return tuple(getattr(record, name) for name in names)

    def unpack(self, values: tuple[Any, ...]) -> T:
        if self.unpacker is not None:
            return self.unpacker(values)
        return self.record_type(*values)


# --- field parsers -------------------------------------------------------------------


def _text(fields: Mapping[str, str], name: str, *, required: bool) -> str | None:
    value = fields.get(name, "")
    if len(value) > MAX_FIELD_CHARS:
        raise FieldProblem(name, f"longer than {MAX_FIELD_CHARS} characters")
    if not value:
        if required:
            raise FieldProblem(name, "empty (required)")
        return None
    return value


def _req(fields: Mapping[str, str], name: str) -> str:
    value = _text(fields, name, required=True)
    if value is None:  # pragma: no cover - _text(required=True) raised already
        raise FieldProblem(name, "empty (required)")
    return value


def parse_instant(value: str, column: str) -> datetime:
    """ISO-8601 with a UTC offset (``Z`` accepted); a naive time is an error."""
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise FieldProblem(column, f"not an ISO-8601 date-time: {value[:40]!r}") from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise FieldProblem(column, f"{value[:40]!r} has no UTC offset "
                           "(write e.g. 2026-09-01T10:00:00+02:00 or ...Z)")
    try:
        instant.astimezone(UTC)  # year 1 or 9999 with an offset may leave the calendar
    except OverflowError:
        raise FieldProblem(column, f"{value[:40]!r} is out of range in UTC") from None
    return instant


def _instant(fields: Mapping[str, str], name: str, *, required: bool) -> datetime | None:
    value = _text(fields, name, required=required)
    return None if value is None else parse_instant(value, name)


def _req_instant(fields: Mapping[str, str], name: str) -> datetime:
    return parse_instant(_req(fields, name), name)


def _e164(fields: Mapping[str, str], region: str) -> str:
    raw = _req(fields, "number")
    try:
        return parse_number(raw, default_region=region).e164
    except InvalidNumber as exc:
        raise FieldProblem("number", f"not a valid phone number ({exc})") from None


def _zone(fields: Mapping[str, str]) -> str | None:
    value = _text(fields, "timezone", required=False)
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldProblem("timezone", f"unknown IANA time zone {value[:40]!r}") from None
    return value


_DEPARTMENT_RE = re.compile(r"(?:FR-)?(0[1-9]|[1-8][0-9]|9[0-5]|2A|2B|97[1-6]|6AE)")


def _address_region(fields: Mapping[str, str]) -> str | None:
    """The French département of the consumer's address: ``67``, ``FR-67``, ``2A``, ``971``
    (``6AE``: the Collectivité européenne d'Alsace); stored without ``FR-``."""
    value = _text(fields, "address_region", required=False)
    if value is None:
        return None
    match = _DEPARTMENT_RE.fullmatch(value.strip().upper())
    if match is None:
        raise FieldProblem("address_region", f"not a French département code {value[:12]!r} "
                                             "(e.g. 67, FR-67, 2A, 971)")
    return match.group(1)


def _kind(fields: Mapping[str, str]) -> str:
    value = (_text(fields, "kind", required=False) or "purchase").strip().lower()
    if value not in CONTRACT_KINDS:
        raise FieldProblem("kind", f"one of {', '.join(sorted(CONTRACT_KINDS))}, "
                                   f"not {value[:20]!r}")
    return value


def _identifier(fields: Mapping[str, str], name: str) -> str | None:
    value = _text(fields, name, required=False)
    if value is not None and not _ID_RE.match(value):
        raise FieldProblem(name, "must be 1-128 printable ASCII characters without spaces")
    return value


def consent_id(e164: str, professional: str, category: str, collected_at: datetime,
               proof_ref: str) -> str:
    """Stable id of a consent without a ``consent_id`` column (same facts, same id)."""
    utc = collected_at.astimezone(UTC).isoformat()
    material = "\x1f".join((e164, professional, category, utc, proof_ref))
    return "c-" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:24]


# --- kinds ---------------------------------------------------------------------------


def _consent(fields: Mapping[str, str], region: str) -> Converted[ConsentRecord]:
    e164 = _e164(fields, region)
    professional = _req(fields, "professional")
    category = _req(fields, "product_category")
    collected = _req_instant(fields, "collected_at")
    expires = _req_instant(fields, "expires_at")
    channel = _req(fields, "channel")
    proof = _text(fields, "proof_ref", required=False) or ""
    withdrawn = _instant(fields, "withdrawn_at", required=False)
    zone = _zone(fields)
    slot_start = _instant(fields, "agreed_slot_start", required=False)
    slot_end = _instant(fields, "agreed_slot_end", required=False)
    centre = _text(fields, "call_centre", required=False)
    given_id = _identifier(fields, "consent_id")
    if expires < collected:
        raise FieldProblem("expires_at", "before collected_at")
    if withdrawn is not None and withdrawn < collected:
        raise FieldProblem("withdrawn_at", "before collected_at")
    if (slot_start is None) != (slot_end is None):
        missing = "agreed_slot_end" if slot_end is None else "agreed_slot_start"
        raise FieldProblem(missing, "an agreed slot needs both start and end")
    if slot_start is not None and slot_end is not None and slot_end <= slot_start:
        raise FieldProblem("agreed_slot_end", "not after agreed_slot_start")
    cid = given_id or consent_id(e164, professional, category, collected, proof)
    record = ConsentRecord(
        id=cid, e164=e164, professional=professional, product_category=category,
        collected_at=collected, expires_at=expires, channel=channel, proof_ref=proof,
        withdrawn_at=withdrawn, timezone=zone, agreed_slot_start=slot_start,
        agreed_slot_end=slot_end, call_centre=centre, address_region=_address_region(fields),
    )
    return Converted(record, f"{e164}\x1f{cid}", without_proof=not proof)


def _contract(fields: Mapping[str, str], region: str) -> Converted[ContractRecord]:
    e164 = _e164(fields, region)
    professional = _req(fields, "professional")
    category = _req(fields, "product_category")
    started = _req_instant(fields, "started_at")
    ends = _instant(fields, "ends_at", required=False)
    ref = _identifier(fields, "contract_ref")
    if ref is None:
        raise FieldProblem("contract_ref", "empty (required)")
    zone = _zone(fields)
    kind = _kind(fields)
    if ends is not None and ends < started:
        raise FieldProblem("ends_at", "before started_at")
    if kind == "inquiry" and ends is not None:
        raise FieldProblem("ends_at", "an inquiry is made at started_at and has no end")
    record = ContractRecord(id=ref, e164=e164, professional=professional,
                            product_category=category, started_at=started, ends_at=ends,
                            timezone=zone, kind=kind, address_region=_address_region(fields))
    return Converted(record, f"{e164}\x1f{ref}")


def _opposition(fields: Mapping[str, str], region: str) -> Converted[OppositionRow]:
    raw = _req(fields, "number")
    try:
        listed = listed_fast(raw) or parse_listed_number(raw, default_region=region)
    except InvalidNumber as exc:
        raise FieldProblem("number", f"not a possible phone number ({exc})") from None
    registered = _instant(fields, "registered_at", required=False)
    return Converted(OppositionRow(e164=listed.e164, registered_at=registered), listed.e164,
                     outside_metadata=not listed.valid)


CONSENTS: Spec[ConsentRecord] = Spec(
    ImportKind.CONSENTS,
    required=("number", "professional", "product_category", "collected_at", "expires_at",
              "channel"),
    optional=("proof_ref", "withdrawn_at", "timezone", "agreed_slot_start", "agreed_slot_end",
              "consent_id", "call_centre", "address_region"),
    convert=_consent,
    record_type=ConsentRecord,
    # encoded as the compact store layout keeps it but for the import's version and the
    # dictionary ids (consent_pack.Pre): the store's import only adds those
    packer=consent_pack.pre_encode,
    unpacker=consent_pack.pre_decode,
)
CONTRACTS: Spec[ContractRecord] = Spec(
    ImportKind.CONTRACTS,
    required=("number", "professional", "product_category", "started_at", "contract_ref"),
    optional=("ends_at", "timezone", "kind", "address_region"),
    convert=_contract,
    record_type=ContractRecord,
)
OPPOSITION: Spec[OppositionRow] = Spec(
    ImportKind.OPPOSITION,
    required=("number",),
    optional=("registered_at",),
    convert=_opposition,
    record_type=OppositionRow,
)


SPECS: dict[ImportKind, Spec[Any]] = {
    ImportKind.CONSENTS: CONSENTS,
    ImportKind.CONTRACTS: CONTRACTS,
    ImportKind.OPPOSITION: OPPOSITION,
}


class FileProblem(Exception):
    """The file as a whole is refused (empty, or its header): its problems."""

    def __init__(self, *errors: RowError) -> None:
        super().__init__(str(errors[0]))
        self.errors = errors


def file_records(lines: LineSource, spec: Spec[Any]) -> tuple[Iterator[Record], str]:
    """The file's records and its format (``plain``: an opposition list of one number a
    line, else ``csv``); raises :class:`FileProblem` for an empty file or a bad header."""
    first = first_line(lines)
    if first is None:
        raise FileProblem(RowError(0, None, "empty file (no header and no rows)"))
    if spec.kind is ImportKind.OPPOSITION and (first.cells is None or "number" not in first.cells):
        return plain_records(lines, first), "plain"
    if first.cells is None:
        raise FileProblem(RowError(first.line, None, "cannot read the CSV header"))
    problems = check_header(first.cells, required=spec.required, optional=spec.optional,
                            line=first.line)
    if problems:
        raise FileProblem(*problems)
    return csv_records(lines, first.cells, first.delimiter), "csv"


def check_source(source: str) -> str:
    if not SOURCE_RE.match(source):
        raise ValueError(
            f"opposition list name {source!r}: expected 1-32 of a-z, 0-9, '_' or '-'"
        )
    return source
