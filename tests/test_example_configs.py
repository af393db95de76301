"""The example configurations shipped in config/ load and validate."""

from __future__ import annotations

from pathlib import Path

from cloud_ingest.config import CloudConfig
from shared.config import load
from vehicle.config.tree import load_config

CONFIG = Path(__file__).resolve().parent.parent / "config"


def test_vehicle_example_loads_with_every_trigger_kind() -> None:
    cfg = load_config(CONFIG / "vehicle.example.toml")
    kinds = {t.kind for t in cfg.triggers.values()}
    assert kinds == {"hard_brake", "swerve", "ttc", "disengagement", "uncertainty", "ood", "random"}
    assert all((t.pre_s, t.post_s) == (30.0, 10.0) for t in cfg.triggers.values())  # product default window


def test_vehicle_example_wires_the_inference_process_into_the_recorder() -> None:
    cfg = load_config(CONFIG / "vehicle.example.toml")
    assert cfg.inference is not None
    assert cfg.inference.scores_topic == cfg.topics.model_scores
    assert set(cfg.inference.sub_endpoints) <= set(cfg.sources.endpoints)
    assert cfg.recorder_endpoints == (*cfg.sources.endpoints, cfg.inference.pub_endpoint)
    ports = (cfg.metrics.port, cfg.metrics.uploader_port, cfg.metrics.inference_port)
    assert all(ports) and len(set(ports)) == 3, "each of the three processes serves its own /metrics"


def test_cloud_example_loads() -> None:
    cfg = load(CloudConfig, CONFIG / "cloud.example.toml")
    assert cfg.db.backend == "postgres" and cfg.port == 8080
