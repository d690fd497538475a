"""What the edges (FastAGI, AMI proxy, CLI) see of the screening service.

The edges only translate protocols: they build an :class:`Attempt`, call
:meth:`Screener.screen` and map the :class:`ScreenResult` back onto their wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from gateway.core.model import Attempt, Decision, Reason, Verdict


@dataclass(frozen=True, slots=True)
class ScreenResult:
    """The answer an edge returns to Asterisk or to the dialer."""

    verdict: Verdict  # what the edge must enforce (ALLOW in shadow mode / fail-open)
    reason: Reason  # GW_REASON: in shadow mode, what would have happened
    e164: str | None
    retry_after_s: int | None
    decision_id: str
    decision: Decision  # the engine's own decision (or the fail-mode one)
    shadow: bool = False
    fail_open: bool = False
    campaign_id: str = ""


class Screener(Protocol):
    async def screen(
        self, attempt: Attempt, *, context: Mapping[str, str] | None = None
    ) -> ScreenResult:
        """Decide within the decision budget; never raises for infrastructure faults.

        ``context`` carries edge facts for the audit record (channel, uniqueid,
        dialer account, ...). It never contains secrets.
        """
        ...
