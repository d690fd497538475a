"""NANP numbers -> US state (for the state packs layered over US-FEDERAL).

Pure: ``phonenumbers``' offline geocoding data names the state of a US number's area code
and of its NPA-NXX (e.g. "Miami, FL"); when the two differ, the number gets both states.
A number whose state cannot be told gets :data:`ANY_STATE`: every state pack applies (the
intersection of every candidate's rules, as for a French overseas number with several
zones).
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

__all__ = ["ANY_STATE", "US_STATES", "load_geodata", "us_states"]

ANY_STATE = "*"

US_STATES: dict[str, str] = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK",
    "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI",
    "Wyoming": "WY", "Washington D.C.": "DC", "Washington, D.C.": "DC",
    "Washington State": "WA",  # how the geocoding data names WA's area codes (206, 253, ...)
}
_CODES = frozenset(US_STATES.values())


def us_states(e164: str) -> tuple[str, ...]:
    """The US state(s) of a +1 number: ``("FL",)``, or ``(ANY_STATE,)`` when unknown;
    ``()`` for a number outside the US (Canada, the Caribbean NANP members)."""
    if not e164.startswith("+1") or len(e164) < 9:
        return ()
    return _by_prefix(e164[:8])  # +1 NPA NXX: geocoding is per NPA or NPA-NXX


def load_geodata() -> None:
    """Import ``phonenumbers``' geocoding data now (≈ 0.2 s, tens of MB): ``serve`` calls
    it at start-up so that no call pays for it; a CLI command deciding no US number
    never loads it (``dialer-gateway check`` starts in a fraction of that)."""
    from phonenumbers import geocoder  # noqa: F401  # importing it is the point


@lru_cache(maxsize=8192)
def _by_prefix(prefix: str) -> tuple[str, ...]:
    from phonenumbers import geocoder  # lazy: see load_geodata
    from phonenumbers.geodata import GEOCODE_DATA

    try:
        number = phonenumbers.parse(prefix + "0000", None)
    except phonenumbers.NumberParseException:
        return (ANY_STATE,)
    if phonenumbers.region_code_for_number(number) not in ("US", None):
        return ()
    # the exchange's place ("Miami, FL") and the area code's state: a number whose exchange
    # the data puts in another state than its area code (201-631: "New York, NY" in a New
    # Jersey area code) gets both, so both states' layers apply (the intersection)
    exchange = _state_of(geocoder.description_for_number(number, "en"))
    area = _state_of(GEOCODE_DATA.get(prefix[1:5], {}).get("en", ""))
    states = {s for s in (exchange, area) if s is not None}
    return tuple(sorted(states)) if states else (ANY_STATE,)


def _state_of(text: str) -> str | None:
    text = text.strip()
    if text in US_STATES:
        return US_STATES[text]
    tail = text.rsplit(", ", 1)[-1] if ", " in text else ""
    return tail if tail in _CODES else None
