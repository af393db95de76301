"""Typed configuration of the enrichment service: the ``[enrich]`` table of ``enrich.toml``.

The cloud daemon's loader (:class:`cloud_ingest.config.CloudConfig`) refuses unknown tables, and
the ingest daemon must not know its consumers, so the service's settings live in a file of their
own beside ``cloud.toml``: ``avdata-cloud enrich run --config cloud.toml --enrich-config
enrich.toml``. ``cloud.toml`` still says where the metadata DB, the object store and NATS are;
``enrich.toml`` says how to enrich::

    [enrich]
    version = 1                 # bump it when a setting below changes: a new version of every output
    queue = "outbox"            # or "nats" (JetStream, through the relay)
    metrics_port = 9111
    map_radius_m = 50.0
    [[enrich.maps]]
    format = "lanelet2"         # lanelet2 | commonroad | av2
    path = "maps/karlsruhe.osm" # relative to this file

Each version's settings are fingerprinted (:func:`fingerprint`, over the settings and the map
files' bytes) and recorded when it first runs; a later run of the same version with other
settings is refused (:class:`~downstream.enrich.errors.VersionConflict`), so the rows and objects
of one version always come from one configuration.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.config import load

QUEUES = ("outbox", "nats")
DESCRIBERS = ("template",)
ARRAY_MODULES = ("numpy", "cupy")
#: The code that computes the outputs; recorded in every output next to the version.
ENRICHER = "avdata.downstream.enrich/1"


@dataclass(frozen=True)
class MapFile:
    """One HD map the service loads at start: a reader name (:data:`downstream.enrich.maps.FORMATS`)
    and a path (relative paths are taken from the directory of ``enrich.toml``)."""

    format: str = "lanelet2"
    path: Path = Path()

    def __post_init__(self) -> None:
        if not str(self.path) or self.path == Path():
            raise ValueError("a map needs a path")


@dataclass(frozen=True)
class EnrichConfig:
    """The enrichment service. Times in seconds; ``metrics_port`` 0 picks a free port.

    ``processed_wait_s``: how long a segment waits for its ``calibrated.mcap`` (the ingest daemon
    writes it after the commit that announced the segment) before it is recorded as failed.
    ``segment_timeout_s``: a segment that takes longer stops the watchdog pings, so systemd restarts
    a wedged process. ``min_confidence``: the floor of the ``name:value`` tags of the enriched
    ``Segment.tags`` (all tags are kept in the tag table with their confidence).
    """

    version: int = 1
    consumer: str = "enrich"
    queue: str = "outbox"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9111
    maps: tuple[MapFile, ...] = ()
    map_radius_m: float = 50.0
    min_confidence: float = 0.5
    ood_ratio_threshold: float = 1.0
    describer: str = "template"
    bev_seed: int = 0
    array_module: str = "numpy"
    processed_wait_s: float = 120.0
    segment_timeout_s: float = 600.0
    poll_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.version <= 10_000:
            raise ValueError(f"version must be 1-10000, got {self.version}")
        if not self.consumer.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"consumer must be letters, digits, '_' or '-', got {self.consumer!r}")
        if self.queue not in QUEUES:
            raise ValueError(f"queue must be one of {', '.join(QUEUES)}, got {self.queue!r}")
        if self.describer not in DESCRIBERS:
            raise ValueError(f"describer must be one of {', '.join(DESCRIBERS)}, got {self.describer!r}")
        if self.array_module not in ARRAY_MODULES:
            raise ValueError(f"array_module must be one of {', '.join(ARRAY_MODULES)}, got {self.array_module!r}")
        if not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics_port must be 0-65535, got {self.metrics_port}")
        if not 0.0 < self.map_radius_m <= 1000.0:
            raise ValueError(f"map_radius_m must be in (0, 1000], got {self.map_radius_m}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.ood_ratio_threshold <= 0:
            raise ValueError(f"ood_ratio_threshold must be positive, got {self.ood_ratio_threshold}")
        if self.processed_wait_s < 0 or self.segment_timeout_s <= 0 or self.poll_timeout_s <= 0:
            raise ValueError("processed_wait_s must be >= 0; segment_timeout_s and poll_timeout_s positive")

    @property
    def consumer_name(self) -> str:
        """The inbox and feed name of this version: a new version is a new consumer, so it reads
        every announcement again (the outbox from its first row, JetStream from the stream's start)."""
        return f"{self.consumer}-v{self.version}"

    def settings(self) -> dict[str, Any]:
        """The settings that decide the outputs (not where the service listens or how long it waits)."""
        return {"enricher": ENRICHER, "map_radius_m": self.map_radius_m, "min_confidence": self.min_confidence,
                "ood_ratio_threshold": self.ood_ratio_threshold, "describer": self.describer,
                "bev_seed": self.bev_seed, "maps": [{"format": m.format, "name": m.path.name} for m in self.maps]}


@dataclass(frozen=True)
class EnrichFile:
    """The whole ``enrich.toml``: one ``[enrich]`` table."""

    enrich: EnrichConfig = field(default_factory=EnrichConfig)


def load_enrich_config(path: Path | None, overrides: dict[str, Any] | None = None) -> EnrichConfig:
    """``[enrich]`` of ``path`` (defaults when ``None``) with ``overrides`` (keys of ``[enrich]``);
    raises :class:`shared.config.ConfigError` naming the bad key. Map paths become absolute."""
    cfg = load(EnrichFile, path, {"enrich": overrides} if overrides else None).enrich
    base = path.parent if path is not None else Path.cwd()
    maps = tuple(dataclasses.replace(m, path=m.path if m.path.is_absolute() else (base / m.path).resolve())
                 for m in cfg.maps)
    return dataclasses.replace(cfg, maps=maps)


def fingerprint(cfg: EnrichConfig, map_bytes: list[bytes]) -> str:
    """16 hex digits of sha256 over :meth:`EnrichConfig.settings` and each map file's sha256."""
    doc = {**cfg.settings(), "map_sha256": [hashlib.sha256(b).hexdigest() for b in map_bytes]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]
