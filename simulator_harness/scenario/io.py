"""Read and write scenario specs as TOML or JSON, validated with errors that name the bad key.

Reading goes through :func:`shared.config.build`, so a spec file gets the same checks and messages
as every configuration file (``scenario.toml: actors[2].speed_mps: expected a number, got 'fast'``).
TOML is written by a small emitter for the shapes a spec has (scalars, tables, arrays of tables
whose dict fields become inline tables).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from enum import Enum
from pathlib import Path
from typing import Any

from shared.config import ConfigError, build
from simulator_harness.scenario.errors import ScenarioError
from simulator_harness.scenario.spec import ScenarioSpec


def to_dict(spec: ScenarioSpec) -> dict[str, Any]:
    """Plain data (dicts, lists, str, float, int) for ``spec``; ``None`` fields are left out."""
    return _plain(spec)  # type: ignore[no-any-return]


def from_dict(data: dict[str, Any], where: str = "scenario") -> ScenarioSpec:
    """Build and validate a spec from plain data; :class:`ScenarioError` names the bad key."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: a scenario must be a table/object, got {type(data).__name__}")
    try:
        return build(ScenarioSpec, data, where)
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from exc


def dumps_json(spec: ScenarioSpec) -> str:
    """The spec as indented JSON."""
    return json.dumps(to_dict(spec), indent=2) + "\n"


def loads_json(text: str, where: str = "scenario.json") -> ScenarioSpec:
    """Parse and validate a JSON spec."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{where}: not valid JSON: {exc}") from exc
    return from_dict(data, where)


def dumps_toml(spec: ScenarioSpec) -> str:
    """The spec as TOML: top-level keys, ``[road]``/``[ego]`` tables, ``[[actors]]``/``[[events]]``."""
    lines: list[str] = []
    _emit_table(to_dict(spec), "", lines)
    return "\n".join(lines).strip() + "\n"


def loads_toml(text: str, where: str = "scenario.toml") -> ScenarioSpec:
    """Parse and validate a TOML spec."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: not valid TOML: {exc}") from exc
    return from_dict(data, where)


def save(spec: ScenarioSpec, path: Path) -> None:
    """Write ``spec`` to ``path`` as TOML (``.toml``) or JSON (``.json``), atomically."""
    text = _writer(path)(spec)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def load(path: Path) -> ScenarioSpec:
    """Read a ``.toml`` or ``.json`` spec file."""
    _writer(path)  # rejects unknown suffixes before reading
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"{path.name}: cannot read scenario: {exc}") from exc
    if path.suffix == ".json":
        return loads_json(text, path.name)
    return loads_toml(text, path.name)


def _writer(path: Path) -> Any:
    if path.suffix == ".toml":
        return dumps_toml
    if path.suffix == ".json":
        return dumps_json
    raise ScenarioError(f"{path.name}: scenario files end in .toml or .json")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    raise ScenarioError(f"cannot write {type(value).__name__} to TOML")


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else json.dumps(name)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _emit_table(table: dict[str, Any], prefix: str, lines: list[str]) -> None:
    nested = {k: v for k, v in table.items() if isinstance(v, dict) and not prefix.endswith("]]")}
    arrays = {k: v for k, v in table.items() if _is_table_array(v)}
    for key, value in table.items():
        if key not in nested and key not in arrays:
            lines.append(f"{_key(key)} = {_scalar(value)}")
    for key, value in nested.items():
        name = f"{prefix}.{_key(key)}" if prefix else _key(key)
        lines.extend(["", f"[{name}]"])
        _emit_table(value, name, lines)
    for key, items in arrays.items():
        name = f"{prefix}.{_key(key)}" if prefix else _key(key)
        for item in items:
            lines.extend(["", f"[[{name}]]"])
            for k, v in item.items():  # items hold scalars and small dicts (event params): inline
                if _is_table_array(v):
                    raise ScenarioError(f"{name}.{k}: nested arrays of tables are not part of a spec")
                lines.append(f"{_key(k)} = {_scalar(v)}")
