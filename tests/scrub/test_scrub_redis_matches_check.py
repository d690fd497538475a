"""On a Redis store the scrub reads its facts in batches (READ_FACTS, gateway/store/
redis_reads.py) and decides them with the brief decision (gateway/core/brief.py: no trace,
it stops at the first block with no knowable end), a call one number at a time with the
full one: every scrubbed row is still what ``check`` says. The store holds what the
batched read and the brief decision must get right: consents (of this professional and
of another, withdrawn, with a zone, an Alsace-Moselle address, an agreed slot), contracts
(in progress, ended, a US inquiry), an opposition list in two generations (a replace,
then a merge), attempts up to the caps, a suppression, and numbers with nothing; the
batch size spans several script calls; French, house-ruled and US campaigns, inside the
windows, at night and on an Alsace-Moselle holiday."""

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
from gateway.importer import import_file
from gateway.store.factory import open_store
from gateway.store.redis_reads import NUMBERS_PER_CALL

AT = "2026-12-01T10:30:00+01:00"  # a Tuesday, inside the French windows
INSTANTS = [AT,
            "2026-12-01T22:30:00+01:00",  # night: the next legal instant is tomorrow
            "2026-12-25T15:00:00+01:00",  # Christmas
            "2027-03-26T16:00:00+01:00"]  # Good Friday (Alsace-Moselle); 11:00 in New York
MOBILES = [f"06 {i:08d}" for i in range(11_000_000, 11_000_120)]
ALSACE = [f"03 88 {i:06d}" for i in range(100_000, 100_010)]  # Strasbourg (or not)
US = [f"+1 {area} 555 {i:04d}" for area in (212, 305, 512, 207, 800) for i in range(100, 106)]
CAMPAIGNS = ('[campaigns.promo]\nprofessional = "acme"\nproduct_category = "telecom"\n'
             'caller_id = "+33170000000"\n'
             '[campaigns.house]\nprofessional = "acme"\nproduct_category = "telecom"\n'
             'caller_id = "+33170000000"\nmax_attempts_per_day = 1\n'
             '[campaigns.house.windows]\nmon = ["10:00-12:00"]\ntue = ["10:00-12:00"]\n'
             'wed = ["10:00-12:00"]\nthu = ["10:00-12:00"]\nfri = ["10:00-12:00"]\n'
             '[campaigns.usa]\nprofessional = "acme"\nproduct_category = "telecom"\n'
             'jurisdiction = "US"\ncaller_id = "+12125550199"\n')


pytestmark = pytest.mark.usefixtures("clean_cli_env")  # tests/fixtures/cli_env.py


def e164(number: str) -> str:
    digits = number.replace(" ", "")
    return digits if digits.startswith("+") else "+33" + digits[1:]


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


async def seed_store(url: str, prefix: str, ndnc: Path) -> None:
    """What the CLI cannot write: attempts (up to the cap of 4 in 30 days, and one the
    day before the night instant), a refusal, and a National DNC list imported a day
    before the first instant (the CLI's import is dated now: too late or too old)."""
    store = open_store(url, key_prefix=prefix, socket_timeout_s=5.0)
    at = datetime.fromisoformat(AT)
    try:
        for n, count in ((MOBILES[0], 4), (MOBILES[1], 3), (MOBILES[40], 4), (MOBILES[4], 1),
                         (US[1], 2), (US[7], 1)):
            for i in range(count):
                await store.reserve_attempt(
                    e164=e164(n), professional="acme", campaign_id="promo",
                    now=at - timedelta(days=i + 1) + timedelta(hours=11), window_s=30 * 86400,
                    limit=None, attempt_id=f"{n}-{i}")
        await store.add_suppression(e164(MOBILES[2]), Suppression(
            professional="acme", since=at - timedelta(days=2), until=None, reason="refused"))
        for when in (at - timedelta(days=1), at + timedelta(days=23)):  # fresh for each
            await import_file(store, "opposition", ndnc, now=when, list_source="ndnc",
                              region="US")
    finally:
        await store.close()


def test_every_row_on_redis_is_what_check_says(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], redis_url: str,
        key_prefix: str) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[store]\nurl = "{redis_url}"\nkey_prefix = "{key_prefix}"\n' + CAMPAIGNS,
                   encoding="utf-8")
    config = ["--config", str(cfg)]
    def consent(cid: str, number: str, professional: str = "acme", withdrawn: str = "",
                zone: str = "", region: str = "", slot: tuple[str, str] = ("", "")) -> str:
        return (f"{cid},{number},{professional},telecom,2026-10-01T00:00:00Z,"
                f"2027-10-01T00:00:00Z,web,proof,{withdrawn},{zone},{region},{slot[0]},{slot[1]}")

    consents = [consent(f"c{i}", MOBILES[i], "acme" if i % 7 else "other")
                for i in range(0, 60, 2)]
    consents += [  # withdrawn; a customer in Réunion; in Alsace, in Paris; an evening slot
        consent("w1", MOBILES[62], withdrawn="2026-11-15T00:00:00Z"),
        consent("z1", MOBILES[64], zone="Indian/Reunion"),
        consent("a1", ALSACE[0], region="67"), consent("a2", ALSACE[1], region="75"),
        consent("a3", ALSACE[2]),
        consent("s1", MOBILES[66], slot=("2026-12-01T22:00:00+01:00",
                                         "2026-12-01T23:00:00+01:00")),
        consent("u1", US[2])]
    write(tmp_path / "consents.csv", "consent_id,number,professional,product_category,"
          "collected_at,expires_at,channel,proof_ref,withdrawn_at,timezone,address_region,"
          "agreed_slot_start,agreed_slot_end", consents)
    write(tmp_path / "contracts.csv", "contract_ref,number,professional,product_category,"
          "started_at,ends_at,kind", [
              f"K1,{MOBILES[70]},acme,telecom,2026-01-01T00:00:00Z,,",
              f"K2,{MOBILES[71]},acme,telecom,2025-01-01T00:00:00Z,2026-06-01T00:00:00Z,",
              f"K3,{US[3]},acme,telecom,2026-11-20T15:00:00-05:00,,inquiry",
              f"K4,{US[4]},acme,telecom,2025-01-01T00:00:00Z,2026-03-01T00:00:00Z,"])
    write(tmp_path / "bloctel.csv", "number", MOBILES[3:60:6])
    write(tmp_path / "bloctel-more.csv", "number", MOBILES[61:120:6])
    ndnc = write(tmp_path / "ndnc.csv", "number", US[::3])
    for argv in (["consent", "import", "consents.csv"],
                 ["contract", "import", "contracts.csv"],
                 ["opposition", "import", "bloctel.csv", "--source", "bloctel"],
                 ["opposition", "import", "bloctel-more.csv", "--source", "bloctel",
                  "--mode", "merge"]):
        assert main([*config, *argv]) == 0, argv
    asyncio.run(seed_store(redis_url, key_prefix, ndnc))
    capsys.readouterr()

    numbers = [*MOBILES, *ALSACE, *US, "06 12 34", "hello", "+44 20 7946 0018",
               "0596 30 12 34"]
    with (tmp_path / "leads.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ref", "phone"])
        w.writerows([f"r{i}", n] for i, n in enumerate(numbers))
    batch = 2 * NUMBERS_PER_CALL + 7  # a batch spans several script calls
    seen = set()
    runs = [*(("promo", at) for at in INSTANTS), ("house", INSTANTS[0]), ("house", INSTANTS[1]),
            ("usa", INSTANTS[0]), ("usa", INSTANTS[3])]
    for campaign, at in runs:
        assert main([*config, "scrub", "leads.csv", "--campaign", campaign, "--at", at,
                     "--out", "out.csv", "--batch", str(batch)]) == 0
        capsys.readouterr()
        rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text("utf-8"))))
        assert [r["ref"] for r in rows] == [f"r{i}" for i in range(len(numbers))]
        instant = datetime.fromisoformat(at)
        for row, number in zip(rows, numbers, strict=True):
            assert main([*config, "check", number, "--campaign", campaign, "--at", at]) == 0
            d = json.loads(capsys.readouterr().out)
            where = (campaign, at, number)
            assert (row["verdict"], row["reason"], row["e164"]) == (
                d["verdict"], d["reason"], d["e164"] or ""), where
            assert row["zones"] == " ".join(d["zones"]), where
            assert (row["consent_id"], row["contract_id"]) == (
                d["consent_id"] or "", d["contract_id"] or ""), where
            nxt = (instant if d["verdict"] == "ALLOW" else
                   instant + timedelta(seconds=d["retry_after_s"])
                   if d["retry_after_s"] is not None else None)
            assert row["next_legal_at"] == (
                nxt.astimezone(UTC).isoformat(timespec="seconds") if nxt else ""), where
            seen.add((campaign, d["verdict"], d["reason"], nxt is not None))
    # the store's facts do reach the verdicts they are meant to
    for expected in (("promo", "ALLOW", "ok", True), ("promo", "BLOCK", "opposition", False),
                     ("promo", "BLOCK", "no_consent", False),
                     ("promo", "BLOCK", "consent_revoked", False),
                     ("promo", "BLOCK", "frequency_cap", True),
                     ("promo", "BLOCK", "outside_hours", True),
                     ("promo", "BLOCK", "holiday", True),
                     ("promo", "BLOCK", "refusal_cooldown", False),
                     ("promo", "BLOCK", "invalid_number", False),
                     ("house", "BLOCK", "frequency_cap", True),
                     ("house", "BLOCK", "outside_hours", True),
                     ("usa", "ALLOW", "ok", True), ("usa", "BLOCK", "opposition", False),
                     ("usa", "BLOCK", "outside_hours", True)):
        assert expected in seen, expected
