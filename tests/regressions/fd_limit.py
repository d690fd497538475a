"""Raise this process's open-file limit (soft to hard) for the connection-flood tests."""

from __future__ import annotations

import resource


def raise_nofile(needed: int) -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; returns it (the test asserts it suffices)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft < needed:
        raise AssertionError(f"RLIMIT_NOFILE hard limit {hard} < {needed} needed by this test")
    return soft
