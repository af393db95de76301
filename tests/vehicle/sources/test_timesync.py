"""Clock offset and drift, duplicates, reordering and gaps."""

from __future__ import annotations

import random

import pytest

from vehicle.config.tree import TimeSyncConfig
from vehicle.sources.timesync import ClockFit, TimeSync

NS = 1_000_000_000


def test_fit_recovers_offset_and_drift_through_jittery_latency() -> None:
    rng = random.Random(3)
    fit = ClockFit(NS, 30)
    offset_ns, drift = 250_000_000, 50e-6  # sensor clock 250 ms behind, running 50 ppm slow
    t0 = 1_700_000_000 * NS
    for k in range(30 * 100):
        t_sensor = t0 + k * NS // 100
        latency = int(rng.expovariate(1 / 2e6)) + (80_000_000 if rng.random() < 0.02 else 0)
        true_offset = offset_ns + drift * (t_sensor - t0)
        fit.observe(t_sensor, t_sensor + round(true_offset) + latency)
    t_end = t0 + 30 * NS
    assert fit.offset_ns(t_end) == pytest.approx(offset_ns + drift * 30 * NS, abs=1e6)
    assert fit.drift_ppm == pytest.approx(50.0, abs=10.0)


def test_corrected_times_land_on_the_vehicle_clock() -> None:
    sync = TimeSync(TimeSyncConfig(correct=True, expected_hz={}))
    t0 = 1_700_000_000 * NS
    for k in range(500):
        v = sync.observe("lidar/top", k, t0 + k * NS // 10, t0 + k * NS // 10 + 3 * NS + 1_000_000)
    assert abs(v.t_ns - (t0 + 499 * NS // 10 + 3 * NS)) < 2_000_000


def test_duplicates_dropped_reordering_flagged_gaps_counted() -> None:
    sync = TimeSync(TimeSyncConfig(expected_hz={"imu": 100.0}))
    t = [k * NS // 100 for k in range(10)]
    assert sync.observe("imu", 0, t[0], t[0]).accept
    assert sync.observe("imu", 1, t[1], t[1]).missing == 0
    assert not sync.observe("imu", 1, t[1], t[1] + 5).accept, "exact duplicate"
    v = sync.observe("imu", 5, t[5], t[5])
    assert v.accept and v.missing == 3
    late = sync.observe("imu", 3, t[3], t[6])
    assert late.accept and late.reordered and late.t_ns == t[3]
    assert sync.observe("imu", 6, t[6], t[6]).missing == 0
