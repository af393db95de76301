"""Smoothing of irregularly sampled signals: a centred local-linear least-squares fit.

For each sample ``i`` a straight line is fitted through every sample within ``±half_window_s``
of ``t[i]``; its value at ``t[i]`` is the smoothed level and its slope the smoothed derivative.
On uniform samples this is the first-order Savitzky-Golay filter: zero phase (no lag), and for
a window of width W the slope's noise is ``σ·sqrt(12 / (n·W²))`` for n samples of noise σ.
Prefix sums make it O(N) for any window.
"""

from __future__ import annotations

import numpy as np

from vehicle.replay.geodesy import Array


def local_linear_fit(t_s: Array, y: Array, half_window_s: float) -> tuple[Array, Array]:
    """Smoothed level and slope (unit of ``y`` per s) of ``y(t_s)``; both of shape (N,).

    ``t_s`` must be strictly increasing. A window holding a single sample yields that sample
    and a slope of 0. Near the ends the window is one-sided (truncated), not padded.
    """
    if half_window_s <= 0:
        raise ValueError(f"half_window_s must be > 0, got {half_window_s!r}")
    t = np.asarray(t_s, dtype=np.float64)
    v = np.asarray(y, dtype=np.float64)
    if t.shape != v.shape or t.ndim != 1:
        raise ValueError(f"t_s and y must be 1-D of one length, got {t.shape} and {v.shape}")
    tc = t - t[0]  # centred on the start so the sums of squares keep their precision

    def prefix(a: Array) -> Array:
        return np.concatenate(([0.0], np.cumsum(a)))

    s1, st, stt, sy, sty = prefix(np.ones_like(tc)), prefix(tc), prefix(tc * tc), prefix(v), prefix(tc * v)
    lo = np.searchsorted(t, t - half_window_s, side="left")
    hi = np.searchsorted(t, t + half_window_s, side="right")
    n = s1[hi] - s1[lo]
    sum_t, sum_tt = st[hi] - st[lo], stt[hi] - stt[lo]
    sum_y, sum_ty = sy[hi] - sy[lo], sty[hi] - sty[lo]
    denom = n * sum_tt - sum_t * sum_t
    ok = denom > 1e-12 * np.maximum(n * sum_tt, 1e-300)
    slope = np.where(ok, (n * sum_ty - sum_t * sum_y) / np.where(ok, denom, 1.0), 0.0)
    level = sum_y / n + slope * (tc - sum_t / n)
    return level, slope
