"""Fast path for opposition-list numbers already written in E.164 (``+33612345678``).

Pure (phonenumbers' metadata and the standard library). ``phonenumbers.is_valid_number``
costs tens of microseconds per number; a national-scale list needs a few. For a region,
validity is "the national number matches the general description and one of the type
descriptions (with their possible lengths)"; for a country code shared by several regions
(``+1``, ``+44``, ``+262``, ``+590``) phonenumbers first picks the region (the first whose
leading digits match, or whose types know the number). The same metadata is compiled
once into one regular expression per country code, and into line patterns for whole
chunks of a list (:func:`bulk_fragments`, used by gateway/importer/fastlist.py).

:func:`listed_fast` returns ``None`` whenever it cannot prove the slow path's answer
(a national number that starts like the national prefix, a region without time-zone
fallback, a non-geographic code); the Hypothesis properties in tests/core/test_e164.py
and tests/importer/test_fastlist.py check equality with
:func:`gateway.core.numbers.parse_listed_number`.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from gateway.core.numbers import OVERSEAS_PREFIXES, ListedNumber, region_fallback_zones

__all__ = ["BulkFragments", "bulk_fragments", "listed_fast"]

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


def _valid_re(md: PhoneMetadata) -> str | None:
    """phonenumbers' "type is not UNKNOWN" for one region, as a fullmatch regex."""
    gen = _desc_re(md.general_desc)
    types = [_desc_re(getattr(md, name)) for name in _TYPES]
    if not md.same_mobile_and_fixed_line_pattern:
        types.append(_desc_re(md.mobile))
    alternatives = [t for t in types if t is not None]
    if gen is None or not alternatives:
        return None
    return f"(?={gen})(?:{'|'.join(alternatives)})"


class _Country:
    """What listed_fast needs of one country code (every region of it).

    Several regions (``+44``: GB, GG, IM, JE; ``+590``): phonenumbers resolves the region
    as the first one whose leading digits match (when it has some) or whose types know the
    number (when not), then checks the number against that region only. ``valid`` spells
    that order out: region ``i`` decides iff no earlier region claims the number.
    """

    __slots__ = ("cc", "lengths", "md", "mds", "prefix", "valid")

    def __init__(self, cc: int, mds: list[PhoneMetadata]) -> None:
        self.cc = cc
        self.mds = mds
        md = self.md = mds[0]  # the main region: parse() strips its national prefix
        general = md.general_desc
        assert general is not None  # noqa: S101 -- every region's metadata has one
        self.lengths = frozenset(n for n in (*general.possible_length,
                                             *general.possible_length_local_only) if n > 0)
        npfp = md.national_prefix_for_parsing
        self.prefix = re.compile(npfp) if npfp else None
        self.valid: re.Pattern[str] | None = None
        if len(mds) == 1:
            single = _valid_re(md)
            self.valid = re.compile(single) if single is not None else None
            return
        claims: list[str] = []  # "region i claims the number" (its resolution test)
        branches: list[str] = []
        for region_md in mds:
            valid = _valid_re(region_md) or "(?!)"
            claim = f"(?:{region_md.leading_digits})" if region_md.leading_digits else valid
            earlier = "".join(f"(?!{c})" for c in claims)
            branches.append(f"{earlier}(?={claim})(?:{valid})")
            claims.append(claim)
        self.valid = re.compile("|".join(f"(?:{b})" for b in branches))


@lru_cache(maxsize=1024)
def _country(cc: int) -> _Country | None:
    regions = COUNTRY_CODE_TO_REGION_CODE.get(cc)
    if not regions or "001" in regions:
        return None
    mds = [PhoneMetadata.metadata_for_region(r, None) for r in regions]
    if any(md is None for md in mds) or not all(region_fallback_zones(r) for r in regions):
        return None
    return _Country(cc, [md for md in mds if md is not None])


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
    target = _country(other)
    valid = (target.valid.fullmatch(nsn) is not None if target is not None and target.valid
             else is_valid_slow(other, nsn))
    if valid:
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


# --- whole-chunk patterns (gateway/importer/fastlist.py) --------------------------------

#: Characters of a metadata pattern embedded in a line regex: digits, classes, groups and
#: counts only (nothing that could match a line end, no anchors): else no bulk pattern.
_SAFE_RE = re.compile(r"[0-9d\\()?:|\[\]{},\-]*")
#: End of a line inside a chunk (MULTILINE): an optional CR, then LF or the end.
LINE_END = r"(?=\r?$)"


class BulkFragments:
    """Regex fragments (str, ASCII) for a national significant number inside a line.

    ``possible`` matches exactly the numbers for which :func:`listed_fast` of
    ``+<cc><nsn>`` returns a ListedNumber (valid or not); ``valid`` those for which it
    returns one with ``valid=True``; ``valid_only`` those phonenumbers calls valid
    (``is_valid_slow(cc, nsn)``, as :func:`_overseas` asks). Each must be followed by
    :data:`LINE_END` and is anchored by the caller; the property tests in
    tests/importer/test_fastlist.py prove them against the generic reader.
    """

    __slots__ = ("cc", "possible", "valid", "valid_only")

    def __init__(self, cc: int, possible: str, valid: str, valid_only: str) -> None:
        self.cc = cc
        self.possible = possible
        self.valid = valid
        self.valid_only = valid_only  # phonenumbers' validity alone (no parsing guards)


def _line_valid(md: PhoneMetadata) -> str | None:
    """:func:`_valid_re` of one region for a number ending at a line end, its length
    guards folded into one branch per general length (several times faster in bulk)."""
    general = md.general_desc
    gen_pattern = getattr(general, "national_number_pattern", None)
    gen_lengths = sorted({n for n in getattr(general, "possible_length", ()) or () if n > 0})
    if not gen_pattern or not gen_lengths:
        return None  # no guard would mean any length: not folded, no bulk
    descs = [getattr(md, name) for name in _TYPES]
    if not md.same_mobile_and_fixed_line_pattern:
        descs.append(md.mobile)
    branches = []
    for n in gen_lengths:
        alts = []
        for desc in descs:
            pattern = getattr(desc, "national_number_pattern", None) if desc else None
            if not pattern:
                continue
            desc_lengths = list(getattr(desc, "possible_length", ()) or ())
            if desc_lengths and n not in desc_lengths:
                continue  # its length guard refuses n (or it has no numbers: [-1])
            alts.append(f"(?:{pattern})")
        if alts:
            branches.append(f"(?=[0-9]{{{n}}}{LINE_END})(?=(?:{gen_pattern}){LINE_END})"
                            f"(?:{'|'.join(alts)}){LINE_END}")
    return "(?:" + "|".join(branches) + ")" if branches else "(?!)"


@lru_cache(maxsize=64)
def bulk_fragments(cc: int) -> BulkFragments | None:
    """Fragments for country code ``cc``, or None when they cannot be built safely."""
    country = _country(cc)
    if country is None or country.valid is None:
        return None
    md = country.md
    npfp = md.national_prefix_for_parsing
    embedded = [npfp or ""]
    for region_md in country.mds:
        embedded.append(region_md.leading_digits or "")
        for name in ("general_desc", "mobile", *_TYPES):
            embedded.append(getattr(getattr(region_md, name), "national_number_pattern", None)
                            or "")
    if any(not _SAFE_RE.fullmatch(p) for p in embedded):
        return None
    head = "(?!0)" + (f"(?!{npfp})" if npfp else "")
    if cc == 33:  # listed_fast hands these to _overseas: never in bulk
        head += "(?!(?:" + "|".join(OVERSEAS_PREFIXES) + ")[0-9]{6}" + LINE_END + ")"
    room = 16 - len(str(cc))  # _E164_RE: at most 16 digits in all
    lengths = sorted((n for n in country.lengths if n <= room and len(str(cc)) + n >= 6),
                     reverse=True)
    if not lengths:
        return None
    length = "|".join(f"[0-9]{{{n}}}{LINE_END}" for n in lengths)
    possible = head + "(?:" + "|".join(f"[0-9]{{{n}}}" for n in lengths) + ")"
    valids = [_line_valid(region_md) for region_md in country.mds]
    if any(v is None for v in valids):
        return None
    if len(valids) == 1:
        valid_only = f"(?:{valids[0]})"
    else:  # the first region that claims the number decides (see _Country)
        claims: list[str] = []
        branches: list[str] = []
        for region_md, valid in zip(country.mds, valids, strict=True):
            claim = (f"(?:{region_md.leading_digits})" if region_md.leading_digits
                     else f"(?:{valid})")
            earlier = "".join(f"(?!{c})" for c in claims)
            branches.append(f"(?:{earlier}(?={claim})(?:{valid}))")
            claims.append(claim)
        valid_only = "(?:" + "|".join(branches) + ")"
    return BulkFragments(cc, possible, f"{head}(?={length}){valid_only}", valid_only)
