"""Encoding of store values (compact JSON, UTC instants) and rules shared by both stores.

No pickling: records are compact JSON objects with short keys; instants are UTC ISO-8601
strings in records and integer epoch milliseconds in sorted-set scores. Everything read
back is a timezone-aware UTC ``datetime``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.core.model import ConsentRecord, ContractRecord, ListInfo, Suppression
from gateway.store.keys import ALL_PROFESSIONALS, WITHDRAWALS_KEPT

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def require_aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")
    return value


def to_ms(value: datetime) -> int:
    """Epoch milliseconds (floor) of an aware instant."""
    require_aware(value, "instant")
    return (value - _EPOCH) // _MS


def from_ms(ms: int | float) -> datetime:
    return _EPOCH + int(ms) * _MS


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return require_aware(value, "instant").astimezone(UTC).isoformat()


def parse_iso(value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    return datetime.fromisoformat(value).astimezone(UTC)


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in obj.items() if v is not None}, separators=(",", ":"))


# --- records ----------------------------------------------------------------------


def encode_consent(r: ConsentRecord) -> str:
    return _dumps({
        "p": r.professional, "c": r.product_category, "at": iso(r.collected_at),
        "exp": iso(r.expires_at), "ch": r.channel, "pr": r.proof_ref, "wd": iso(r.withdrawn_at),
        "tz": r.timezone, "ss": iso(r.agreed_slot_start), "se": iso(r.agreed_slot_end),
        "cc": r.call_centre, "rg": r.address_region,
    })


def decode_consent(e164: str, consent_id: str, raw: str) -> ConsentRecord:
    d = json.loads(raw)
    collected = parse_iso(d["at"])
    assert collected is not None  # noqa: S101 -- written by encode_consent, never empty
    return ConsentRecord(
        id=consent_id, e164=e164, professional=d["p"], product_category=d["c"],
        collected_at=collected, expires_at=parse_iso(d.get("exp")), channel=d["ch"],
        proof_ref=d["pr"], withdrawn_at=parse_iso(d.get("wd")), timezone=d.get("tz"),
        agreed_slot_start=parse_iso(d.get("ss")), agreed_slot_end=parse_iso(d.get("se")),
        call_centre=d.get("cc"), address_region=d.get("rg"),
    )


def encode_contract(r: ContractRecord) -> str:
    return _dumps({
        "p": r.professional, "c": r.product_category, "at": iso(r.started_at),
        "end": iso(r.ends_at), "tz": r.timezone, "rg": r.address_region,
        "k": None if r.kind == "purchase" else r.kind,  # absent: a purchase (older records)
    })


def decode_contract(e164: str, contract_id: str, raw: str) -> ContractRecord:
    d = json.loads(raw)
    started = parse_iso(d["at"])
    assert started is not None  # noqa: S101 -- written by encode_contract, never empty
    return ContractRecord(
        id=contract_id, e164=e164, professional=d["p"], product_category=d["c"],
        started_at=started, ends_at=parse_iso(d.get("end")), timezone=d.get("tz"),
        kind=d.get("k", "purchase"), address_region=d.get("rg"),
    )


def encode_suppression(s: Suppression) -> str:
    return _dumps({
        "p": s.professional, "since": iso(s.since), "until": iso(s.until), "r": s.reason,
    })


def decode_suppression(raw: str) -> Suppression:
    d = json.loads(raw)
    since = parse_iso(d["since"])
    assert since is not None  # noqa: S101 -- written by encode_suppression, never empty
    return Suppression(
        professional=d["p"], since=since, until=parse_iso(d.get("until")), reason=d["r"]
    )


def validate_consent(r: ConsentRecord) -> None:
    if not r.e164 or not r.id:
        raise ValueError("consent record without number or id")
    for name in ("collected_at", "expires_at", "withdrawn_at", "agreed_slot_start",
                 "agreed_slot_end"):
        value = getattr(r, name)
        if value is not None:
            require_aware(value, f"consent {name}")


def validate_contract(r: ContractRecord) -> None:
    if not r.e164 or not r.id:
        raise ValueError("contract record without number or id")
    require_aware(r.started_at, "contract started_at")
    if r.ends_at is not None:
        require_aware(r.ends_at, "contract ends_at")


def normalise_consent(r: ConsentRecord) -> ConsentRecord:
    """What a round trip through the store gives back (UTC instants)."""
    return decode_consent(r.e164, r.id, encode_consent(r))


def normalise_contract(r: ContractRecord) -> ContractRecord:
    return decode_contract(r.e164, r.id, encode_contract(r))


# --- withdrawals --------------------------------------------------------------------


def append_withdrawal(current: str | None, at: datetime) -> str:
    """Same as the WITHDRAW Lua script: append, keep the last ``WITHDRAWALS_KEPT``."""
    items = [x for x in (current or "").split(",") if x]
    items.append(iso(at) or "")
    return ",".join(items[-WITHDRAWALS_KEPT:])


def parse_withdrawals(raw: str | None) -> list[datetime]:
    return [d for d in (parse_iso(x) for x in (raw or "").split(",") if x) if d is not None]


def apply_withdrawals(
    consent: ConsentRecord, withdrawals: Mapping[str, Iterable[datetime]]
) -> ConsentRecord:
    """A consent collected at or before a withdrawal (of its professional, or of all)
    is withdrawn at the earliest such withdrawal, unless the record already says so."""
    if consent.withdrawn_at is not None:
        return consent
    candidates = [
        w for key in (consent.professional, ALL_PROFESSIONALS)
        for w in withdrawals.get(key, ()) if w >= consent.collected_at
    ]
    if not candidates:
        return consent
    return dataclasses.replace(consent, withdrawn_at=min(candidates))


def withdrawal_applies(consent: ConsentRecord, professional: str | None, at: datetime) -> bool:
    return (
        consent.withdrawn_at is None
        and (professional is None or consent.professional == professional)
        and consent.collected_at <= at
    )


# --- list metadata -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListMeta:
    """Versions of one list, as stored in ``dg:lists`` (see keys.py)."""

    name: str
    version: int = 0
    base: int = 0
    seq: int = 0
    imported_at_ms: int = 0
    size: int = 0
    content_hash: str = ""
    pending: tuple[tuple[int, int], ...] = ()
    aborted: tuple[int, ...] = ()
    # compact opposition lists: live generations, retired ones awaiting deletion
    # ([generation, retired at ms]) and the count of numbers added one by one
    gens: tuple[int, ...] = ()
    retired: tuple[tuple[int, int], ...] = ()
    individual: int = 0

    @classmethod
    def from_json(cls, name: str, raw: str) -> ListMeta:
        d = json.loads(raw)
        pending = d.get("pending") or []
        aborted = d.get("aborted") or []
        gens = d.get("gens") or []
        retired = d.get("retired") or []
        return cls(
            name=name, version=int(d.get("version", 0)), base=int(d.get("base", 0)),
            seq=int(d.get("seq", 0)), imported_at_ms=int(d.get("imported_at", 0)),
            size=int(d.get("size", 0)), content_hash=str(d.get("hash", "")),
            pending=tuple((int(p[0]), int(p[1])) for p in pending) if isinstance(pending, list)
            else (),
            aborted=tuple(int(a) for a in aborted) if isinstance(aborted, list) else (),
            gens=tuple(int(g) for g in gens) if isinstance(gens, list) else (),
            retired=tuple((int(r[0]), int(r[1])) for r in retired)
            if isinstance(retired, list) else (),
            individual=int(d.get("individual", 0)),
        )

    @property
    def committed(self) -> bool:
        return self.version > 0

    def excluded(self) -> str:
        """Pending and aborted versions as ``,3,5,`` (the form the Lua scripts take)."""
        versions = [p[0] for p in self.pending] + list(self.aborted)
        return "," + ",".join(str(v) for v in versions) + ","

    def live(self, version: int) -> bool:
        return (
            self.base <= version <= self.version
            and version > 0
            and version not in self.aborted
            and all(p[0] != version for p in self.pending)
        )

    def info(self) -> ListInfo:
        return ListInfo(
            name=self.name, version=self.version, imported_at=from_ms(self.imported_at_ms),
            size=self.size + self.individual, content_hash=self.content_hash,
        )
