"""``scrub`` and ``report``: before a campaign and for the DPO (docs/scrub.md,
docs/report.md). Sub-commands registered by :func:`add_parsers`."""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from gateway.app import build_policy
from gateway.cli.parser import UsageError
from gateway.cli.wiring import is_memory, open_store
from gateway.config import Config
from gateway.demo import seed
from gateway.importer import parse_instant
from gateway.scrub import DEFAULT_BATCH_ROWS, CsvLeads, Scrubber, ScrubInputError, ScrubSummary
from gateway.scrub import added_names as _added_names
from gateway.scrub.progress import ScrubProgress
from gateway.service import Service, utc_now

EXIT_OK = 0


def add_parsers(sub: Any, config_option: Any, json_option: Any) -> None:
    p = sub.add_parser(
        "scrub", help="dry-run the decision for every lead of a CSV file",
        description="Decide every lead of a CSV file as a call at --at would be decided "
                    "(reserves nothing, audits nothing) and write the file back with "
                    "verdict, reason, e164, next_legal_at, next_legal_local, zones, "
                    "consent_id, contract_id and error columns.")
    config_option(p)
    p.add_argument("file", metavar="LEADS.csv", help="CSV with a header row; '-': stdin")
    p.add_argument("--campaign", required=True, metavar="C")
    p.add_argument("--at", metavar="ISO8601", default=None,
                   help="instant of the calls, with a UTC offset (default: now)")
    p.add_argument("--out", required=True, metavar="SCRUBBED.csv", help="'-': stdout")
    p.add_argument("--number-column", metavar="NAME", default=None,
                   help="the number column (default: number, phone or telephone)")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH_ROWS, metavar="N",
                   help=f"rows per store round trip (default {DEFAULT_BATCH_ROWS})")
    json_option(p)
    p.set_defaults(handler="scrub")


@contextlib.contextmanager
def _open_in(name: str) -> Iterator[tuple[TextIO, Any, int | None]]:
    """(text stream, byte reader for the position, total bytes)."""
    if name == "-":
        yield sys.stdin, None, None
        return
    try:
        raw = open(name, "rb")
    except OSError as exc:
        raise UsageError(f"{name}: cannot read: {exc.strerror or exc}") from None
    with raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        yield text, raw, os.fstat(raw.fileno()).st_size


@contextlib.contextmanager
def _open_out(name: str) -> Iterator[TextIO]:
    """Written beside the target and renamed at the end: never a half file."""
    if name == "-":
        yield sys.stdout
        return
    target = Path(name)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        out = open(tmp, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"{name}: cannot write: {exc.strerror or exc}") from None
    try:
        with out:
            yield out
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


async def scrub(args: argparse.Namespace, config: Config) -> int:
    if args.batch < 1:
        raise UsageError("--batch must be >= 1")
    try:
        at = parse_instant(args.at, "--at") if args.at else utc_now()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.campaign not in config.campaigns:
        raise UsageError(f"--campaign: {args.campaign!r} is not configured (known: "
                         f"{', '.join(sorted(config.campaigns)) or 'none'})")
    policy = build_policy(config)
    summary = ScrubSummary()
    store = await open_store(config)
    try:
        if is_memory(config) and config.demo.seed:
            await seed(store, at)
        service = Service(policy=policy, store=store, audit=None,
                          budget_s=config.service.decision_budget_ms / 1000)
        scrubber = Scrubber(service, args.campaign, at)
        with _open_in(args.file) as (text, raw, total), _open_out(args.out) as out:
            try:
                leads = CsvLeads(text, number_column=args.number_column)
            except ScrubInputError as exc:
                raise UsageError(f"{args.file}: {exc}") from None
            writer = csv.writer(out, delimiter=leads.delimiter, lineterminator="\r\n")
            writer.writerow([*leads.header, *_added_names(leads.header)])
            progress = ScrubProgress(total, label=f"{Path(args.file).name}: ")
            try:
                for batch in leads.batches(args.batch):
                    for row in await scrubber.scrub(batch):
                        summary.add(row)
                        writer.writerow([*row.lead.fields, *row.added])
                    progress.update(raw.tell() if raw is not None else 0, summary.rows)
                progress.update(total or 0, summary.rows, final=True)
            finally:
                progress.close()
    finally:
        await store.close()
    _print_summary(summary, args)
    return EXIT_OK


def _print_summary(summary: ScrubSummary, args: argparse.Namespace) -> None:
    doc = summary.to_dict()
    doc.update(campaign=args.campaign, out=args.out)
    stream = sys.stderr if args.out == "-" else sys.stdout
    for item in doc["first_invalid"]:
        print(f"dialer-gateway: invalid row {item['line']}: {item['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, indent=2), file=stream)
        return
    print(f"{doc['rows']} rows: {doc['allow']} ALLOW, {doc['block']} BLOCK, "
          f"{doc['invalid']} INVALID", file=stream)
    for reason, count in doc["by_reason"].items():
        print(f"  {reason:<22} {count:>10}", file=stream)


HANDLERS = {"scrub": scrub}
