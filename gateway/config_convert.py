"""From TOML (and environment) values to the configuration's dataclasses: a small
converter driven by the fields' type hints. Unknown keys and wrong types are errors that
name the file, the key and the problem, never the value of a secret."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from gateway.config_schema import ConfigError
from gateway.core.model import FailMode
from gateway.redact import describe_value, is_secret_name

__all__ = ["build_dataclass", "convert", "env_value"]


def convert(value: Any, tp: Any, where: str) -> Any:
    """Check/convert one TOML value against a dataclass field type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        errors = []
        for arg in args:
            try:
                return convert(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if isinstance(tp, type) and issubclass(tp, FailMode):
        try:
            return FailMode(value)
        except ValueError:
            raise ConfigError(f"{where}: expected 'closed' or 'open', got {value!r}") from None
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        choices = ", ".join(repr(a) for a in typing.get_args(tp))
        raise ConfigError(f"{where}: expected one of {choices}, got {value!r}")
    if origin is frozenset:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return frozenset(convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp, _ellipsis) = typing.get_args(tp)
        return tuple(convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    raise ConfigError(f"{where}: unsupported type {tp!r}")  # a bug in this module


def build_dataclass(cls: type[Any], table: Mapping[str, Any], where: str) -> Any:
    """Build ``cls`` from a TOML table, refusing unknown keys and wrong types."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))})")
        try:
            kwargs[key] = convert(value, hints[key], f"{where}.{key}")
        except ConfigError:
            if not (is_secret_name(key) or key.endswith("url")):
                raise
            # never echo a secret (or a URL that may carry one): name the key and the type
            raise ConfigError(
                f"{where}.{key}: expected a string, got {describe_value(value)}") from None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def env_value(raw: str, tp: Any, name: str) -> Any:
    args = set(typing.get_args(tp)) or {tp}
    if bool in args:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"environment {name}: expected true/false, got {raw!r}")
    if int in args and raw.lstrip("-").isdigit():
        return int(raw)
    if float in args:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"environment {name}: expected a number, got {raw!r}") from None
    return raw
