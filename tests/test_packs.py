"""gateway.packs: the ``holidays`` country modules the packs name are imported alone.

Each case runs in a fresh interpreter: the suite's own process has imported the whole
``holidays.countries`` package already (the preload has nothing left to do there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import packs
from gateway.core.packfile import load_pack_bytes
from gateway.packs import builtin_packs, preload_holiday_countries

SUBPROCESS_DEADLINE_S = 60
PACKS = Path(__file__).resolve().parent.parent / "gateway" / "core" / "packs"
YEARS = (2025, 2026, 2027)

# every (country, subdivision) table the built-in packs can ask the library for
TABLES = """
from gateway.packs import builtin_packs
wanted = set()
for pack in builtin_packs():
    h = pack.holidays
    if not h.block:
        continue
    wanted.add((h.country, h.subdivision))
    wanted |= {(h.country, s) for _, subs in h.zones for s in subs if s != "metropolitan"}
    if any("metropolitan" in subs for _, subs in h.zones):
        wanted.add((h.country, h.alsace_moselle_subdivision))
"""

PROBE = """
import json, sys
import holidays
if sys.argv[1] == "library":  # the library's own path: its whole countries package
    import holidays.countries
""" + TABLES + """
tables = {f"{c}/{s}/{y}": sorted((d.isoformat(), n) for d, n in
                                 holidays.country_holidays(c, subdiv=s, years=y).items())
          for c, s in sorted(wanted, key=str) for y in YEARS}
print(json.dumps({"tables": tables, "countries": sorted(
    m for m in sys.modules if m.startswith("holidays.countries"))}))
""".replace("YEARS", repr(YEARS))


def run(tmp_path: Path, source: str, *args: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_GATEWAY_")}
    proc = subprocess.run([sys.executable, "-c", source, *args], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=SUBPROCESS_DEADLINE_S,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.splitlines()[-1])
    return result


def test_the_packs_load_only_the_countries_they_name(tmp_path: Path) -> None:
    result = run(tmp_path, PROBE, "preloaded")
    countries = {p.holidays.country for p in builtin_packs() if p.holidays.block}
    assert countries == {"FR", "US"}  # the modules below are theirs
    assert result["countries"] == ["holidays.countries.france",
                                   "holidays.countries.united_states"]


def test_the_tables_are_the_librarys(tmp_path: Path) -> None:
    preloaded = run(tmp_path, PROBE, "preloaded")
    library = run(tmp_path, PROBE, "library")
    assert len(library["countries"]) > 100  # type: ignore[arg-type]  # the whole package
    assert preloaded["tables"] == library["tables"]
    assert len(preloaded["tables"]) >= 3 * len(YEARS)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", [
    b'[holidays]\nblock = true\ncountry = "ZZ"\n',  # not a country: the library reports it
    b"[holidays]\nblock = false\n",
    b'country = "FR',  # not even TOML
])
def test_a_preload_never_raises(text: bytes) -> None:
    preload_holiday_countries(text)


def test_an_unknown_country_is_still_the_librarys_error(tmp_path: Path) -> None:
    source = """
import json, sys
from gateway.core.pack import PolicyError
from gateway.packs import load_pack
try:
    load_pack(sys.argv[1])
except PolicyError as exc:
    print(json.dumps({"error": str(exc)}))
"""
    data = (PACKS / "fr-2026.toml").read_text(encoding="utf-8")
    assert 'country = "FR"' in data
    bad = tmp_path / "zz.toml"
    bad.write_text(data.replace('country = "FR"', 'country = "ZZ"'), encoding="utf-8")
    result = run(tmp_path, source, str(bad))
    assert result == {"error": f"{bad}: [holidays] country: 'ZZ' unknown to the holidays "
                               "library"}


# --- which built-in packs `check` reads (builtin_packs_of) ---------------------------


def test_what_a_pack_file_names_plainly_is_what_it_is() -> None:
    """Every built-in pack is skipped or kept by what it really is, and none needs a
    parse to be placed (the reading below is what ``check`` saves)."""
    for name, data in packs._builtin_files():
        pack = load_pack_bytes(data, name)
        assert packs._plainly_named(data) == {pack.jurisdiction, pack.overlays} - {None}, name


@pytest.mark.parametrize(("text", "named"), [
    (b'[pack]\njurisdiction = "FR"\n', {"FR"}),
    (b'[pack]\n  jurisdiction="US-CA"   # a state\noverlays = "US"\n', {"US-CA", "US"}),
    # anything else is parsed to be known
    (b'[pack]\n"jur\\u0069sdiction" = "FR"\njurisdiction = "US"\n', None),  # an escape
    (b'[pack]\njurisdiction = "FR"\ndescription = """\njurisdiction = "US"\n"""\n', None),
    (b"[pack]\njurisdiction = 'FR'\n", None),  # a literal string
    (b'[pack]\njurisdiction = "FR"\r\n', None),
    (b'pack.jurisdiction = "FR"\n', None),  # a dotted key
    (b'[pack]\njurisdiction = "FR"\n# the jurisdiction of the law\n', None),
    (b'[pack]\njurisdiction = "US-CA"\noverlays = "US" "x"\n', None),
    (b"[pack]\nid = 'x'\n", None),  # none: the parse reports it
])
def test_a_jurisdiction_is_read_from_the_text_only_when_it_is_plain(
    text: bytes, named: set[str] | None,
) -> None:
    assert packs._plainly_named(text) == named


@pytest.mark.parametrize("jurisdiction", ["FR", "UK", "US"])
def test_the_packs_of_a_jurisdiction_are_those_a_decision_reads(jurisdiction: str) -> None:
    every = builtin_packs()
    expected = [p.id for p in every if jurisdiction in (p.jurisdiction, p.overlays)]
    assert expected  # the built-in packs have each of these jurisdictions
    assert [p.id for p in packs.builtin_packs_of({jurisdiction})] == expected
    assert packs.builtin_packs_of(set()) == ()
