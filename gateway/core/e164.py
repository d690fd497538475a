"""Fast path for opposition-list numbers already written in E.164 (``+33612345678``).

Pure (phonenumbers' metadata and the standard library). ``phonenumbers.is_valid_number``
costs tens of microseconds per number; a national-scale list needs a few. For a country
code served by a single region, validity is "the national number matches the general
description and one of the type descriptions (with their possible lengths)": the same
metadata compiled once into one regular expression per country code.

:func:`listed_fast` returns ``None`` whenever it cannot prove the slow path's answer
(several regions per country code, a national number that starts like the national
prefix, French overseas prefixes, a region without time-zone fallback); the Hypothesis
property in tests/core/test_e164.py checks equality with
:func:`gateway.core.numbers.parse_listed_number`.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from gateway.core.numbers import OVERSEAS_PREFIXES, ListedNumber, region_fallback_zones

__all__ = ["listed_fast"]

_E164_RE = re.compile(r"\+([1-9][0-9]{5,15})", re.ASCII)
_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager",
          "uan", "voicemail", "fixed_line")


def _desc_re(desc: object) -> str | None:
    """One description as a regex (lengths as a lookahead); None if it matches nothing."""
    pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
    if not pattern:
        return None
    lengths = list(getattr(desc, "possible_length", ()) or ())
    length = "|".join(rf"[0-9]{{{n}}}\Z" for n in lengths if n > 0)
    guard = f"(?={length})" if lengths else ""
    if lengths and not length:
        return None  # only -1: the description has no numbers
    return f"{guard}(?:{pattern})\\Z"


class _Country:
    __slots__ = ("cc", "lengths", "prefix", "valid")

    def __init__(self, cc: int, md: PhoneMetadata) -> None:
        self.cc = cc
        general = md.general_desc
        assert general is not None  # noqa: S101 -- every region's metadata has one
        self.lengths = frozenset(n for n in (*general.possible_length,
                                             *general.possible_length_local_only) if n > 0)
        npfp = md.national_prefix_for_parsing
        self.prefix = re.compile(npfp) if npfp else None
        gen = _desc_re(general)
        types = [_desc_re(getattr(md, name)) for name in _TYPES]
        if not md.same_mobile_and_fixed_line_pattern:
            types.append(_desc_re(md.mobile))
        alternatives = [t for t in types if t is not None]
        self.valid = (re.compile(f"(?={gen})(?:{'|'.join(alternatives)})")
                      if gen is not None and alternatives else None)


@lru_cache(maxsize=1024)
def _country(cc: int) -> _Country | None:
    regions = COUNTRY_CODE_TO_REGION_CODE.get(cc)
    if not regions or len(regions) != 1 or regions[0] == "001":
        return None
    md = PhoneMetadata.metadata_for_region(regions[0], None)
    if md is None or not region_fallback_zones(regions[0]):
        return None
    return _Country(cc, md)


def listed_fast(raw: str) -> ListedNumber | None:
    """``parse_listed_number(raw)`` for canonical E.164 input, or None (use it)."""
    m = _E164_RE.fullmatch(raw)
    if m is None:
        return None
    digits = m.group(1)
    for size in (1, 2, 3):
        cc = int(digits[:size])
        if cc in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    country = _country(cc)
    nsn = digits[size:]
    if country is None or country.valid is None or nsn[0] == "0" or len(nsn) > 17:
        return None
    if country.prefix is not None and country.prefix.match(nsn):
        return None  # phonenumbers may strip a national prefix: not provable here
    if cc == 33 and nsn[:3] in OVERSEAS_PREFIXES and len(nsn) == 9:
        return _overseas(raw, nsn, country)
    if len(nsn) not in country.lengths:
        return None  # impossible (or local only): the slow path says why
    return ListedNumber(raw, country.valid.fullmatch(nsn) is not None)


def _overseas(raw: str, nsn: str, france: _Country) -> ListedNumber | None:
    """A +33 number with an overseas prefix: the slow path's rewrite, decided the same way
    (the candidate overseas number if phonenumbers calls it valid, else +33 as written)."""
    other = OVERSEAS_PREFIXES[nsn[:3]]
    if is_valid_slow(other, nsn):
        regions = COUNTRY_CODE_TO_REGION_CODE.get(other, ())
        if not regions or not all(region_fallback_zones(r) for r in regions):
            return None  # the strict path could refuse it for want of a zone
        return ListedNumber(f"+{other}{nsn}", True)
    if len(nsn) not in france.lengths or france.valid is None:
        return None
    return ListedNumber(raw, france.valid.fullmatch(nsn) is not None)


def is_valid_slow(cc: int, nsn: str) -> bool:
    """``phonenumbers.is_valid_number`` of (country code, national number)."""
    return bool(phonenumbers.is_valid_number(
        phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn))))
