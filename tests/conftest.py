"""Shared test configuration. Fixture modules live in tests/fixtures/ (one owner each)."""

pytest_plugins = [
    "tests.fixtures.redis_servers",
    "tests.fixtures.asterisk",
    "tests.fixtures.ami_attack",
]
