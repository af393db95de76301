"""The example configurations shipped in config/ load and validate."""

from __future__ import annotations

from pathlib import Path

from cloud_ingest.config import CloudConfig
from shared.config import load
from vehicle.config import load_config

CONFIG = Path(__file__).resolve().parent.parent / "config"


def test_vehicle_example_loads_with_every_trigger_kind() -> None:
    cfg = load_config(CONFIG / "vehicle.example.toml")
    kinds = {t.kind for t in cfg.triggers.values()}
    assert kinds == {"hard_brake", "swerve", "ttc", "disengagement", "uncertainty", "ood", "random"}
    assert all((t.pre_s, t.post_s) == (30.0, 10.0) for t in cfg.triggers.values())  # product default window


def test_cloud_example_loads() -> None:
    cfg = load(CloudConfig, CONFIG / "cloud.example.toml")
    assert cfg.db.backend == "postgres" and cfg.port == 8080
