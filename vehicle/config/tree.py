"""The vehicle service's configuration: one typed tree loaded once from TOML in ``main``.

The recorder's tables live in :mod:`vehicle.config.recorder`. The optional ``[inference]`` table is
the inference process's own tree (:class:`vehicle.config.inference.InferenceProcessConfig`, with
``[inference.model]``); when present, ``avdata-vehicle infer`` runs it and the recorder also
subscribes to its publish endpoint. Loading a configuration imports no ONNX Runtime.

Every table is a frozen dataclass with defaults; ``__post_init__`` checks values so that
:func:`shared.config.load` reports the bad key, e.g.
``vehicle.toml: [triggers.hard_brake] pre_s must be >= 0, got -1.0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shared.config import load
from vehicle.config.checks import non_negative, positive
from vehicle.config.inference import DetectorConfig, InferenceProcessConfig
from vehicle.config.recorder import (
    DEFAULT_RATES_HZ,
    RULE_KINDS,
    BufferConfig,
    SourcesConfig,
    TimeSyncConfig,
    TopicsConfig,
    TriggerConfig,
)

__all__ = ["DEFAULT_RATES_HZ", "RULE_KINDS", "BufferConfig", "DetectorConfig", "InferenceProcessConfig",
           "MetricsConfig", "QueueConfig", "SourcesConfig", "TimeSyncConfig", "TopicsConfig", "TriggerConfig",
           "UploaderConfig", "VehicleConfig", "connect_endpoint", "load_config"]


def connect_endpoint(bound: str) -> str:
    """The address a peer connects to for a socket bound at ``bound``.

    A wildcard TCP bind (``tcp://*:5570``, ``tcp://0.0.0.0:5570``, ``tcp://[::]:5570``) is reached
    on loopback; every other endpoint is returned unchanged.
    """
    scheme, _, rest = bound.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme == "tcp" and host in ("*", "0.0.0.0"):
        return f"tcp://127.0.0.1:{port}"
    if scheme == "tcp" and host == "[::]":
        return f"tcp://[::1]:{port}"
    return bound


@dataclass(frozen=True)
class UploaderConfig:
    """tus client settings; ``max_bytes_per_s`` 0 means no bandwidth cap."""

    url: str = "http://127.0.0.1:8080/files/"
    token: str = ""
    chunk_bytes: int = 1024 * 1024
    max_bytes_per_s: int = 0
    request_timeout_s: float = 30.0
    max_attempts: int = 8
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    poll_s: float = 0.5

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http(s) URL, got {self.url!r}")
        positive("chunk_bytes", self.chunk_bytes)
        non_negative("max_bytes_per_s", self.max_bytes_per_s)
        for name in ("request_timeout_s", "max_attempts", "backoff_initial_s", "backoff_max_s", "poll_s"):
            positive(name, getattr(self, name))


@dataclass(frozen=True)
class QueueConfig:
    """Disk budget (bytes) for snapshots waiting to upload."""

    max_bytes: int = 20 * 1024 * 1024 * 1024

    def __post_init__(self) -> None:
        positive("max_bytes", self.max_bytes)


@dataclass(frozen=True)
class MetricsConfig:
    """Prometheus endpoints, one per process so the three units share one file; a port 0 serves none.

    ``port`` is the recorder's (``record``, or ``run`` with the uploader in the same process),
    ``uploader_port`` the ``upload`` process's and ``inference_port`` the ``infer`` process's.
    """

    port: int = 0
    uploader_port: int = 0
    inference_port: int = 0
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        ports = {"port": self.port, "uploader_port": self.uploader_port, "inference_port": self.inference_port}
        for name, value in ports.items():
            if not 0 <= value <= 65535:
                raise ValueError(f"{name} must be within 0..65535, got {value!r}")
        used = [v for v in ports.values() if v]
        if len(set(used)) != len(used):
            raise ValueError(f"port, uploader_port and inference_port must differ (0 serves none), got {ports}")


@dataclass(frozen=True)
class VehicleConfig:
    """The whole ``vehicle.toml``; ``vehicle_id`` is required."""

    vehicle_id: str = ""
    data_dir: Path = Path("var/vehicle")
    software_version: str = "0.1.0"
    model_version: str = ""
    calibration_version: str = ""
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    buffer: BufferConfig = field(default_factory=BufferConfig)
    triggers: dict[str, TriggerConfig] = field(default_factory=dict)
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    timesync: TimeSyncConfig = field(default_factory=TimeSyncConfig)
    uploader: UploaderConfig = field(default_factory=UploaderConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    inference: InferenceProcessConfig | None = None

    def __post_init__(self) -> None:
        if not self.vehicle_id:
            raise ValueError("vehicle_id is required (a non-empty string)")
        if "/" in self.vehicle_id or self.vehicle_id.startswith("."):
            raise ValueError(f"vehicle_id must not contain '/' or start with '.', got {self.vehicle_id!r}")
        if self.inference is not None:
            self._check_inference(self.inference)

    def _check_inference(self, inf: InferenceProcessConfig) -> None:
        """Cross-table checks: the scores must reach the triggers, the frames the recorder."""
        if inf.scores_topic != self.topics.model_scores:
            raise ValueError(f"inference.scores_topic {inf.scores_topic!r} differs from topics.model_scores "
                             f"{self.topics.model_scores!r}: the score triggers would never see a score")
        pub = connect_endpoint(inf.pub_endpoint)
        if pub in {connect_endpoint(ep) for ep in inf.sub_endpoints}:
            raise ValueError(f"inference.pub_endpoint {inf.pub_endpoint!r} is also one of inference.sub_endpoints")
        for ep in inf.sub_endpoints:
            if ep not in self.sources.endpoints:
                raise ValueError(f"inference.sub_endpoints: {ep!r} is not among sources.endpoints "
                                 f"{list(self.sources.endpoints)}: the recorder would not keep the frames "
                                 "the model scores")

    @property
    def recorder_endpoints(self) -> tuple[str, ...]:
        """What the recorder's SUB socket connects to: ``[sources] endpoints`` and, when
        ``[inference]`` is configured, the inference process's publish endpoint (once, even when
        it is also listed in ``[sources]``)."""
        if self.inference is None:
            return self.sources.endpoints
        pub = connect_endpoint(self.inference.pub_endpoint)
        return self.sources.endpoints if pub in self.sources.endpoints else (*self.sources.endpoints, pub)

    @property
    def snapshots_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @property
    def queue_path(self) -> Path:
        return self.data_dir / "queue.sqlite3"


def load_config(path: Path | None, overrides: dict[str, object] | None = None) -> VehicleConfig:
    """Load and validate ``vehicle.toml``; raises :class:`shared.config.ConfigError`."""
    return load(VehicleConfig, path, overrides)
