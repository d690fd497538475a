"""Letters, text and symbols are refused before phonenumbers sees a number.

phonenumbers reads letters as keypad digits and extracts numbers from surrounding text;
:func:`check_characters` refuses both everywhere a number enters (imports, ``check``,
AGI arguments, AMI channels, outcomes): they all go through ``parse_number``.
"""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.numbers import (
    SEPARATORS,
    InvalidNumber,
    check_characters,
    parse_listed_number,
    parse_number,
    parse_number_slow,
)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("06 12 AB CD EF", "letter 'A' at character 7"),
        ("hello 0612345679", "letter 'h' at character 1"),
        ("0612345679 ext. 5", "letter 'e' at character 12"),
        ("0612345679x5", "letter 'x' at character 11"),
        ("+33 6 12 34 56 7O", "letter 'O' at character 17"),  # capital o for zero
        ("1-800-FLOWERS", "letter 'F' at character 7"),
        ("tel:+33612345678", "letter 't' at character 1"),
        ("0612345678;ext=5", "character ';' at character 11"),
        ("0612345678#", "character '#' at character 11"),
        ("*31#0612345678", "character '*' at character 1"),
        ("06 12 34 56 78, 06 12 34 56 79", "character ',' at character 15"),
        ("06+12345678", "'+' at character 3: allowed only at the start"),
        ("++33612345678", "'+' at character 2"),
        ("06\u200b12345678", "character U+200B at character 3"),
        ("\uff10\uff16\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",
         "character U+FF10 at character 1"),  # full-width digits
        ("", "no digits"),
        ("  ", "no digits"),
        ("(-)", "no digits"),
        ("é0612345678", "letter U+00E9 at character 1"),
    ],
)
def test_refused_with_the_offending_character(raw: str, problem: str) -> None:
    with pytest.raises(InvalidNumber, match=re.escape(problem)):
        check_characters(raw)
    for parse in (parse_number, parse_number_slow, parse_listed_number):
        with pytest.raises(InvalidNumber):
            parse(raw)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("06 12 34 56 78", "+33612345678"),
        (" 06.12.34.56.78 ", "+33612345678"),
        ("06-12-34-56-78", "+33612345678"),
        ("06/12/34/56/78", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("(06) 12 34 56 78", "+33612345678"),
        ("\t+33\u00a06\u00a012\u00a034\u00a056\u00a078", "+33612345678"),
        ("+33\u202f6 12 34 56 78", "+33612345678"),
        ("0033 6 12 34 56 78", "+33612345678"),
    ],
)
def test_allowed_forms(raw: str, e164: str) -> None:
    check_characters(raw)
    assert parse_number(raw).e164 == e164
    assert parse_listed_number(raw).e164 == e164


_DIGITS = st.text(alphabet=string.digits, min_size=1, max_size=15)
_ALLOWED = st.text(alphabet=string.digits + SEPARATORS, max_size=30)


@given(_ALLOWED, st.characters(blacklist_categories=("Cs",)), _ALLOWED)
def test_any_character_outside_the_alphabet_is_refused(head: str, bad: str, tail: str) -> None:
    if bad in string.digits + SEPARATORS + "+":
        return
    raw = head + bad + tail
    with pytest.raises(InvalidNumber):
        parse_number(raw)
    with pytest.raises(InvalidNumber):
        parse_listed_number(raw)


@given(_DIGITS, st.sampled_from(string.ascii_letters), st.integers(min_value=0, max_value=15))
def test_a_letter_anywhere_in_a_valid_number_is_refused(digits: str, letter: str,
                                                       at: int) -> None:
    raw = "06 12 34 56 78"
    at = min(at, len(raw))
    with pytest.raises(InvalidNumber, match="letter"):
        parse_number(raw[:at] + letter + raw[at:])


@given(st.text(alphabet=string.digits + SEPARATORS + "+", max_size=30))
def test_the_alphabet_never_changes_what_phonenumbers_decides(raw: str) -> None:
    """Within the allowed alphabet the check refuses only strings with a misplaced '+'
    or no digit; it never turns an invalid number valid."""
    try:
        check_characters(raw)
    except InvalidNumber:
        stripped = raw.lstrip(" \t\u00a0\u202f")
        assert "+" in stripped[1:] or not any(c.isdigit() for c in raw) or len(raw) > 64
        return
    try:
        fast = parse_number(raw)
    except InvalidNumber:
        with pytest.raises(InvalidNumber):
            parse_number_slow(raw)
    else:
        assert parse_number_slow(raw) == fast
