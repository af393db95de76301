"""The one trajectory type of the simulator: agents over time, with a validity mask.

Every producer returns a :class:`Trajectory`: the closed loop (a batch of rollouts, ``(S, A, T)``),
the demo drive (the ego alone, ``(1, T)``), the scene sensors (the ego resampled to sensor instants)
and the CommonRoad import (recorded obstacles, ``(A, T)``). Arrays are shaped ``(..., A, T)``:
leading batch axes (the closed loop's scenario axis), then agents, then time; ``t_s`` is ``(T,)``
and shared by every agent. Where ``valid`` is False an agent does not exist and its values mean
nothing (the CommonRoad import writes NaN there).

Fields a producer cannot know are ``None``: per-agent attributes ``(..., A)`` (``agent_id``,
``kind``, ``length_m``, ``width_m``), the lane frame ``(..., A, T)`` (``lane`` index, ``s_m``
along the centre line, ``d_m`` to its left; the closed loop only) and the signals a vehicle bus
reports ``(..., A, T)`` (yaw rate, lateral acceleration, steering wheel angle, autonomy engaged;
the demo drive and the scene sensors). :func:`require` turns a missing one into a
:class:`~simulator_harness.errors.TrajectoryError` that names it.

This module imports only NumPy and the package's errors, so every stage can depend on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from simulator_harness.errors import TrajectoryError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
Str = npt.NDArray[np.str_]
_T = TypeVar("_T")
_Select = Callable[[npt.NDArray[Any]], npt.NDArray[Any]]  # applied to each array by Trajectory._map

EGO = 0  #: the ego's slot on the agent axis, in every producer that has an ego

#: Fields shaped ``(..., A, T)``, then fields shaped ``(..., A)``.
PER_STEP = ("x_m", "y_m", "yaw_rad", "speed_mps", "accel_mps2", "valid", "lane", "s_m", "d_m",
            "yaw_rate_radps", "lat_accel_mps2", "steering_rad", "autonomy_engaged")
PER_AGENT = ("agent_id", "kind", "length_m", "width_m")


@dataclass(frozen=True, slots=True, eq=False)
class Trajectory:
    """Agents over time; see the module docstring for the axes.

    ``x_m``/``y_m`` position in the world frame (m), ``yaw_rad`` heading counter-clockwise from +x,
    ``speed_mps`` along the heading (>= 0 in the closed loop), ``accel_mps2`` longitudinal
    acceleration (NaN where a recording gives none). ``kind`` is the agent's class as the producer
    names it (the closed loop: ``ActorKind`` values; CommonRoad: its obstacle types); ``agent_id``
    the producer's identifier. ``yaw_rate_radps``, ``lat_accel_mps2`` (to the left) and
    ``steering_rad`` (steering wheel) come from producers that model them: the demo drive computes
    them from its path's curvature, the scene sensors by finite differences of the 10 Hz yaw, and
    the two disagree (standing still, the drive keeps the wheel turned), so they are fields here
    rather than one derivation over the type.
    """

    t_s: F64
    x_m: F64
    y_m: F64
    yaw_rad: F64
    speed_mps: F64
    accel_mps2: F64
    valid: B
    agent_id: I64 | None = None
    kind: Str | None = None
    length_m: F64 | None = None
    width_m: F64 | None = None
    lane: I64 | None = None
    s_m: F64 | None = None
    d_m: F64 | None = None
    yaw_rate_radps: F64 | None = None
    lat_accel_mps2: F64 | None = None
    steering_rad: F64 | None = None
    autonomy_engaged: B | None = None

    def __post_init__(self) -> None:
        shape = np.shape(self.x_m)
        if np.ndim(self.t_s) != 1 or len(shape) < 2 or shape[-1] != np.size(self.t_s):
            raise TrajectoryError(f"x_m has shape {shape} and t_s {np.shape(self.t_s)}: expected (..., agents, "
                                  "time) and (time,) with the same number of steps")
        for name in PER_STEP:
            value = getattr(self, name)
            if value is not None and np.shape(value) != shape:
                raise TrajectoryError(f"{name} has shape {np.shape(value)}, expected {shape} like x_m")
        for name in PER_AGENT:
            value = getattr(self, name)
            if value is not None and np.shape(value) != shape[:-1]:
                raise TrajectoryError(f"{name} has shape {np.shape(value)}, expected {shape[:-1]} (one per agent)")
        if np.asarray(self.valid).dtype != np.bool_:
            raise TrajectoryError(f"valid has dtype {np.asarray(self.valid).dtype}, expected bool")

    @property
    def shape(self) -> tuple[int, ...]:
        """``(..., A, T)``."""
        return tuple(int(n) for n in self.x_m.shape)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The leading batch axes: ``(S,)`` for a closed-loop batch, ``()`` for one scenario."""
        return self.shape[:-2]

    @property
    def n_agents(self) -> int:
        """``A``."""
        return self.shape[-2]

    @property
    def n_steps(self) -> int:
        """``T``."""
        return self.shape[-1]

    @property
    def duration_s(self) -> float:
        """Time from the first step to the last, s."""
        return float(self.t_s[-1] - self.t_s[0]) if self.t_s.size else 0.0

    def scenario(self, index: int) -> Trajectory:
        """Entry ``index`` of the first batch axis, which is dropped: ``(S, A, T)`` becomes ``(A, T)``."""
        if not self.batch_shape:
            raise TrajectoryError(f"a trajectory of shape {self.shape} has no batch axis to select a scenario from")
        return self._map(lambda a: a[index], lambda a: a[index], self.t_s)

    def agents(self, index: int | slice | Sequence[int] | I64) -> Trajectory:
        """The agents at ``index`` on the agent axis, which is kept (an ``int`` gives ``A = 1``)."""
        sel = [index] if isinstance(index, (int, np.integer)) else index
        return self._map(lambda a: a[..., sel, :], lambda a: a[..., sel], self.t_s)

    def steps(self, index: slice) -> Trajectory:
        """The time steps in ``index`` (a slice) for every agent."""
        return self._map(lambda a: a[..., index], lambda a: a, self.t_s[index])

    def _map(self, per_step: _Select, per_agent: _Select, t_s: F64) -> Trajectory:
        changes: dict[str, object] = {"t_s": t_s}
        for name in PER_STEP:
            value = getattr(self, name)
            changes[name] = None if value is None else per_step(value)
        for name in PER_AGENT:
            value = getattr(self, name)
            changes[name] = None if value is None else per_agent(value)
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def require(value: _T | None, name: str) -> _T:
    """``value`` (a trajectory field), or :class:`TrajectoryError` if its producer left it out."""
    if value is None:
        raise TrajectoryError(f"the trajectory has no {name}; use a producer that records it")
    return value


def unbatched(traj: Trajectory, where: str) -> Trajectory:
    """``traj`` itself if it is one scenario ``(A, T)``; :class:`TrajectoryError` naming ``where`` if not."""
    if traj.batch_shape:
        raise TrajectoryError(f"{where} takes one scenario (agents, time), got shape {traj.shape}; "
                              "select one with Trajectory.scenario(i)")
    return traj
