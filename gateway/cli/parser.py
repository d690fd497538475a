"""The ``dialer-gateway`` command line (stdlib argparse). Documented in docs/cli.md."""

from __future__ import annotations

import argparse

from gateway import __version__

# gateway.store.base.ImportMode's values, spelled here so that building the parser (every
# command, --help and --version included) imports no store, core or holidays code;
# tests/test_cli_imports.py holds them equal
IMPORT_MODES = ("replace", "merge")
REPLACE, MERGE = IMPORT_MODES


class UsageError(Exception):
    """Bad arguments: exit code 2 with the message on stderr."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # raises, never exits
        raise UsageError(f"{self.prog}: {message}")


def _config(p: argparse.ArgumentParser, *, top: bool = False) -> None:
    # accepted before or after the sub-command; SUPPRESS keeps the top-level value
    p.add_argument("--config", metavar="FILE",
                   default=None if top else argparse.SUPPRESS,
                   help="TOML configuration file (default: $DIALER_GATEWAY_CONFIG, "
                        "else the embedded default)")


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def _region(p: argparse.ArgumentParser) -> None:
    p.add_argument("--region", metavar="CC", default=None,
                   help="region of numbers written in national format "
                        "(default: policy.default_region, FR)")


def _at(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--at", metavar="ISO8601", default=None,
                   help=f"{what}, with a UTC offset (default: now)")


def _import(sub: argparse._SubParsersAction[_Parser], kind: str, default_mode: str,
            help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser("import", help=help_text, description=help_text)
    _config(p)
    p.add_argument("file", metavar="FILE", help="UTF-8 CSV with a header row (see "
                   "docs/import-formats.md); '-' is not accepted (two passes are needed)")
    p.add_argument("--mode", choices=list(IMPORT_MODES), default=default_mode,
                   help=f"replace the whole list or merge into it (default: {default_mode})")
    p.add_argument("--allow-empty", action="store_true",
                   help="accept a file without rows (with --mode replace: empties the list)")
    p.add_argument("--dry-run", action="store_true",
                   help="validate and report; change nothing")
    p.add_argument("--allow-shrink", action="store_true",
                   help="accept a replacement with under 50%% of the current list's entries")
    _region(p)
    _json(p)
    p.set_defaults(handler=f"{kind}_import")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dialer-gateway",
                     description="Real-time compliance gateway for outbound calls on Asterisk.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _config(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p: argparse.ArgumentParser = sub.add_parser(
        "serve", help="run the gateway (FastAGI, AMI proxy, HTTP)")
    _config(p)
    p.set_defaults(handler="serve")

    p = sub.add_parser(
        "reload", help="make the running gateway reload its configuration; report the result",
        description="POST /-/reload to the running gateway's ops endpoint (http.listen, "
                    "loopback) and print the outcome. Exit 0 reloaded, 1 refused (the "
                    "running configuration stays), 3 no answer.")
    _config(p)
    p.add_argument("--endpoint", metavar="HOST:PORT", default=None,
                   help="the gateway's http.listen (default: read from the configuration)")
    p.add_argument("--timeout", metavar="S", type=float, default=30.0,
                   help="seconds to wait for the outcome (default: 30)")
    _json(p)
    p.set_defaults(handler="reload")

    p = sub.add_parser("check", help="dry-run the decision for one number (JSON)",
                       description="Print the decision the gateway would take, as JSON. "
                                   "Reserves nothing and writes no audit record.")
    _config(p)
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--campaign", required=True, metavar="C")
    _at(p, "instant of the call")
    p.add_argument("--caller-id", metavar="X", default=None,
                   help="presented number (default: the campaign's caller_id)")
    p.set_defaults(handler="check")

    consent = sub.add_parser("consent", help="consents (opt-in) with their proof")
    csub = consent.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    csub.required = True
    _import(csub, "consent", MERGE, "import a consents CSV file (atomic)")
    p = csub.add_parser("revoke", help="withdraw the consents of a number")
    _config(p)
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--professional", metavar="P", default=None,
                   help="only this professional's consents (default: all)")
    _at(p, "instant of the withdrawal")
    _region(p)
    _json(p)
    p.set_defaults(handler="consent_revoke")

    contract = sub.add_parser("contract", help="contracts in progress")
    ksub = contract.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    ksub.required = True
    _import(ksub, "contract", MERGE, "import a contracts CSV file (atomic)")

    opposition = sub.add_parser("opposition", help="opposition lists (bloctel, internal, ...)")
    osub = opposition.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    osub.required = True
    p = _import(osub, "opposition", REPLACE,
                "import an opposition list snapshot (CSV or one number per line; atomic)")
    p.add_argument("--source", required=True, metavar="S",
                   help="list name: bloctel, internal, tps, ndnc, ... ([a-z0-9_-]{1,32})")
    for action, text in (("add", "add one number to a list"),
                         ("remove", "remove one number from a list")):
        p = osub.add_parser(action, help=text)
        _config(p)
        p.add_argument("number", metavar="NUMBER")
        p.add_argument("--source", default="internal", metavar="S",
                       help="list name (default: internal)")
        if action == "add":
            _at(p, "registration instant")
        _region(p)
        _json(p)
        p.set_defaults(handler=f"opposition_{action}")

    lists = sub.add_parser("lists", help="imported lists")
    lsub = lists.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    lsub.required = True
    p = lsub.add_parser("status", help="sizes, versions and age of each list")
    _config(p)
    _json(p)
    p.set_defaults(handler="lists_status")
    p = lsub.add_parser("show", help="every fact the store holds about one number")
    _config(p)
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--professional", action="append",
                   help="also show this professional's facts (default: every configured "
                        "campaign's professional; repeatable)")
    p.add_argument("--days", type=int, default=30,
                   help="attempts counted over this many days (default: 30)")
    _region(p)
    _json(p)
    p.set_defaults(handler="lists_show")
    p = lsub.add_parser("drop", help="delete an opposition list (e.g. a mistyped --source)")
    _config(p)
    p.add_argument("name", metavar="NAME", help="the source (bloctel) or opposition:bloctel")
    _json(p)
    p.set_defaults(handler="lists_drop")

    audit = sub.add_parser("audit", help="the audit trail")
    asub = audit.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    asub.required = True
    p = asub.add_parser("verify", help="verify the hash chains of the audit trail")
    _config(p)
    p.add_argument("paths", nargs="*", metavar="FILE",
                   help="JSONL files to read in order (rotated ones first; default: "
                        "audit.path)")
    p.add_argument("--expect", action="append", default=[], metavar="INSTANCE=SEQ:HASH",
                   help="a chain head the trail must reach, e.g. from an audit.anchor log "
                        "line kept elsewhere (repeatable)")
    p.set_defaults(handler="audit_verify")
    p = asub.add_parser("export", help="export audit records (for an inspector)")
    _config(p)
    p.add_argument("--since", metavar="ISO8601", default=None)
    p.add_argument("--until", metavar="ISO8601", default=None)
    p.add_argument("--number", metavar="N", default=None)
    p.add_argument("--campaign", metavar="C", default=None)
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    p.add_argument("--output", metavar="FILE", default=None, help="default: stdout")
    p.add_argument("paths", nargs="*", metavar="FILE",
                   help="JSONL files to read in order (default: audit.path)")
    p.set_defaults(handler="audit_export")

    from gateway.cli import scrub_args  # scrub, report (before a campaign, for the DPO)

    scrub_args.add_parsers(sub, _config, _json)

    cfg = sub.add_parser("config", help="configuration")
    fsub = cfg.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    fsub.required = True
    p = fsub.add_parser("check", help="print the resolved configuration (secrets redacted)")
    _config(p)
    p.set_defaults(handler="config_check")
    return parser
