"""``UserEvent: GatewayOutcome`` from the agents' application (sans-IO recognition).

Headers ``Number``, ``Campaign``, ``Outcome`` (case-insensitive). What an outcome means
and what it records is the service's business (:mod:`gateway.call_outcomes`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.ami.codec import AmiMessage

USER_EVENT_NAME = "GatewayOutcome"


@dataclass(frozen=True, slots=True)
class OutcomeEvent:
    number: str
    campaign_id: str
    outcome: str


def is_outcome_event(msg: AmiMessage) -> bool:
    return (msg.event or "").lower() == "userevent" and (
        (msg.get("UserEvent") or "").lower() == USER_EVENT_NAME.lower()
    )


def outcome_event(msg: AmiMessage) -> OutcomeEvent:
    return OutcomeEvent(number=(msg.get("Number") or "").strip(),
                        campaign_id=(msg.get("Campaign") or "").strip(),
                        outcome=(msg.get("Outcome") or "").strip())
