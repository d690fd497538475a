"""Shared test configuration. Fixture modules live in tests/fixtures/ (one owner each)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import structlog

pytest_plugins = [
    "tests.fixtures.redis_servers",
    "tests.fixtures.asterisk",
    "tests.fixtures.ami_attack",
    "tests.fixtures.cli_env",
]


@pytest.fixture(autouse=True, scope="session")
def _structlog_loggers_not_cached() -> Iterator[None]:
    """``structlog.testing.capture_logs`` sees only loggers that are not cached yet. The
    gateway caches each logger on first use (production speed), so whether a test could
    capture a module's log lines depended on whether an earlier test had configured
    logging. In the suite, every configuration keeps loggers uncached."""
    configure = structlog.configure

    def uncached(**settings: Any) -> None:
        settings["cache_logger_on_first_use"] = False
        configure(**settings)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(structlog, "configure", uncached)
        yield
