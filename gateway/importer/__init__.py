"""Importers for consent, contract and opposition files (docs/import-formats.md).

Imports are atomic: a validating pass reads the whole file first and refuses it with
the first :data:`MAX_REPORTED_ERRORS` problems (line, column, problem); only a clean
file is streamed into the store's atomic import. Plain opposition lists (one number per
line) take the chunked pass of :mod:`gateway.importer.fastlist`, same rules and reports.

The names below are imported from their modules when first asked for (PEP 562): a
command that only reads an import's errors or the row rules (``check``: instants, the
exit code of a refused file) starts without the two-pass import and its bulk passes
(docs/benchmarks.md, CLI start-up; tests/test_cli_imports.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.lazy import lazy_exports

if TYPE_CHECKING:
    from gateway.importer.reader import (
        MAX_COLUMNS,
        MAX_FIELD_CHARS,
        MAX_LINE_BYTES,
        MAX_REPORTED_ERRORS,
        ImportFileError,
        RowError,
    )
    from gateway.importer.rows import (
        SOURCE_RE,
        ImportKind,
        check_source,
        consent_id,
        parse_instant,
    )
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

# name -> the submodule that defines it
_MODULES = {
    **dict.fromkeys(("MAX_COLUMNS", "MAX_FIELD_CHARS", "MAX_LINE_BYTES", "MAX_REPORTED_ERRORS",
                     "ImportFileError", "RowError"), "reader"),
    **dict.fromkeys(("SOURCE_RE", "ImportKind", "check_source", "consent_id",
                     "parse_instant"), "rows"),
    **dict.fromkeys(("DEDUP_CHUNK_KEYS", "DEFAULT_MODES", "IMPORT_BATCH_ROWS",
                     "PROGRESS_EVERY_ROWS", "ImportReport", "ImportSource", "Progress",
                     "Validation", "import_file"), "run"),
}

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


# Defined for the interpreter only: to the type checker the package holds the names
# imported above and no others, so a misspelt name is still an error, not ``Any``.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, _MODULES, __all__, globals())
