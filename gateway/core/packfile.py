"""Reading and validating policy pack files (TOML). Unknown keys are errors.

Every :class:`PolicyError` message reads ``<file>: [<section>] <key>: <problem>``.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from gateway.core.pack import (
    SECTORS,
    AbandonSettings,
    CallerIdSettings,
    ConsentSettings,
    FrequencySettings,
    HolidaySettings,
    LegalBasis,
    LegalBasisMode,
    OppositionSettings,
    PacingSettings,
    Pack,
    PolicyError,
    RefusalSettings,
    SectorSettings,
    WindowSettings,
)

__all__ = ["MAX_PACK_BYTES", "load_pack_bytes"]

#: Largest accepted pack file.
MAX_PACK_BYTES = 1_000_000

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE_RE = re.compile(r"(\d\d):(\d\d)(?::(\d\d))?-(\d\d):(\d\d)(?::(\d\d))?", re.ASCII)
_MONTH_DAY_RE = re.compile(r"(\d\d)-(\d\d)", re.ASCII)
_DAY_RE = re.compile(r"\d{4}-\d\d-\d\d", re.ASCII)
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)
_PREFIX_RE = re.compile(r"\+[1-9]\d{0,14}", re.ASCII)
_SECTIONS = (
    "pack", "windows", "holidays", "legal_basis", "consent", "opposition", "frequency",
    "refusal", "sectors", "caller_id", "abandon", "pacing",
)
_OPTIONAL_SECTIONS = frozenset({"consent", "opposition", "sectors", "caller_id", "pacing"})

T = TypeVar("T")


@dataclass
class _Section:
    """One TOML table being consumed; leftover keys are reported as unknown."""

    file: str
    name: str
    data: dict[str, Any]

    def fail(self, key: str, problem: str) -> PolicyError:
        where = f"[{self.name}] {key}" if key else f"[{self.name}]"
        return PolicyError(f"{self.file}: {where}: {problem}")

    def take(self, key: str, kind: type[T] | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "missing")
            return default
        value = self.data.pop(key)
        # bool is an int in Python: never accept one for the other
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise self.fail(key, f"expected {_kind_name(kind)}, got {type(value).__name__}")
        return value

    def sub(self, key: str) -> _Section:
        value = self.take(key, dict, {})
        return _Section(self.file, f"{self.name}.{key}", value)

    def done(self) -> None:
        if self.data:
            raise self.fail(", ".join(sorted(self.data)), "unknown key")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return {"str": "a string", "int": "an integer", "bool": "true/false", "dict": "a table",
            "list": "an array", "datetime": "an offset date-time"}.get(kind.__name__, kind.__name__)


def load_pack_bytes(data: bytes, name: str) -> Pack:
    """Parse and validate one pack; ``name`` is used in error messages."""
    if len(data) > MAX_PACK_BYTES:
        raise PolicyError(f"{name}: file larger than {MAX_PACK_BYTES} bytes")
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{name}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{name}: invalid TOML: {exc}") from None
    root = _Section(name, "", doc)
    unknown = sorted(set(doc) - set(_SECTIONS))
    if unknown:
        raise PolicyError(f"{name}: {', '.join(unknown)}: unknown section")
    secs = {}
    for sec in _SECTIONS:
        if sec not in doc and sec not in _OPTIONAL_SECTIONS:
            raise PolicyError(f"{name}: [{sec}]: missing section")
        secs[sec] = _Section(name, sec, root.take(sec, dict, {}))

    head = secs["pack"]
    pack_id = head.take("id", str)
    if not _ID_RE.fullmatch(pack_id):
        raise head.fail("id", "use letters, digits, '.', '_' or '-' (at most 64)")
    version = head.take("version", str)
    jurisdiction = head.take("jurisdiction", str)
    effective_from = _aware(head, "effective_from", head.take("effective_from", datetime))
    until_raw = head.take("effective_until", datetime, None)
    effective_until = None if until_raw is None else _aware(head, "effective_until", until_raw)
    if effective_until is not None and effective_until <= effective_from:
        raise head.fail("effective_until", "must be after effective_from")
    description = head.take("description", str, "")
    sources = tuple(_str_list(head, "sources", []))
    overlays = head.take("overlays", str, None)
    subdivisions = tuple(_str_list(head, "subdivisions", []))
    if (overlays is None) != (not subdivisions):
        raise head.fail("subdivisions", "an overlay pack needs both 'overlays' and "
                                        "'subdivisions' (and a plain pack neither)")
    head.done()

    pack = Pack(
        id=pack_id,
        version=version,
        jurisdiction=jurisdiction,
        effective_from=effective_from,
        effective_until=effective_until,
        content_hash=hashlib.sha256(data).hexdigest(),
        description=description,
        windows=_windows(secs["windows"]),
        holidays=_holidays(secs["holidays"]),
        legal_basis=_legal_basis(secs["legal_basis"]),
        consent=_consent(secs["consent"]),
        opposition=_opposition(secs["opposition"]),
        frequency=_frequency(secs["frequency"]),
        refusal=_refusal(secs["refusal"]),
        sectors=_sectors(secs["sectors"]),
        caller_id=_caller_id(secs["caller_id"]),
        abandon=_abandon(secs["abandon"]),
        pacing=_pacing(secs["pacing"]),
        source=name,
        overlays=overlays,
        subdivisions=subdivisions,
        sources=sources,
    )
    return pack


# --- sections ------------------------------------------------------------------------


def _windows(sec: _Section) -> WindowSettings:
    weekly: list[tuple[tuple[int, int], ...]] = []
    for day in _DAYS:
        ranges = [_time_range(sec, day, r) for r in _str_list(sec, day, [])]
        ranges.sort()
        for (_, end), (start, _) in itertools.pairwise(ranges):
            if start < end:
                raise sec.fail(day, "ranges overlap")
        weekly.append(tuple(ranges))
    sec.done()
    return WindowSettings(weekly=tuple(weekly))


def _time_range(sec: _Section, key: str, text: str) -> tuple[int, int]:
    m = _RANGE_RE.fullmatch(text)
    if m is None:
        raise sec.fail(key, f"{text!r}: expected 'HH:MM-HH:MM' (or 'HH:MM:SS' ends)")
    h1, m1, s1, h2, m2, s2 = (int(g or 0) for g in m.groups())
    if (h1 > 23 or m1 > 59 or m2 > 59 or s1 > 59 or s2 > 59 or h2 > 24
            or (h2 == 24 and (m2 or s2))):
        raise sec.fail(key, f"{text!r}: not a time of day")
    start, end = h1 * 3600 + m1 * 60 + s1, h2 * 3600 + m2 * 60 + s2
    if end <= start:
        raise sec.fail(key, f"{text!r}: end must be after start (ranges do not cross midnight)")
    return start, end


def _holidays(sec: _Section) -> HolidaySettings:
    block = sec.take("block", bool)
    country = sec.take("country", str, "")
    if block and not country:
        raise sec.fail("country", "required when block = true")
    zones_sec = sec.sub("zones")
    zones = []
    for zone in sorted(zones_sec.data):
        _check_zone(zones_sec, zone)
        zones.append((zone, tuple(_str_list(zones_sec, zone))))
    zones_sec.done()
    extra_sec = sec.sub("extra_dates")
    extra = []
    for subdivision in sorted(extra_sec.data):
        dates = tuple(_month_day(extra_sec, subdivision, t)
                      for t in _str_list(extra_sec, subdivision))
        extra.append((subdivision, dates))
    extra_sec.done()
    days_sec = sec.sub("extra_days")
    extra_days = []
    for subdivision in sorted(days_sec.data):
        days = tuple(sorted({_day(days_sec, subdivision, t)
                             for t in _str_list(days_sec, subdivision)}))
        extra_days.append((subdivision, days))
    days_sec.done()
    settings = HolidaySettings(
        block=block,
        country=country,
        zones=tuple(zones),
        alsace_moselle_for_metropolitan=sec.take("alsace_moselle_for_metropolitan", bool, True),
        alsace_moselle_subdivision=sec.take("alsace_moselle_subdivision", str, "57"),
        overseas_local_holidays=sec.take("overseas_local_holidays", bool, True),
        extra_dates=tuple(extra),
        extra_days=tuple(extra_days),
        law_dates_only=tuple(_str_list(sec, "law_dates_only", [])),
        subdivision=sec.take("subdivision", str, None),
    )
    sec.done()
    if settings.subdivision is not None and not block:
        raise sec.fail("subdivision", "needs block = true")
    if block:
        _check_holiday_country(sec, settings)
    if settings.subdivision is not None:  # only that subdivision's extras would be read
        for name, _ in (*settings.extra_dates, *settings.extra_days):
            if name != settings.subdivision:
                raise sec.fail("subdivision", f"extra dates for {name!r} would never apply "
                                              f"(only {settings.subdivision!r})")
    return settings


def _check_holiday_country(sec: _Section, settings: HolidaySettings) -> None:
    try:
        known = holidays.country_holidays(settings.country).subdivisions
    except NotImplementedError:
        raise sec.fail("country", f"{settings.country!r} unknown to the holidays library") from None
    used = {s for _, subs in settings.zones for s in subs if s != "metropolitan"}
    used |= {s for s, _ in settings.extra_dates if s != "metropolitan"}
    used |= {s for s, _ in settings.extra_days if s != "metropolitan"}
    if settings.subdivision is not None:
        used.add(settings.subdivision)
    metropolitan = any("metropolitan" in subs for _, subs in settings.zones)
    if settings.alsace_moselle_for_metropolitan and metropolitan:
        used.add(settings.alsace_moselle_subdivision)
    for subdivision in sorted(used - set(known)):
        key = "subdivision" if subdivision == settings.subdivision else "zones"
        raise sec.fail(key, f"{subdivision!r} is not a subdivision of {settings.country}")


def _legal_basis(sec: _Section) -> LegalBasis:
    mode_text = sec.take("mode", str)
    try:
        mode = LegalBasisMode(mode_text)
    except ValueError:
        raise sec.fail("mode", f"{mode_text!r}: expected 'opt_out' or 'opt_in'") from None
    out = LegalBasis(
        mode=mode,
        contract_exception=sec.take("contract_exception", bool, True),
        press_exempt=sec.take("press_exempt", bool, True),
    )
    sec.done()
    return out


def _consent(sec: _Section) -> ConsentSettings:
    out = ConsentSettings(
        max_validity_s=_seconds(sec, "max_validity_s", None),
        max_validity_years=_seconds(sec, "max_validity_years", None, positive=True),
        agreed_slot_overrides_windows=sec.take("agreed_slot_overrides_windows", bool, False),
    )
    sec.done()
    return out


def _opposition(sec: _Section) -> OppositionSettings:
    out = OppositionSettings(
        blocking_sources=tuple(_str_list(sec, "blocking_sources", ["*"])),
        required_lists=tuple(_str_list(sec, "required_lists", [])),
        max_list_age_s=_seconds(sec, "max_list_age_s", 30 * 86_400, positive=True),
        lifted_by_consent=tuple(_str_list(sec, "lifted_by_consent", [])),
        lifted_by_contract=tuple(_str_list(sec, "lifted_by_contract", [])),
        lifted_for_press=tuple(_str_list(sec, "lifted_for_press", [])),
        contract_grace_s=_seconds(sec, "contract_grace_s", 0),
        contract_grace_months=_seconds(sec, "contract_grace_months", 0),
        inquiry_grace_months=_seconds(sec, "inquiry_grace_months", 0),
    )
    sec.done()
    return out


def _frequency(sec: _Section) -> FrequencySettings:
    max_attempts = sec.take("max_attempts", int, None)
    if max_attempts is not None and max_attempts < 1:
        raise sec.fail("max_attempts", "must be at least 1 (omit the key for no cap)")
    out = FrequencySettings(max_attempts=max_attempts,
                            window_s=_seconds(sec, "window_s", positive=True))
    sec.done()
    return out


def _refusal(sec: _Section) -> RefusalSettings:
    cooldowns_sec = sec.sub("reason_cooldowns")
    cooldowns = tuple((r, _seconds(cooldowns_sec, r)) for r in sorted(cooldowns_sec.data))
    cooldowns_sec.done()
    out = RefusalSettings(
        cooldown_s=_seconds(sec, "cooldown_s"),
        until_new_consent=sec.take("until_new_consent", bool),
        reason_cooldowns=cooldowns,
        cooldown_calendar_days=_seconds(sec, "cooldown_calendar_days", None),
        permanent=sec.take("permanent", bool, False),
    )
    sec.done()
    return out


def _sectors(sec: _Section) -> SectorSettings:
    banned_sec = sec.sub("banned")
    for name in sorted(banned_sec.data):
        if name not in SECTORS:
            raise banned_sec.fail(name, f"unknown sector; one of {', '.join(sorted(SECTORS))}")
    banned = tuple(
        (name, _aware(banned_sec, name, banned_sec.take(name, datetime)))
        for name in sorted(banned_sec.data)
    )
    banned_sec.done()
    out = SectorSettings(banned=banned,
                         contract_exception=sec.take("contract_exception", bool, True))
    sec.done()
    return out


def _caller_id(sec: _Section) -> CallerIdSettings:
    applies_to = _scope(sec, "applies_to", "automated")
    withheld_scope = _scope(sec, "withheld_applies_to", "all")
    national = sec.take("national_region", str, None)
    if national is not None and not re.fullmatch(r"[A-Z]{2}", national):
        raise sec.fail("national_region", f"{national!r}: expected an ISO 3166 code such as 'GB'")
    ranges_sec = sec.sub("ranges")
    ranges = tuple((region, _prefixes(ranges_sec, region)) for region in sorted(ranges_sec.data))
    ranges_sec.done()
    default = _prefixes(sec, "default_ranges") if "default_ranges" in sec.data else None
    out = CallerIdSettings(
        applies_to=applies_to,
        forbid_withheld=sec.take("forbid_withheld", bool, True),
        withheld_applies_to=withheld_scope,
        national_region=national,
        forbidden_prefixes=_prefixes(sec, "forbidden_prefixes", []),
        ranges=ranges,
        default_ranges=default,
    )
    sec.done()
    return out


def _scope(sec: _Section, key: str, default: str) -> str:
    value: str = sec.take(key, str, default)
    if value not in ("automated", "all", "none"):
        raise sec.fail(key, f"{value!r}: expected 'automated', 'all' or 'none'")
    return value


def _abandon(sec: _Section) -> AbandonSettings:
    ratio = sec.take("max_ratio", (float, int))
    if not 0 <= ratio <= 1:
        raise sec.fail("max_ratio", "must be between 0 and 1")
    delay = sec.take("agent_delay_s", (float, int), 2.0)
    if delay <= 0:
        raise sec.fail("agent_delay_s", "must be positive")
    min_answered = sec.take("min_answered", int, 20)
    if min_answered < 1:
        raise sec.fail("min_answered", "must be at least 1")
    small_sample = sec.take("small_sample", str, "floor")
    if small_sample not in ("floor", "skip"):
        raise sec.fail("small_sample", f"{small_sample!r}: expected 'floor' or 'skip'")
    out = AbandonSettings(max_ratio=float(ratio), window_s=_seconds(sec, "window_s", positive=True),
                          agent_delay_s=float(delay), min_answered=min_answered,
                          small_sample=small_sample)
    sec.done()
    return out


def _pacing(sec: _Section) -> PacingSettings:
    limit = sec.take("default_max_attempts_per_minute", int, None)
    if limit is not None and limit < 1:
        raise sec.fail("default_max_attempts_per_minute", "must be at least 1 (omit: no limit)")
    sec.done()
    return PacingSettings(default_max_attempts_per_minute=limit)


# --- helpers -----------------------------------------------------------------------------


def _aware(sec: _Section, key: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise sec.fail(key, "needs a UTC offset (e.g. 2026-08-11T00:00:00+02:00)")
    return value


def _seconds(sec: _Section, key: str, default: Any = ..., *, positive: bool = False) -> Any:
    value = sec.take(key, int, default)
    if value is not None and (value < 0 or (positive and value == 0)):
        raise sec.fail(key, "must be positive" if positive else "must not be negative")
    return value


def _str_list(sec: _Section, key: str, default: Any = ...) -> list[str]:
    values = sec.take(key, list, default)
    for v in values:
        if not isinstance(v, str):
            raise sec.fail(key, "expected an array of strings")
    return list(values)


def _prefixes(sec: _Section, key: str, default: Any = ...) -> tuple[str, ...]:
    values = _str_list(sec, key, default)
    for v in values:
        if not _PREFIX_RE.fullmatch(v):
            raise sec.fail(key, f"{v!r}: expected an E.164 prefix such as '+33162'")
    return tuple(values)


def _month_day(sec: _Section, key: str, text: str) -> tuple[int, int]:
    m = _MONTH_DAY_RE.fullmatch(text)
    try:
        if m is None:
            raise ValueError(text)
        date(2001, int(m[1]), int(m[2]))  # a common year: 02-29 is refused
    except ValueError:
        raise sec.fail(key, f"{text!r}: expected 'MM-DD' (a date of every year)") from None
    return int(m[1]), int(m[2])


def _day(sec: _Section, key: str, text: str) -> date:
    try:
        if _DAY_RE.fullmatch(text) is None:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise sec.fail(key, f"{text!r}: expected 'YYYY-MM-DD' (one day)") from None


def _check_zone(sec: _Section, zone: str) -> None:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise sec.fail(zone, "unknown IANA time zone") from None
