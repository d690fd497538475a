"""Pack files: reads policy packs from disk and from the package, for the pure core.

The core (``gateway.core``) does no I/O: it parses bytes (:func:`load_pack_bytes`) and
checks sets of packs (:class:`~gateway.core.policy.Policy`). This edge module opens the
files: the built-in packs shipped as package data in ``gateway/core/packs/`` and an
operator's ``policy.packs_dir``. Errors are :class:`PolicyError` naming the file.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from gateway.core.pack import Pack, PolicyError
from gateway.core.packfile import MAX_PACK_BYTES, load_pack_bytes
from gateway.core.policy import check_packs

__all__ = ["MAX_PACKS_PER_DIR", "builtin_packs", "load_pack", "load_packs_dir"]

#: Most pack files read from one directory.
MAX_PACKS_PER_DIR = 256


def load_pack(path: str | Path) -> Pack:
    """Read one pack file; errors are :class:`PolicyError` naming the file."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_PACK_BYTES + 1)
    except OSError as exc:
        raise PolicyError(f"{p}: cannot read: {exc.strerror}") from None
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


@lru_cache(maxsize=1)
def builtin_packs() -> tuple[Pack, ...]:
    """The packs shipped in ``gateway/core/packs/`` (FR, UK, US-federal and US state layers)."""
    root = resources.files("gateway.core").joinpath("packs")
    packs = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            packs.append(load_pack_bytes(entry.read_bytes(), f"builtin:{entry.name}"))
    result = tuple(packs)
    check_packs(result)
    return result
