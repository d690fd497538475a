"""The policy a configuration names: the built-in packs, the pack files of
``policy.packs_dir`` (same id: overridden; new id: added) and the campaigns.

Apart from :mod:`gateway.app` so that a CLI command builds the policy exactly as
``serve`` does without importing the servers (docs/benchmarks.md, CLI start-up).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.config import Config
from gateway.core.house import check_stricter
from gateway.core.pack import PolicyError
from gateway.core.policy import Policy, builtin_packs, load_packs_dir

__all__ = ["build_policy"]


def build_policy(config: Config) -> Policy:
    """Built-in packs, overridden (same id) or extended by ``policy.packs_dir``."""
    packs = {p.id: p for p in builtin_packs()}
    if config.policy.packs_dir:
        for pack in load_packs_dir(Path(config.policy.packs_dir)):
            packs[pack.id] = pack
    policy = Policy(
        packs=tuple(packs.values()),
        campaigns=dict(config.campaigns),
        default_region=config.policy.default_region,
    )
    _check_house_rules(policy, datetime.now(UTC))
    return policy


def _check_house_rules(policy: Policy, now: datetime) -> None:
    """House rules may only tighten: refuse one looser than a pack in force or to come."""
    problems = []
    for campaign in policy.campaigns.values():
        if not campaign.house:
            continue
        for pack in policy.packs:
            if pack.jurisdiction == campaign.jurisdiction and (
                    pack.effective_until is None or pack.effective_until > now):
                problems += check_stricter(campaign.id, campaign.house, pack)
    if problems:
        raise PolicyError("; ".join(dict.fromkeys(problems)))
