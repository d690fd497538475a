"""Shapes of lines a plain opposition list is read in bulk with (gateway/importer/fastlist.py).

Each :class:`Form` is a pair of compiled multi-line regular expressions over a whole chunk,
built from :func:`gateway.core.e164.bulk_fragments` (phonenumbers' metadata): the lines
that :func:`~gateway.core.e164.listed_fast` / ``parse_listed_number`` would list as a
valid number, and those it would list as possible only (kept, counted outside the
metadata). What no form takes is read one line at a time by the reference path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from gateway.core.e164 import LINE_END, bulk_fragments
from gateway.core.numbers import OVERSEAS_PREFIXES


@dataclass(frozen=True, slots=True)
class Form:
    """One shape of line read in bulk. Groups capture the digits of the number."""

    valid: re.Pattern[bytes]  # whole lines listed as valid numbers (findall)
    split: re.Pattern[bytes]  # the same lines (group 1) or possible ones (group 2), with LF
    offset: int  # added to the integer of the captured digits


def _form(lead: str, valid: str, possible: str, offset: int) -> Form:
    end = LINE_END
    return Form(
        valid=re.compile(f"^{lead}({valid}){end}\\r?$".encode(), re.M),
        split=re.compile(f"^{lead}(?:({valid})|({possible})){end}\\r?\\n".encode(), re.M),
        offset=offset,
    )


def _e164_form(cc: int) -> Form | None:
    frags = bulk_fragments(cc)
    if frags is None:
        return None
    return _form("\\+", f"{cc}{frags.valid}", f"{cc}{frags.possible}", 0)


def _national_form(region: str) -> Form | None:
    """``0`` + national number, only where parse_number's French fast path reads it."""
    if region != "FR":
        return None
    frags = bulk_fragments(33)
    if frags is None:
        return None
    nine = r"(?=[1-9][0-9]{8}" + LINE_END + ")"
    return _form("0", nine + frags.valid, nine + frags.possible, 33 * 10**9)


def _overseas_forms(lead: str) -> list[Form]:
    """``+33`` (or, in France, ``0``) + an overseas prefix, valid for the overseas code:
    listed under that code (parse_number's overseas rewrite, listed_fast's _overseas)."""
    forms: list[Form] = []
    for target in sorted(set(OVERSEAS_PREFIXES.values())):
        frags = bulk_fragments(target)
        if frags is None:
            continue  # listed_fast asks phonenumbers: the line is left over
        prefixes = "|".join(p for p, cc in OVERSEAS_PREFIXES.items() if cc == target)
        valid = f"(?=(?:{prefixes})[0-9]{{6}}{LINE_END}){frags.valid_only}"
        forms.append(_form(lead, valid, "(?!)", target * 10**9))
    france = bulk_fragments(33)
    if france is not None and len(forms) == len(set(OVERSEAS_PREFIXES.values())):
        # what the forms above left (not valid for the overseas code) stays +33, valid as
        # France says: applied after them only, and only when none of them is missing
        overseas = f"(?=(?:{'|'.join(OVERSEAS_PREFIXES)})[0-9]{{6}}{LINE_END})"
        forms.append(_form(lead, overseas + france.valid_only, overseas + "[0-9]{9}",
                           33 * 10**9))
    return forms


@lru_cache(maxsize=32)
def forms_for(region: str, extra_cc: int | None = None) -> tuple[Form, ...]:
    """The bulk forms of a pass (compiled once per process)."""
    forms: list[Form] = []
    ccs = [phonenumbers.country_code_for_region(region)]
    if extra_cc is not None and extra_cc not in ccs:
        ccs.append(extra_cc)
    for cc in ccs:
        form = _e164_form(cc) if cc else None
        if form is not None:
            forms.append(form)
    national = _national_form(region)
    if national is not None:
        forms.insert(1 if forms else 0, national)
    if 33 in ccs:
        forms.extend(_overseas_forms("\\+33"))
    if national is not None:
        forms.extend(_overseas_forms("0"))
    return tuple(forms)
