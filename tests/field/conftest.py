"""Every test under tests/field/ is a field-tier test (marker ``field``): what a new user
runs first (a fresh clone's ``make run``, the built wheel in a fresh virtualenv)."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.field)
