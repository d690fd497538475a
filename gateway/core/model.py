"""Value types shared by the engine, the stores and the edges.

Everything here is immutable and I/O free. Instants are always timezone-aware
``datetime`` objects; durations are seconds (``_s``) unless a name says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from gateway.core.house import HouseRules


class Verdict(StrEnum):
    ALLOW = "ALLOW"
    BLOCK = "BLOCK"


class Reason(StrEnum):
    """Stable reason codes (the ``GW_REASON`` contract, README.md and docs/agi.md)."""

    OK = "ok"
    NO_CONSENT = "no_consent"
    CONSENT_EXPIRED = "consent_expired"
    CONSENT_REVOKED = "consent_revoked"
    OPPOSITION = "opposition"
    OUTSIDE_HOURS = "outside_hours"
    HOLIDAY = "holiday"
    FREQUENCY_CAP = "frequency_cap"
    REFUSAL_COOLDOWN = "refusal_cooldown"
    SECTOR_BANNED = "sector_banned"
    CALLER_ID_FORBIDDEN = "caller_id_forbidden"
    ABANDON_RATE = "abandon_rate"
    PACING = "pacing"
    INVALID_NUMBER = "invalid_number"
    LIST_STALE = "list_stale"
    CAMPAIGN_UNKNOWN = "campaign_unknown"
    CAMPAIGN_PAUSED = "campaign_paused"
    NO_POLICY = "no_policy"
    STORE_UNAVAILABLE = "store_unavailable"
    TIMEOUT = "timeout"


class FailMode(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class Campaign:
    """A dialling campaign, from the configuration file (``[campaigns.<id>]``)."""

    id: str
    professional: str
    product_category: str
    sector: str = "general"
    automated: bool = False
    caller_id: str | None = None
    jurisdiction: str = "FR"
    fail_mode: FailMode = FailMode.CLOSED
    shadow: bool = False
    paused: bool = False
    # L.223-5: newspaper / periodical subscriptions are exempt from consent (not from windows)
    press: bool = False
    # Pacing: most attempts the campaign may start in any rolling 60 s (None: no limit)
    max_attempts_per_minute: int | None = None
    call_centre: str | None = None
    # Ofcom 2016: a repeat call within 72 h of an abandoned call (24 h after an answering
    # machine) is allowed only with the guaranteed presence of a live operator
    live_agent_guaranteed: bool = False
    # L.223-1 (2026): a contract in progress covers offers related or complementary to its
    # object: the product categories of contracts this campaign's offer relates to
    related_categories: tuple[str, ...] = ()
    # House rules stricter than the pack (windows, abandon_limit, schedule): core/house.py
    house: HouseRules | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One outbound call attempt to screen."""

    number: str  # as the dialer gave it (national, +E.164, 00-prefixed, with spaces or dots)
    campaign_id: str
    caller_id: str | None = None  # presented number when the edge knows it; else the campaign's
    source: str = "agi"  # agi | ami | cli
    # Belt and braces (docs/ami.md): the AMI proxy screens an Originate and the FastAGI
    # screen of the carrier context screens the same call again. ``issue_prescreen``: the
    # proxy's screen leaves a one-shot token when it counts the attempt; ``prescreen_id``:
    # the FastAGI screen presents the proxy's decision id (GW_DECISION_ID). It is only a
    # claim: it counts only if the store holds a matching token (see Facts.prescreen).
    issue_prescreen: bool = False
    prescreen_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """A prior consent (opt-in), with what proves it."""

    id: str
    e164: str
    professional: str
    product_category: str
    collected_at: datetime
    expires_at: datetime | None
    channel: str
    proof_ref: str
    withdrawn_at: datetime | None = None
    timezone: str | None = None  # IANA zone of the customer's address; wins over the number
    agreed_slot_start: datetime | None = None  # an explicitly agreed date+time slot
    agreed_slot_end: datetime | None = None
    call_centre: str | None = None
    # French département of the customer's address ("67", "2A", "971"): says whether the
    # callee lives in Alsace-Moselle (its two extra holidays); wins over the number
    address_region: str | None = None


@dataclass(frozen=True, slots=True)
class ContractRecord:
    """A contract in progress (the exception to the consent requirement), or, with
    ``kind = "inquiry"``, the consumer's inquiry or application at ``started_at`` (US
    established business relationship: 3 months); an inquiry is never a contract."""

    id: str  # contract_ref
    e164: str
    professional: str
    product_category: str
    started_at: datetime
    ends_at: datetime | None = None
    timezone: str | None = None
    kind: str = "purchase"  # purchase | inquiry (CONTRACT_KINDS)
    address_region: str | None = None  # as ConsentRecord.address_region

    @property
    def inquiry(self) -> bool:
        return self.kind == "inquiry"


#: Kinds of contract records (the ``kind`` column of a contracts file).
CONTRACT_KINDS = frozenset({"purchase", "inquiry"})


@dataclass(frozen=True, slots=True)
class OppositionEntry:
    """The number is on the opposition list ``source`` (bloctel, internal, tps, ...)."""

    source: str
    registered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ListInfo:
    """Metadata of one imported list (an opposition source, consents or contracts)."""

    name: str  # e.g. "opposition:bloctel", "consents", "contracts"
    version: int
    imported_at: datetime
    size: int
    content_hash: str = ""


@dataclass(frozen=True, slots=True)
class Suppression:
    """A refusal / withdrawal suppression for one professional and one number."""

    professional: str
    since: datetime
    # an explicit end; None: the pack in force decides (rules.suppression_end: the pack's
    # cooldown for the reason, or until a later consent where the pack says so)
    until: datetime | None
    reason: str = "refused"  # refused | revoked | abandoned | wrong_number ...


@dataclass(frozen=True, slots=True)
class CampaignStats:
    """Live campaign counters shared by all gateway instances (from the store)."""

    answered: int = 0  # live-answered calls within the abandon window
    abandoned: int = 0  # of those, abandoned (not bridged to an agent in time)
    attempts_last_minute: int = 0  # for pacing


@dataclass(frozen=True, slots=True)
class Prescreen:
    """The AMI proxy's one-shot token for this call, consumed by this screen.

    The proxy's screen of the same call (``decision_id``) already counted the attempt:
    the store leaves that attempt out of ``Facts.attempts`` and of the pacing counter,
    and the service records no second attempt.
    """

    decision_id: str
    campaign_id: str  # the campaign the proxy screened the call for
    at: datetime  # when the proxy counted the attempt


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the store knows that matters to one attempt (one round trip)."""

    consents: tuple[ConsentRecord, ...] = ()
    contracts: tuple[ContractRecord, ...] = ()
    oppositions: tuple[OppositionEntry, ...] = ()
    lists: tuple[ListInfo, ...] = ()
    attempts: tuple[datetime, ...] = ()  # earlier attempts by the professional to this number
    suppressions: tuple[Suppression, ...] = ()
    campaign: CampaignStats = field(default_factory=CampaignStats)
    prescreen: Prescreen | None = None  # a matching proxy token, consumed by this read


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer. Outcomes are values: a blocked call is a Decision."""

    verdict: Verdict
    reason: Reason
    e164: str | None
    retry_after_s: int | None
    trace: tuple[str, ...]
    pack_id: str = ""
    pack_hash: str = ""
    zones: tuple[str, ...] = ()
    local_times: tuple[str, ...] = ()  # ISO instants in each candidate zone
    consent_id: str | None = None
    contract_id: str | None = None
    list_versions: tuple[tuple[str, int, int], ...] = ()  # (list name, version, age_s)
    attempts_seen: int = 0
    attempts_limit: int | None = None
    attempt_window_s: int | None = None  # the pack's frequency window (for reserving)
    # caps of the pack's layers (a US state over US-FEDERAL) in shorter windows than
    # ``attempt_window_s``: (window_s, limit), reserved atomically with it
    other_caps: tuple[tuple[int, int], ...] = ()
    house_rule: str | None = None  # the campaign's house rule that blocked (core/house.py)
    day_since: datetime | None = None  # max_attempts_per_day: start of the callee's day...
    day_limit: int | None = None  # ...and the cap the reservation enforces atomically

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW
