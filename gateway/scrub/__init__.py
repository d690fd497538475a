"""Bulk lead scrubbing: the engine's dry-run decision for every row of a file.

``scrub`` (CLI) and ``POST /v1/scrub`` (HTTP API) share this package: rows come in
batches, :meth:`gateway.service.Service.evaluate_many` decides them (the plan and
decide of a call, facts read in one store round trip per batch; nothing reserved,
nothing audited) and each row goes out with the columns of :data:`ADDED_COLUMNS`.
Documented in docs/scrub.md.
"""

from gateway.scrub.core import (
    ADDED_COLUMNS,
    BULK_GC_THRESHOLD,
    DEFAULT_BATCH_ROWS,
    Lead,
    Scrubbed,
    Scrubber,
    ScrubSummary,
    bulk_gc,
)
from gateway.scrub.csvio import (
    MAX_FIELD_CHARS,
    NUMBER_COLUMN_NAMES,
    CsvLeads,
    ScrubInputError,
    added_names,
    find_number_column,
)

__all__ = [
    "ADDED_COLUMNS",
    "BULK_GC_THRESHOLD",
    "DEFAULT_BATCH_ROWS",
    "MAX_FIELD_CHARS",
    "NUMBER_COLUMN_NAMES",
    "CsvLeads",
    "Lead",
    "ScrubInputError",
    "ScrubSummary",
    "Scrubbed",
    "Scrubber",
    "added_names",
    "bulk_gc",
    "find_number_column",
]
