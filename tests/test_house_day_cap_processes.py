"""``max_attempts_per_day`` is atomic across gateway processes sharing one Redis: two
processes screen the same number at the same time; exactly the cap is allowed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHILD = r'''
import asyncio, json, sys
from datetime import datetime
from gateway.wiring import build_policy
from gateway.config import load_config
from gateway.core.model import Attempt
from gateway.service import Service
from gateway.store.factory import open_store

async def main() -> None:
    config = load_config(sys.argv[1], env={})
    store = open_store(config.store.url, key_prefix=config.store.key_prefix,
                       socket_timeout_s=5.0, connect_timeout_s=5.0)
    now = datetime.fromisoformat("2026-12-01T10:30:00+01:00")
    service = Service(policy=build_policy(config), store=store, audit=None, budget_s=10.0,
                      clock=lambda: now)
    await store.ping()
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"
    results = await asyncio.gather(*(
        service.screen(Attempt(number="06 12 34 56 78", campaign_id="promo"))
        for _ in range(int(sys.argv[2]))))
    print(json.dumps([[r.verdict.value, r.reason.value] for r in results]), flush=True)
    await store.close()

asyncio.run(main())
'''
DEADLINE_S = 60


def test_two_processes_one_redis(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    from gateway.cli import main

    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[store]\nurl = "{redis_url}"\nkey_prefix = "{key_prefix}"\n'
                   '[campaigns.promo]\nprofessional = "acme"\nproduct_category = "telecom"\n'
                   'caller_id = "+33170000000"\n'
                   "max_attempts_per_day = 2\n", encoding="utf-8")
    consents = tmp_path / "consents.csv"
    consents.write_text(
        "consent_id,number,professional,product_category,collected_at,expires_at,channel,"
        "proof_ref\nc1,0612345678,acme,telecom,2026-11-01T00:00:00Z,2027-11-01T00:00:00Z,"
        "web,p1\n", encoding="utf-8")
    assert main(["--config", str(cfg), "consent", "import", str(consents)]) == 0
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(cfg), "15"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for _ in range(2)]
    try:
        for child in children:  # both connected before either screens
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=DEADLINE_S)[0] for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=DEADLINE_S)
    results = [tuple(r) for out in outputs for r in json.loads(out.strip().splitlines()[-1])]
    assert len(results) == 30
    assert results.count(("ALLOW", "ok")) == 2
    assert set(results) == {("ALLOW", "ok"), ("BLOCK", "frequency_cap")}
    assert all(child.returncode == 0 for child in children)
