"""Shared test configuration. Fixture modules live in tests/fixtures/ (one owner each)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import structlog

pytest_plugins = [
    "tests.fixtures.redis_servers",
    "tests.fixtures.asterisk",
    "tests.fixtures.ami_attack",
    "tests.fixtures.cli_env",
]


LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item,
                                  ) -> Mapping[str, LoopFactory]:
    """Every async test runs on asyncio's own loop and on uvloop: ``serve`` runs on uvloop
    by default where the ``[uvloop]`` extra is installed (``[service] event_loop =
    "auto"``) and on asyncio's loop where it is not, so the code under test meets both.
    ``make test`` installs uvloop; without it, the tests run on asyncio's loop alone."""
    factories: dict[str, LoopFactory] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]  # the optional extra
    except ImportError:
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories


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
