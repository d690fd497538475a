"""Fixtures of the deploy/ tests."""

from __future__ import annotations

import pytest

from tests.deploy.support import promtool


@pytest.fixture(scope="session")
def promtool_path() -> str:
    return promtool()
