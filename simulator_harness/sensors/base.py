"""What every synthetic sensor offers the publisher: a spec, and a capture at a given instant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from simulator_harness.errors import SensorConfigError


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """How a sensor is published: ZeroMQ topic, sensor id, payload encoding, rate (Hz).

    ``threaded`` sensors are slow enough (camera render + encode) that the publisher runs them
    on a worker thread so they never hold up the fast ones.
    """

    topic: str
    sensor_id: str
    encoding: str
    rate_hz: float
    threaded: bool = False

    def __post_init__(self) -> None:
        if not self.topic or self.rate_hz <= 0:
            raise SensorConfigError(f"sensor {self.sensor_id!r}: needs a topic and a rate > 0 Hz")


@dataclass(frozen=True, slots=True)
class Capture:
    """One payload a sensor produced; ``keyframe`` only matters for video."""

    payload: bytes | memoryview
    keyframe: bool = False


class Sensor(Protocol):
    """A synthetic sensor. ``capture(index)`` samples its ``index``-th tick, at drive time
    ``index / spec.rate_hz`` seconds, and returns zero or more payloads (a video encoder may
    hold a frame back). A sensor that is not ``threaded`` must give the same payloads when a
    tick is captured again: the publisher captures tick 0 once before its clock starts, so
    the first real tick does not pay for cold caches."""

    @property
    def spec(self) -> SensorSpec: ...

    def capture(self, index: int) -> list[Capture]: ...


def sample_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """The noise generator of block or sample ``index`` of noise stream ``stream``: the same
    numbers whatever order or timing they are drawn in, so a drive is reproducible per seed."""
    return np.random.default_rng((seed, stream, index))
