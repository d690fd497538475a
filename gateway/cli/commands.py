"""The CLI commands (one coroutine each); ``main`` maps their exceptions to exit codes."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.cli.common import warn_memory
from gateway.cli.exits import EXIT_FAILED, EXIT_OK
from gateway.cli.lists_cmds import lists_drop, lists_show
from gateway.cli.parser import UsageError
from gateway.clock import utc_now
from gateway.config import Config
from gateway.core.model import Attempt, Decision, ListInfo
from gateway.core.numbers import InvalidNumber, parse_listed_number, parse_number
from gateway.importer.rows import ImportKind, check_source
from gateway.instant import parse_at
from gateway.store.base import ImportMode
from gateway.text import writable
from gateway.wiring import (
    audit_trail,
    build_policy,
    build_service,
    connect_store,
    is_memory,
    seeded_store,
)

if TYPE_CHECKING:
    from gateway.importer.run import ImportReport

Handler = Callable[[argparse.Namespace, Config], Coroutine[Any, Any, int]]


def _print_json(obj: Any) -> None:
    # a lone surrogate (a trail altered by hand) as its JSON escape, never an error
    print(writable(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False)))


def _instant(value: str | None, option: str) -> datetime:
    if value is None:
        return utc_now()
    try:
        return parse_at(value, option)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _region(args: argparse.Namespace, config: Config) -> str:
    region: str = args.region or config.policy.default_region
    return region.upper()


def _e164(raw: str, region: str) -> str:
    try:
        return parse_number(raw, default_region=region).e164
    except InvalidNumber as exc:
        raise UsageError(f"NUMBER: not a valid phone number ({exc})") from None


def _listed_e164(raw: str, region: str) -> str:
    """An opposition number: every possible number (blocking is the safe direction)."""
    try:
        return parse_listed_number(raw, default_region=region).e164
    except InvalidNumber as exc:
        raise UsageError(f"NUMBER: not a possible phone number ({exc})") from None


# --- check ---------------------------------------------------------------------------


def decision_dict(decision: Decision, *, campaign: str, at: datetime) -> dict[str, Any]:
    """The JSON document ``check`` prints (docs/cli.md)."""
    return {
        "verdict": decision.verdict.value,
        "reason": decision.reason.value,
        "e164": decision.e164,
        "retry_after_s": decision.retry_after_s,
        "campaign": campaign,
        "at": at.isoformat(),
        "zones": list(decision.zones),
        "local_times": list(decision.local_times),
        "pack_id": decision.pack_id,
        "pack_hash": decision.pack_hash,
        "consent_id": decision.consent_id,
        "contract_id": decision.contract_id,
        "list_versions": [
            {"name": name, "version": version, "age_s": age}
            for name, version, age in decision.list_versions
        ],
        "attempts_seen": decision.attempts_seen,
        "attempts_limit": decision.attempts_limit,
        "house_rule": decision.house_rule,
        "trace": list(decision.trace),
        "dry_run": True,
    }


def check_jurisdictions(config: Config, campaign_id: str) -> set[str]:
    """The jurisdictions whose built-in packs ``check`` reads: the campaign's (none for
    a campaign not configured: its decision, ``campaign_unknown``, reads no pack), and
    those of the campaigns with house rules, which are checked against their packs at
    every start as by ``serve``. ``serve`` and ``config check`` read every pack."""
    campaign = config.campaigns.get(campaign_id)
    wanted = {c.jurisdiction for c in config.campaigns.values() if c.house}
    if campaign is not None:
        wanted.add(campaign.jurisdiction)
    return wanted


async def check(args: argparse.Namespace, config: Config) -> int:
    at = _instant(args.at, "--at")
    policy = build_policy(config, jurisdictions=check_jurisdictions(config, args.campaign))
    store = await seeded_store(config, at)
    try:
        service = build_service(config, policy, store)
        attempt = Attempt(number=args.number, campaign_id=args.campaign,
                          caller_id=args.caller_id, source="cli")
        decision = await service.evaluate(attempt, at)
    finally:
        await store.close()
    _print_json(decision_dict(decision, campaign=args.campaign, at=at))
    if args.campaign not in config.campaigns:
        print(f"dialer-gateway: note: campaign {args.campaign!r} is not configured (known: "
              f"{', '.join(sorted(config.campaigns)) or 'none'})", file=sys.stderr)
    return EXIT_OK


# --- imports -------------------------------------------------------------------------


def _print_report(report: ImportReport, as_json: bool) -> None:
    if as_json:
        _print_json(report.to_dict())
        return
    if report.dry_run:
        print(f"{report.list}: dry run: {report.rows_read} rows valid ({report.duplicates} "
              f"duplicates) for {report.mode} mode; nothing changed (the list has "
              f"{report.size} entries, version {report.version})")
    else:
        print(f"{report.list}: imported {report.imported} of {report.rows_read} rows "
              f"({report.duplicates} duplicates) in {report.mode} mode; version "
              f"{report.version}, {report.size} entries, sha256 {report.content_hash[:16]}...")
    if report.without_proof:
        print(f"dialer-gateway: warning: {report.without_proof} consents have no proof_ref",
              file=sys.stderr)
    if report.outside_metadata:
        print(f"dialer-gateway: note: {report.outside_metadata} numbers are possible but unknown "
              "to the numbering metadata (new ranges?); kept on the list", file=sys.stderr)


async def _import(args: argparse.Namespace, config: Config, kind: ImportKind) -> int:
    if args.file == "-":
        raise UsageError("FILE: standard input is not accepted (the file is read twice)")
    path = Path(args.file)
    source = getattr(args, "source", None)
    if source is not None:
        try:
            check_source(source)
        except ValueError as exc:
            raise UsageError(f"--source: {exc}") from None
    from gateway.importer.progress import ProgressLine
    from gateway.importer.run import import_file  # the two-pass import: these commands' own

    warn_memory(config, "this import")
    store = await connect_store(config)
    progress = ProgressLine(label=f"{path.name}: ")
    try:
        report = await import_file(
            store, kind, path, now=utc_now(), mode=ImportMode(args.mode), list_source=source,
            region=_region(args, config), allow_empty=args.allow_empty, progress=progress,
            dry_run=args.dry_run, allow_shrink=args.allow_shrink,
            progress_fraction=progress.fraction,
        )
    finally:
        progress.close()
        await store.close()
    _print_report(report, args.json)
    return EXIT_OK


async def consent_import(args: argparse.Namespace, config: Config) -> int:
    return await _import(args, config, ImportKind.CONSENTS)


async def contract_import(args: argparse.Namespace, config: Config) -> int:
    return await _import(args, config, ImportKind.CONTRACTS)


async def opposition_import(args: argparse.Namespace, config: Config) -> int:
    return await _import(args, config, ImportKind.OPPOSITION)


# --- single-number changes -----------------------------------------------------------


def _done(args: argparse.Namespace, doc: dict[str, Any], text: str) -> int:
    if args.json:
        _print_json(doc)
    else:
        print(text)
    return EXIT_OK


async def consent_revoke(args: argparse.Namespace, config: Config) -> int:
    e164 = _e164(args.number, _region(args, config))
    at = _instant(args.at, "--at")
    warn_memory(config, "this withdrawal")
    store = await connect_store(config)
    try:
        count = await store.withdraw_consent(e164=e164, professional=args.professional, at=at)
    finally:
        await store.close()
    who = args.professional or "all professionals"
    return _done(args, {"e164": e164, "professional": args.professional, "at": at.isoformat(),
                        "withdrawn": count},
                 f"{e164}: {count} consent(s) of {who} withdrawn at {at.isoformat()}")


def _source(args: argparse.Namespace) -> str:
    try:
        return check_source(args.source)
    except ValueError as exc:
        raise UsageError(f"--source: {exc}") from None


async def opposition_add(args: argparse.Namespace, config: Config) -> int:
    source = _source(args)
    e164 = _listed_e164(args.number, _region(args, config))
    at = _instant(args.at, "--at")
    warn_memory(config, "this change")
    store = await connect_store(config)
    try:
        await store.add_opposition(source, e164, at=at)
    finally:
        await store.close()
    return _done(args, {"e164": e164, "source": source, "added": True},
                 f"{e164}: on opposition list {source}")


async def opposition_remove(args: argparse.Namespace, config: Config) -> int:
    source = _source(args)
    e164 = _listed_e164(args.number, _region(args, config))
    warn_memory(config, "this change")
    store = await connect_store(config)
    try:
        removed = await store.remove_opposition(source, e164)
    finally:
        await store.close()
    text = f"{e164}: removed from {source}" if removed else f"{e164}: was not on {source}"
    return _done(args, {"e164": e164, "source": source, "removed": removed}, text)


# --- lists status --------------------------------------------------------------------


def list_dict(info: ListInfo, now: datetime) -> dict[str, Any]:
    return {
        "name": info.name,
        "version": info.version,
        "size": info.size,
        "imported_at": info.imported_at.isoformat(),
        "age_s": max(0, int((now - info.imported_at).total_seconds())),
        "content_hash": info.content_hash,
    }


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


async def lists_status(args: argparse.Namespace, config: Config) -> int:
    now = utc_now()
    store = await seeded_store(config, now)
    try:
        infos = sorted(await store.lists_status(), key=lambda i: i.name)
    finally:
        await store.close()
    docs = [list_dict(i, now) for i in infos]
    if args.json:
        _print_json({"store": "memory" if is_memory(config) else "redis", "lists": docs})
        return EXIT_OK
    if not docs:
        print("no lists imported")
        return EXIT_OK
    print(f"{'list':<28} {'version':>7} {'size':>10} {'age':>6}  imported_at")
    for d in docs:
        print(f"{d['name']:<28} {d['version']:>7} {d['size']:>10} {_age(d['age_s']):>6}  "
              f"{d['imported_at']}")
    return EXIT_OK


# --- audit ---------------------------------------------------------------------------


async def audit_verify(args: argparse.Namespace, config: Config) -> int:
    from gateway.audit.chain import ChainHead  # the chain verifier is for the audit commands

    if config.audit.sink == "none":
        raise UsageError("audit.sink is 'none': there is no audit trail to verify")
    expected: dict[str, ChainHead] = {}
    for item in args.expect:
        instance, sep, head = item.partition("=")
        seq, colon, digest = head.partition(":")
        if not (sep and colon and instance and seq.isdigit() and len(digest) == 64):
            raise UsageError(f"--expect {item!r}: expected INSTANCE=SEQ:HASH (64 hex)")
        expected[instance] = ChainHead(int(seq), digest.lower())
    if not args.paths and config.audit.sink == "jsonl":
        from gateway.workers import existing_audit_files

        files = existing_audit_files(config.audit.path, config.audit.head_path)
        if files:  # written by worker processes: one file (and chain) per worker
            if expected:
                raise UsageError(
                    "--expect with one audit file per worker: name the worker's file "
                    "(audit verify PATH --expect INSTANCE=SEQ:HASH)")
            return await _verify_files(config, files)
    async with audit_trail(config) as trail:
        report = await trail.verify(args.paths or None, expected=expected)
    _print_json(report.to_dict())
    return EXIT_OK if report.ok else EXIT_FAILED


async def _verify_files(config: Config, files: list[tuple[str, str | None]]) -> int:
    """Each worker's file against its own head file; ok when every one is."""
    reports = {}
    for path, head in files:
        one = dataclasses.replace(config, audit=dataclasses.replace(
            config.audit, path=path, head_path=head))
        async with audit_trail(one) as trail:
            reports[path] = (await trail.verify()).to_dict()
    ok = all(r["ok"] for r in reports.values())
    _print_json({"ok": ok, "records": sum(r["records"] for r in reports.values()),
                 "problems_total": sum(r["problems_total"] for r in reports.values()),
                 "files": reports})
    return EXIT_OK if ok else EXIT_FAILED


async def audit_export(args: argparse.Namespace, config: Config) -> int:
    if config.audit.sink == "none":
        raise UsageError("audit.sink is 'none': there is no audit trail to export")
    since = _instant(args.since, "--since") if args.since else None
    until = _instant(args.until, "--until") if args.until else None
    if since and until and until <= since:
        raise UsageError("--until must be after --since")
    if not args.paths and config.audit.sink == "jsonl":
        from gateway.workers import existing_audit_files

        args.paths = [path for path, _ in existing_audit_files(config.audit.path,
                                                               config.audit.head_path)]
    async with audit_trail(config) as trail:
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as out:  # noqa: ASYNC230 -- a local file the operator named; writes are small and sequential
                stats = await trail.export(out, since=since, until=until, number=args.number,
                                           campaign=args.campaign, fmt=args.format,
                                           paths=args.paths or None,
                                           default_region=config.policy.default_region)
        else:
            stats = await trail.export(sys.stdout, since=since, until=until,
                                       number=args.number, campaign=args.campaign,
                                       fmt=args.format, paths=args.paths or None,
                                       default_region=config.policy.default_region)
    print(f"dialer-gateway: exported {stats.exported} of {stats.scanned} records "
          f"({stats.unreadable} unreadable, {stats.other_key} under another hash key)",
          file=sys.stderr)
    return EXIT_OK


# --- config check --------------------------------------------------------------------


async def config_check(args: argparse.Namespace, config: Config) -> int:
    build_policy(config)  # pack files and campaigns must load too
    _print_json(config.to_public_dict())
    return EXIT_OK


HANDLERS: dict[str, Handler] = {
    "check": check,
    "consent_import": consent_import,
    "contract_import": contract_import,
    "opposition_import": opposition_import,
    "consent_revoke": consent_revoke,
    "opposition_add": opposition_add,
    "opposition_remove": opposition_remove,
    "lists_status": lists_status,
    "lists_show": lists_show,
    "lists_drop": lists_drop,
    "audit_verify": audit_verify,
    "audit_export": audit_export,
    "config_check": config_check,
}
