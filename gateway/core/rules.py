"""The rules, one function each, in the order the engine applies them.

Every rule returns a :class:`Outcome`: ``reason is None`` means the rule passes. A
blocking outcome says when its obstacle clears (``clears_at``), with :data:`UNKNOWN`
when nobody can know (a missing consent, an abandon rate) and :data:`AT_WINDOW` for
the calling windows themselves. Trace lines are plain language and never contain the
phone number.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Final, NamedTuple

from gateway.core.calendar import ZoneCheck, zone_info
from gateway.core.model import (
    Campaign,
    CampaignStats,
    ConsentRecord,
    ContractRecord,
    Facts,
    Reason,
    Suppression,
)
from gateway.core.numbers import InvalidNumber, parse_number
from gateway.core.pack import (
    AbandonSettings,
    CallerIdSettings,
    LegalBasisMode,
    Pack,
    WindowSettings,
)

__all__ = ["AT_WINDOW", "LAYER_RULES", "RULES", "UNKNOWN", "Context", "Outcome", "consent_state",
           "suppression_end"]


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


UNKNOWN: Final = _Marker("UNKNOWN")  # the obstacle has no knowable end
AT_WINDOW: Final = _Marker("AT_WINDOW")  # clears at the next legal window
_WITHHELD = frozenset({"", "anonymous", "withheld", "restricted", "private", "unknown"})
_REFUSALS = frozenset({"refused", "revoked"})
#: Suppressions a guaranteed live operator lifts (Ofcom persistent-misuse statement 2016)
_LIVE_AGENT_LIFTS = frozenset({"abandoned", "answering_machine"})
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class Outcome(NamedTuple):
    """One rule's answer (a named tuple: ten or more per decision, built cheaply)."""

    rule: str
    reason: Reason | None
    lines: tuple[str, ...]
    clears_at: datetime | _Marker | None = None


class Context(NamedTuple):
    """Everything the rules read; built once per decision by the engine (a named tuple:
    an overlay pack's rules read a copy with that pack, ``ctx._replace(pack=...)``)."""

    now: datetime
    campaign: Campaign
    pack: Pack
    facts: Facts
    caller_id: str | None
    region: str | None
    zones: tuple[str, ...]
    checks: tuple[ZoneCheck, ...]  # the calling windows seen from each zone at ``now``
    default_region: str
    matching_consents: tuple[ConsentRecord, ...]  # same professional and product category
    valid_consents: tuple[ConsentRecord, ...]  # of those, in force at ``now``
    contracts: tuple[ContractRecord, ...]  # contracts in progress, same professional+category
    recent_contracts: tuple[ContractRecord, ...] = ()  # every such contract, in progress or not
    # False: a passing rule may leave out lines that cost work (the brief decision of a
    # scrub, gateway/core/brief.py, shows no trace); the outcome's reason and end never change
    explain: bool = True


def _ok(rule: str, *lines: str) -> Outcome:
    return Outcome(rule, None, lines)


def add_years(instant: datetime, years: int) -> datetime:
    """Same date and wall-clock time ``years`` later; 29 February -> 28 February."""
    try:
        return instant.replace(year=instant.year + years)
    except ValueError:  # 29 February in a common year: the earlier day, the safe reading
        return instant.replace(year=instant.year + years, day=28)


def add_months(instant: datetime, months: int) -> datetime:
    """Same day and wall-clock time ``months`` calendar months later; a day the month does
    not have becomes its last day (31 August + 18 months -> 28 February): the earlier end."""
    index = instant.month - 1 + months
    year, month = instant.year + index // 12, index % 12 + 1
    day = min(instant.day, _month_days(year, month))
    return instant.replace(year=year, month=month, day=day)


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def consent_expiry(consent: ConsentRecord, pack: Pack) -> datetime | None:
    limit = pack.consent.max_validity_s
    capped = None if limit is None else consent.collected_at + timedelta(seconds=limit)
    years = pack.consent.max_validity_years
    if years is not None:
        by_calendar = add_years(consent.collected_at, years)
        capped = by_calendar if capped is None else min(capped, by_calendar)
    if consent.expires_at is None:
        return capped
    return consent.expires_at if capped is None else min(consent.expires_at, capped)


def consent_state(consent: ConsentRecord, pack: Pack, now: datetime) -> str:
    """'valid', 'future', 'withdrawn' or 'expired' at ``now``."""
    if consent.collected_at > now:
        return "future"
    if consent.withdrawn_at is not None and consent.withdrawn_at <= now:
        return "withdrawn"
    expiry = consent_expiry(consent, pack)
    if expiry is not None and expiry <= now:
        return "expired"
    return "valid"


# --- the rules ---------------------------------------------------------------------------


def rule_sector(ctx: Context) -> Outcome:
    sector = ctx.campaign.sector
    since = ctx.pack.sectors.banned_since(sector)
    if since is None or ctx.now < since:
        return _sector_free(sector)
    if ctx.pack.sectors.contract_exception and ctx.contracts:
        return _ok("sector", f"sector: {sector!r} is banned since {since.date()}, "
                             f"but contract {ctx.contracts[0].id} is in progress")
    return Outcome("sector", Reason.SECTOR_BANNED,
                   (f"sector: {sector!r} is banned since {since.date()}, even with consent",),
                   UNKNOWN)


@lru_cache(maxsize=64)
def _sector_free(sector: str) -> Outcome:
    return _ok("sector", f"sector: {sector!r} is not banned")


def _in_scope(scope: str, automated: bool) -> bool:
    return scope == "all" or (scope == "automated" and automated)


def rule_caller_id(ctx: Context) -> Outcome:
    return _caller_id(ctx.pack.caller_id, ctx.pack.id, ctx.campaign.automated, ctx.caller_id,
                      ctx.region, ctx.default_region)


@lru_cache(maxsize=1024)
def _caller_id(settings: CallerIdSettings, pack_id: str, automated: bool,
               caller_id: str | None, region: str | None, default_region: str) -> Outcome:
    """:func:`rule_caller_id` from what it reads (cached: a campaign presents one caller id
    to callees of a few regions)."""
    presented = (caller_id or "").strip()
    withheld = presented.lower() in _WITHHELD
    if withheld and settings.forbid_withheld and _in_scope(settings.withheld_applies_to,
                                                           automated):
        scope = ("every campaign" if settings.withheld_applies_to == "all"
                 else "automated campaigns")
        return _blocked_cli(f"caller id: withheld or empty, which is forbidden on {scope} "
                            f"under {pack_id} (FR: L.221-17 C. consom., no masked number)")
    if not _in_scope(settings.applies_to, automated):
        return _ok("caller_id", "caller id: presented; no range rule for this campaign "
                                "(not an automated dialer)")
    if withheld:
        return _ok("caller_id", "caller id: withheld (allowed by this pack)")
    national = settings.national_region or default_region
    try:
        cli = parse_number(presented, national).e164
    except InvalidNumber:
        return _blocked_cli(f"caller id: not a valid number (read with region {national})")
    for prefix in settings.forbidden_prefixes:
        if cli.startswith(prefix):
            return _blocked_cli(f"caller id: {cli} is in the forbidden range {prefix} (mobile)")
    ranges = settings.ranges_for(region)
    if ranges is not None and not any(cli.startswith(p) for p in ranges):
        return _blocked_cli(f"caller id: {cli} is not in the ranges reserved for callees "
                            f"of region {region}: {', '.join(ranges)}")
    return _ok("caller_id", f"caller id: {cli} is allowed for callees of region {region}")


def _blocked_cli(line: str) -> Outcome:
    return Outcome("caller_id", Reason.CALLER_ID_FORBIDDEN, (line,), UNKNOWN)


def _lifts(ctx: Context) -> dict[str, str]:
    """Opposition sources lifted for this call -> why (the pack's texts)."""
    settings = ctx.pack.opposition
    out: dict[str, str] = {}
    if ctx.valid_consents:
        for source in settings.lifted_by_consent:
            out[source] = f"consent {ctx.valid_consents[0].id} in force"
    lifting = _lifting_contract(ctx)
    if lifting is not None:
        for source in settings.lifted_by_contract:
            out.setdefault(source, lifting[1])
    if ctx.campaign.press:
        for source in settings.lifted_for_press:
            out.setdefault(source, "press subscription campaign")
    return out


def _lifting_contract(ctx: Context) -> tuple[ContractRecord, str] | None:
    """The contract (or inquiry) that lifts ``lifted_by_contract`` lists, and why: one in
    progress; one that ended less than the grace ago (US EBR: 18 months after the last
    purchase); an inquiry less than ``inquiry_grace_months`` ago (US EBR: 3 months)."""
    if ctx.contracts:
        return ctx.contracts[0], f"contract {ctx.contracts[0].id} in progress"
    settings = ctx.pack.opposition
    for record in ctx.recent_contracts:
        if record.started_at > ctx.now:
            continue
        if record.inquiry:
            months = settings.inquiry_grace_months
            if months and ctx.now < add_months(record.started_at, months):
                return record, (f"inquiry {record.id} of {record.started_at.date()}, less than "
                                f"{months} month(s) ago (established business relationship)")
            continue
        end = record.ends_at
        if end is None or not end <= ctx.now:
            continue
        until = _grace_end(end, settings.contract_grace_s, settings.contract_grace_months)
        if until is not None and ctx.now < until:
            return record, (f"contract {record.id} ended {end.date()}, within the grace that "
                            f"ends {until.isoformat()} (established business relationship)")
    return None


def _grace_end(end: datetime, seconds: int, months: int) -> datetime | None:
    ends = ([end + timedelta(seconds=seconds)] if seconds else []) + (
        [add_months(end, months)] if months else [])
    return min(ends) if ends else None


def rule_opposition(ctx: Context) -> Outcome:
    sources = ctx.pack.opposition.blocking_sources
    hits = sorted({e.source for e in ctx.facts.oppositions
                   if "*" in sources or e.source in sources})
    if not hits:  # most numbers: on no list, nothing lifted to explain
        return Outcome("opposition", None, ("opposition: on no blocking list",))
    lifts = _lifts(ctx)
    blocking = [h for h in hits if h not in lifts]
    notes = tuple(f"opposition: on list {h}, which does not forbid this call: {lifts[h]}"
                  for h in hits if h in lifts)
    if blocking:
        return Outcome("opposition", Reason.OPPOSITION,
                       (*notes, f"opposition: the number is on list(s) {', '.join(blocking)}"),
                       UNKNOWN)
    return _ok("opposition", *notes, "opposition: on no blocking list")


def rule_list_freshness(ctx: Context) -> Outcome:
    settings = ctx.pack.opposition
    if not settings.required_lists:
        return _ok("lists", "lists: no list must be fresh under this pack")
    known = {info.name: info for info in ctx.facts.lists}
    lifts = _lifts(ctx)
    lines, stale = [], False
    for name in settings.required_lists:
        source = name.split(":", 1)[1] if name.startswith("opposition:") else ""
        if source in lifts:
            lines.append(f"lists: {name} need not be fresh for this call ({lifts[source]})")
            continue
        info = known.get(name)
        if info is None:
            lines.append(f"lists: required list {name} was never imported")
            stale = True
            continue
        if info.imported_at > ctx.now:
            # a back-dated check: the version known now did not exist at that instant
            lines.append(f"lists: {name} v{info.version} was imported at "
                         f"{info.imported_at.isoformat()}, after this instant: not fresh for it")
            stale = True
            continue
        age_s = int((ctx.now - info.imported_at).total_seconds())
        fresh = age_s <= settings.max_list_age_s
        stale = stale or not fresh
        lines.append(f"lists: {name} v{info.version} is {age_s // 86400} day(s) old "
                     f"({'fresh' if fresh else 'stale'}, limit {settings.max_list_age_s // 86400})")
    return Outcome("lists", Reason.LIST_STALE if stale else None, tuple(lines),
                   UNKNOWN if stale else None)


def rule_legal_basis(ctx: Context) -> Outcome:
    pack, campaign = ctx.pack, ctx.campaign
    if pack.legal_basis.mode is LegalBasisMode.OPT_OUT:
        return _ok("legal_basis", "legal basis: opt-out regime, no consent needed")
    if campaign.press and pack.legal_basis.press_exempt:
        return _ok("legal_basis", "legal basis: press subscription campaign, exempt from consent")
    if pack.legal_basis.contract_exception and ctx.contracts:
        return _ok("legal_basis", f"legal basis: contract {ctx.contracts[0].id} in progress")
    if ctx.valid_consents:
        if not ctx.explain:
            return _CONSENT_IN_FORCE
        consent = ctx.valid_consents[0]
        return _ok("legal_basis", f"legal basis: consent {consent.id} collected "
                                  f"{consent.collected_at.isoformat()}, in force")
    others = len(ctx.facts.consents) - len(ctx.matching_consents)
    past = [c for c in ctx.matching_consents if c.collected_at <= ctx.now
            ] if ctx.matching_consents else []
    if not past:
        return _no_consent(campaign.professional, campaign.product_category, others)
    note = _others_note(others)
    latest = max(past, key=lambda c: (c.collected_at, c.id))
    state = consent_state(latest, pack, ctx.now)
    reason = Reason.CONSENT_REVOKED if state == "withdrawn" else Reason.CONSENT_EXPIRED
    when = latest.withdrawn_at if state == "withdrawn" else consent_expiry(latest, pack)
    moment = when.isoformat() if when is not None else "?"
    return Outcome("legal_basis", reason,
                   (f"legal basis: latest consent {latest.id} {state} at {moment}{note}",), UNKNOWN)


_CONSENT_IN_FORCE = Outcome("legal_basis", None, ())  # the passing outcome, unexplained


def _others_note(others: int) -> str:
    return (f"; {others} consent(s) for another professional or category do not count"
            if others else "")


@lru_cache(maxsize=256)
def _no_consent(professional: str, category: str, others: int) -> Outcome:
    return Outcome("legal_basis", Reason.NO_CONSENT,
                   (f"legal basis: no consent for {professional}/{category} and no contract "
                    f"in progress{_others_note(others)}",), UNKNOWN)


def rule_suppression(ctx: Context) -> Outcome:
    active: list[tuple[Suppression, datetime | None]] = []
    lifted = 0
    for s in ctx.facts.suppressions:
        if s.professional != ctx.campaign.professional or s.since > ctx.now:
            continue
        if s.reason in _LIVE_AGENT_LIFTS and ctx.campaign.live_agent_guaranteed:
            lifted += 1
            continue
        end = suppression_end(ctx.pack, s, ctx.valid_consents, ctx.zones)
        if end is None or ctx.now < end:
            active.append((s, end))
    note = ((f"suppression: {lifted} abandoned/answering-machine record(s) not applied: "
             "the campaign guarantees a live operator (Ofcom 2016)",) if lifted else ())
    if not active:
        return _ok("suppression", *note, "suppression: none active for this professional")
    lines = (*note, *(
        f"suppression: {s.reason} since {s.since.isoformat()}, "
        + (f"until {end.isoformat()}" if end else _endless(ctx.pack))
        + _SUPPRESSION_TEXTS.get(s.reason, "")
        for s, end in active
    ))
    ends = [end for _, end in active]
    clears: datetime | _Marker = UNKNOWN if None in ends else max(e for e in ends if e)
    return Outcome("suppression", Reason.REFUSAL_COOLDOWN, lines, clears)


def _endless(pack: Pack) -> str:
    if pack.refusal.permanent:
        return (f"for good under {pack.id} (US TSR 16 CFR 310.4(b)(1)(iii)(A): a "
                "company-specific do-not-call request does not expire)")
    return "until a new consent is collected"


_SUPPRESSION_TEXTS = {
    "abandoned": " (Ofcom 2016: no repeat call within 72 h of an abandoned call "
                 "without a guaranteed live operator)",
    "answering_machine": " (Ofcom 2016: 24 h after an answering machine was detected)",
}


def suppression_end(
    pack: Pack, s: Suppression, valid_consents: tuple[ConsentRecord, ...],
    zones: tuple[str, ...] = (),
) -> datetime | None:
    """When a suppression ends under ``pack``; None while it waits for a new consent.

    The one place a refusal/abandon cooldown is computed: the edges record what
    happened (reason, instant) and never an end of their own. A pack with
    ``cooldown_calendar_days`` counts a refusal's pause in full calendar days of the
    callee's clock: it ends at the local midnight after the N-th day following the day of
    the refusal (the latest over the candidate zones).
    """
    settings = pack.refusal
    if settings.permanent and s.reason in _REFUSALS:
        return None
    minimum = s.since + timedelta(seconds=settings.cooldown_for(s.reason))
    days = settings.cooldown_calendar_days
    if days is not None and s.reason in _REFUSALS:
        for zone in zones:
            tz = zone_info(zone)
            first_free = s.since.astimezone(tz).date() + timedelta(days=days + 1)
            minimum = max(minimum, datetime.combine(first_free, time(), tz))
    if s.reason in _REFUSALS and settings.until_new_consent:
        if any(c.collected_at > s.since for c in valid_consents):
            return minimum
        return None
    return minimum if s.until is None else max(s.until, minimum)


def rule_windows(ctx: Context) -> Outcome:
    lines = tuple(_zone_line(ctx.pack, c) for c in ctx.checks) if ctx.explain else ()
    if all(c.legal for c in ctx.checks):
        return Outcome("windows", None, lines)
    if ctx.pack.consent.agreed_slot_overrides_windows:
        for consent in ctx.valid_consents:
            start, end = consent.agreed_slot_start, consent.agreed_slot_end
            if start is not None and end is not None and start <= ctx.now < end:
                return Outcome("windows", None, (
                    *lines, f"windows: inside the slot agreed in consent {consent.id} "
                            f"({start.isoformat()} .. {end.isoformat()})"))
    reason = Reason.HOLIDAY if any(c.holiday for c in ctx.checks) else Reason.OUTSIDE_HOURS
    return Outcome("windows", reason, lines, AT_WINDOW)


@lru_cache(maxsize=256)
def _windows_text(windows: WindowSettings, weekday: int) -> str:
    return ", ".join(f"{_hms(s)}-{_hms(e)}" for s, e in windows.weekly[weekday]) or "none"


def _hms(second: int) -> str:
    text = f"{second // 3600:02d}:{second % 3600 // 60:02d}"
    return text + (f":{second % 60:02d}" if second % 60 else "")


def _zone_line(pack: Pack, check: ZoneCheck) -> str:
    # the line reads the local time to the second: the calls of one second (every lead of a
    # scrub) share it
    return _zone_text(pack.windows, check.zone, check.local.replace(microsecond=0),
                      check.holiday, check.in_window)


@lru_cache(maxsize=4096)
def _zone_text(windows: WindowSettings, zone: str, local: datetime, holiday: str | None,
               in_window: bool) -> str:
    weekday = local.weekday()
    day = _DAYS[weekday]
    head = f"windows: {zone} {day} {_wall_clock(local)} local"
    if holiday:
        return f"{head}: public holiday ({holiday})"
    verdict = "inside" if in_window else "outside"
    return f"{head}: {verdict} the {day} windows ({_windows_text(windows, weekday)})"


def _wall_clock(local: datetime) -> str:
    """``f"{local:%Y-%m-%d %H:%M:%S}"`` (isoformat is several times cheaper than strftime,
    and the same text from year 1000 on; strftime writes earlier years unpadded)."""
    if local.year < 1000:
        return f"{local:%Y-%m-%d %H:%M:%S}"
    return local.isoformat(" ", "seconds")[:19]


def rule_frequency(ctx: Context) -> Outcome:
    settings = ctx.pack.frequency
    window = timedelta(seconds=settings.window_s)
    # attempts after ``now`` (a back-dated check) had not happened yet: they do not count
    since = ctx.now - window
    recent = sorted(t for t in ctx.facts.attempts if since < t <= ctx.now
                    ) if ctx.facts.attempts else []
    if settings.max_attempts is None or len(recent) < settings.max_attempts:
        return _frequency_ok(len(recent), ctx.campaign.professional, settings.window_s,
                             settings.max_attempts)
    line = _frequency_line(len(recent), ctx.campaign.professional, settings.window_s,
                           settings.max_attempts)
    leaving = recent[len(recent) - settings.max_attempts]
    return Outcome("frequency", Reason.FREQUENCY_CAP,
                   (line, f"frequency: a slot frees at {(leaving + window).isoformat()}"),
                   leaving + window)


def _frequency_line(count: int, professional: str, window_s: int, limit: int) -> str:
    return (f"frequency: {count} earlier attempt(s) by {professional} in {window_s // 86400} "
            f"day(s), limit {limit}")


@lru_cache(maxsize=1024)
def _frequency_ok(count: int, professional: str, window_s: int, limit: int | None) -> Outcome:
    """The passing outcome (cached: a few attempt counts per campaign)."""
    if limit is None:
        return _ok("frequency", f"frequency: {count} attempt(s) in the window, no cap")
    return _ok("frequency", _frequency_line(count, professional, window_s, limit))


def rule_abandon(ctx: Context) -> Outcome:
    """Ofcom (3 % of live calls per campaign per 24 h) and the TSR (16 CFR 310.4(b)(4)(i):
    3 % per campaign per 30 days) know no minimum sample. The default ("floor") counts from
    the first answered call and never divides by fewer than ``min_answered`` calls: with
    20, the first abandon blocks until 34 calls were answered (1/34 < 3 %), so a campaign
    can never end a window above the ratio because it had few calls."""
    return _abandon(ctx.pack.abandon, ctx.facts.campaign)


@lru_cache(maxsize=1024)
def _abandon(settings: AbandonSettings, stats: CampaignStats) -> Outcome:
    """:func:`rule_abandon` from what it reads (cached: the campaign's counters are the same
    for many calls in a row, and for every lead of a scrub)."""
    window = f"{settings.window_s // 3600} h"
    if settings.small_sample == "skip" and stats.answered < settings.min_answered:
        return _ok("abandon", f"abandon: {stats.abandoned}/{stats.answered} answered calls, "
                              f"fewer than {settings.min_answered}: ratio not applied yet "
                              "(small_sample = skip, set by the operator)")
    base = max(stats.answered, settings.min_answered)
    ratio = stats.abandoned / base if base else 0.0
    floor = (f" (denominator floored at {settings.min_answered} answered calls)"
             if stats.answered < settings.min_answered else "")
    line = (f"abandon: {stats.abandoned} abandoned / {stats.answered} answered over {window}"
            f"{floor} = {ratio:.2%}, limit {settings.max_ratio:.2%}")
    if stats.abandoned > settings.max_ratio * base + 1e-9:  # float noise never blocks
        return Outcome("abandon", Reason.ABANDON_RATE, (line,), UNKNOWN)
    return _ok("abandon", line)


def rule_pacing(ctx: Context) -> Outcome:
    limit = ctx.campaign.max_attempts_per_minute
    if limit is None:
        limit = ctx.pack.pacing.default_max_attempts_per_minute
    seen = ctx.facts.campaign.attempts_last_minute
    if not ctx.explain and (limit is None or seen < limit):
        return _PACING_OK
    if limit is None:
        return _ok("pacing", f"pacing: {seen} attempt(s) in the last minute, no limit")
    line = f"pacing: {seen} attempt(s) in the last minute, limit {limit}"
    if seen >= limit:
        return Outcome("pacing", Reason.PACING, (line,), UNKNOWN)
    return _ok("pacing", line)


_PACING_OK = Outcome("pacing", None, ())  # the passing outcome, unexplained


#: What an overlay pack (a US state over US-FEDERAL) adds: its own opposition lists and
#: their freshness, its windows and its frequency cap. Everything else is the base pack's.
LAYER_RULES: tuple[Callable[[Context], Outcome], ...] = (
    rule_opposition,
    rule_list_freshness,
    rule_windows,
    rule_frequency,
)

#: The rule order (docs/policy.md explains it): the first blocking rule gives the reason.
RULES: tuple[Callable[[Context], Outcome], ...] = (
    rule_sector,
    rule_caller_id,
    rule_opposition,
    rule_list_freshness,
    rule_legal_basis,
    rule_suppression,
    rule_windows,
    rule_frequency,
    rule_abandon,
    rule_pacing,
)
