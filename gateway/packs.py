"""Pack files: reads policy packs from disk and from the package, for the pure core.

The core (``gateway.core``) does no I/O: it parses bytes (:func:`load_pack_bytes`) and
checks sets of packs (:class:`~gateway.core.policy.Policy`). This edge module opens the
files: the built-in packs shipped as package data in ``gateway/core/packs/`` and an
operator's ``policy.packs_dir``. Errors are :class:`PolicyError` naming the file.

Before a pack's bytes are parsed, the ``holidays`` modules of the countries it names are
imported one by one (:func:`preload_holiday_countries`): the library's lazy loader then
finds them, instead of importing its ``holidays.countries`` package, which imports all
~250 country modules (≈ 50 ms of CPU at each start of a CLI command; docs/benchmarks.md).
``dialer-gateway check`` reads only the built-in packs of its campaign's jurisdiction
(:func:`builtin_packs_of`); ``serve`` and ``config check`` read every one
(:func:`builtin_packs`), so that a broken pack stops them.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
from collections.abc import Collection
from functools import cache, lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from gateway.core.pack import Pack, PolicyError
from gateway.core.packfile import MAX_PACK_BYTES, load_pack_bytes
from gateway.core.policy import check_packs

__all__ = [
    "MAX_PACKS_PER_DIR",
    "builtin_packs",
    "builtin_packs_of",
    "load_pack",
    "load_packs_dir",
    "preload_holiday_countries",
]

#: Most pack files read from one directory.
MAX_PACKS_PER_DIR = 256

# `country = "FR"` on a line of its own: a hint only (a pack written otherwise loads as
# well, through the library's own import of every country)
_COUNTRY_RE = re.compile(rb"""^[ \t]*country[ \t]*=[ \t]*["']([A-Za-z]{2,3})["']""",
                         re.MULTILINE)
_HOLIDAYS_COUNTRIES = "holidays.countries"
_PRELOAD_LOCK = threading.Lock()


@cache
def _country_modules() -> dict[str, str]:
    """Code or alias (``FR``, ``FRA``, ``UK``...) -> module of ``holidays.countries``,
    from the library's registry, the table its lazy loader reads."""
    from holidays.registry import COUNTRIES

    return {name: module for module, names in COUNTRIES.items() for name in names}


def preload_holiday_countries(data: bytes) -> None:
    """Import, each alone, the ``holidays`` country modules that a pack file's
    ``country = "XX"`` lines name.

    Nothing changes but the cost: ``holidays.country_holidays("FR")`` gives the same
    class, the library's loader finding ``holidays.countries.france`` already imported
    (``importlib.import_module`` reads ``sys.modules`` before importing the parent
    package). A code the registry does not know is left to the library, which reports
    it as it always did; once ``holidays.countries`` is imported, there is nothing to
    save.
    """
    codes = {m.decode("ascii") for m in _COUNTRY_RE.findall(data)}
    if not codes or _HOLIDAYS_COUNTRIES in sys.modules:
        return
    modules = _country_modules()
    for code in sorted(codes):
        if code in modules:
            _import_alone(f"{_HOLIDAYS_COUNTRIES}.{modules[code]}")


def _import_alone(name: str) -> None:
    """Import the module ``name`` of the package ``holidays.countries`` without running
    the package's ``__init__`` (bytecode cached as for any import).

    Under the library's own import lock when it has one: its lazy loader, in another
    thread, then waits for the module to be whole instead of finding it half run.
    """
    import holidays  # the top package (its country loaders import nothing yet)
    from holidays import registry

    with getattr(registry, "IMPORT_LOCK", _PRELOAD_LOCK):
        if name in sys.modules or _HOLIDAYS_COUNTRIES in sys.modules:
            return
        path = Path(holidays.__file__).parent / "countries" / f"{name.rsplit('.', 1)[1]}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None or not path.is_file():
            return  # not laid out as expected: the library imports it its own way
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # as the import system does, before running it
        loaded = False
        try:
            spec.loader.exec_module(module)
            loaded = True
        finally:
            if not loaded:  # no half-run module left for the library's import to find
                del sys.modules[name]


def load_pack(path: str | Path) -> Pack:
    """Read one pack file; errors are :class:`PolicyError` naming the file."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_PACK_BYTES + 1)
    except OSError as exc:
        raise PolicyError(f"{p}: cannot read: {exc.strerror}") from None
    preload_holiday_countries(data)
    return load_pack_bytes(data, str(p))


def load_packs_dir(path: str | Path) -> tuple[Pack, ...]:
    """Every ``*.toml`` in a directory (sorted by name), for operator-supplied packs."""
    directory = Path(path)
    if not directory.is_dir():
        raise PolicyError(f"{directory}: not a directory")
    files = sorted(directory.glob("*.toml"))
    if len(files) > MAX_PACKS_PER_DIR:
        raise PolicyError(f"{directory}: more than {MAX_PACKS_PER_DIR} pack files")
    packs = tuple(load_pack(f) for f in files)
    check_packs(packs)
    return packs


def _builtin_root() -> Traversable:
    """``gateway/core/packs/``, the package data holding the built-in packs."""
    return resources.files("gateway.core").joinpath("packs")


def _builtin_files() -> list[tuple[str, bytes]]:
    """(name, bytes) of each built-in ``*.toml``, by name."""
    return [(entry.name, entry.read_bytes())
            for entry in sorted(_builtin_root().iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".toml")]


def _parse(name: str, data: bytes) -> Pack:
    preload_holiday_countries(data)
    return load_pack_bytes(data, f"builtin:{name}")


@lru_cache(maxsize=1)
def builtin_packs() -> tuple[Pack, ...]:
    """The packs shipped in ``gateway/core/packs/`` (FR, UK, US-federal and US state layers)."""
    result = tuple(_parse(name, data) for name, data in _builtin_files())
    check_packs(result)
    return result


def builtin_packs_of(jurisdictions: Collection[str]) -> tuple[Pack, ...]:
    """The built-in packs a decision in one of ``jurisdictions`` reads: the packs of each
    jurisdiction and the layers that overlay it (``dialer-gateway check``, which decides
    for one campaign; ``serve`` and ``config check`` read every pack, so a broken one
    stops them).

    A file is skipped unparsed only when its text names its jurisdiction (and what it
    overlays) plainly, outside any other jurisdiction asked for
    (:func:`_plainly_named`); any other file is parsed, and kept, as by
    :func:`builtin_packs`.
    """
    wanted = set(jurisdictions)
    packs = []
    for name, data in _builtin_files():
        named = _plainly_named(data)
        if named is None or named & wanted:
            packs.append(_parse(name, data))
    result = tuple(packs)
    check_packs(result)
    return result


# `jurisdiction = "FR"` / `overlays = "US"`: a whole line, a basic string without escapes
_PLAIN_KEYS = {
    key: re.compile(rb'^[ \t]*' + key + rb'[ \t]*=[ \t]*"([^"\\\n]*)"[ \t]*(?:#[^\n]*)?$',
                    re.MULTILINE)
    for key in (b"jurisdiction", b"overlays")
}


def _plainly_named(data: bytes) -> set[str] | None:
    """The jurisdiction a pack file states and the one it overlays, read from its text
    without parsing it; None unless the text leaves no doubt.

    No doubt: the file has no multi-line string and no ``\\u``/``\\U`` escape (so a
    line that starts with a key is a key, not text inside a string, and no key is
    spelled otherwise); ``jurisdiction`` occurs once, on a line of the form above, and
    ``overlays`` at most once, likewise. A valid pack can hold these keys in its
    ``[pack]`` table only: that line is its own. A file the pattern misreads is one
    that is not a valid pack (a key in the wrong table, or none): skipped, it is
    refused by ``serve`` and ``config check``, which parse every pack.
    """
    if b'"""' in data or b"'''" in data or b"\\u" in data or b"\\U" in data:
        return None
    named: set[str] = set()
    for key, pattern in _PLAIN_KEYS.items():
        count = data.count(key)
        if count == 0 and key == b"overlays":
            continue
        found = pattern.findall(data)
        if count != 1 or len(found) != 1:
            return None
        try:
            named.add(found[0].decode("utf-8"))
        except UnicodeDecodeError:
            return None
    return named
