"""The service side of the AMI event consumer (:class:`gateway.service_api.CallOutcomes`).

The consumer classifies calls and parses agents' ``GatewayOutcome`` events; this module
decides what they mean under the pack in force and writes the records. Outcomes only
ever make screening stricter: nothing an AMI user can send lifts a block.

- ``refused``: a refusal suppression for the campaign's professional (how long it lasts
  is decided at each decision by the core, :func:`gateway.core.rules.suppression_end`);
- ``revoked``: consents of that professional withdrawn now, plus a ``revoked`` suppression;
- ``answering_machine``: an ``answering_machine`` suppression (the pack says how long);
- ``wrong_number`` / ``do_not_call``: the number goes on the ``internal`` opposition list
  (every professional, every campaign, every gateway instance sharing the store).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import structlog

from gateway.core.model import Suppression
from gateway.core.numbers import InvalidNumber, parse_number
from gateway.core.pack import AbandonSettings, Pack
from gateway.service import Service
from gateway.service_api import CallReport

log = structlog.get_logger(__name__)

INTERNAL_OPPOSITION = "internal"
_DEFAULT_ABANDON = AbandonSettings()


class OutcomeKind(StrEnum):
    REFUSED = "refused"
    REVOKED = "revoked"
    WRONG_NUMBER = "wrong_number"
    DO_NOT_CALL = "do_not_call"
    ANSWERING_MACHINE = "answering_machine"


#: Outcomes that write something (the rest are labels of events that changed nothing).
APPLIED = frozenset(str(k) for k in OutcomeKind)


class CallOutcomesService:
    """Implements :class:`~gateway.service_api.CallOutcomes` over the service's policy
    and store (read at each call, so a reloaded policy applies at once)."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def _pack(self, campaign_id: str | None, at: datetime) -> Pack | None:
        policy = self._service.policy
        campaign = policy.campaigns.get(campaign_id or "")
        jurisdiction = campaign.jurisdiction if campaign else policy.default_region
        return policy.pack_for(jurisdiction, at)

    def _abandon(self, campaign_id: str | None, at: datetime) -> AbandonSettings:
        pack = self._pack(campaign_id, at)
        return pack.abandon if pack is not None else _DEFAULT_ABANDON

    def agent_delay_s(self, campaign_id: str | None, at: datetime) -> float:
        return self._abandon(campaign_id, at).agent_delay_s

    async def record_bridged(self, call: CallReport) -> None:
        await self._service.store.record_answer(
            campaign_id=call.campaign_id, call_id=call.call_id, at=call.at, abandoned=False)

    async def record_abandoned(self, call: CallReport) -> None:
        await self._service.store.record_answer(
            campaign_id=call.campaign_id, call_id=call.call_id, at=call.at, abandoned=True)
        await self._per_number(call, "abandoned")

    async def record_machine(self, call: CallReport) -> None:
        await self._per_number(call, str(OutcomeKind.ANSWERING_MACHINE))

    async def _per_number(self, call: CallReport, reason: str) -> None:
        """Record the event against the number for the campaign's professional (UK: no
        repeat call within 72 h of an abandoned call, 24 h after an answering machine).

        Written only where the pack in force gives the reason a cooldown: under the French
        packs an abandoned call restricts nothing, so nothing is stored for it.
        """
        campaign = self._service.policy.campaigns.get(call.campaign_id)
        pack = self._pack(call.campaign_id, call.at)
        if campaign is None or pack is None or pack.refusal.cooldown_for(reason) <= 0:
            return
        if not call.e164:
            log.warning("ami.call_without_number", decision_id=call.call_id, reason=reason)
            return
        try:
            e164 = parse_number(call.e164, self._service.policy.default_region).e164
        except InvalidNumber:
            log.warning("ami.call_invalid_number", decision_id=call.call_id, reason=reason)
            return
        await self._service.store.add_suppression(
            e164, Suppression(professional=campaign.professional, since=call.at, until=None,
                              reason=reason))
        log.info("ami.call_suppression", decision_id=call.call_id, e164=e164, reason=reason,
                 campaign=campaign.id)

    async def campaign_abandon_ratio(self, campaign_id: str, at: datetime) -> float:
        settings = self._abandon(campaign_id, at)
        stats = await self._service.store.campaign_stats(
            campaign_id=campaign_id, now=at, abandon_window_s=settings.window_s)
        return stats.abandoned / stats.answered if stats.answered else 0.0

    async def record_outcome(
        self, *, number: str, campaign_id: str, outcome: str, at: datetime
    ) -> str:
        raw = outcome.strip().lower()
        try:
            kind = OutcomeKind(raw)
        except ValueError:
            log.info("ami.outcome_ignored", outcome=raw[:32])
            return "unknown_outcome"
        policy, store = self._service.policy, self._service.store
        campaign = policy.campaigns.get(campaign_id.strip())
        region = campaign.jurisdiction if campaign is not None else policy.default_region
        try:
            e164 = parse_number(number.strip(), region).e164
        except InvalidNumber:
            log.warning("ami.outcome_invalid_number", number=number.strip(), outcome=str(kind))
            return "invalid_number"
        if kind in (OutcomeKind.WRONG_NUMBER, OutcomeKind.DO_NOT_CALL):
            await store.add_opposition(INTERNAL_OPPOSITION, e164, at=at)
            log.info("ami.outcome_opposition", e164=e164, outcome=str(kind))
            return str(kind)
        if campaign is None:
            log.warning("ami.outcome_unknown_campaign", e164=e164, outcome=str(kind))
            return "unknown_campaign"
        if kind is OutcomeKind.REVOKED:
            await store.withdraw_consent(e164=e164, professional=campaign.professional, at=at)
        await store.add_suppression(
            e164, Suppression(professional=campaign.professional, since=at, until=None,
                              reason=str(kind)),
        )
        log.info("ami.outcome_suppression", e164=e164, outcome=str(kind), campaign=campaign.id)
        return str(kind)
