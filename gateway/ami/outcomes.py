"""``UserEvent: GatewayOutcome`` from the agents' application -> store updates.

``Number``, ``Campaign``, ``Outcome`` (case-insensitive):

- ``refused``: a refusal suppression for the campaign's professional; when it ends is
  decided by the core at each decision from the pack then in force
  (:func:`gateway.core.rules.suppression_end`), never here;
- ``revoked``: consents of that professional withdrawn now, plus a ``revoked`` suppression;
- ``wrong_number`` / ``do_not_call``: the number goes on the ``internal`` opposition list
  (every professional, every campaign, every gateway instance sharing the store).

Outcomes only ever make screening stricter: nothing an AMI user can send lifts a block.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import structlog

from gateway.ami.codec import AmiMessage
from gateway.core.model import Suppression
from gateway.core.numbers import InvalidNumber, parse_number
from gateway.core.policy import Policy
from gateway.store.base import Store

log = structlog.get_logger(__name__)

USER_EVENT_NAME = "GatewayOutcome"
INTERNAL_OPPOSITION = "internal"


class OutcomeKind(StrEnum):
    REFUSED = "refused"
    REVOKED = "revoked"
    WRONG_NUMBER = "wrong_number"
    DO_NOT_CALL = "do_not_call"


def is_outcome_event(msg: AmiMessage) -> bool:
    return (msg.event or "").lower() == "userevent" and (
        (msg.get("UserEvent") or "").lower() == USER_EVENT_NAME.lower()
    )


async def apply_outcome(msg: AmiMessage, *, store: Store, policy: Policy, now: datetime) -> str:
    """Apply one outcome event; return what happened (a bounded label for metrics).

    Raises ``StoreUnavailable`` when the store cannot take it (the caller logs it).
    """
    raw_outcome = (msg.get("Outcome") or "").strip().lower()
    try:
        kind = OutcomeKind(raw_outcome)
    except ValueError:
        log.info("ami.outcome_ignored", outcome=raw_outcome[:32])
        return "unknown_outcome"
    campaign = policy.campaigns.get((msg.get("Campaign") or "").strip())
    region = campaign.jurisdiction if campaign is not None else policy.default_region
    number = (msg.get("Number") or "").strip()
    try:
        e164 = parse_number(number, region).e164
    except InvalidNumber:
        log.warning("ami.outcome_invalid_number", number=number, outcome=str(kind))
        return "invalid_number"
    if kind in (OutcomeKind.WRONG_NUMBER, OutcomeKind.DO_NOT_CALL):
        await store.add_opposition(INTERNAL_OPPOSITION, e164, at=now)
        log.info("ami.outcome_opposition", e164=e164, outcome=str(kind))
        return str(kind)
    if campaign is None:
        log.warning("ami.outcome_unknown_campaign", e164=e164, outcome=str(kind))
        return "unknown_campaign"
    if kind is OutcomeKind.REVOKED:
        await store.withdraw_consent(e164=e164, professional=campaign.professional, at=now)
    await store.add_suppression(
        e164, Suppression(professional=campaign.professional, since=now, until=None,
                          reason=str(kind)),
    )
    log.info("ami.outcome_suppression", e164=e164, outcome=str(kind), campaign=campaign.id)
    return str(kind)
