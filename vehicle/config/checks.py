"""Value checks shared by the configuration tables' ``__post_init__``.

A ``ValueError`` raised there is reported by :func:`shared.config.load` with the table's path, e.g.
``vehicle.toml: [buffer] max_bytes must be > 0, got 0``.
"""

from __future__ import annotations


def positive(name: str, value: float) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value > 0``."""
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def non_negative(name: str, value: float) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value >= 0``."""
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
