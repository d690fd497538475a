"""Demo seed data for the embedded default (memory store, campaign ``demo``).

The CSV files beside this module are templates: ``{now-30d}``, ``{now+25h}``,
``{now+5m}`` are rendered relative to the seeding instant, so the demo answers the
same way whenever it runs. Each row is checked by the importer's row rules (the same
reader, header check and converters as a user's file, :mod:`gateway.importer.rows`) and
the list goes to the store's atomic import with the file's content hash, as
:func:`gateway.importer.import_file` does; without its two passes through a spool and
worker threads, nor its bulk passes, which are for files of millions of rows: ``check``
seeds the memory store at every start (docs/benchmarks.md, CLI start-up). A test holds
the store this gives equal to the one ``import_file`` gives. Documented in docs/cli.md.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import structlog

from gateway.core.model import ListInfo
from gateway.importer.reader import Aborted, ImportFileError, LineSource, RowError
from gateway.importer.rows import (
    SPECS,
    FieldProblem,
    FileProblem,
    ImportKind,
    check_source,
    file_records,
)
from gateway.store.base import ImportMode, Store

log = structlog.get_logger(__name__)

_TEMPLATE = re.compile(r"\{now(?:([+-])(\d{1,5})([dhm]))?\}")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
DEMO_REGION = "FR"  # the national numbers of the files (import_file's default region)


@dataclass(frozen=True, slots=True)
class DemoFile:
    name: str
    kind: ImportKind
    source: str | None = None


DEMO_FILES = (
    DemoFile("consents.csv", ImportKind.CONSENTS),
    DemoFile("contracts.csv", ImportKind.CONTRACTS),
    DemoFile("opposition-internal.csv", ImportKind.OPPOSITION, "internal"),
    DemoFile("opposition-bloctel.csv", ImportKind.OPPOSITION, "bloctel"),
)


def render(template: str, now: datetime) -> str:
    """Replace ``{now}``, ``{now-30d}``, ``{now+25h}``... by ISO-8601 UTC instants."""
    if now.tzinfo is None:
        raise ValueError("render: now must be timezone-aware")

    def one(match: re.Match[str]) -> str:
        sign, amount, unit = match.groups()
        at = now
        if sign:
            delta = timedelta(**{_UNITS[unit]: int(amount)})
            at = now + delta if sign == "+" else now - delta
        return at.astimezone(UTC).isoformat(timespec="seconds")

    return _TEMPLATE.sub(one, template)


def demo_file(name: str, now: datetime) -> bytes:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return render(text, now).encode("utf-8")


def demo_rows(item: DemoFile, now: datetime) -> tuple[list[Any], str]:
    """The records of a demo file rendered at ``now``, each checked by the importer's
    row rules, and the file's content hash; ImportFileError listing its problems."""
    spec = SPECS[item.kind]
    lines = LineSource(io.BytesIO(demo_file(item.name, now)))
    rows: list[Any] = []
    errors: list[RowError] = []
    try:
        records, _ = file_records(lines, spec)
        for rec in records:
            if rec.error is not None:
                errors.append(RowError(rec.line, None, rec.error))
                continue
            try:
                rows.append(spec.convert(rec.fields, DEMO_REGION).record)
            except FieldProblem as problem:
                errors.append(RowError(rec.line, problem.column, problem.problem))
    except Aborted as abort:
        errors.append(abort.error)
    except FileProblem as problem:
        errors.extend(problem.errors)
    if errors:
        raise ImportFileError(f"demo/{item.name}", errors)
    return rows, lines.sha256.hexdigest()


async def seed(store: Store, now: datetime) -> list[ListInfo]:
    """Load the demo consents, contract and opposition lists into ``store``.

    Meant for the memory store of the embedded default (``demo.seed = true``). Every
    import replaces its list, so seeding twice gives the same state.
    """
    infos = []
    rows_read = 0
    for item in DEMO_FILES:
        rows, digest = demo_rows(item, now)
        rows_read += len(rows)
        mode = ImportMode.REPLACE
        if item.kind is ImportKind.CONSENTS:
            info = await store.import_consents(rows, mode=mode, now=now, content_hash=digest)
        elif item.kind is ImportKind.CONTRACTS:
            info = await store.import_contracts(rows, mode=mode, now=now, content_hash=digest)
        else:
            source = check_source(item.source or "")  # the list's name, as import_file checks it
            info = await store.import_opposition(source, rows, mode=mode, now=now,
                                                 content_hash=digest)
        infos.append(info)
    log.info("demo.seeded", lists=len(infos), rows=rows_read)
    return infos
