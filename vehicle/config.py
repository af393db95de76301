"""The vehicle service's configuration: one typed tree loaded once from TOML in ``main``.

The optional ``[inference]`` table is the inference process's own tree
(:class:`vehicle.inference.InferenceProcessConfig`, with ``[inference.model]``); when present,
``avdata-vehicle infer`` runs it and the recorder also subscribes to its publish endpoint.

Every table is a frozen dataclass with defaults; ``__post_init__`` checks values so that
:func:`shared.config.load` reports the bad key, e.g.
``vehicle.toml: [triggers.hard_brake] pre_s must be >= 0, got -1.0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shared.config import load
from shared.triggers import TriggerKind
from vehicle.inference import InferenceProcessConfig

#: Trigger kinds a TOML ``kind`` may name (``manual`` comes from an operator, not from a rule).
RULE_KINDS = frozenset(k.value for k in TriggerKind if k is not TriggerKind.MANUAL)

#: Expected publish rates (Hz) of the demo drive, used for gap detection when not configured.
DEFAULT_RATES_HZ = {"camera/front": 30.0, "lidar/top": 10.0, "imu": 200.0,
                    "vehicle_state": 50.0, "gnss": 10.0}


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


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _non_negative(name: str, value: float) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


@dataclass(frozen=True)
class SourcesConfig:
    """ZeroMQ endpoints the recorder connects its SUB socket to."""

    endpoints: tuple[str, ...] = ("tcp://127.0.0.1:5555",)
    rcvhwm: int = 100_000
    max_payload_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("endpoints must name at least one ZeroMQ endpoint")
        for ep in self.endpoints:
            if "://" not in ep:
                raise ValueError(f"endpoints: {ep!r} is not a ZeroMQ endpoint like tcp://host:port")
        _positive("rcvhwm", self.rcvhwm)
        _positive("max_payload_bytes", self.max_payload_bytes)


@dataclass(frozen=True)
class BufferConfig:
    """Ring buffer bounds: age (s) and bytes in total, optionally bytes per topic."""

    max_age_s: float = 300.0
    max_bytes: int = 1024 * 1024 * 1024
    topic_max_bytes: dict[str, int] = field(default_factory=dict)
    latched_topics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _positive("max_age_s", self.max_age_s)
        _positive("max_bytes", self.max_bytes)
        for topic, budget in self.topic_max_bytes.items():
            _positive(f"topic_max_bytes.{topic}", budget)


@dataclass(frozen=True)
class TriggerConfig:
    """One trigger rule; the table name is its name and ``kind`` says which rule it is.

    Fields used per kind: hard_brake (decel_mps2, min_duration_s), swerve (lat_accel_mps2,
    jerk_mps3, min_duration_s), ttc (ttc_s, min_speed_mps), disengagement (none), random
    (probability, period_s, seed), uncertainty/ood (score_key, threshold). All kinds use
    pre_s, post_s, cooldown_s and priority.
    """

    kind: str = ""
    pre_s: float = 30.0
    post_s: float = 10.0
    cooldown_s: float = 20.0
    priority: int = 50
    decel_mps2: float = 4.0
    min_duration_s: float = 0.2
    lat_accel_mps2: float = 4.0
    jerk_mps3: float = 0.0
    ttc_s: float = 3.0
    min_speed_mps: float = 1.0
    probability: float = 0.01
    period_s: float = 60.0
    seed: int = 0
    score_key: str = ""
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in RULE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(sorted(RULE_KINDS))}, got {self.kind!r}")
        for name in ("pre_s", "post_s", "cooldown_s", "min_duration_s", "jerk_mps3"):
            _non_negative(name, getattr(self, name))
        for name in ("decel_mps2", "lat_accel_mps2", "ttc_s", "period_s"):
            _positive(name, getattr(self, name))
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {self.probability!r}")


@dataclass(frozen=True)
class TopicsConfig:
    """Which topics carry the decoded streams the triggers read."""

    vehicle_state: str = "vehicle_state"
    model_scores: str = "model/scores"


@dataclass(frozen=True)
class TimeSyncConfig:
    """Clock-offset estimation; ``correct`` moves buffered times onto the vehicle clock.

    A sensor clock step is an offset jump larger than ``step_s`` seen on ``step_confirm``
    consecutive samples; ``step_s`` 0 turns detection off.
    """

    correct: bool = False
    block_s: float = 1.0
    fit_blocks: int = 30
    expected_hz: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES_HZ))
    gap_factor: float = 1.5
    step_s: float = 0.25
    step_confirm: int = 5

    def __post_init__(self) -> None:
        _positive("block_s", self.block_s)
        _positive("fit_blocks", self.fit_blocks)
        _non_negative("step_s", self.step_s)
        _positive("step_confirm", self.step_confirm)
        if self.gap_factor <= 1.0:
            raise ValueError(f"gap_factor must be > 1, got {self.gap_factor!r}")
        for topic, hz in self.expected_hz.items():
            _positive(f"expected_hz.{topic}", hz)


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
        _positive("chunk_bytes", self.chunk_bytes)
        _non_negative("max_bytes_per_s", self.max_bytes_per_s)
        for name in ("request_timeout_s", "max_attempts", "backoff_initial_s", "backoff_max_s", "poll_s"):
            _positive(name, getattr(self, name))


@dataclass(frozen=True)
class QueueConfig:
    """Disk budget (bytes) for snapshots waiting to upload."""

    max_bytes: int = 20 * 1024 * 1024 * 1024

    def __post_init__(self) -> None:
        _positive("max_bytes", self.max_bytes)


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
