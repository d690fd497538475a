"""Importers for consent, contract and opposition files (docs/import-formats.md).

Imports are atomic: a validating pass reads the whole file first and refuses it with
the first :data:`MAX_REPORTED_ERRORS` problems (line, column, problem); only a clean
file is streamed into the store's atomic import. Plain opposition lists (one number per
line) take the chunked pass of :mod:`gateway.importer.fastlist`, same rules and reports.
"""

from gateway.importer.reader import (
    MAX_COLUMNS,
    MAX_FIELD_CHARS,
    MAX_LINE_BYTES,
    MAX_REPORTED_ERRORS,
    ImportFileError,
    RowError,
)
from gateway.importer.rows import SOURCE_RE, ImportKind, check_source, consent_id, parse_instant
from gateway.importer.run import (
    DEDUP_CHUNK_KEYS,
    DEFAULT_MODES,
    IMPORT_BATCH_ROWS,
    PROGRESS_EVERY_ROWS,
    ImportReport,
    ImportSource,
    Progress,
    Validation,
    import_file,
)

__all__ = [
    "DEDUP_CHUNK_KEYS",
    "DEFAULT_MODES",
    "IMPORT_BATCH_ROWS",
    "MAX_COLUMNS",
    "MAX_FIELD_CHARS",
    "MAX_LINE_BYTES",
    "MAX_REPORTED_ERRORS",
    "PROGRESS_EVERY_ROWS",
    "SOURCE_RE",
    "ImportFileError",
    "ImportKind",
    "ImportReport",
    "ImportSource",
    "Progress",
    "RowError",
    "Validation",
    "check_source",
    "consent_id",
    "import_file",
    "parse_instant",
]
