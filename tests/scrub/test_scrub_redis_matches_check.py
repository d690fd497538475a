"""On a Redis store the scrub reads its facts in batches (READ_FACTS, gateway/store/
redis_reads.py), a call one number at a time (the plain pipeline): every scrubbed row is
still what ``check`` says. The store holds what the batched read must get right: consents
(of this professional and of another), an opposition list in two generations (a replace,
then a merge), attempts up to the frequency cap, a suppression, and numbers with nothing;
the batch size spans several script calls."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.core.model import Suppression
from gateway.store.factory import open_store
from gateway.store.redis_reads import NUMBERS_PER_CALL

AT = "2026-12-01T10:30:00+01:00"  # a Tuesday, inside the French windows
MOBILES = [f"06 {i:08d}" for i in range(11_000_000, 11_000_120)]


pytestmark = pytest.mark.usefixtures("clean_cli_env")  # tests/fixtures/cli_env.py


def e164(national: str) -> str:
    return "+33" + national.replace(" ", "")[1:]


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


async def seed_store(url: str, prefix: str) -> None:
    """What the CLI cannot write: attempts (up to the cap of 4 in 30 days) and a refusal."""
    store = open_store(url, key_prefix=prefix, socket_timeout_s=5.0)
    at = datetime.fromisoformat(AT)
    try:
        for n, count in ((MOBILES[0], 4), (MOBILES[1], 3), (MOBILES[40], 4)):
            for i in range(count):
                await store.reserve_attempt(
                    e164=e164(n), professional="acme", campaign_id="promo",
                    now=at - timedelta(days=i + 1), window_s=30 * 86400, limit=None,
                    attempt_id=f"{n}-{i}")
        await store.add_suppression(e164(MOBILES[2]), Suppression(
            professional="acme", since=at - timedelta(days=2), until=None, reason="refused"))
    finally:
        await store.close()


def test_every_row_on_redis_is_what_check_says(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], redis_url: str,
        key_prefix: str) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[store]\nurl = "{redis_url}"\nkey_prefix = "{key_prefix}"\n'
                   '[campaigns.promo]\nprofessional = "acme"\nproduct_category = "telecom"\n'
                   'caller_id = "+33170000000"\n', encoding="utf-8")
    config = ["--config", str(cfg)]
    consents = [f"c{i},{MOBILES[i]},{'acme' if i % 7 else 'other'},telecom,"
                "2026-10-01T00:00:00Z,2027-10-01T00:00:00Z,web,proof" for i in range(0, 60, 2)]
    write(tmp_path / "consents.csv", "consent_id,number,professional,product_category,"
          "collected_at,expires_at,channel,proof_ref", consents)
    write(tmp_path / "bloctel.csv", "number", MOBILES[3:60:6])
    write(tmp_path / "bloctel-more.csv", "number", MOBILES[61:120:6])
    for argv in (["consent", "import", "consents.csv"],
                 ["opposition", "import", "bloctel.csv", "--source", "bloctel"],
                 ["opposition", "import", "bloctel-more.csv", "--source", "bloctel",
                  "--mode", "merge"]):
        assert main([*config, *argv]) == 0, argv
    asyncio.run(seed_store(redis_url, key_prefix))
    capsys.readouterr()

    numbers = [*MOBILES, "06 12 34", "hello", "+44 20 7946 0018", "0596 30 12 34"]
    with (tmp_path / "leads.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ref", "phone"])
        w.writerows([f"r{i}", n] for i, n in enumerate(numbers))
    batch = 2 * NUMBERS_PER_CALL + 7  # a batch spans several script calls
    assert main([*config, "scrub", "leads.csv", "--campaign", "promo", "--at", AT,
                 "--out", "out.csv", "--batch", str(batch)]) == 0
    capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text("utf-8"))))
    assert [r["ref"] for r in rows] == [f"r{i}" for i in range(len(numbers))]
    instant = datetime.fromisoformat(AT)
    seen = set()
    for row, number in zip(rows, numbers, strict=True):
        assert main([*config, "check", number, "--campaign", "promo", "--at", AT]) == 0
        d = json.loads(capsys.readouterr().out)
        assert (row["verdict"], row["reason"], row["e164"]) == (
            d["verdict"], d["reason"], d["e164"] or ""), number
        assert row["zones"] == " ".join(d["zones"]), number
        assert (row["consent_id"], row["contract_id"]) == (
            d["consent_id"] or "", d["contract_id"] or ""), number
        nxt = (instant if d["verdict"] == "ALLOW" else
               instant + timedelta(seconds=d["retry_after_s"])
               if d["retry_after_s"] is not None else None)
        assert row["next_legal_at"] == (
            nxt.astimezone(UTC).isoformat(timespec="seconds") if nxt else ""), number
        seen.add((d["verdict"], d["reason"]))
    # the store's facts do reach the verdicts they are meant to
    for expected in (("ALLOW", "ok"), ("BLOCK", "opposition"), ("BLOCK", "no_consent"),
                     ("BLOCK", "frequency_cap"), ("BLOCK", "refusal_cooldown"),
                     ("BLOCK", "invalid_number")):
        assert expected in seen, expected
