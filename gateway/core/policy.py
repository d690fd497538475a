"""Policies: the packs in force and the campaigns they apply to.

A :class:`Policy` is a set of packs (several jurisdictions, several periods each) plus
the configured campaigns. :meth:`Policy.pack_for` picks the pack in force *at the
instant of the call*, so a legal switch (FR-2023 -> FR-2026 at 2026-08-11T00:00
Europe/Paris) needs no redeploy.

The core reads no file: the packs arrive parsed (``gateway.packs`` reads the built-in
and operator pack files and hands their bytes to :func:`load_pack_bytes`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from gateway.core.model import Campaign
from gateway.core.pack import (
    SECTORS,
    AbandonSettings,
    CallerIdSettings,
    ConsentSettings,
    FrequencySettings,
    HolidaySettings,
    LegalBasis,
    LegalBasisMode,
    OppositionSettings,
    PacingSettings,
    Pack,
    PolicyError,
    RefusalSettings,
    SectorSettings,
    WindowSettings,
)
from gateway.core.packfile import load_pack_bytes

__all__ = [
    "AbandonSettings",
    "CallerIdSettings",
    "ConsentSettings",
    "FrequencySettings",
    "HolidaySettings",
    "LegalBasis",
    "LegalBasisMode",
    "OppositionSettings",
    "PacingSettings",
    "Pack",
    "Policy",
    "PolicyError",
    "RefusalSettings",
    "SectorSettings",
    "WindowSettings",
    "check_packs",
    "combine_packs",
    "load_pack_bytes",
]


@dataclass(frozen=True)
class Policy:
    """Packs plus campaigns. Construction fails on duplicate ids or overlapping packs."""

    packs: tuple[Pack, ...]
    campaigns: Mapping[str, Campaign] = field(default_factory=dict)
    default_region: str = "FR"
    # jurisdiction -> its base packs (not overlays), in ``packs`` order: ``pack_for`` runs
    # for every call and every lead, and reads these instead of every pack
    _bases: Mapping[str, tuple[Pack, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_packs(self.packs)
        bases: dict[str, tuple[Pack, ...]] = {}
        for pack in self.packs:
            if pack.overlays is None:
                bases[pack.jurisdiction] = (*bases.get(pack.jurisdiction, ()), pack)
        object.__setattr__(self, "_bases", bases)
        for key, campaign in self.campaigns.items():
            if key != campaign.id:
                raise PolicyError(f"campaign {key!r}: its id is {campaign.id!r}")
            if campaign.sector not in SECTORS:
                raise PolicyError(f"campaign {key!r}: sector {campaign.sector!r} is unknown; "
                                  f"one of {', '.join(sorted(SECTORS))}")

    def pack_for(self, jurisdiction: str, at: datetime) -> Pack | None:
        """The pack of ``jurisdiction`` in force at ``at`` (aware), or None."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("at must be a timezone-aware datetime")
        for pack in self._bases.get(jurisdiction, ()):
            if pack.in_force_at(at):
                return pack
        return None

    def layers_for(
        self, jurisdiction: str, subdivisions: tuple[str, ...], at: datetime
    ) -> tuple[Pack, ...]:
        """Overlay packs of ``jurisdiction`` in force at ``at`` for callees in any of
        ``subdivisions`` (``"*"``: the subdivision is unknown, every overlay applies)."""
        if not subdivisions:
            return ()
        return tuple(
            pack for pack in self.packs
            if pack.overlays == jurisdiction and pack.in_force_at(at)
            and ("*" in subdivisions or any(s in pack.subdivisions for s in subdivisions))
        )


def check_packs(packs: tuple[Pack, ...]) -> None:
    """Refuse duplicate pack ids and packs of one jurisdiction in force at once."""
    seen: dict[str, Pack] = {}
    for pack in packs:
        if pack.id in seen:
            raise PolicyError(f"{pack.source or pack.id}: pack id {pack.id!r} "
                              f"already defined by {seen[pack.id].source or 'another pack'}")
        seen[pack.id] = pack
    by_jurisdiction: dict[str, list[Pack]] = {}
    for pack in packs:
        by_jurisdiction.setdefault(pack.jurisdiction, []).append(pack)
    for group in by_jurisdiction.values():
        group.sort(key=lambda p: p.effective_from)
        for earlier, later in itertools.pairwise(group):
            if earlier.effective_until is None or earlier.effective_until > later.effective_from:
                raise PolicyError(
                    f"{later.source or later.id}: pack {later.id!r} overlaps {earlier.id!r} "
                    f"(jurisdiction {later.jurisdiction}): {earlier.id} must end no later than "
                    f"{later.effective_from.isoformat()}"
                )


def combine_packs(base: Iterable[Pack], overrides: Iterable[Pack]) -> tuple[Pack, ...]:
    """``base`` packs with those of ``overrides`` replacing the ones of the same id.

    An override with a new id is added; the result must still have no overlaps
    (to replace a built-in pack by a differently named one, drop the base pack).
    """
    merged = {p.id: p for p in base}
    for pack in overrides:
        merged[pack.id] = pack
    result = tuple(sorted(merged.values(), key=lambda p: (p.jurisdiction, p.effective_from)))
    check_packs(result)
    return result
