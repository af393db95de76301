"""What the enrichment of one segment starts from, decoded: a pure record the service maps to outputs.

:mod:`.reader` fills a :class:`SegmentInputs` from the object store (the raw snapshot's
``model/scores``, camera, GNSS and vehicle-state channels, and the segment's motion-compensated
sweeps in ``processed/``); tests and benchmarks may build one directly. Every field but the segment
may be missing; :attr:`SegmentInputs.problems` says what was wrong with the data that was there
(malformed messages, an undecodable keyframe), each under a reason the service counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from downstream.enrich.errors import EnrichInputError
from downstream.enrich.records import EgoStates, ScoredFrame, Tracks
from shared.segment import Segment


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one input that did not stop the segment: a metrics ``reason`` and a detail."""

    reason: str
    detail: str


@dataclass(frozen=True, eq=False)
class VisualFrames:
    """The vehicle's per-frame outputs: ``frames[i]`` (detections, OOD ratio) was scored at
    ``frames[i].t_ns`` and embedded as ``embeddings[i]``, ``(F, D)`` float32; ``uncertainty`` ``(F,)``
    is the detector's entropy in [0, 1]; ``models`` names the model(s) that scored them."""

    frames: tuple[ScoredFrame, ...]
    embeddings: npt.NDArray[np.float32]
    uncertainty: npt.NDArray[np.float64]
    models: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.frames)
        if self.embeddings.ndim != 2 or self.embeddings.shape[0] != n or self.uncertainty.shape != (n,):
            raise EnrichInputError(f"visual frames: {n} frames, embeddings {self.embeddings.shape}, "
                                   f"uncertainty {self.uncertainty.shape}")


@dataclass(frozen=True, eq=False)
class GnssFixes:
    """Valid GNSS fixes of the segment: ``t_ns`` (vehicle clock, taken as UTC), WGS-84 degrees, ``(N,)``."""

    t_ns: npt.NDArray[np.int64]
    lat_deg: npt.NDArray[np.float64]
    lon_deg: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        if not self.t_ns.shape == self.lat_deg.shape == self.lon_deg.shape or self.t_ns.size == 0:
            raise EnrichInputError("GNSS fixes need matching non-empty t_ns, lat_deg and lon_deg")


@dataclass(frozen=True, eq=False)
class Sweep:
    """One motion-compensated LiDAR sweep: ``points`` ``(N, 4)`` float32 ``[x, y, z, intensity]`` in the
    vehicle frame at ``t_ns``, from ``topic`` of ``object_key``."""

    t_ns: int
    topic: str
    object_key: str
    points: npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class Keyframe:
    """One decoded camera keyframe: ``rgb`` ``(H, W, 3)`` uint8, taken at ``t_ns`` on ``topic``."""

    t_ns: int
    topic: str
    rgb: npt.NDArray[np.uint8]


@dataclass(frozen=True, eq=False)
class SegmentInputs:
    """Everything one segment's enrichment reads (see the module docstring)."""

    segment: Segment
    visual: VisualFrames | None = None
    ego: EgoStates | None = None
    gnss: GnssFixes | None = None
    keyframe: Keyframe | None = None
    sweep: Sweep | None = None
    tracks: Tracks | None = None
    problems: tuple[Problem, ...] = ()

    @property
    def frames(self) -> tuple[ScoredFrame, ...]:
        """The scored frames (none without a ``model/scores`` stream)."""
        return self.visual.frames if self.visual is not None else ()
