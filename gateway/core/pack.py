"""Policy pack value types (one TOML file = one :class:`Pack`).

Every section is a frozen, hashable dataclass so that derived data (holiday tables,
window lookups) can be cached per section. The file format is documented key by key
in docs/policy.md; parsing and validation live in :mod:`gateway.core.packfile`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

__all__ = [
    "AbandonSettings",
    "CallerIdSettings",
    "ConsentSettings",
    "FrequencySettings",
    "HolidaySettings",
    "LegalBasis",
    "LegalBasisMode",
    "OppositionSettings",
    "PacingSettings",
    "Pack",
    "PolicyError",
    "RefusalSettings",
    "SectorSettings",
    "WindowSettings",
]

DAY_S = 86_400

#: Every sector a campaign may declare (docs/policy.md lists them with the texts). A
#: campaign or a pack naming another value is refused: an unknown sector is never read as
#: "not banned".
SECTORS: dict[str, str] = {
    # banned in France even with consent (L.223-1 as amended; see the FR packs' sources)
    "energy_renovation": "energy renovation of housing (loi 2020-901)",
    "renewable_energy": "equipment producing renewable energy (loi 2020-901)",
    "home_adaptation": "adapting housing to age or disability (loi 2025-594)",
    "cpf_training": "training paid by the compte personnel de formation (loi 2022-1587)",
    # no ban of their own
    "general": "none of the sectors below",
    "telecom": "telephone, internet and TV subscriptions",
    "energy_supply": "electricity and gas supply contracts (not works or equipment)",
    "insurance": "insurance",
    "banking": "banking, credit and investment",
    "press": "newspapers and periodicals",
    "retail": "goods sold at a distance",
    "charity": "fundraising for charities",
    "training": "training not paid by the CPF",
    "real_estate": "real estate",
    "automotive": "vehicles and their services",
    "health": "health products and services",
    "utilities_other": "water, waste and other utility services",
}


class PolicyError(ValueError):
    """A policy file (or set of packs) is invalid; the message names file, key, problem."""


class LegalBasisMode(StrEnum):
    OPT_OUT = "opt_out"  # callable unless on an opposition list (Bloctel era, UK, US)
    OPT_IN = "opt_in"  # prior consent or contract in progress required (FR from 2026-08-11)


@dataclass(frozen=True, slots=True)
class WindowSettings:
    """Calling windows in the callee's local time: ``weekly[weekday]`` = ((start_s, end_s), ...).

    Seconds since local midnight, half-open ``[start, end)``; weekday 0 = Monday.
    """

    weekly: tuple[tuple[tuple[int, int], ...], ...]


@dataclass(frozen=True, slots=True)
class HolidaySettings:
    block: bool
    country: str = ""  # ISO code understood by the `holidays` library
    # zone -> holiday subdivisions of the territories using that zone ("metropolitan": none)
    zones: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # [U] Alsace-Moselle's Good Friday and 26 Dec for every metropolitan number
    alsace_moselle_for_metropolitan: bool = True
    alsace_moselle_subdivision: str = "57"
    # [U] local public holidays of overseas territories (slavery-abolition days, ...)
    overseas_local_holidays: bool = True
    # subdivision -> extra (month, day) dates always blocked
    extra_dates: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()
    # subdivision -> extra single days (one year each: a moving or proclaimed holiday the
    # library lacks), applied like ``extra_dates``
    extra_days: tuple[tuple[str, tuple[date, ...]], ...] = ()
    # subdivisions whose local holidays are only their ``extra_dates`` (what the law gives
    # them), not the holidays library's customary days (Mi-Carême, Good Friday, 21 July)
    law_dates_only: tuple[str, ...] = ()
    # a state layer: the holidays of this one subdivision (the library's table of
    # ``country`` + ``subdivision``, national days included, plus its ``extra_dates`` and
    # ``extra_days``)
    # block calls to every callee the layer applies to, whatever the zone
    subdivision: str | None = None

    def subdivisions_for(self, zone: str) -> tuple[str, ...] | None:
        """Subdivisions mapped to ``zone``; None when the zone is unmapped."""
        for name, subdivisions in self.zones:
            if name == zone:
                return subdivisions
        return None


@dataclass(frozen=True, slots=True)
class LegalBasis:
    mode: LegalBasisMode
    contract_exception: bool = True  # a contract in progress is a legal basis
    press_exempt: bool = True  # L.223-5: campaign.press needs no consent (still windows)


@dataclass(frozen=True, slots=True)
class ConsentSettings:
    max_validity_s: int | None = None  # consent lasts at most this long after collected_at
    # ... and at most this many calendar years (same date and time; 29 Feb -> 28 Feb)
    max_validity_years: int | None = None
    agreed_slot_overrides_windows: bool = False  # an agreed slot is the way outside windows


@dataclass(frozen=True, slots=True)
class OppositionSettings:
    blocking_sources: tuple[str, ...] = ("*",)  # "*" = every source blocks
    required_lists: tuple[str, ...] = ()  # list names ("opposition:bloctel") that must be fresh
    max_list_age_s: int = 30 * DAY_S
    # opposition sources that do not block (and whose list need not be fresh) when ...
    lifted_by_consent: tuple[str, ...] = ()  # ... a valid consent of the professional exists
    lifted_by_contract: tuple[str, ...] = ()  # ... a contract is in progress (or recent)
    lifted_for_press: tuple[str, ...] = ()  # ... the campaign sells press subscriptions
    # a contract still lifts them this long after it ended (US EBR: 18 months after a purchase)
    contract_grace_s: int = 0
    contract_grace_months: int = 0  # ... or this many calendar months (both set: the shorter)
    # an inquiry record (ContractRecord.kind = "inquiry") lifts them this many calendar
    # months after it was made (US EBR: 3 months after an inquiry or application); 0: never
    inquiry_grace_months: int = 0


@dataclass(frozen=True, slots=True)
class FrequencySettings:
    max_attempts: int | None  # None: no cap
    window_s: int


@dataclass(frozen=True, slots=True)
class RefusalSettings:
    cooldown_s: int  # minimum suppression after a refusal (and for unlisted reasons)
    until_new_consent: bool  # refusals/revocations last until a later consent
    reason_cooldowns: tuple[tuple[str, int], ...] = ()  # suppression reason -> minimum
    # refusals/revocations: at least this many *full calendar days* after the day of the
    # refusal, in the callee's zone(s) (FR D.223-9 2022 text: "soixante jours calendaires
    # révolus"); None: seconds only
    cooldown_calendar_days: int | None = None
    # refusals/revocations never end, not even with a later consent (US TSR
    # 16 CFR 310.4(b)(1)(iii)(A): a company-specific do-not-call request has no expiry)
    permanent: bool = False

    def cooldown_for(self, reason: str) -> int:
        for name, seconds in self.reason_cooldowns:
            if name == reason:
                return seconds
        return self.cooldown_s


@dataclass(frozen=True, slots=True)
class SectorSettings:
    banned: tuple[tuple[str, datetime], ...] = ()  # sector -> banned since
    contract_exception: bool = True  # a contract in progress lifts the ban

    def banned_since(self, sector: str) -> datetime | None:
        for name, since in self.banned:
            if name == sector:
                return since
        return None


@dataclass(frozen=True, slots=True)
class CallerIdSettings:
    applies_to: str = "automated"  # ranges/prefixes: "automated" campaigns only, "all", "none"
    forbid_withheld: bool = True
    # the no-masking rule has its own scope (FR L.221-17: every prospecting call)
    withheld_applies_to: str = "all"
    # ISO region to read a caller id written nationally (None: the policy's default region)
    national_region: str | None = None
    forbidden_prefixes: tuple[str, ...] = ()  # E.164 prefixes never presented (mobiles)
    ranges: tuple[tuple[str, tuple[str, ...]], ...] = ()  # callee region -> E.164 prefixes
    default_ranges: tuple[str, ...] | None = None  # other callee regions; None: no constraint

    def ranges_for(self, region: str | None) -> tuple[str, ...] | None:
        for name, prefixes in self.ranges:
            if name == region:
                return prefixes
        return self.default_ranges


@dataclass(frozen=True, slots=True)
class AbandonSettings:
    max_ratio: float = 0.03
    window_s: int = DAY_S
    agent_delay_s: float = 2.0
    # the ratio's denominator is never below this: abandons > max_ratio x max(answered, N)
    min_answered: int = 20
    # "floor" (lawful default): counted from the first answered call with the floor above;
    # "skip": the old reading, no limit before min_answered answered calls (knowingly)
    small_sample: str = "floor"


@dataclass(frozen=True, slots=True)
class PacingSettings:
    default_max_attempts_per_minute: int | None = None  # when the campaign sets none


@dataclass(frozen=True, slots=True)
class Pack:
    """One policy pack: the rules of one jurisdiction for one period of time."""

    id: str
    version: str
    jurisdiction: str
    effective_from: datetime  # inclusive
    effective_until: datetime | None  # exclusive; None: open-ended
    content_hash: str  # sha256 hex of the file bytes
    description: str
    windows: WindowSettings
    holidays: HolidaySettings
    legal_basis: LegalBasis
    consent: ConsentSettings
    opposition: OppositionSettings
    frequency: FrequencySettings
    refusal: RefusalSettings
    sectors: SectorSettings
    caller_id: CallerIdSettings
    abandon: AbandonSettings
    pacing: PacingSettings
    source: str = ""  # file name the pack was read from
    # a layer: applies *with* the pack of jurisdiction ``overlays`` to callees of one of
    # ``subdivisions`` (US state packs over US-FEDERAL); both must allow the call
    overlays: str | None = None
    subdivisions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # the texts the pack encodes (statute, article, date)

    def in_force_at(self, at: datetime) -> bool:
        if at < self.effective_from:
            return False
        return self.effective_until is None or at < self.effective_until
