"""The one reference a reload swaps: the policy (packs + campaigns) every call reads.

A :class:`LivePolicy` holds an immutable :class:`~gateway.core.policy.Policy`. A call
reads ``current`` once when it starts and keeps that policy to its end; a reload builds
and validates a complete new Policy, then replaces the reference in one assignment.
No call ever sees half of a reload, and no call in flight is disturbed by one.
"""

from __future__ import annotations

from gateway.core.policy import Policy


class LivePolicy:
    __slots__ = ("_current", "generation")

    def __init__(self, policy: Policy) -> None:
        self._current = policy
        self.generation = 0  # how many times it was swapped (logs, tests)

    @property
    def current(self) -> Policy:
        return self._current

    def swap(self, policy: Policy) -> None:
        self._current = policy
        self.generation += 1


def live(policy: Policy | LivePolicy) -> LivePolicy:
    """A fixed Policy wrapped (tests, CLI), or the shared reference as it is."""
    return policy if isinstance(policy, LivePolicy) else LivePolicy(policy)
