"""Demo seed data for the embedded default (memory store, campaign ``demo``).

The CSV files beside this module are templates: ``{now-30d}``, ``{now+25h}``,
``{now+5m}`` are rendered relative to the seeding instant, so the demo answers the
same way whenever it runs. They are loaded through the regular importer (the same
validation as user files). Documented in docs/cli.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources

import structlog

from gateway.importer import ImportKind, ImportReport, import_file
from gateway.store.base import ImportMode, Store

log = structlog.get_logger(__name__)

_TEMPLATE = re.compile(r"\{now(?:([+-])(\d{1,5})([dhm]))?\}")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


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


async def seed(store: Store, now: datetime) -> list[ImportReport]:
    """Load the demo consents, contract and opposition lists into ``store``.

    Meant for the memory store of the embedded default (``demo.seed = true``). Every
    import replaces its list, so seeding twice gives the same state.
    """
    reports = []
    for item in DEMO_FILES:
        data = demo_file(item.name, now)
        reports.append(await import_file(
            store, item.kind, data, now=now, mode=ImportMode.REPLACE,
            list_source=item.source, label=f"demo/{item.name}",
        ))
    log.info("demo.seeded", lists=len(reports), rows=sum(r.rows_read for r in reports))
    return reports
