"""Callee numbers: normalisation to E.164 and candidate time zones.

Pure: only ``phonenumbers`` (offline metadata) and the standard library.

Two deliberate departures from a bare ``phonenumbers.parse`` (both documented in
docs/policy.md):

* **French overseas numbers written in national format.** In the French numbering
  plan, ``0596 30 12 34`` is a Martinique number (``+596 596 30 12 34``) and
  ``0262 ...`` a Réunion one. ``phonenumbers`` parses them with region ``FR`` as
  ``+33 596 ...`` -- some of which it even calls valid and places in
  ``Europe/Paris``, five hours off the callee's clock. Any number that parses
  with country code 33 and starts with an overseas national prefix
  (:data:`OVERSEAS_PREFIXES`) is rewritten to the overseas country code, provided
  the rewritten number is valid.
* **Only what a person writes for a phone number.** ``phonenumbers`` reads letters as
  keypad digits (``06 12 AB CD EF`` becomes ``+33612222333``) and extracts a number
  from surrounding text (``hello 0612345679``, ``0612345679 ext. 5``). Both would put a
  number nobody gave into a list or a decision, so :func:`check_characters` refuses
  anything but ASCII digits, one leading ``+`` and the separators of
  :data:`SEPARATORS` before ``phonenumbers`` sees the string.
* **Time zones.** ``'Etc/Unknown'`` never appears: a valid number whose prefix has
  no zone falls back to the zones of its region's example number; if that fails
  too the number is refused (the engine cannot check calling windows without the
  callee's clock).

The fast path (common French formats) is proven identical to the slow path by a
Hypothesis property test (tests/core/test_numbers.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import is_number_type_geographical
from phonenumbers import timezone as pn_timezone

__all__ = [
    "OVERSEAS_PREFIXES",
    "SEPARATORS",
    "InvalidNumber",
    "ListedNumber",
    "ParsedNumber",
    "check_characters",
    "parse_listed_number",
    "parse_number",
    "parse_number_slow",
]

#: Longest accepted raw input (characters). Anything longer is refused before parsing.
MAX_RAW_LENGTH = 64
#: Entries kept in the ``parse_number`` cache.
PARSE_CACHE_SIZE = 65536

_UNKNOWN_ZONE = "Etc/Unknown"
_INVALID = phonenumbers.PhoneNumberType.UNKNOWN  # number_type of an invalid number

#: Characters allowed in a written number besides ASCII digits and one leading ``+``:
#: space, tab, no-break spaces (U+00A0, U+202F: spreadsheets), ``.``, ``-``, ``/``
#: (``030/1234567``, German-speaking countries) and parentheses (``+33 (0)6 ...``).
SEPARATORS = " \t\u00a0\u202f.-/()"
_BLANKS = " \t\u00a0\u202f"
_TO_SPACE = str.maketrans({"\t": " ", "\u00a0": " ", "\u202f": " "})
_DIGIT_RE = re.compile(r"[0-9]")
_ALLOWED_RE = re.compile(r"[ \t\u00a0\u202f]*\+?[0-9 \t\u00a0\u202f./()\-]*")

#: French national significant-number prefixes (after the trunk ``0``) that belong to
#: overseas departments with their own country code (ARCEP national numbering plan).
OVERSEAS_PREFIXES: dict[str, int] = {
    "590": 590,  # Guadeloupe, Saint-Martin, Saint-Barthélemy fixed
    "690": 590,
    "691": 590,  # Guadeloupe & co. mobile
    "594": 594,  # Guyane fixed
    "694": 594,  # Guyane mobile
    "596": 596,  # Martinique fixed
    "696": 596,
    "697": 596,  # Martinique mobile
    "262": 262,
    "263": 262,  # Réunion fixed
    "692": 262,
    "693": 262,  # Réunion mobile
    "269": 262,  # Mayotte fixed
    "639": 262,  # Mayotte mobile
}


@dataclass(frozen=True, slots=True)
class ParsedNumber:
    """A valid callee number: E.164, region (ISO 3166 code) and candidate zones."""

    e164: str
    region: str | None
    zones: tuple[str, ...]  # IANA zones, sorted, never 'Etc/Unknown'


class InvalidNumber(ValueError):
    """The raw string is not a valid, dialable phone number."""


@dataclass(frozen=True, slots=True)
class ListedNumber:
    """A number of an opposition list: E.164, and whether phonenumbers calls it valid.

    ``valid=False``: the length is possible for its country code but phonenumbers'
    metadata knows no such range (a newly allocated one, or metadata older than the
    list). Opposition lists keep such numbers: blocking is the safe direction.
    """

    e164: str
    valid: bool


def check_characters(raw: str) -> None:
    """Refuse letters, text and symbols: only digits, one leading ``+`` and SEPARATORS.

    Raises :class:`InvalidNumber` naming the first offending character and its
    position (1-based), never echoing the rest of the string.
    """
    if len(raw) > MAX_RAW_LENGTH:
        raise InvalidNumber(f"longer than {MAX_RAW_LENGTH} characters")
    if _ALLOWED_RE.fullmatch(raw) is not None:
        if _DIGIT_RE.search(raw) is None:
            raise InvalidNumber("no digits")
        return
    started = False
    for i, ch in enumerate(raw, start=1):
        if "0" <= ch <= "9" or (ch in SEPARATORS and ch not in _BLANKS):
            started = True
        elif ch == "+":
            if started:
                raise InvalidNumber(f"'+' at character {i}: allowed only at the start")
            started = True
        elif ch in _BLANKS:
            continue
        elif ch.isalpha():
            raise InvalidNumber(
                f"letter {_show(ch)} at character {i}: letters are not part of a phone "
                "number (never read as keypad digits; no extensions or text)")
        else:
            raise InvalidNumber(
                f"character {_show(ch)} at character {i} is not allowed (digits, a leading "
                "'+', spaces, '.', '-', '/', '(' and ')' only)")
    raise InvalidNumber("not a phone number")  # pragma: no cover - the regex and loop agree


def _show(ch: str) -> str:
    return repr(ch) if ch.isprintable() and ch.isascii() else f"U+{ord(ch):04X}"


def parse_number(raw: str, default_region: str = "FR") -> ParsedNumber:
    """Normalise ``raw`` (national, +E.164, 00-prefixed, with separators).

    Raises :class:`InvalidNumber`. Results are cached (``PARSE_CACHE_SIZE``).
    """
    return _parse_cached(raw, default_region)


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse_cached(raw: str, default_region: str) -> ParsedNumber:
    check_characters(raw)
    if "\t" in raw or not raw.isascii():  # most numbers: nothing to translate
        raw = raw.translate(_TO_SPACE)
    fast = _parse_fast(raw, default_region)
    if fast is not None:
        return fast
    return parse_number_slow(raw, default_region)


# --- fast path -------------------------------------------------------------------

# 0X XX XX XX XX / +33 X XX XX XX XX / 0033 X XX XX XX XX, separators: one space, dot or
# dash between groups (or none). Anything else takes the slow path.
_FAST_RE = re.compile(
    r"(?P<prefix>\+33|0033|0)[ .-]?(?P<d1>[1-9])"
    r"[ .-]?(?P<g1>\d\d)[ .-]?(?P<g2>\d\d)[ .-]?(?P<g3>\d\d)[ .-]?(?P<g4>\d\d)",
    re.ASCII,
)
_PARIS: tuple[str, ...] = ("Europe/Paris",)
# 0X and at most seven more digits (a truncated French number, common in lead files), any
# of them after one space, dot or dash: the slow path says "not a valid number" for every
# such string (no French number is shorter than ten digits written nationally)
_SHORT_RE = re.compile(r"0[1-9](?:[ .-]?[0-9]){0,7}", re.ASCII)


def _parse_fast(raw: str, default_region: str) -> ParsedNumber | None:
    """French formats without phonenumbers' parser; None means 'use the slow path'."""
    text = raw.strip()
    m = _FAST_RE.fullmatch(text)
    if m is None:
        if default_region == "FR" and _SHORT_RE.fullmatch(text) is not None:
            raise InvalidNumber("not a valid number")  # the slow path's words
        return None
    if m["prefix"] != "+33" and default_region != "FR":
        return None  # '0...' and '0033...' are French dialling conventions only
    nsn = "".join(m.group("d1", "g1", "g2", "g3", "g4"))
    if nsn[:3] in OVERSEAS_PREFIXES:
        return None
    kind = _type_of(nsn, "FR")
    if kind == _INVALID:
        raise InvalidNumber("not a valid French number")
    if not is_number_type_geographical(kind, 33):  # mobiles: the zones of the type
        return ParsedNumber(e164="+33" + nsn, region="FR", zones=_type_zones(33, "FR", kind))
    num = phonenumbers.PhoneNumber(country_code=33, national_number=int(nsn))
    return ParsedNumber(e164="+33" + nsn, region="FR", zones=_zones_of(num, "FR", kind))


@lru_cache(maxsize=256)
def _type_zones(country_code: int, region: str, kind: int) -> tuple[str, ...]:
    """``_zones_of`` of a number of a non-geographical type: its country's zones, which
    read nothing of the number but its country code (cached per type)."""
    number = phonenumbers.PhoneNumber(country_code=country_code, national_number=0)
    return _zones_of(number, region, kind)


# --- slow path -------------------------------------------------------------------


def parse_number_slow(raw: str, default_region: str = "FR") -> ParsedNumber:
    """The reference implementation: ``phonenumbers`` plus the overseas rewrite."""
    check_characters(raw)
    try:
        num = phonenumbers.parse(raw.translate(_TO_SPACE), default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(str(exc)) from None
    if num.country_code == 33:
        num = _overseas_rewrite(num)
    region = phonenumbers.region_code_for_number(num)
    kind = (phonenumbers.number_type(num) if region in (None, "", "ZZ", "001")
            else _type_of(phonenumbers.national_significant_number(num), region))
    if kind == _INVALID:
        raise InvalidNumber("not a valid number")
    if region in (None, "", "ZZ", "001"):
        raise InvalidNumber("number has no geographic region")
    e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    return ParsedNumber(e164=e164, region=region, zones=_zones_of(num, region, kind))


def parse_listed_number(raw: str, default_region: str = "FR") -> ListedNumber:
    """An opposition-list number: every *possible* number is kept, valid or not.

    Same characters and the same normalisation as :func:`parse_number`; a number
    phonenumbers calls invalid is still accepted when its length is possible for its
    country code (``valid=False``). Consents and contracts use the strict
    :func:`parse_number`.
    """
    try:
        return ListedNumber(parse_number(raw, default_region).e164, True)
    except InvalidNumber as strict:
        check_characters(raw)  # never lenient about letters or text
        try:
            num = phonenumbers.parse(raw.translate(_TO_SPACE), default_region)
        except phonenumbers.NumberParseException:
            raise strict from None
        if num.country_code == 33:
            num = _overseas_rewrite(num)
        if not phonenumbers.is_possible_number(num):
            raise InvalidNumber(f"not a possible number (length {len(str(num.national_number))} "
                                f"for country code +{num.country_code})") from None
        return ListedNumber(phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164),
                            False)


def _overseas_rewrite(num: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber:
    nsn = str(num.national_number)
    cc = OVERSEAS_PREFIXES.get(nsn[:3])
    if cc is None or len(nsn) != 9:
        return num
    candidate = phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn))
    if phonenumbers.is_valid_number(candidate):
        return candidate
    return num


def _zones_of(num: phonenumbers.PhoneNumber, region: str, kind: int) -> tuple[str, ...]:
    """The zones of a valid number of type ``kind`` (``phonenumbers.number_type``)."""
    zones = _known(_time_zones(num, kind))
    if zones:
        return zones
    zones = region_fallback_zones(region)
    if zones:
        return zones
    raise InvalidNumber("no time zone known for this number")


@lru_cache(maxsize=512)
def region_fallback_zones(region: str) -> tuple[str, ...]:
    zones: set[str] = set()
    for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
        example = phonenumbers.example_number_for_type(region, kind)
        if example is not None:
            zones.update(_known(tuple(pn_timezone.time_zones_for_number(example))))
    return tuple(sorted(zones))


#: ``PhoneMetadata`` descriptions in the order phonenumbers tests them for a number's type
#: (``phonenumberutil._number_type_helper``), after the general description.
_TYPE_ORDER = (
    ("premium_rate", phonenumbers.PhoneNumberType.PREMIUM_RATE),
    ("toll_free", phonenumbers.PhoneNumberType.TOLL_FREE),
    ("shared_cost", phonenumbers.PhoneNumberType.SHARED_COST),
    ("voip", phonenumbers.PhoneNumberType.VOIP),
    ("personal_number", phonenumbers.PhoneNumberType.PERSONAL_NUMBER),
    ("pager", phonenumbers.PhoneNumberType.PAGER),
    ("uan", phonenumbers.PhoneNumberType.UAN),
    ("voicemail", phonenumbers.PhoneNumberType.VOICEMAIL),
)
_Desc = tuple[frozenset[int], re.Pattern[str]] | None  # (possible lengths, pattern)


def _desc(desc: object) -> _Desc:
    pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
    if not pattern:
        return None  # phonenumbers: an absent or empty pattern matches nothing
    return frozenset(getattr(desc, "possible_length", ()) or ()), re.compile(pattern)


def _matches(nsn: str, desc: _Desc) -> bool:
    if desc is None:
        return False
    lengths, pattern = desc
    return (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None


@lru_cache(maxsize=512)
def _types(region: str) -> tuple[_Desc, re.Pattern[str] | None, _Desc, _Desc, bool]:
    """One region's descriptions compiled once: (general, the typed ones as one pattern,
    fixed line, mobile, whether mobile and fixed line share a pattern)."""
    md = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    if md is None:
        return None, None, None, None, False
    return (_desc(md.general_desc), _typed(md), _desc(md.fixed_line), _desc(md.mobile),
            bool(md.same_mobile_and_fixed_line_pattern))


def _typed(md: phonenumbers.PhoneMetadata) -> re.Pattern[str] | None:
    """The typed descriptions (premium rate ... voicemail) as one alternation, in order, each
    a group named after its position in :data:`_TYPE_ORDER` and guarded by its possible
    lengths: a full match's ``lastgroup`` is the first type phonenumbers would find."""
    branches = []
    for i, (name, _) in enumerate(_TYPE_ORDER):
        desc = getattr(md, name)
        pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
        if not pattern:
            continue  # matches nothing
        lengths = list(getattr(desc, "possible_length", ()) or ())
        usable = [n for n in lengths if n > 0]
        if lengths and not usable:
            continue  # only -1: no number has this type
        guard = f"(?=(?:{'|'.join(f'[0-9]{{{n}}}' for n in usable)})\\Z)" if usable else ""
        branches.append(f"(?P<t{i}>{guard}(?:{pattern}))")
    return re.compile("|".join(branches)) if branches else None


def _type_of(nsn: str, region: str) -> int:
    """``phonenumbers.number_type`` of national significant number ``nsn`` of ``region``:
    the same tests in the same order, on patterns compiled once (phonenumbers looks each
    one up again per number; tests/core/test_numbers.py checks equality)."""
    general, typed, fixed, mobile, same = _types(region)
    if not _matches(nsn, general):
        return _INVALID
    found = typed.fullmatch(nsn) if typed is not None else None
    if found is not None and found.lastgroup is not None:
        return _TYPE_ORDER[int(found.lastgroup[1:])][1]
    if _matches(nsn, fixed):
        if same or _matches(nsn, mobile):
            return phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE
        return phonenumbers.PhoneNumberType.FIXED_LINE
    if not same and _matches(nsn, mobile):
        return phonenumbers.PhoneNumberType.MOBILE
    return _INVALID


def _time_zones(num: phonenumbers.PhoneNumber, kind: int) -> tuple[str, ...]:
    """``phonenumbers.timezone.time_zones_for_number(num)`` for a number whose type is
    known: the same two branches without computing the type a second time (the type is
    most of the cost of validating a number; tests/core/test_numbers.py checks equality)."""
    country_code = num.country_code or 0  # set on every parsed number
    if is_number_type_geographical(kind, country_code):
        return tuple(pn_timezone.time_zones_for_geographical_number(num))
    return _country_zones(country_code)


@lru_cache(maxsize=512)
def _country_zones(country_code: int) -> tuple[str, ...]:
    """Zones of a non-geographic number: those of its country calling code (the library's
    own country-level lookup, which reads nothing but the country code)."""
    number = phonenumbers.PhoneNumber(country_code=country_code, national_number=0)
    return tuple(pn_timezone._country_level_time_zones_for_number(number))


@lru_cache(maxsize=1024)
def _known(zones: tuple[str, ...]) -> tuple[str, ...]:
    """Sorted, without 'Etc/Unknown' (cached: phonenumbers hands out a few hundred tuples)."""
    return tuple(sorted(z for z in zones if z != _UNKNOWN_ZONE))
