"""Intelligent Driver Model car following and MOBIL lane-change decisions, as array maths.

IDM (Treiber, Hennecke & Helbing 2000)::

    a = a_max · [1 − (v / v0)^δ − (s* / s)²],   s* = s0 + max(0, v·T + v·Δv / (2·sqrt(a_max·b)))

Defaults follow nuPlan's IDM agents (headway 1.5 s, accel_max 1.0 m/s², decel 2.0 m/s²) and
highway-env (δ = 4, headway 1.5 s); the jam distance s0 = 2 m is Treiber's (nuPlan: 1 m,
highway-env: 5 m plus the car length measured centre to centre). The result is bounded to
``[-decel_max_mps2, accel_max_mps2]`` where ``decel_max_mps2`` is a human emergency stop on dry
asphalt (8 m/s², ~0.8 g).

MOBIL (Kesting, Treiber & Helbing 2007): change to a neighbouring lane when the new follower is
not forced to brake harder than ``b_safe`` (2 m/s²) and
``a_c' − a_c + p · ((a_n' − a_n) + (a_o' − a_o)) > a_th`` with gain threshold 0.2 m/s².
highway-env uses politeness 0; we default to 0.3, a middle value of the published 0..0.5 range,
so drivers count the followers' loss. Decisions are taken every 1 s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class IDMParams:
    """IDM parameters shared by all IDM-driven agents (desired speed ``v0`` is per agent)."""

    time_headway_s: float = 1.5
    min_gap_m: float = 2.0
    accel_max_mps2: float = 1.0
    decel_comfort_mps2: float = 2.0
    delta: float = 4.0
    decel_max_mps2: float = 8.0
    stop_decel_max_mps2: float = 4.0  # at a red light, go on if stopping needs more than this

    def __post_init__(self) -> None:
        if min(self.time_headway_s, self.accel_max_mps2, self.decel_comfort_mps2, self.delta) <= 0:
            raise ValueError("idm: time_headway_s, accel_max_mps2, decel_comfort_mps2, delta must be > 0")
        if self.min_gap_m < 0 or self.decel_max_mps2 < self.decel_comfort_mps2:
            raise ValueError("idm: min_gap_m must be >= 0 and decel_max_mps2 >= decel_comfort_mps2")


@dataclass(frozen=True)
class MOBILParams:
    """MOBIL lane-change parameters."""

    politeness: float = 0.3
    gain_threshold_mps2: float = 0.2
    b_safe_mps2: float = 2.0
    decision_period_s: float = 1.0
    min_speed_mps: float = 2.0  # no lane changes below this speed

    def __post_init__(self) -> None:
        if not 0.0 <= self.politeness <= 1.0 or self.b_safe_mps2 <= 0 or self.decision_period_s <= 0:
            raise ValueError("mobil: politeness in [0, 1], b_safe_mps2 > 0, decision_period_s > 0")


def idm_accel(speed_mps: F64, v0_mps: F64, gap_m: F64, dv_mps: F64, p: IDMParams) -> F64:
    """IDM acceleration, m/s². All inputs broadcast together.

    ``gap_m``: bumper-to-bumper distance to the leader (``inf`` on a free road);
    ``dv_mps``: approach rate ``v − v_leader`` (positive when closing).
    """
    # Same operations in the same order as the formula above, written into a few scratch arrays.
    shape = np.broadcast_shapes(np.shape(speed_mps), np.shape(v0_mps), np.shape(gap_m), np.shape(dv_mps))
    free, s_star = np.empty(shape), np.empty(shape)
    v = np.maximum(speed_mps, 0.0)
    np.divide(v, np.maximum(v0_mps, 1e-3), out=free)
    if p.delta == 4.0:  # the usual exponent, without the slow float power
        np.multiply(free, free, out=free)
        np.multiply(free, free, out=free)
    else:
        np.power(free, p.delta, out=free)
    np.subtract(1.0, free, out=free)
    np.multiply(v, dv_mps, out=s_star)
    np.divide(s_star, 2.0 * np.sqrt(p.accel_max_mps2 * p.decel_comfort_mps2), out=s_star)
    np.add(v * p.time_headway_s, s_star, out=s_star)
    np.maximum(s_star, 0.0, out=s_star)
    np.add(s_star, p.min_gap_m, out=s_star)
    interaction = np.divide(s_star, np.maximum(gap_m, 0.05), out=s_star)
    np.multiply(interaction, interaction, out=interaction)
    np.subtract(free, interaction, out=free)
    a = np.multiply(free, p.accel_max_mps2, out=free)
    np.maximum(a, -p.decel_max_mps2, out=a)
    return np.asarray(np.minimum(a, p.accel_max_mps2, out=a), dtype=np.float64)


@dataclass(frozen=True)
class LaneChangeCandidate:
    """Inputs for one MOBIL evaluation, each ``(n,)``: ``c`` the changer, ``n`` the new follower,
    ``o`` the old follower. ``*_gap_*`` are bumper-to-bumper gaps, ``inf`` when nobody is there."""

    v_c: F64
    v0_c: F64
    a_c: F64  # the changer's IDM acceleration staying put
    gap_c_new: F64  # changer → new leader
    v_new_leader: F64
    v_n: F64
    v0_n: F64
    gap_n_c: F64  # new follower → changer (after the change)
    gap_n_old: F64  # new follower → new leader (before the change)
    v_o: F64
    v0_o: F64
    gap_o_c: F64  # old follower → changer (before)
    gap_o_lead: F64  # old follower → changer's current leader (after)
    v_old_leader: F64


def mobil_gain(c: LaneChangeCandidate, idm: IDMParams, mob: MOBILParams) -> tuple[F64, B]:
    """MOBIL incentive (m/s²) and safety flag for each candidate change."""
    a_c_new = idm_accel(c.v_c, c.v0_c, c.gap_c_new, c.v_c - c.v_new_leader, idm)
    a_n = idm_accel(c.v_n, c.v0_n, c.gap_n_old, c.v_n - c.v_new_leader, idm)
    a_n_new = idm_accel(c.v_n, c.v0_n, c.gap_n_c, c.v_n - c.v_c, idm)
    a_o = idm_accel(c.v_o, c.v0_o, c.gap_o_c, c.v_o - c.v_c, idm)
    a_o_new = idm_accel(c.v_o, c.v0_o, c.gap_o_lead, c.v_o - c.v_old_leader, idm)
    has_n = np.isfinite(c.gap_n_c)
    has_o = np.isfinite(c.gap_o_c)
    d_n = np.where(has_n, a_n_new - a_n, 0.0)
    d_o = np.where(has_o, a_o_new - a_o, 0.0)
    gain = a_c_new - c.a_c + mob.politeness * (d_n + d_o)
    safe = (~has_n | (a_n_new >= -mob.b_safe_mps2)) & (c.gap_n_c > 0.0) & (c.gap_c_new > 0.0)
    return np.asarray(gain, dtype=np.float64), np.asarray(safe, dtype=np.bool_)
