"""The E.164 fast path of opposition lists gives parse_listed_number's answer."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from gateway.core.e164 import is_valid_slow, listed_fast
from gateway.core.numbers import (
    OVERSEAS_PREFIXES,
    InvalidNumber,
    ListedNumber,
    parse_listed_number,
)

_CCS = sorted(COUNTRY_CODE_TO_REGION_CODE)


def _slow(raw: str) -> ListedNumber | None:
    try:
        return parse_listed_number(raw)
    except InvalidNumber:
        return None


@settings(max_examples=3000, deadline=None)  # first use of a code compiles its regexes
@given(st.sampled_from(_CCS), st.text(alphabet="0123456789", min_size=1, max_size=14))
@example(33, "612345678")
@example(33, "700123456")  # possible, not in the metadata
@example(33, "596301234")  # overseas prefix: rewritten to +596
@example(33, "690001234")
@example(1, "2125550123")  # several regions (US first of 25)
@example(44, "7400123456")  # GB, GG, IM (leading digits), JE
@example(44, "7624123456")  # Isle of Man: claimed by its leading digits
@example(590, "690001234")
def test_fast_path_equals_the_slow_path(cc: int, nsn: str) -> None:
    raw = f"+{cc}{nsn}"
    fast = listed_fast(raw)
    if fast is not None:
        assert _slow(raw) == fast


@settings(max_examples=2000)
@given(st.integers(min_value=100_000_000, max_value=999_999_999))
def test_french_numbers_take_the_fast_path(n: int) -> None:
    raw = f"+33{n}"
    fast = listed_fast(raw)
    assert fast is not None
    assert _slow(raw) == fast
    if str(n)[:3] not in OVERSEAS_PREFIXES:
        assert fast.e164 == raw
        assert fast.valid == is_valid_slow(33, str(n))


@pytest.mark.parametrize("raw", ["0612345678", "+33 6 12 34 56 78", "+336", "+0612345678",
                                 "+33612345678 ", "+3361234567a"])
def test_anything_but_canonical_e164_takes_the_slow_path(raw: str) -> None:
    assert listed_fast(raw) is None


_REGIONS = sorted(r for regions in COUNTRY_CODE_TO_REGION_CODE.values() for r in regions
                  if r != "001")
_TYPES = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
          phonenumbers.PhoneNumberType.TOLL_FREE]


@st.composite
def _near_real(draw: st.DrawFn) -> str:
    """A region's example number with its tail redrawn (often valid, often not)."""
    region = draw(st.sampled_from(_REGIONS))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(_TYPES)))
    if example is None:
        example = phonenumbers.example_number(region)
    if example is None:
        return "+" + str(phonenumbers.country_code_for_region(region) or 1) + "0"
    nsn = str(example.national_number)
    keep = draw(st.integers(min_value=0, max_value=len(nsn)))
    size = len(nsn) - keep + draw(st.sampled_from([0, 0, 0, -1, 1]))
    tail = draw(st.text(alphabet="0123456789", min_size=max(0, size), max_size=max(0, size)))
    return f"+{example.country_code}{nsn[:keep]}{tail}"


@settings(max_examples=3000, deadline=None)
@given(_near_real())
@example("+447624123456")  # IM
@example("+17875550123")  # PR (a later region of +1)
@example("+262269601234")  # YT
def test_fast_path_equals_the_slow_path_near_real_numbers(raw: str) -> None:
    """Countries with several regions (+1, +44, +262, +590...) resolve as phonenumbers does."""
    fast = listed_fast(raw)
    if fast is not None:
        assert _slow(raw) == fast
