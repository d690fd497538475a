"""Builders shared by the core tests (plain functions, no fixtures needed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.core.model import (
    Attempt,
    Campaign,
    CampaignStats,
    ConsentRecord,
    ContractRecord,
    Facts,
    ListInfo,
)
from gateway.core.policy import Policy
from gateway.packs import builtin_packs

PARIS = ZoneInfo("Europe/Paris")
UTC = ZoneInfo("UTC")
DAY = timedelta(days=1)

METRO_MOBILE = "06 12 34 56 78"
METRO_E164 = "+33612345678"
REUNION_FIXED = "+262 262 16 12 34"
RE_YT_MOBILE = "+262 692 12 34 56"
GUADELOUPE_FIXED = "+590 590 20 12 34"
MAYOTTE_FIXED = "+262 269 60 12 34"
METRO_CLI = "+33162000001"

BASE = Campaign(id="promo", professional="acme", product_category="telecom", sector="telecom",
                caller_id="+33162000001")  # L.221-17: every campaign presents a number


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def policy(**campaign_changes: Any) -> Policy:
    campaign = replace(BASE, **campaign_changes)
    return Policy(builtin_packs(), {campaign.id: campaign})


def attempt(number: str = METRO_MOBILE, caller_id: str | None = None) -> Attempt:
    return Attempt(number=number, campaign_id=BASE.id, caller_id=caller_id)


def consent(
    e164: str = METRO_E164,
    *,
    id: str = "c1",
    professional: str = "acme",
    category: str = "telecom",
    collected_at: datetime | None = None,
    expires_at: datetime | None = None,
    withdrawn_at: datetime | None = None,
    timezone: str | None = None,
    slot: tuple[datetime, datetime] | None = None,
) -> ConsentRecord:
    collected = collected_at or paris(2026, 9, 1, 12, 0)
    return ConsentRecord(
        id=id, e164=e164, professional=professional, product_category=category,
        collected_at=collected,
        expires_at=expires_at if expires_at is not None else collected + 300 * DAY,
        channel="web", proof_ref=f"proof-{id}", withdrawn_at=withdrawn_at, timezone=timezone,
        agreed_slot_start=slot[0] if slot else None, agreed_slot_end=slot[1] if slot else None,
    )


def contract(
    e164: str = METRO_E164, *, id: str = "k1", started_at: datetime | None = None,
    ends_at: datetime | None = None, category: str = "telecom", timezone: str | None = None,
) -> ContractRecord:
    return ContractRecord(id=id, e164=e164, professional="acme", product_category=category,
                          started_at=started_at or paris(2025, 1, 1, 0, 0), ends_at=ends_at,
                          timezone=timezone)


def fresh_lists(now: datetime, *names: str) -> tuple[ListInfo, ...]:
    names = names or ("opposition:bloctel", "opposition:tps", "opposition:ndnc")
    return tuple(ListInfo(name=n, version=7, imported_at=now - 2 * DAY, size=1000)
                 for n in names)


def facts(now: datetime, e164: str = METRO_E164, **changes: Any) -> Facts:
    """Permissive facts: a valid consent for acme/telecom and fresh opposition lists."""
    base = Facts(consents=(consent(e164),), lists=fresh_lists(now), campaign=CampaignStats())
    return replace(base, **changes)
