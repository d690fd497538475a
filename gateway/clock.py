"""The one way a clock is passed around: ``Clock``, a callable returning the current
instant (an aware datetime). The core never reads the clock (``now`` is an argument of
``decide``); the edges, the service and the CLI take a ``Clock`` and default to
:func:`utc_now`. Tests pass a fixed instant (``lambda: T0``) or a clock of their own.

What waits (the AMI event consumer's timers) takes a ``Sleep`` beside its ``Clock``, so
that a test clock can wake the sleepers it moves past.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

__all__ = ["Clock", "Sleep", "utc_now"]

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    """The real clock (aware, UTC)."""
    return datetime.now(UTC)
