"""The real gateway, in process, for the e2e tests.

:func:`running_gateway` writes a TOML configuration as a user would (memory store,
FastAGI and HTTP on 127.0.0.1:0, JSONL audit, one campaign, no demo data), starts
``gateway.app.App`` and yields a :class:`RunningGateway`. Lists are imported
through the store API. The clock is fixed at a legal instant (a Tuesday 10:30 in
Paris) so that verdicts do not depend on when the suite runs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.app import App
from gateway.config import load_config
from gateway.core.model import ConsentRecord
from gateway.store.base import ImportMode, OppositionRow, Store

# Tuesday 1 Dec 2026, 10:30 in Paris: FR-2026 pack (opt-in), inside the windows.
LEGAL_INSTANT = datetime(2026, 12, 1, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))

CAMPAIGN_ID = "e2e-promo"
PROFESSIONAL = "acme"
PRODUCT_CATEGORY = "telecom"

CONFIG_TOML = """\
[store]
url = "{store_url}"
key_prefix = "{key_prefix}"
socket_timeout_s = {store_timeout_s}
connect_timeout_s = {store_connect_timeout_s}
max_connections = {store_max_connections}

[agi]
listen = "127.0.0.1:0"
{agi_extra}
[http]
listen = "127.0.0.1:0"

[audit]
{audit_sink}
# The test's own AMI clients share the gateway's event loop and parse ~15k events
# during the 200-call burst; with the 0.2 s default an audit append occasionally
# timed out and the call was (rightly: no proof, no call) blocked. A gateway process
# has its loop to itself.
write_timeout_s = {audit_write_timeout_s}

[demo]
seed = false

[service]
decision_budget_ms = {budget_ms}

"""

JSONL_AUDIT = 'sink = "jsonl"\npath = "{audit_path}"'
REDIS_AUDIT = 'sink = "redis"\nstream_key = "{key_prefix}:audit"'


CAMPAIGN_TOML = """
[campaigns.{campaign}]
professional = "{professional}"
product_category = "{category}"
sector = "telecom"
automated = true
caller_id = "+33162000001"
jurisdiction = "FR"
fail_mode = "closed"
"""


def consent_rows(e164s: Iterable[str], now: datetime) -> list[ConsentRecord]:
    """A valid consent of acme/telecom for each number, collected 30 days before ``now``."""
    return [ConsentRecord(
        id=f"proof-{e164}", e164=e164, professional=PROFESSIONAL,
        product_category=PRODUCT_CATEGORY,
        collected_at=now - timedelta(days=30),
        expires_at=now + timedelta(days=300), channel="web-form",
        proof_ref=f"form-{e164}") for e164 in e164s]


@dataclass
class RunningGateway:
    app: App
    now: datetime
    audit_path: Path

    @property
    def store(self) -> Store:
        assert self.app.store is not None
        return self.app.store

    @property
    def agi_url(self) -> str:
        host, port = self.app.agi_address
        return f"agi://{host}:{port}"

    async def consent(self, *e164s: str) -> None:
        await self.store.import_consents(
            consent_rows(e164s, self.now), mode=ImportMode.MERGE, now=self.now)

    async def oppose(self, *e164s: str, source: str = "internal") -> None:
        await self.store.import_opposition(
            source, [OppositionRow(e164=e) for e in e164s], mode=ImportMode.MERGE, now=self.now)

    def audit_records(self) -> list[dict[str, Any]]:
        """Every audit record written so far (JSONL sink)."""
        if not self.audit_path.exists():
            return []
        lines = self.audit_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


@contextlib.asynccontextmanager
async def running_gateway(
    tmp_dir: Path, *, now: datetime = LEGAL_INSTANT, campaigns: tuple[str, ...] = (CAMPAIGN_ID,),
    store_url: str = "memory://", key_prefix: str = "dg", redis_audit: bool = False,
    budget_ms: float = 250.0, agi_extra: str = "", audit_write_timeout_s: float = 2.0,
    store_timeout_s: float = 0.2, store_connect_timeout_s: float = 0.5,
    store_max_connections: int = 0,
) -> AsyncIterator[RunningGateway]:
    """The gateway with ``campaigns`` (all of professional acme, category telecom).

    ``store_url``: a Redis URL for the Redis store (``key_prefix`` keeps tests apart);
    ``redis_audit``: the audit trail in a Redis stream beside the store (then
    :meth:`RunningGateway.audit_records` is empty: read the stream); ``agi_extra``:
    TOML lines added to the ``[agi]`` table.
    """
    audit_path = tmp_dir / "audit.jsonl"
    config_path = tmp_dir / "gateway.toml"
    sink = (REDIS_AUDIT.format(key_prefix=key_prefix) if redis_audit
            else JSONL_AUDIT.format(audit_path=audit_path))
    text = CONFIG_TOML.format(store_url=store_url, key_prefix=key_prefix, audit_sink=sink,
                              budget_ms=budget_ms, agi_extra=agi_extra,
                              audit_write_timeout_s=audit_write_timeout_s,
                              store_timeout_s=store_timeout_s,
                              store_connect_timeout_s=store_connect_timeout_s,
                              store_max_connections=store_max_connections)
    text += "".join(CAMPAIGN_TOML.format(campaign=c, professional=PROFESSIONAL,
                                         category=PRODUCT_CATEGORY) for c in campaigns)
    config_path.write_text(text, encoding="utf-8")
    config = load_config(config_path, env={})
    app = App(config, clock=lambda: now)
    await app.start()
    try:
        yield RunningGateway(app=app, now=now, audit_path=audit_path)
    finally:
        await app.stop()
