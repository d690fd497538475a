"""The e2e fixtures skip loudly without a chroot they cannot build, and fail under CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import asterisk as fixture


def test_missing_chroot_without_root_gives_a_loud_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("DIALER_GATEWAY_ASTERISK_CHROOT", str(tmp_path / "nothing"))
    monkeypatch.setattr(fixture.os, "geteuid", lambda: 1000)
    reason = fixture._ensure_chroot()
    assert reason is not None
    assert "E2E TESTS NOT RUN" in reason and "root" in reason


@pytest.mark.parametrize(("env", "required"), [
    ({}, False), ({"CI": "true"}, True), ({"CI": "TRUE"}, True), ({"CI": "false"}, False),
    ({"DIALER_GATEWAY_REQUIRE_E2E": "1"}, True), ({"DIALER_GATEWAY_REQUIRE_E2E": "0"}, False),
])
def test_ci_or_explicit_requirement_turns_skip_into_failure(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], required: bool,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("DIALER_GATEWAY_REQUIRE_E2E", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert fixture._required() is required


def test_ready_chroot_needs_no_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "usr/sbin").mkdir(parents=True)
    (tmp_path / "usr/sbin/asterisk").write_text("")
    (tmp_path / ".dialer-gateway-ready").write_text("")
    monkeypatch.setenv("DIALER_GATEWAY_ASTERISK_CHROOT", str(tmp_path))
    monkeypatch.setattr(fixture.os, "geteuid", lambda: 1000)
    assert fixture._ensure_chroot() is None
