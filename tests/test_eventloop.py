"""``gateway.eventloop`` and ``[service] event_loop``: ``auto`` (the default) uvloop when
installed (the test environment installs it), else asyncio's; ``asyncio`` asyncio's own
loop even with uvloop installed; ``uvloop`` uvloop, refused by the configuration when it
is not installed."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from gateway import eventloop
from gateway.config import load_config
from gateway.config_schema import ConfigError


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


def test_the_test_environment_has_the_optional_extra() -> None:
    """The uvloop tests below (and serve's processes in the suite) need it installed."""
    assert eventloop.installed()


@pytest.mark.parametrize(("choice", "module"), [
    ("auto", "uvloop"), ("asyncio", "asyncio"), ("uvloop", "uvloop")])
def test_run_uses_the_chosen_loop(choice: eventloop.Choice, module: str) -> None:
    assert eventloop.loop_name(choice) == module
    assert eventloop.run(_loop_module(), choice) == module


def test_run_returns_the_coroutine_result_and_closes_its_loop() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> int:
        loops.append(asyncio.get_running_loop())
        return 42

    assert eventloop.run(main()) == 42
    assert type(loops[0]).__module__.startswith("asyncio")  # the default: asyncio's own
    assert loops[0].is_closed()


def _without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvloop absent (a fault the installed environment cannot produce on demand)."""
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "uvloop" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_uvloop_chosen_but_not_installed_is_refused_by_the_configuration(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "gateway.toml"
    conf.write_text('[service]\nevent_loop = "uvloop"\n')
    assert load_config(conf).service.event_loop == "uvloop"  # installed: accepted
    _without_uvloop(monkeypatch)
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        load_config(conf)


def test_auto_without_uvloop_is_accepted_and_an_unknown_loop_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "gateway.toml"
    conf.write_text('[service]\nevent_loop = "fast"\n')
    with pytest.raises(ConfigError, match="event_loop"):
        load_config(conf)
    conf.write_text('[service]\nevent_loop = "auto"\n')
    _without_uvloop(monkeypatch)
    assert eventloop.installed() is False
    assert load_config(conf).service.event_loop == "auto"


def test_the_default_is_auto_and_runs_on_uvloop_when_installed(tmp_path: Path) -> None:
    """No ``event_loop`` in the file: ``auto``, so serve runs on uvloop here (installed)
    and on asyncio's loop where the extra is not (the test above)."""
    conf = tmp_path / "gateway.toml"
    conf.write_text("[service]\nworkers = 1\n")
    choice = load_config(conf).service.event_loop
    assert choice == "auto"
    assert eventloop.loop_name(choice) == "uvloop"
