"""The compliance report (``dialer-gateway report``; docs/report.md).

Two streaming passes over the audit trail (JSONL files or the Redis stream, read
through :class:`~gateway.audit.AuditTrail`): the first finds the decisions that have
superseding records (a byte search per line, :mod:`gateway.report.supersede`); in the
second every stored line goes to the chain verifier and, once parsed, to the
:class:`ReportBuilder`, which counts each decision by its last record. Nothing is kept
per record. The page is rendered from the bounded figures at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

from gateway.audit import AuditTrail, ChainVerifier
from gateway.report.aggregate import ReportBuilder, ReportData
from gateway.report.html import Meta, render
from gateway.report.i18n import LANGS
from gateway.report.supersede import Supersessions
from gateway.text import writable

__all__ = ["LANGS", "Meta", "ReportBuilder", "ReportData", "Supersessions", "build_report",
           "render"]


async def build_report(trail: AuditTrail, *, start: date, end: date, campaign: str | None,
                       zone: str, lang: str, generated_at: datetime, source: str,
                       abandon_limits: Mapping[str, float],
                       paths: Sequence[str] | None = None) -> tuple[str, ReportData, bool]:
    """(page, figures, chain ok)."""
    heads = await trail.heads()
    supersessions = Supersessions()
    async for _, raw in trail.iter_lines(paths):
        supersessions.scan(raw)
    builder = ReportBuilder(start=start, end=end, zone=zone, campaign=campaign,
                            supersessions=supersessions)
    verifier = ChainVerifier(allow_trimmed_prefix=trail.settings.trimmed, heads=heads)
    left = supersessions.lines  # records appended since the first pass are left out
    async for position, raw in trail.iter_lines(paths):
        if left > 0:  # read on to the end all the same: the reader closes its file there
            left -= 1
            builder.feed(verifier.feed(position, raw))
    chain = verifier.report()
    data = builder.result()
    meta = Meta(generated_at=generated_at.isoformat(timespec="seconds"), source=source,
                abandon_limits=abandon_limits)
    # a lone surrogate from the trail (a dial string that was not UTF-8, or a record
    # altered by hand) shown as its escape, never a UnicodeEncodeError at the write
    return writable(render(data, chain, meta, lang)), data, chain.ok
