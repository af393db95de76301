"""Typed TOML config: bad keys and values are named in the error."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.config import ConfigError, load


@dataclass(frozen=True)
class Window:
    pre_s: float = 30.0
    post_s: float = 10.0

    def __post_init__(self) -> None:
        if self.pre_s < 0:
            raise ValueError(f"pre_s must be >= 0, got {self.pre_s}")


@dataclass(frozen=True)
class Config:
    name: str = "car"
    ports: tuple[int, ...] = ()
    window: Window = field(default_factory=Window)
    triggers: dict[str, Window] = field(default_factory=dict)
    data_dir: Path = Path("var")


def test_defaults_without_a_file() -> None:
    assert load(Config, None) == Config()


def test_nested_tables_and_coercion(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('name = "x"\nports = [1, 2]\ndata_dir = "d"\n[window]\npre_s = 5\n[triggers.a]\npost_s = 1\n')
    cfg = load(Config, p)
    assert cfg.window == Window(5.0, 10.0) and cfg.ports == (1, 2) and cfg.data_dir == Path("d")
    assert cfg.triggers == {"a": Window(30.0, 1.0)}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[window]\npre_s = "ten"\n', r"c.toml: window.pre_s: expected a number, got 'ten'"),
        ("[window]\npre = 1\n", r"unknown key 'window.pre'"),
        ("[window]\npre_s = -1\n", r"\[window\] pre_s must be >= 0"),
        ("[triggers.a]\nbogus = 1\n", r"unknown key 'triggers.a.bogus'"),
        ("ports = [1, true]\n", r"ports\[1\]: expected an integer"),
        ("name = \n", r"not valid TOML"),
    ],
)
def test_errors_name_the_bad_key(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load(Config, p)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load(Config, tmp_path / "nope.toml")
