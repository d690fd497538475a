"""Pack files: built-in packs, validation errors, pack selection at the call instant."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from importlib import resources
from pathlib import Path

import pytest

from gateway.core.model import Campaign
from gateway.core.pack import LegalBasisMode
from gateway.core.policy import Policy, PolicyError, combine_packs, load_pack_bytes
from gateway.packs import builtin_packs, load_pack, load_packs_dir
from tests.core.support import PARIS, paris

PACKS_DIR = resources.files("gateway.core").joinpath("packs")


def fr2026_text() -> str:
    return PACKS_DIR.joinpath("fr-2026.toml").read_text(encoding="utf-8")


def test_builtin_packs() -> None:
    packs = {p.id: p for p in builtin_packs()}
    assert set(packs) == {"FR-2023", "FR-2026", "UK-PECR", "US-FEDERAL", "US-FL", "US-OK",
                          "US-MD", "US-TX", "US-CT", "US-MA", "US-MS", "US-WA", "US-UT",
                          "US-RI", "US-NM", "US-IN", "US-MO", "US-TN",
                          "US-LA",
                          "US-AL", "US-PA", "US-KY", "US-WY", "US-MI", "US-NV",
                          "US-MN", "US-ME", "US-NJ", "US-NY", "US-GA", "US-CO",
                          "US-CA", "US-WI", "US-OR", "US-OH", "US-KS", "US-SD", "US-ID",
                          "US-VA", "US-AZ", "US-IL", "US-SC", "US-NC", "US-ND", "US-AR"}
    fr23, fr26 = packs["FR-2023"], packs["FR-2026"]
    assert fr23.legal_basis.mode is LegalBasisMode.OPT_OUT
    assert fr26.legal_basis.mode is LegalBasisMode.OPT_IN
    assert fr23.effective_until == fr26.effective_from == paris(2026, 8, 11, 0, 0)
    assert fr26.frequency.max_attempts == 4 and fr26.frequency.window_s == 30 * 86400
    assert fr26.refusal.cooldown_s == 60 * 86400 and fr26.refusal.until_new_consent
    assert not fr23.refusal.until_new_consent
    assert fr26.abandon.max_ratio == 0.03 and fr26.abandon.window_s == 86400
    assert fr26.abandon.agent_delay_s == 2.0 and fr26.abandon.min_answered == 20
    assert packs["US-FEDERAL"].abandon.window_s == 30 * 86400
    assert packs["UK-PECR"].refusal.cooldown_for("abandoned") == 72 * 3600
    assert fr23.opposition.required_lists == ("opposition:bloctel",)
    assert fr26.opposition.required_lists == ()
    assert fr26.windows.weekly[0] == ((36000, 46800), (50400, 72000))
    assert fr26.windows.weekly[5] == () and fr26.windows.weekly[6] == ()


def test_content_hash_is_sha256_of_the_file_bytes() -> None:
    for pack in builtin_packs():
        name = pack.source.removeprefix("builtin:")
        data = PACKS_DIR.joinpath(name).read_bytes()
        assert pack.content_hash == hashlib.sha256(data).hexdigest()


def test_pack_for_switches_at_midnight_paris() -> None:
    policy = Policy(builtin_packs())
    before = policy.pack_for("FR", datetime(2026, 8, 10, 23, 59, 59, tzinfo=PARIS))
    after = policy.pack_for("FR", paris(2026, 8, 11, 0, 0))
    assert before is not None and before.id == "FR-2023"
    assert after is not None and after.id == "FR-2026"
    assert policy.pack_for("FR", paris(2023, 2, 28, 23, 0)) is None  # before D.223-9
    assert policy.pack_for("DE", paris(2026, 9, 1, 12, 0)) is None
    with pytest.raises(ValueError, match="aware"):
        policy.pack_for("FR", datetime(2026, 9, 1, 12, 0))


def test_load_pack_from_path_and_dir(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(fr2026_text().replace('"FR-2026"', '"FR-2026-acme"'))
    (tmp_path / "notes.txt").write_text("ignored")
    pack = load_pack(tmp_path / "mine.toml")
    assert pack.id == "FR-2026-acme" and pack.source.endswith("mine.toml")
    assert load_packs_dir(tmp_path) == (pack,)
    with pytest.raises(PolicyError, match="not a directory"):
        load_packs_dir(tmp_path / "mine.toml")
    with pytest.raises(PolicyError, match="cannot read"):
        load_pack(tmp_path / "missing.toml")


def test_overlaps_and_duplicates_are_refused() -> None:
    packs = builtin_packs()
    fr26 = next(p for p in packs if p.id == "FR-2026")
    with pytest.raises(PolicyError, match="already defined"):
        Policy((*packs, fr26))
    twin = replace(fr26, id="FR-2026-bis", source="twin.toml")
    with pytest.raises(PolicyError, match=r"twin.toml: pack 'FR-2026-bis' overlaps 'FR-2026'"):
        Policy((*packs, twin))
    # an override with the same id replaces the built-in one
    stricter = replace(fr26, frequency=replace(fr26.frequency, max_attempts=2))
    combined = combine_packs(packs, [stricter])
    assert len(combined) == len(packs)
    chosen = Policy(combined).pack_for("FR", paris(2026, 9, 1, 12, 0))
    assert chosen is not None and chosen.frequency.max_attempts == 2


def test_campaign_keys_must_match_ids() -> None:
    campaign = Campaign(id="a", professional="p", product_category="c")
    with pytest.raises(PolicyError, match="its id is 'a'"):
        Policy(builtin_packs(), {"b": campaign})


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('id = "FR-2026"', 'id = "FR-2026"\ncolour = "blue"', r"\[pack\] colour: unknown key"),
        ("[pacing]", "[pacing]\nburst = 3", r"\[pacing\] burst: unknown key"),
        ("[pacing]", "[pacin]", r"pacin: unknown section"),
        ("[abandon]", "#[abandon]", r"\[abandon\]: missing section"),
        ("max_attempts = 4", 'max_attempts = "4"', r"\[frequency\] max_attempts: expected an "
                                                     r"integer, got str"),
        ("max_attempts = 4", "max_attempts = true", r"\[frequency\] max_attempts: expected"),
        ("max_attempts = 4", "max_attempts = 0", r"\[frequency\] max_attempts: must be at least"),
        ("effective_from = 2026-08-11T00:00:00+02:00", "effective_from = 2026-08-11T00:00:00",
         r"\[pack\] effective_from: needs a UTC offset"),
        ('mon = ["10:00-13:00", "14:00-20:00"]', 'mon = ["10:00-13:00", "12:00-20:00"]',
         r"\[windows\] mon: ranges overlap"),
        ('mon = ["10:00-13:00", "14:00-20:00"]', 'mon = ["10h-13h"]',
         r"\[windows\] mon: '10h-13h': expected 'HH:MM-HH:MM'"),
        ('mon = ["10:00-13:00", "14:00-20:00"]', 'mon = ["20:00-10:00"]',
         r"\[windows\] mon: .* end must be after start"),
        ('"Indian/Reunion" = ["974"]', '"Indian/Nowhere" = ["974"]',
         r"\[holidays.zones\] Indian/Nowhere: unknown IANA time zone"),
        ('"Indian/Reunion" = ["974"]', '"Indian/Reunion" = ["999"]',
         r"'999' is not a subdivision of FR"),
        ('MF = ["05-28"]', 'MF = ["02-29"]', r"\[holidays.extra_dates\] MF: '02-29'"),
        ('mode = "opt_in"', 'mode = "maybe"', r"\[legal_basis\] mode: 'maybe'"),
        ("max_ratio = 0.03", "max_ratio = 3", r"\[abandon\] max_ratio: must be between 0 and 1"),
        ('GF = ["+339476"]', 'GF = ["09476"]', r"\[caller_id.ranges\] GF: '09476': expected an "
                                               r"E.164 prefix"),
        ('applies_to = "automated"', 'applies_to = "robots"', r"\[caller_id\] applies_to"),
        ("energy_renovation = 2020-07-26T00:00:00+02:00", "energy_renovation = 2020-07-26",
         r"\[sectors.banned\] energy_renovation: expected an offset date-time, got date"),
        ('id = "FR-2026"', 'id = "FR 2026!"', r"\[pack\] id: use letters"),
        ("[pack]", "[pack\n", r"invalid TOML"),
    ],
)
def test_validation_errors_name_file_key_and_problem(old: str, new: str, message: str) -> None:
    text = fr2026_text()
    assert old in text
    with pytest.raises(PolicyError, match=r"^custom\.toml: .*" + message):
        load_pack_bytes(text.replace(old, new, 1).encode(), "custom.toml")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('subdivision = "UT"', 'subdivision = "ZZ"',
         r"\[holidays\] subdivision: 'ZZ' is not a subdivision of US"),
        ("block = true", "block = false", r"\[holidays\] subdivision: needs block = true"),
        ('subdivision = "UT"', "subdivision = 49", r"\[holidays\] subdivision: expected"),
        ('"2027-03-26",', '"2027-13-26",',
         r"\[holidays.extra_days\] UT: '2027-13-26': expected 'YYYY-MM-DD'"),
        ('"2027-03-26",', '"03-26",', r"\[holidays.extra_days\] UT: '03-26': expected"),
        ("UT = [\n    # Juneteenth", "ZZ = [\n    # Juneteenth",
         r"\[holidays\] zones: 'ZZ' is not a subdivision of US"),
        ("UT = [\n    # Juneteenth", "RI = [\n    # Juneteenth",
         r"\[holidays\] subdivision: extra dates for 'RI' would never apply"),
    ],
)
def test_state_layer_holiday_subdivision_is_checked(old: str, new: str, message: str) -> None:
    text = PACKS_DIR.joinpath("us-ut.toml").read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(PolicyError, match=r"^custom\.toml: .*" + message):
        load_pack_bytes(text.replace(old, new, 1).encode(), "custom.toml")


def test_non_utf8_and_oversized_files() -> None:
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_pack_bytes(b"\xff\xfe[pack]", "bad.toml")
    with pytest.raises(PolicyError, match="larger than"):
        load_pack_bytes(b"#" * 2_000_000, "big.toml")


def test_effective_until_must_follow_effective_from() -> None:
    text = fr2026_text().replace(
        "effective_from = 2026-08-11T00:00:00+02:00",
        "effective_from = 2026-08-11T00:00:00+02:00\neffective_until = 2026-08-01T00:00:00+02:00")
    with pytest.raises(PolicyError, match=r"effective_until: must be after effective_from"):
        load_pack_bytes(text.encode(), "x.toml")
