"""Typed configuration from TOML: nested frozen dataclasses, validated with the bad key named.

Each deployable declares its configuration as frozen dataclasses (defaults on every field) and
calls :func:`load` once in ``main``. Unknown keys, wrong types and failed ``__post_init__`` checks
raise :class:`ConfigError` with the dotted key path, e.g.
``vehicle.toml: [triggers.hard_brake] pre_s: expected a number, got 'ten'``.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file is unreadable or names a bad key or value."""


def load(cls: type[T], path: Path | None, overrides: dict[str, Any] | None = None) -> T:
    """Read ``path`` (or only defaults when ``None``), apply ``overrides``, build ``cls``."""
    data: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        where = str(path.name)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
    if overrides:
        data = _merge(data, overrides)
    return build(cls, data, where)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def build(cls: type[T], data: dict[str, Any], where: str = "config", prefix: str = "") -> T:
    """Build dataclass ``cls`` from a TOML table, recursing into nested dataclasses."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        keys = ", ".join(repr(prefix + k) for k in unknown)
        raise ConfigError(f"{where}: unknown key {keys} (known: {', '.join(sorted(fields))})")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, where, prefix + name)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        label = prefix.rstrip(".") or "top level"
        raise ConfigError(f"{where}: [{label}] {exc}") from exc


def _coerce(hint: Any, value: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: {key}: bad value {value!r}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key}: expected a table, got {value!r}")
        return build(hint, value, where, key + ".")  # type: ignore[arg-type]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key}: expected a table, got {value!r}")
        vt = args[1] if args else Any
        return {k: _coerce(vt, v, where, f"{key}.{k}") for k, v in value.items()}
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: {key}: expected a list, got {value!r}")
        et = args[0] if args else Any
        items = [_coerce(et, v, where, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: {key}: expected a number, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: {key}: expected an integer, got {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: {key}: expected true or false, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: {key}: expected a string, got {value!r}")
    if hint is Path:
        if isinstance(value, str):
            return Path(value)
        raise ConfigError(f"{where}: {key}: expected a path string, got {value!r}")
    if isinstance(hint, type) and issubclass(hint, str):  # StrEnum
        try:
            return hint(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: {key}: {exc}") from exc
    return value
