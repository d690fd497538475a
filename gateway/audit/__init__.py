"""The audit trail: typed, append-only, hash-chained records of every decision.

See docs/audit.md for the record schema, the chain design, retention and privacy.
"""

from gateway.audit.chain import ChainHead, ChainVerifier, Problem, VerifyReport, verify
from gateway.audit.errors import AuditConfigError, AuditError, AuditUnavailable
from gateway.audit.export import ExportStats, export, export_async
from gateway.audit.record import SCHEMA_VERSION, AuditRecord, NumberPrivacy, build_record
from gateway.audit.trail import AuditSettings, AuditTrail, open_audit_trail

__all__ = [
    "SCHEMA_VERSION",
    "AuditConfigError",
    "AuditError",
    "AuditRecord",
    "AuditSettings",
    "AuditTrail",
    "AuditUnavailable",
    "ChainHead",
    "ChainVerifier",
    "ExportStats",
    "NumberPrivacy",
    "Problem",
    "VerifyReport",
    "build_record",
    "export",
    "export_async",
    "open_audit_trail",
    "verify",
]
