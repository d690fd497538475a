"""The audit trail: typed, append-only, hash-chained records of every decision.

See docs/audit.md for the record schema, the chain design, retention and privacy.

The names below are imported from their modules when first asked for (PEP 562): the
configuration needs only :class:`AuditSettings` and a dry-run decision no trail at all,
so ``dialer-gateway check`` starts without the trail, its sinks, the chain verifier and
the exporter (docs/benchmarks.md, CLI start-up; tests/test_cli_imports.py).
``gateway.audit.export`` is the exporter's module (its function is
``gateway.audit.export.export``): bound lazily, the name could not mean both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.lazy import lazy_exports

if TYPE_CHECKING:
    from gateway.audit.chain import ChainHead, ChainVerifier, Problem, VerifyReport, verify
    from gateway.audit.errors import AuditConfigError, AuditError, AuditUnavailable
    from gateway.audit.export import ExportStats, export_async
    from gateway.audit.record import SCHEMA_VERSION, AuditRecord, NumberPrivacy, build_record
    from gateway.audit.settings import AuditSettings
    from gateway.audit.trail import AuditTrail, open_audit_trail

# name -> the submodule that defines it
_MODULES = {
    **dict.fromkeys(("ChainHead", "ChainVerifier", "Problem", "VerifyReport", "verify"),
                    "chain"),
    **dict.fromkeys(("AuditConfigError", "AuditError", "AuditUnavailable"), "errors"),
    **dict.fromkeys(("ExportStats", "export_async"), "export"),
    **dict.fromkeys(("SCHEMA_VERSION", "AuditRecord", "NumberPrivacy", "build_record"),
                    "record"),
    "AuditSettings": "settings",
    **dict.fromkeys(("AuditTrail", "open_audit_trail"), "trail"),
}

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
    "export_async",
    "open_audit_trail",
    "verify",
]


# Defined for the interpreter only: to the type checker the package holds the names
# imported above and no others, so a misspelt name is still an error, not ``Any``.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, _MODULES, __all__, globals())
