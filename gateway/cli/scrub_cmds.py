"""``scrub`` and ``report``: before a campaign and for the DPO (docs/scrub.md,
docs/report.md). Their arguments: :mod:`gateway.cli.scrub_args`."""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import secrets
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.cli.parser import UsageError
from gateway.clock import utc_now
from gateway.config import Config
from gateway.instant import parse_at
from gateway.report import ReportBuilder, build_report
from gateway.scrub import CsvLeads, Scrubber, ScrubInputError, ScrubSummary
from gateway.scrub import added_names as _added_names
from gateway.scrub.core import bulk_gc
from gateway.scrub.progress import ScrubProgress
from gateway.wiring import audit_trail, build_policy, build_service, connect_store, seed_demo

EXIT_OK = 0
EXIT_FAILED = 1  # the chain verification found a problem


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
        # strict: a cell decoded with replacement characters would be written back so
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        yield text, raw, os.fstat(raw.fileno()).st_size


def _not_an_input(out: str, inputs: list[str]) -> None:
    """``--out`` must not name a file read (the lead file, the audit trail): renamed over
    it at the end, the output would replace it."""
    if out == "-":
        return
    target = Path(out)
    for name in inputs:
        if name == "-":
            continue
        try:
            same = target.resolve() == Path(name).resolve() or (
                target.exists() and os.path.samefile(target, name))
        except OSError:
            continue
        if same:
            raise UsageError(f"--out {out}: is {name}, which is read: it would be replaced")


@contextlib.contextmanager
def _open_out(name: str) -> Iterator[TextIO]:
    """Written beside the target and renamed at the end: never a half file."""
    if name == "-":
        yield sys.stdout
        return
    target = Path(name)
    if target.is_dir():
        raise UsageError(f"{name}: is a directory: name the file to write")
    # a name nobody can guess, created here and never through a link: --out may lie in a
    # shared directory where another user plants one at a predictable name
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(6)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o666)
        out = open(fd, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"{name}: cannot write: {exc.strerror or exc}") from None
    try:
        with out:
            yield out
        try:
            os.replace(tmp, target)
        except OSError as exc:  # became a directory meanwhile, or another file system
            raise UsageError(f"{name}: cannot write: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


async def scrub(args: argparse.Namespace, config: Config) -> int:
    if args.batch < 1:
        raise UsageError("--batch must be >= 1")
    try:
        at = parse_at(args.at, "--at") if args.at else utc_now()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.campaign not in config.campaigns:
        raise UsageError(f"--campaign: {args.campaign!r} is not configured (known: "
                         f"{', '.join(sorted(config.campaigns)) or 'none'})")
    _not_an_input(args.out, [args.file])
    policy = build_policy(config)
    summary = ScrubSummary()
    store = await connect_store(config)
    try:
        await seed_demo(store, config, at)
        service = build_service(config, policy, store)
        scrubber = Scrubber(service, args.campaign, at)
        with _open_in(args.file) as (text, raw, total), _open_out(args.out) as out, bulk_gc(), \
                _utf8_only(args.file, raw):
            try:
                leads = CsvLeads(text, number_column=args.number_column)
            except ScrubInputError as exc:
                raise UsageError(f"{args.file}: {exc}") from None
            writer = csv.writer(out, delimiter=leads.delimiter, lineterminator="\r\n")
            writer.writerow([*leads.header, *_added_names(leads.header)])
            progress = ScrubProgress(total, label=f"{Path(args.file).name}: ")
            try:
                for batch in leads.batches(args.batch):
                    rows = await scrubber.scrub(batch)
                    summary.add_all(rows)
                    writer.writerows([*row.lead.fields, *row.added] for row in rows)
                    progress.update(raw.tell() if raw is not None else 0, summary.rows)
                progress.update(total or 0, summary.rows, final=True)
            finally:
                progress.close()
    finally:
        await store.close()
    _print_summary(summary, args)
    return EXIT_OK


@contextlib.contextmanager
def _utf8_only(name: str, raw: Any) -> Iterator[None]:
    """A lead file that is not UTF-8 is a usage error (nothing written)."""
    try:
        yield
    except UnicodeDecodeError:
        where = f" (before byte {raw.tell()})" if raw is not None else ""
        raise UsageError(
            f"{name}: not UTF-8{where}: save it as \"CSV UTF-8\" or convert it, e.g. "
            "iconv -f WINDOWS-1252 -t UTF-8") from None


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


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option}: expected YYYY-MM-DD, got {value!r}") from None


def _abandon_limits(config: Config, at: datetime) -> dict[str, float]:
    policy = build_policy(config)
    limits = {}
    for cid, campaign in policy.campaigns.items():
        pack = policy.pack_for(campaign.jurisdiction, at)
        if pack is not None:
            limits[cid] = pack.abandon.max_ratio
    return limits


async def report(args: argparse.Namespace, config: Config) -> int:
    if config.audit.sink == "none":
        raise UsageError("audit.sink is 'none': there is no audit trail to report on")
    start, end = _day(args.start, "--from"), _day(args.end, "--to")
    try:
        ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--tz: unknown zone {args.tz!r}") from None
    trail_files = [config.audit.path, config.audit.resolved_head_path] \
        if config.audit.sink == "jsonl" else []
    _not_an_input(args.out, [*args.paths, *trail_files])
    now = utc_now()
    try:
        ReportBuilder(start=start, end=end, zone=args.tz)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    async with audit_trail(config) as trail:
        source = (f"redis stream {trail.settings.stream_key}" if config.audit.sink == "redis"
                  else ", ".join(args.paths or [config.audit.path]))
        page, data, ok = await build_report(
            trail, start=start, end=end, campaign=args.campaign, zone=args.tz,
            lang=args.lang, generated_at=now, source=source,
            abandon_limits=_abandon_limits(config, now), paths=args.paths or None)
    with _open_out(args.out) as out:
        out.write(page)
    print(f"dialer-gateway: report {args.out}: {data.records_in_period} decisions in the "
          f"period, {data.records_total} records read; chain "
          f"{'verified' if ok else 'BROKEN (see the report)'}", file=sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED


HANDLERS = {"scrub": scrub, "report": report}
