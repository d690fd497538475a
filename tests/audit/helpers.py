"""Builders shared by the audit tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from gateway.audit.record import AuditRecord, build_record
from gateway.core.model import Attempt, Campaign, Decision, FailMode, Reason, Verdict

T0 = datetime(2026, 9, 14, 8, 30, tzinfo=UTC)  # a Monday, 10:30 in Paris
CAMPAIGN = Campaign(id="spring-promo", professional="acme", product_category="telecom",
                    automated=True, caller_id="+33162000001", fail_mode=FailMode.CLOSED)


def make_decision(e164: str | None = "+33612345678", *, verdict: Verdict = Verdict.ALLOW,
                  reason: Reason = Reason.OK) -> Decision:
    return Decision(
        verdict=verdict, reason=reason, e164=e164, retry_after_s=None,
        trace=("consent:ok c-42", "window:ok", f"frequency:1/4 {e164}"),
        pack_id="fr-2026-08", pack_hash="ab" * 32, zones=("Europe/Paris",),
        consent_id="c-42", contract_id=None,
        list_versions=(("opposition:bloctel", 7, 86400), ("consents", 3, 3600)),
        attempts_seen=1, attempts_limit=4, attempt_window_s=30 * 86400,
    )


def make_record(i: int = 0, *, number: str = "06 12 34 56 78",
                e164: str | None = "+33612345678", at: datetime | None = None,
                campaign: Campaign = CAMPAIGN, instance: str = "gw-a",
                context: Mapping[str, str] | None = None,
                verdict: Verdict = Verdict.ALLOW, reason: Reason = Reason.OK) -> AuditRecord:
    return build_record(
        decision_id=f"d-{instance}-{i}",
        now=at or T0 + timedelta(seconds=i),
        attempt=Attempt(number=number, campaign_id=campaign.id, source="agi"),
        decision=make_decision(e164, verdict=verdict, reason=reason),
        returned_verdict=verdict, returned_reason=reason, shadow=False, fail_open=False,
        latency_s=0.0012,
        context=context if context is not None else {
            "channel": f"PJSIP/{number}@trunk", "uniqueid": f"1700000000.{i}"},
        campaign=campaign, professional=campaign.professional, instance_id=instance,
    )
