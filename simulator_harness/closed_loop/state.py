"""Simulator state as arrays: the current step ``(S, A)``, and the recorder that turns the steps of a
rollout into one :class:`~simulator_harness.trajectory.Trajectory` ``(S, A, T)``.

``S`` scenarios are simulated side by side, each with ``A`` agent slots; agent 0 is always the ego.
Slots a scenario does not use have ``valid == False``. Agents on a lane (``lane >= 0``) are moved
in the lane frame (``s_m`` along the centre line, ``d_m`` to its left); agents with ``lane == -1``
(pedestrians, crossing cyclists) move freely in the world frame along ``yaw_rad``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator_harness.scenario.spec import ActorKind
from simulator_harness.trajectory import Trajectory

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

DT_S = 0.1  #: the closed loop runs at 10 Hz

#: Integer codes stored in ``SimState.kind_code``; a recorded trajectory's ``kind`` holds the names.
KIND_CODE: dict[ActorKind, int] = {ActorKind.CAR: 0, ActorKind.TRUCK: 1, ActorKind.PEDESTRIAN: 2,
                                   ActorKind.CYCLIST: 3}
#: Box size per kind: (length_m, width_m, wheelbase_m).
KIND_SIZE: dict[ActorKind, tuple[float, float, float]] = {
    ActorKind.CAR: (4.6, 1.9, 2.8), ActorKind.TRUCK: (10.0, 2.5, 6.0),
    ActorKind.PEDESTRIAN: (0.6, 0.6, 0.0), ActorKind.CYCLIST: (1.8, 0.7, 1.1)}
VRU_CODES = (KIND_CODE[ActorKind.PEDESTRIAN], KIND_CODE[ActorKind.CYCLIST])
_KIND_NAME = np.array([k.value for k in sorted(KIND_CODE, key=KIND_CODE.__getitem__)])  # code -> name


@dataclass(frozen=True)
class SimState:
    """One step of ``S`` scenarios × ``A`` agents. Every array is ``(S, A)`` unless stated.

    Behaviour fields: ``v0_mps`` desired speed (0: parked); ``mobil`` lane changes allowed;
    ``ignore_signal`` drives through red; ``brake_mps2``/``brake_until_s`` an event's forced
    braking (0: none); ``jerk_max_mps3`` how fast acceleration may change; ``lat_omega_radps``
    and ``lat_accel_max_mps2`` shape lateral moves toward the lane centre.

    ``lane_order_hint`` is the lane index order of the step that produced this state: it makes the
    next neighbour search faster and never changes its result (``None`` is always correct).
    """

    t_s: float
    step_index: int
    x_m: F64
    y_m: F64
    yaw_rad: F64
    speed_mps: F64  # along the heading, >= 0
    accel_mps2: F64  # effective longitudinal acceleration over the last step
    s_m: F64
    d_m: F64
    vd_mps: F64  # lateral speed in the lane frame
    lane: I64
    kind_code: npt.NDArray[np.int8]  # KIND_CODE
    length_m: F64
    width_m: F64
    valid: B
    v0_mps: F64
    mobil: B
    ignore_signal: B
    brake_mps2: F64
    brake_until_s: F64
    jerk_max_mps3: F64
    lat_omega_radps: F64
    lat_accel_max_mps2: F64
    event_fired: B  # (S, E)
    lane_order_hint: I64 | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(S, A)``."""
        return (int(self.x_m.shape[0]), int(self.x_m.shape[1]))


@dataclass(frozen=True)
class EgoAction:
    """What the ego policy asks for this step: ``accel_mps2`` (S,), ``lane_change`` (S,) in {-1, 0, +1}
    (+1 = to the left). The simulator applies the jerk limit and keeps speeds >= 0."""

    accel_mps2: F64
    lane_change: I64


class TrajectoryRecorder:
    """Preallocated ``(S, A, T)`` buffers filled one step at a time; :meth:`result` freezes them into a
    :class:`Trajectory` with the lane frame, ``kind`` names, sizes and no ``agent_id`` (slots are
    positions in the scenario's actor list, ego first)."""

    _FIELDS = ("x_m", "y_m", "yaw_rad", "speed_mps", "accel_mps2", "s_m", "d_m", "lane", "valid")

    def __init__(self, first: SimState, steps: int) -> None:
        s, a = first.shape
        self._t = np.arange(steps, dtype=np.float64) * DT_S + first.t_s
        self._static = (_KIND_NAME[first.kind_code], first.length_m.copy(), first.width_m.copy())
        # Time-major while recording (each step is one contiguous write), (S, A, T) views at the end.
        self._buf = {name: np.empty((steps, s, a), dtype=getattr(first, name).dtype) for name in self._FIELDS}
        self._n = 0

    def record(self, state: SimState) -> None:
        """Store ``state`` as the next time step."""
        for name, buf in self._buf.items():
            buf[self._n] = getattr(state, name)
        self._n += 1

    def result(self) -> Trajectory:
        """The trajectory recorded so far, ``(S, A, T)``; step ``k`` at ``t_s = first.t_s + k · DT_S``."""
        n = self._n
        kind, length, width = self._static
        arrays = {name: np.moveaxis(buf[:n], 0, -1) for name, buf in self._buf.items()}
        return Trajectory(t_s=self._t[:n], kind=kind, length_m=length, width_m=width, **arrays)
