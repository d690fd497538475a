"""What the edge enforces when a decision's record cannot be written, and the record
that says so (sans-IO).

A record is what was enforced. When the audit write fails or misses its deadline the
service answers by the campaign's fail mode (closed: BLOCK ``store_unavailable``, or
``timeout`` when the sink was up and the gateway saturated; open: ALLOW,
``fail_open``). A write that missed its deadline may still land later (a disk that
stalls, a Redis reply lost), saying what the engine decided rather than what was
enforced; so the sink appends a *superseding record* right after it: same decision id,
``supersedes`` = that id, the enforced verdict, and ``audit_fault`` with the verdict
the call would have had. The superseded record may be absent (it was never written):
the superseding one then stands alone. Readers take, for each decision id, the last
record (:func:`enforced_view`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CHAIN_FIELDS = ("seq", "prev", "hash")
FAULT_DEADLINE = "deadline"  # the write missed write_timeout_s (it may land late)
FAULT_UNCERTAIN = "uncertain"  # the write failed after it may have reached the sink
# the edge (FastAGI, AMI proxy) answered BLOCK timeout before the decision was complete
FAULT_EDGE_DEADLINE = "edge_deadline"
MAX_TRACE_ITEMS = 64


def enforced_after_failure(verdict: str, fail_mode: str | None, *, saturated: bool = False,
                           ) -> tuple[str, str | None, bool]:
    """(verdict, reason or None to keep it, fail_open) the edge returns when the record
    of a ``verdict`` decision could not be written: no proof, no call, unless the
    campaign is fail-open (then the call goes through, flagged ``fail_open``).

    ``saturated``: the sink was up, the gateway too busy to get the write done in time
    (``AuditUnavailable.saturated``): the reason is ``timeout``, not ``store_unavailable``.
    """
    if verdict != "ALLOW":
        return verdict, None, False
    if fail_mode == "open":
        return "ALLOW", None, True
    return "BLOCK", "timeout" if saturated else "store_unavailable", False


def superseding_body(body: Mapping[str, Any], *, fault: str,
                     saturated: bool = False,
                     enforced: tuple[str, str] | None = None) -> dict[str, Any]:
    """The record that replaces ``body`` (unsealed) once its write missed the deadline,
    or (``enforced`` = the verdict and reason the edge answered) once the edge could not
    wait for the decision."""
    out = {k: v for k, v in body.items() if k not in CHAIN_FIELDS}
    reason: str | None
    if enforced is not None:
        verdict, reason, fail_open = enforced[0], enforced[1], False
    else:
        verdict, reason, fail_open = enforced_after_failure(
            str(body.get("verdict")), body.get("fail_mode"), saturated=saturated)
    out["audit_fault"] = {
        "kind": fault,
        "would_have": {"verdict": body.get("verdict"), "reason": body.get("reason"),
                       "shadow": body.get("shadow"), "fail_open": body.get("fail_open")},
    }
    out["supersedes"] = body.get("id")
    out["verdict"] = verdict
    if reason is not None:
        out["reason"] = reason
        out["shadow"] = False
        out["retry_after_s"] = None
    # an edge's BLOCK placed nothing, whatever the record said (would_have keeps it)
    out["fail_open"] = fail_open if enforced is not None else (
        bool(body.get("fail_open")) or fail_open)
    what = {
        FAULT_DEADLINE: "not enforced: the audit record missed its write deadline",
        FAULT_EDGE_DEADLINE: "not enforced: the edge answered before the decision was "
                             "complete (its screen deadline passed)",
    }.get(fault, "not enforced: the audit write failed and may or may not have landed")
    trace = list(body.get("trace") or [])[: MAX_TRACE_ITEMS - 1]
    trace.append(f"audit: {what}; enforced {verdict}"
                 + (f" {reason}" if reason else "") + (" (fail-open)" if fail_open else ""))
    out["trace"] = trace
    return out


def enforced_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """The enforced verdict of one stored record: ``{"id", "verdict", "reason",
    "supersedes", "audit_fault"}`` (readers keep the last one per decision id)."""
    fault = record.get("audit_fault")
    return {"id": record.get("id"), "verdict": record.get("verdict"),
            "reason": record.get("reason"), "supersedes": record.get("supersedes"),
            "audit_fault": fault.get("kind") if isinstance(fault, Mapping) else None}
