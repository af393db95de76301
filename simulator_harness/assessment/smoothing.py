"""Smoothing recorded tracks before they are differentiated: centred local-linear fits.

Recorded positions carry measurement noise, and every numerical derivative multiplies it: at
10 Hz, white position noise of σ metres becomes jerk noise of about ``σ · sqrt(20) / 0.1³``, so
2 cm of noise alone is some 90 m/s³ of jerk. A trajectory-processing pipeline therefore smooths the
positions before it differences them (Thiemann, Treiber & Kesting 2008, arXiv:0804.0108, with a
symmetric exponential moving average on NGSIM; Toledo, Koutsopoulos & Ahmed 2007 with locally
weighted regression; Punzo, Borzacchiello & Ciuffo 2011 on how noisy NGSIM's own speeds and
accelerations are). :func:`smooth_recorded` does it with the simplest zero-lag estimator: at each
output instant a straight line is fitted by least squares to every recorded sample within
``±half_window_s``; its value is the smoothed level and its slope the derivative (on uniform
samples the first-order Savitzky-Golay filter). Near a track's ends the window is one-sided, not
padded. Two passes: positions give the velocity (its magnitude is the speed), then the speed gives
the acceleration; the recorded heading is smoothed on its own (unwrapped). Prefix sums make each fit
O(N) for any window.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from simulator_harness.closed_loop.state import DT_S
from simulator_harness.errors import TrajectoryError
from simulator_harness.trajectory import Trajectory, unbatched

F64 = npt.NDArray[np.float64]
#: Half width of the windows the gate smooths recorded tracks with (1 s windows in all).
RECORDED_HALF_WINDOW_S = 0.5


def local_linear_fit(t_s: npt.ArrayLike, y: npt.ArrayLike, half_window_s: float,
                     at_s: npt.ArrayLike | None = None) -> tuple[F64, F64, F64]:
    """Level, slope (unit of ``y`` per s) and sample count of the line fitted to the samples
    ``y(t_s)`` within ``±half_window_s`` of each instant of ``at_s`` (default ``t_s``); all shaped
    like ``at_s``. ``t_s`` must be 1-D and strictly increasing. Where fewer than two samples fall in
    the window the slope is 0 and the level their mean (NaN for none): callers mask by the count."""
    if not half_window_s > 0.0:
        raise TrajectoryError(f"half_window_s must be > 0, got {half_window_s!r}")
    t = np.asarray(t_s, dtype=np.float64)
    v = np.asarray(y, dtype=np.float64)
    if t.ndim != 1 or t.shape != v.shape:
        raise TrajectoryError(f"t_s and y must be 1-D of one length, got {t.shape} and {v.shape}")
    at = t if at_s is None else np.asarray(at_s, dtype=np.float64)
    origin = float(t[0]) if t.size else 0.0
    tc, ac = t - origin, at - origin  # centred on the start so the sums of squares keep their precision

    def prefix(a: F64) -> F64:
        return np.concatenate(([0.0], np.cumsum(a)))

    s1, st, stt, sy, sty = prefix(np.ones_like(tc)), prefix(tc), prefix(tc * tc), prefix(v), prefix(tc * v)
    lo = np.searchsorted(t, at - half_window_s - 1e-9, side="left")
    hi = np.searchsorted(t, at + half_window_s + 1e-9, side="right")
    n = s1[hi] - s1[lo]
    sum_t, sum_tt, sum_y, sum_ty = st[hi] - st[lo], stt[hi] - stt[lo], sy[hi] - sy[lo], sty[hi] - sty[lo]
    denom = n * sum_tt - sum_t * sum_t
    ok = (n >= 2) & (denom > 1e-12 * np.maximum(n * sum_tt, 1e-300))
    slope = np.where(ok, (n * sum_ty - sum_t * sum_y) / np.where(ok, denom, 1.0), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = sum_y / n + slope * (ac - sum_t / np.where(n > 0, n, 1.0))
    return level, slope, n


def smooth_recorded(traj: Trajectory, half_window_s: float = RECORDED_HALF_WINDOW_S, dt_s: float = DT_S) -> Trajectory:
    """A recorded ``(agents, time)`` trajectory smoothed and resampled onto a ``dt_s`` grid (the
    closed loop's 10 Hz by default) from its first instant; see the module docstring.

    An output instant is valid where at least two of the agent's recorded samples lie within the
    window and it falls inside the agent's recorded span. Per-agent fields are kept; the lane frame
    and bus signals are dropped (a recording has none)."""
    rec = unbatched(traj, "smooth_recorded")
    if not dt_s > 0.0:
        raise TrajectoryError(f"dt_s must be > 0, got {dt_s!r}")
    t0 = float(rec.t_s[0])
    steps = math.floor((float(rec.t_s[-1]) - t0) / dt_s + 1e-9) + 1
    grid: F64 = np.asarray(t0 + dt_s * np.arange(steps), dtype=np.float64)
    shape = (rec.n_agents, grid.size)
    x, y, yaw, speed, accel = (np.full(shape, np.nan) for _ in range(5))
    valid = np.zeros(shape, dtype=bool)
    for a in range(rec.n_agents):
        ok = rec.valid[a]
        if not ok.any():
            continue
        t = rec.t_s[ok]
        x[a], vx, n = local_linear_fit(t, rec.x_m[a][ok], half_window_s, grid)
        y[a], vy, _ = local_linear_fit(t, rec.y_m[a][ok], half_window_s, grid)
        yaw[a] = local_linear_fit(t, np.unwrap(rec.yaw_rad[a][ok]), half_window_s, grid)[0]
        valid[a] = (n >= 2) & (grid >= t[0] - 1e-9) & (grid <= t[-1] + 1e-9)
        speed[a] = np.where(valid[a], np.hypot(vx, vy), np.nan)
        if valid[a].any():
            g = grid[valid[a]]
            accel[a, valid[a]] = local_linear_fit(g, speed[a, valid[a]], half_window_s)[1]
    return Trajectory(t_s=grid, x_m=np.where(valid, x, np.nan), y_m=np.where(valid, y, np.nan),
                      yaw_rad=np.where(valid, yaw, np.nan), speed_mps=speed, accel_mps2=accel, valid=valid,
                      agent_id=rec.agent_id, kind=rec.kind, length_m=rec.length_m, width_m=rec.width_m)
