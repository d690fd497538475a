"""The arguments of ``scrub`` and ``report`` (docs/cli.md).

Apart from :mod:`gateway.cli.scrub_cmds` so that building the parser does not import
the scrub and report code: every command builds the whole parser.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_BATCH_ROWS", "add_parsers"]

# gateway.scrub.core.DEFAULT_BATCH_ROWS, spelled here so that building the parser does not
# import the scrub code (nor the service it decides with); tests/test_cli_imports.py
# holds them equal
DEFAULT_BATCH_ROWS = 2000


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

    p = sub.add_parser(
        "report", help="compliance report of the audit trail (self-contained HTML)",
        description="Build the compliance report of a period from the audit trail, in one "
                    "streaming pass that also verifies the hash chains. Exit 1 when the "
                    "chain verification finds a problem (the report is written and says so).")
    config_option(p)
    p.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--campaign", metavar="C", default=None, help="default: every campaign")
    p.add_argument("--lang", choices=["fr", "en"], default="fr", help="default: fr")
    p.add_argument("--tz", metavar="ZONE", default="Europe/Paris",
                   help="zone of the report's days (default: Europe/Paris)")
    p.add_argument("--out", required=True, metavar="report.html")
    p.add_argument("paths", nargs="*", metavar="FILE",
                   help="JSONL files to read in order (rotated ones first; default: "
                        "audit.path)")
    p.set_defaults(handler="report")
