"""The audit trail's own error types."""

from __future__ import annotations


class AuditError(Exception):
    """Base of the audit trail's errors."""


class AuditUnavailable(AuditError):
    """The audit sink could not record in time (I/O error, backend down, deadline passed).

    The service treats it like a store failure: the campaign's fail mode applies
    (default: block), because a call that cannot be proven must not be placed.

    ``fault`` is set when the record may still land after this error (the write missed
    its deadline, or failed after reaching the sink): the trail then appends a
    superseding record saying what was enforced (see ``gateway.audit.enforced``).

    ``saturated`` is set when the sink was up but this process could not get the write
    done in time (the event loop ran late, or the sink kept completing other writes
    meanwhile): the edge then answers ``timeout`` rather than ``store_unavailable``.
    """

    def __init__(self, message: str, *, fault: str | None = None,
                 saturated: bool = False) -> None:
        super().__init__(message)
        self.fault = fault
        self.saturated = saturated


class AuditConfigError(AuditError, ValueError):
    """The audit settings are inconsistent (e.g. ``number_mode="hash"`` without a key)."""
