"""The audit trail's own error types."""

from __future__ import annotations


class AuditError(Exception):
    """Base of the audit trail's errors."""


class AuditUnavailable(AuditError):
    """The audit sink could not record in time (I/O error, backend down, deadline passed).

    The service treats it like a store failure: the campaign's fail mode applies
    (default: block), because a call that cannot be proven must not be placed.
    """


class AuditConfigError(AuditError, ValueError):
    """The audit settings are inconsistent (e.g. ``number_mode="hash"`` without a key)."""
