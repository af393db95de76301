"""The vehicle service's configuration: one typed tree loaded once from TOML in ``main``, with
the recorder's and the inference process's tables.
"""

from vehicle.config.checks import non_negative, positive
from vehicle.config.inference import (
    MODELS_DIR,
    PROVIDERS,
    YOLOX_STRIDES_PX,
    DetectorConfig,
    InferenceProcessConfig,
)
from vehicle.config.recorder import (
    DEFAULT_RATES_HZ,
    RULE_KINDS,
    BufferConfig,
    SourcesConfig,
    TimeSyncConfig,
    TopicsConfig,
    TriggerConfig,
)
from vehicle.config.tree import (
    MetricsConfig,
    QueueConfig,
    UploaderConfig,
    VehicleConfig,
    connect_endpoint,
    load_config,
)

__all__ = [
    "DEFAULT_RATES_HZ",
    "MODELS_DIR",
    "PROVIDERS",
    "RULE_KINDS",
    "YOLOX_STRIDES_PX",
    "BufferConfig",
    "DetectorConfig",
    "InferenceProcessConfig",
    "MetricsConfig",
    "QueueConfig",
    "SourcesConfig",
    "TimeSyncConfig",
    "TopicsConfig",
    "TriggerConfig",
    "UploaderConfig",
    "VehicleConfig",
    "connect_endpoint",
    "load_config",
    "non_negative",
    "positive",
]
