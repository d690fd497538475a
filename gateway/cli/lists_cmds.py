"""``lists show NUMBER`` (every fact about one number) and ``lists drop NAME``."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from gateway.cli.common import warn_memory
from gateway.cli.parser import UsageError
from gateway.clock import utc_now
from gateway.config import Config
from gateway.core.model import Facts
from gateway.core.numbers import InvalidNumber, parse_listed_number
from gateway.importer.rows import check_source
from gateway.store.base import Store
from gateway.store.codec import iso
from gateway.wiring import connect_store, seeded_store

EXIT_OK = 0
#: ``lists show``: attempts counted over this many days unless --days.
DEFAULT_SHOW_DAYS = 30


async def _store(config: Config) -> Store:
    return await seeded_store(config, utc_now())


def facts_doc(e164: str, per_professional: dict[str, Facts], days: int) -> dict[str, Any]:
    """Everything the store holds about one number, as JSON-ready data."""
    any_facts = next(iter(per_professional.values()))
    lists = {i.name: i for i in any_facts.lists}
    oppositions = []
    for o in any_facts.oppositions:
        info = lists.get(f"opposition:{o.source}")
        oppositions.append({
            "list": f"opposition:{o.source}",
            "how": "added one by one" if o.registered_at else "imported snapshot",
            "since": iso(o.registered_at) if o.registered_at
            else (iso(info.imported_at) if info else None),
            "list_version": info.version if info else None,
        })
    doc: dict[str, Any] = {"e164": e164, "oppositions": oppositions, "professionals": {}}
    for professional, f in sorted(per_professional.items()):
        doc["professionals"][professional] = {
            "consents": [{"id": c.id, "product_category": c.product_category,
                          "collected_at": iso(c.collected_at), "expires_at": iso(c.expires_at),
                          "withdrawn_at": iso(c.withdrawn_at), "channel": c.channel,
                          "proof_ref": c.proof_ref} for c in f.consents],
            "contracts": [{"ref": k.id, "product_category": k.product_category,
                           "started_at": iso(k.started_at), "ends_at": iso(k.ends_at),
                           "kind": k.kind}
                          for k in f.contracts],
            "suppressions": [{"reason": s.reason, "since": iso(s.since), "until": iso(s.until)}
                             for s in f.suppressions],
            f"attempts_last_{days}_days": [iso(a) for a in f.attempts],
        }
    return doc


async def lists_show(args: argparse.Namespace, config: Config) -> int:
    region = (args.region or config.policy.default_region).upper()
    try:
        e164 = parse_listed_number(args.number, region).e164
    except InvalidNumber as exc:
        raise UsageError(f"NUMBER: not a possible phone number ({exc})") from None
    days = args.days
    if days < 1:
        raise UsageError("--days: at least 1")
    now = utc_now()
    professionals = sorted({c.professional for c in config.campaigns.values()}
                           | set(args.professional or ()))
    if not professionals:
        raise UsageError("no professional: configure a campaign or pass --professional")
    store = await _store(config)
    try:
        per: dict[str, Facts] = {}
        for professional in professionals:
            per[professional] = await store.load_facts(
                e164=e164, professional=professional, campaign_id="-", now=now,
                attempt_window_s=int(timedelta(days=days).total_seconds()), abandon_window_s=1)
    finally:
        await store.close()
    doc = facts_doc(e164, per, days)
    if args.json:
        import json

        print(json.dumps(doc, indent=2))
        return EXIT_OK
    print(f"{e164}")
    if not doc["oppositions"]:
        print("  opposition lists: none")
    for o in doc["oppositions"]:
        print(f"  on {o['list']} since {o['since']} ({o['how']})")
    for professional, d in doc["professionals"].items():
        print(f"  {professional}:")
        for c in d["consents"]:
            state = f"withdrawn {c['withdrawn_at']}" if c["withdrawn_at"] else \
                f"expires {c['expires_at']}"
            print(f"    consent {c['id']} ({c['product_category']}) collected "
                  f"{c['collected_at']}, {state}, proof {c['proof_ref'] or '(none)'}")
        for k in d["contracts"]:
            if k["kind"] == "inquiry":
                print(f"    inquiry {k['ref']} ({k['product_category']}) made {k['started_at']}")
                continue
            print(f"    contract {k['ref']} ({k['product_category']}) from {k['started_at']}"
                  f" to {k['ends_at'] or 'open-ended'}")
        for s in d["suppressions"]:
            print(f"    suppressed ({s['reason']}) since {s['since']} until "
                  f"{s['until'] or 'indefinitely'}")
        attempts = d[f"attempts_last_{days}_days"]
        print(f"    attempts in the last {days} days: {len(attempts)}"
              + (f" ({', '.join(attempts)})" if attempts else ""))
    return EXIT_OK


async def lists_drop(args: argparse.Namespace, config: Config) -> int:
    name = args.name.removeprefix("opposition:")
    try:
        check_source(name)
    except ValueError as exc:
        raise UsageError(f"NAME: {exc} (only opposition lists can be dropped)") from None
    warn_memory(config, "this change")
    store = await connect_store(config)
    try:
        dropped = await store.drop_opposition(name)
    finally:
        await store.close()
    if args.json:
        import json

        print(json.dumps({"list": f"opposition:{name}", "dropped": dropped}))
    else:
        print(f"opposition:{name}: dropped" if dropped else f"opposition:{name}: no such list")
    return EXIT_OK if dropped else 1
