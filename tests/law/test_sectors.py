"""Sectors banned even with consent, and the closed sector vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from gateway.core.engine import decide
from gateway.core.model import Reason
from gateway.core.pack import SECTORS, PolicyError
from gateway.core.policy import load_pack_bytes
from tests.core.support import attempt, contract, facts, paris, policy

TUE = paris(2026, 12, 1, 10, 30)


@pytest.mark.parametrize("sector", ["energy_renovation", "renewable_energy",
                                    "home_adaptation", "cpf_training"])
def test_l223_1_banned_sectors_even_with_consent(sector: str) -> None:
    """Loi 2020-901 (energy renovation, renewable-energy equipment), loi 2022-1587 (CPF),
    loi 2025-594 (home adaptation): banned even with consent; a contract in progress lifts it."""
    d = decide(attempt(), facts(TUE), policy(sector=sector), TUE)
    assert d.reason is Reason.SECTOR_BANNED
    with_contract = decide(attempt(), facts(TUE, contracts=(contract(),)),
                           policy(sector=sector), TUE)
    assert with_contract.reason is Reason.OK


def test_renewable_energy_equipment_banned_since_2020_under_fr_2023() -> None:
    now = paris(2025, 12, 2, 10, 30)
    assert decide(attempt(), facts(now), policy(sector="renewable_energy"), now).reason is (
        Reason.SECTOR_BANNED)


def test_unknown_sector_is_refused_by_the_policy() -> None:
    with pytest.raises(PolicyError, match="sector 'solar_panels' is unknown"):
        policy(sector="solar_panels")


def test_unknown_sector_is_refused_in_config(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('[campaigns.x]\nprofessional = "acme"\nproduct_category = "t"\n'
                    'sector = "solar"\n')
    with pytest.raises(ConfigError, match=r"campaigns\.x\.sector: 'solar' is not a known"):
        load_config(path, env={})


def test_unknown_sector_in_a_pack_is_refused() -> None:
    from importlib import resources
    raw = resources.files("gateway.core").joinpath("packs/fr-2026.toml").read_text()
    bad = raw.replace("cpf_training =", "cpf =")
    with pytest.raises(PolicyError, match=r"\[sectors.banned\] cpf: unknown sector"):
        load_pack_bytes(bad.encode(), "bad.toml")


def test_the_vocabulary_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "policy.md").read_text()
    for name in SECTORS:
        assert f"`{name}`" in doc, name
