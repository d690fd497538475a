"""Number normalisation: formats, overseas numbers, zones, fast path == slow path."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as pn_timezone

from gateway.core import numbers
from gateway.core.numbers import InvalidNumber, ParsedNumber, parse_number, parse_number_slow


@pytest.mark.parametrize(
    ("raw", "e164", "region", "zones"),
    [
        ("06 12 34 56 78", "+33612345678", "FR", ("Europe/Paris",)),
        ("06.12.34.56.78", "+33612345678", "FR", ("Europe/Paris",)),
        ("06-12-34-56-78", "+33612345678", "FR", ("Europe/Paris",)),
        ("0612345678", "+33612345678", "FR", ("Europe/Paris",)),
        ("+33 6 12 34 56 78", "+33612345678", "FR", ("Europe/Paris",)),
        ("+33612345678", "+33612345678", "FR", ("Europe/Paris",)),
        ("0033 6 12 34 56 78", "+33612345678", "FR", ("Europe/Paris",)),
        ("+33 (0)6 12 34 56 78", "+33612345678", "FR", ("Europe/Paris",)),  # slow path
        ("01 23 45 67 89", "+33123456789", "FR", ("Europe/Paris",)),
        ("+262 262 16 12 34", "+262262161234", "RE", ("Indian/Reunion",)),
        ("+262 692 12 34 56", "+262692123456", "RE", ("Indian/Mayotte", "Indian/Reunion")),
        ("+590 590 20 12 34", "+590590201234", "GP", ("America/Guadeloupe",)),
        ("+44 20 7946 0000", "+442079460000", "GB", ("Europe/London",)),
        ("+1 212 555 0123", "+12125550123", "US", ("America/New_York",)),
    ],
)
def test_formats(raw: str, e164: str, region: str, zones: tuple[str, ...]) -> None:
    assert parse_number(raw) == ParsedNumber(e164, region, zones)


@pytest.mark.parametrize(
    ("national", "e164", "region", "zone"),
    [
        # phonenumbers alone says +33596..., valid, Europe/Paris: five hours off the callee
        ("0596 30 12 34", "+596596301234", "MQ", "America/Martinique"),
        ("0696 20 12 34", "+596696201234", "MQ", "America/Martinique"),
        ("0262 16 12 34", "+262262161234", "RE", "Indian/Reunion"),
        ("0269 60 12 34", "+262269601234", "YT", "Indian/Mayotte"),
        ("0639 01 23 45", "+262639012345", "YT", "Indian/Mayotte"),
        ("0590 20 12 34", "+590590201234", "GP", "America/Guadeloupe"),
        ("0690 00 12 34", "+590690001234", "GP", "America/Guadeloupe"),
        ("0594 10 12 34", "+594594101234", "GF", "America/Cayenne"),
        ("0694 20 12 34", "+594694201234", "GF", "America/Cayenne"),
        ("+33 5 96 30 12 34", "+596596301234", "MQ", "America/Martinique"),
    ],
)
def test_overseas_numbers_in_french_national_format(
    national: str, e164: str, region: str, zone: str
) -> None:
    parsed = parse_number(national)
    assert (parsed.e164, parsed.region) == (e164, region)
    assert zone in parsed.zones
    assert "Europe/Paris" not in parsed.zones


def test_the_overseas_rewrite_is_needed() -> None:
    """Documents the phonenumbers behaviour the rewrite corrects."""
    raw = phonenumbers.parse("0596 30 12 34", "FR")
    assert phonenumbers.is_valid_number(raw)
    assert phonenumbers.region_code_for_number(raw) == "FR"


@pytest.mark.parametrize(
    "raw",
    ["", "hello", "06 12 34", "+336123456789", "07 00 00 00 00", "0" * 80, "+999 123",
     "06 12 34 56 78 90 12"],
)
def test_invalid_numbers(raw: str) -> None:
    with pytest.raises(InvalidNumber):
        parse_number(raw)


def test_national_format_depends_on_default_region() -> None:
    assert parse_number("020 7946 0000", "GB").e164 == "+442079460000"
    with pytest.raises(InvalidNumber):
        parse_number("0033 6 12 34 56 78", "US")  # 0033 is a French dialling convention


# --- properties ------------------------------------------------------------------------

separators = st.sampled_from(["", " ", ".", "-"])


@st.composite
def french_strings(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["0", "+33", "0033", "+33 ", "0033 "]))
    first = draw(st.integers(1, 9))
    groups = draw(st.lists(st.integers(0, 99), min_size=4, max_size=4))
    sep = draw(separators)
    mixed = draw(st.booleans())
    text = f"{prefix}{first}"
    for g in groups:
        text += (draw(separators) if mixed else sep) + f"{g:02d}"
    return text


def outcome(fn: object, raw: str) -> ParsedNumber | str:
    try:
        return fn(raw, "FR")  # type: ignore[operator,no-any-return]
    except InvalidNumber:
        return "invalid"


@settings(max_examples=600, deadline=None)
@given(french_strings())
def test_fast_path_is_identical_to_the_slow_path(raw: str) -> None:
    try:
        fast: ParsedNumber | str | None = numbers._parse_fast(raw, "FR")
    except InvalidNumber:
        fast = "invalid"
    slow = outcome(parse_number_slow, raw)
    if fast is None:  # only overseas prefixes may leave the fast path
        assert raw.replace(" ", "").replace(".", "").replace("-", "")[-9:][:3] in (
            numbers.OVERSEAS_PREFIXES)
    else:
        assert fast == slow
    assert outcome(parse_number, raw) == slow


@settings(max_examples=600, deadline=None)
@given(french_strings())
def test_fast_path_matches_bare_phonenumbers_outside_overseas_prefixes(raw: str) -> None:
    try:
        fast: ParsedNumber | str | None = numbers._parse_fast(raw, "FR")
    except InvalidNumber:
        fast = "invalid"
    if fast is None:
        return
    ref = phonenumbers.parse(raw, "FR")
    if not phonenumbers.is_valid_number(ref):
        assert fast == "invalid"
    else:
        assert isinstance(fast, ParsedNumber)
        assert fast.e164 == phonenumbers.format_number(ref, phonenumbers.PhoneNumberFormat.E164)
        assert fast.region == phonenumbers.region_code_for_number(ref)


def reference_parse(raw: str, region: str) -> ParsedNumber | str:
    """The slow path as it was written with phonenumbers' two public calls (validity, then
    time zones), each computing the number's type: the one-lookup path must agree."""
    try:
        num = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return "invalid"
    if num.country_code == 33:
        num = numbers._overseas_rewrite(num)
    if not phonenumbers.is_valid_number(num):
        return "invalid"
    found = phonenumbers.region_code_for_number(num)
    if found in (None, "", "ZZ", "001"):
        return "invalid"
    zones = tuple(sorted(z for z in pn_timezone.time_zones_for_number(num) if z != "Etc/Unknown"))
    zones = zones or numbers.region_fallback_zones(found)
    if not zones:
        return "invalid"
    return ParsedNumber(phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164),
                        found, zones)


@settings(max_examples=600, deadline=None)
@given(st.from_regex(r"\+[1-9][0-9]{6,13}", fullmatch=True) | french_strings(),
       st.sampled_from(["FR", "GB", "US"]))
def test_one_type_lookup_gives_what_validity_and_zones_gave(raw: str, region: str) -> None:
    assert outcome(lambda r, _: parse_number_slow(r, region), raw) == reference_parse(raw, region)
    assert outcome(lambda r, _: parse_number(r, region), raw) == reference_parse(raw, region)


@pytest.mark.parametrize("raw", ["+33 1 23 45 67 89", "+33 6 12 34 56 78", "+33 8 00 12 34 56",
                                 "+44 20 7946 0000", "+44 7400 123456", "+1 212 555 0123",
                                 "+262 692 12 34 56", "+61 2 9374 4000", "+7 495 123 45 67"])
def test_one_type_lookup_on_fixed_mobile_and_non_geographic_numbers(raw: str) -> None:
    assert isinstance(reference_parse(raw, "FR"), ParsedNumber)
    assert parse_number(raw) == reference_parse(raw, "FR")


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"\+[1-9][0-9]{6,13}", fullmatch=True))
def test_zones_are_never_unknown(raw: str) -> None:
    try:
        parsed = parse_number(raw)
    except InvalidNumber:
        return
    assert parsed.zones
    assert "Etc/Unknown" not in parsed.zones
    assert list(parsed.zones) == sorted(parsed.zones)
    assert parsed.e164.startswith("+")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_raises_only_invalid_number(raw: str) -> None:
    try:
        parse_number(raw)
    except InvalidNumber:
        pass


@pytest.mark.parametrize("raw", ["06 12 34 56 78", "0612345678", "+33 6 12 34 56 78",
                                 "0033612345678", "01.23.45.67.89"])
def test_common_french_formats_take_the_fast_path(raw: str) -> None:
    assert numbers._parse_fast(raw, "FR") == parse_number_slow(raw)


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)), st.data())
def test_compiled_types_equal_phonenumbers_number_type(region: str, data: st.DataObject) -> None:
    """The type of a number from patterns compiled once is phonenumbers' own, in every
    region, for national numbers of every length (mostly invalid ones, some valid)."""
    example = phonenumbers.example_number_for_type(region, data.draw(st.sampled_from(
        list(phonenumbers.PhoneNumberType.values()))))
    if example is not None and data.draw(st.booleans()):
        nsn = phonenumbers.national_significant_number(example)
        nsn = nsn[:-2] + data.draw(st.from_regex(r"[0-9]{2}", fullmatch=True))
    else:
        nsn = data.draw(st.from_regex(r"[1-9][0-9]{1,14}", fullmatch=True))
    num = phonenumbers.PhoneNumber(
        country_code=phonenumbers.country_code_for_region(region), national_number=int(nsn))
    if phonenumbers.region_code_for_number(num) != region:
        return  # another region of a shared code claims it: the slow path asks that one
    national = phonenumbers.national_significant_number(num)  # as the slow path passes it
    assert numbers._type_of(national, region) == phonenumbers.number_type(num)


@st.composite
def short_french_strings(draw: st.DrawFn) -> str:
    digits = draw(st.from_regex(r"0[1-9][0-9]{0,7}", fullmatch=True))
    return digits[:2] + "".join(draw(separators) + d for d in digits[2:])


@settings(max_examples=1500, deadline=None)
@given(short_french_strings(), st.sampled_from(["", " ", "  "]))
def test_a_truncated_french_number_is_refused_as_the_slow_path_refuses_it(
    raw: str, pad: str
) -> None:
    with pytest.raises(InvalidNumber) as slow:
        parse_number_slow(pad + raw + pad, "FR")
    with pytest.raises(InvalidNumber) as fast:
        numbers._parse_fast(pad + raw + pad, "FR")
    assert str(fast.value) == str(slow.value) == "not a valid number"


def test_every_truncated_length_of_every_french_prefix_is_refused_alike() -> None:
    """Exhaustive over the prefix and length (the digits after it vary little)."""
    for first in "123456789":
        for length in range(0, 8):
            for tail in ("0" * length, "9" * length, "5" * length, "12345678"[:length]):
                raw = f"0{first}{tail}"
                with pytest.raises(InvalidNumber, match=r"^not a valid number$"):
                    parse_number_slow(raw, "FR")
                with pytest.raises(InvalidNumber, match=r"^not a valid number$"):
                    numbers._parse_fast(raw, "FR")
    assert numbers._parse_fast("06 1234", "GB") is None  # national format: French only
