"""The instant of a dry run (`check --at`, `scrub --at`, the API's `at=`): ISO 8601 with a UTC
offset, inside the years the calendar can compute in.

Near the ends of Python's calendar (year 1, year 9999) converting to the callee's zone
or adding the next window overflows; the engine is never asked about such instants.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.importer import parse_instant

EARLIEST_AT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AT = datetime(2200, 1, 1, tzinfo=UTC)  # excluded


def parse_at(value: str, name: str) -> datetime:
    """``value`` as an aware instant; ValueError (its message names ``name``) when
    unreadable, naive or out of range."""
    try:
        at = parse_instant(value, name)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if not EARLIEST_AT <= at < LATEST_AT:
        raise ValueError(f"{name}: {value[:40]!r} is outside {EARLIEST_AT.year}-"
                         f"{LATEST_AT.year - 1}")
    return at
