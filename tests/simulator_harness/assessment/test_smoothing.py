"""Local-linear smoothing of recorded tracks: exact on straight lines, zero lag on curves, the slope
noise the least-squares formula predicts, and resampling onto the closed loop's 10 Hz grid."""

from __future__ import annotations

import numpy as np
import pytest

from simulator_harness.assessment.smoothing import local_linear_fit, smooth_recorded
from simulator_harness.errors import TrajectoryError
from simulator_harness.trajectory import Trajectory


def test_a_line_is_kept_exactly_up_to_the_ends() -> None:
    t = np.arange(0.0, 3.0, 0.1)
    level, slope, n = local_linear_fit(t, 2.0 + 3.0 * t, 0.5)
    np.testing.assert_allclose(level, 2.0 + 3.0 * t, atol=1e-9)
    np.testing.assert_allclose(slope, 3.0, atol=1e-9)
    assert n[0] == 6 and n[15] == 11  # one-sided at the ends, 11 samples inside


def test_the_slope_of_a_parabola_has_no_lag_inside() -> None:
    t = np.arange(0.0, 5.0, 0.1)
    _, slope, _ = local_linear_fit(t, 0.5 * 1.7 * t**2, 0.5)  # constant 1.7 m/s² from rest
    np.testing.assert_allclose(slope[5:-5], 1.7 * t[5:-5], atol=1e-9)


def test_slope_noise_matches_least_squares() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 2000.0, 0.1)
    noise = rng.normal(0.0, 0.05, t.size)
    _, slope, _ = local_linear_fit(t, noise, 0.5)
    # 11 samples 0.1 s apart: var(slope) = σ² / Σ(t - t̄)² = σ² / 1.1; plain differencing: 2σ² / 0.1².
    assert float(slope[10:-10].std()) == pytest.approx(0.05 / np.sqrt(1.1), rel=0.03)
    assert float((np.diff(noise) / 0.1).std()) == pytest.approx(0.05 * np.sqrt(2) / 0.1, rel=0.03)


def test_smooth_recorded_resamples_to_10_hz_and_recovers_speed_and_accel() -> None:
    t = np.arange(0.0, 4.0 + 1e-9, 0.04, dtype=np.float64)  # a 25 Hz recording
    s = 10.0 * t + 0.5 * 1.5 * t**2
    heading = 0.3
    x = np.vstack([s * np.cos(heading), np.full_like(t, 7.0)])
    y = np.vstack([s * np.sin(heading), np.full_like(t, 7.0)])
    valid = np.ones_like(x, dtype=bool)
    valid[1, 1:] = False  # a one-sample track: nothing to differentiate
    rec = Trajectory(t_s=t, x_m=x, y_m=y, yaw_rad=np.full_like(x, heading), speed_mps=np.zeros_like(x),
                     accel_mps2=np.full_like(x, np.nan), valid=valid, kind=np.array(["car", "car"]))
    out = smooth_recorded(rec)
    np.testing.assert_allclose(np.diff(out.t_s), 0.1)
    assert out.t_s[-1] == pytest.approx(4.0) and out.valid[0].all() and not out.valid[1].any()
    inner = slice(5, -5)
    np.testing.assert_allclose(out.speed_mps[0, inner], 10.0 + 1.5 * out.t_s[inner], atol=1e-6)
    np.testing.assert_allclose(out.accel_mps2[0, 10:-10], 1.5, atol=1e-6)
    np.testing.assert_allclose(out.yaw_rad[0], heading)
    assert out.kind is not None and out.kind.tolist() == ["car", "car"]
    with pytest.raises(TrajectoryError, match="half_window_s"):
        smooth_recorded(rec, half_window_s=0.0)
