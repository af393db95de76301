"""Time sync: per-sensor clock offset and drift, duplicates, reordering and gaps.

For each topic the offset ``t_recv - t_sensor`` is the clock difference plus a non-negative
transport delay, so its lower envelope is the clock difference: the estimator keeps the minimum
offset of each ``block_s`` block and fits a line through the last ``fit_blocks`` minima with
Theil-Sen (median of pairwise slopes), which shrugs off the occasional late block. The corrected
time is ``t_sensor + offset(t_sensor)`` on the vehicle clock. Pure: no clocks, no sockets.

A sensor clock that steps (an NTP or PTP step on the sensor, a reboot) shows as every offset
jumping by the step. Once ``step_confirm`` consecutive samples sit more than ``step_s`` (plus one
block of fitted drift) off the fit on the same side, the step is confirmed: the fit restarts from
the new offset (re-converging within a block) and the verdict says ``clock_step``. Until then a
suspect sample is placed at its receive time, which is wrong by its transport delay at most,
instead of by the whole step. A late sample alone cannot confirm a step: the next on-time one
clears the suspicion. Detection starts once two blocks have given the fit a slope, so a
fast-drifting clock is not a step.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

from vehicle.config.tree import TimeSyncConfig

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class SyncVerdict:
    """What time sync says about one message; ``t_ns`` is the time to buffer it at."""

    accept: bool
    t_ns: int
    duplicate: bool = False
    reordered: bool = False
    missing: int = 0
    clock_step: bool = False


class ClockFit:
    """Robust running fit of ``offset_ns = a + b * (t_sensor - t0)`` for one sensor."""

    def __init__(self, block_ns: int, fit_blocks: int, step_ns: int = 0, step_confirm: int = 5) -> None:
        self.block_ns = block_ns
        self.step_ns = step_ns
        self.step_confirm = step_confirm
        self.steps = 0
        self._fit_blocks = fit_blocks
        self._reset()

    def _reset(self) -> None:
        self._suspect = 0
        self._minima: deque[tuple[float, float]] = deque(maxlen=self._fit_blocks)
        self._block: int | None = None
        self._block_min = 0
        self._t0: int | None = None
        self._a = 0.0
        self._b = 0.0

    def judge(self, t_sensor_ns: int, t_recv_ns: int) -> tuple[bool, bool]:
        """Observe one sample; returns ``(suspect, stepped)`` (see the module docstring)."""
        offset = t_recv_ns - t_sensor_ns
        if self.step_ns <= 0 or len(self._minima) < 2:
            # Until two blocks give the fit a slope, a drifting clock would look like a step.
            self.observe(t_sensor_ns, t_recv_ns)
            return False, False
        residual = offset - self.offset_ns(t_sensor_ns)
        # Within a block the lower envelope lags a drifting offset by up to one block of drift.
        if abs(residual) <= self.step_ns + abs(self._b) * self.block_ns / NS:
            self._suspect = 0
            self.observe(t_sensor_ns, t_recv_ns)
            return False, False
        side = 1 if residual > 0 else -1
        self._suspect = self._suspect + side if self._suspect * side > 0 else side
        if abs(self._suspect) < self.step_confirm:
            return True, False
        self._reset()
        self.steps += 1
        self.observe(t_sensor_ns, t_recv_ns)
        return False, True

    def observe(self, t_sensor_ns: int, t_recv_ns: int) -> None:
        offset = t_recv_ns - t_sensor_ns
        if self._t0 is None:
            self._t0 = t_sensor_ns
            self._a = float(offset)
        block = t_sensor_ns // self.block_ns
        if block != self._block:
            if self._block is not None:
                self._push(self._block, self._block_min)
            self._block, self._block_min = block, offset
        else:
            self._block_min = min(self._block_min, offset)
        if not self._minima:
            self._a = min(self._a, float(offset))

    def _push(self, block: int, minimum: int) -> None:
        assert self._t0 is not None
        x = ((block * self.block_ns + self.block_ns // 2) - self._t0) / NS
        self._minima.append((x, float(minimum)))
        pts = list(self._minima)
        if len(pts) == 1:
            self._a, self._b = pts[0][1], 0.0
            return
        slopes = [(y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(pts) for x2, y2 in pts[i + 1:]
                  if x2 != x1]
        self._b = statistics.median(slopes) if slopes else 0.0
        self._a = statistics.median(y - self._b * x for x, y in pts)

    def offset_ns(self, t_sensor_ns: int) -> int:
        """Estimated ``t_vehicle - t_sensor`` at ``t_sensor_ns``."""
        if self._t0 is None:
            return 0
        return round(self._a + self._b * (t_sensor_ns - self._t0) / NS)

    @property
    def drift_ppm(self) -> float:
        """Sensor clock drift: ns of offset change per s, i.e. parts per billion / 1000."""
        return self._b / 1e3


class TimeSync:
    """Per-topic bookkeeping; :meth:`observe` is called once per received message."""

    def __init__(self, cfg: TimeSyncConfig, dedup_window: int = 4096) -> None:
        self.cfg = cfg
        self._fits: dict[str, ClockFit] = {}
        self._newest: dict[str, int] = {}
        self._seen: dict[str, tuple[set[tuple[int, int]], deque[tuple[int, int]]]] = {}
        self._dedup_window = dedup_window

    def fit(self, topic: str) -> ClockFit | None:
        return self._fits.get(topic)

    def observe(self, topic: str, seq: int, t_sensor_ns: int, t_recv_ns: int) -> SyncVerdict:
        """Judge one message: drop exact duplicates, flag reordering, count missed samples."""
        seen, order = self._seen.setdefault(topic, (set(), deque()))
        key = (seq, t_sensor_ns)
        if key in seen:
            return SyncVerdict(False, t_sensor_ns, duplicate=True)
        seen.add(key)
        order.append(key)
        if len(order) > self._dedup_window:
            seen.discard(order.popleft())
        fit = self._fits.get(topic)
        if fit is None:
            fit = self._fits[topic] = ClockFit(round(self.cfg.block_s * NS), self.cfg.fit_blocks,
                                               round(self.cfg.step_s * NS), self.cfg.step_confirm)
        suspect, stepped = fit.judge(t_sensor_ns, t_recv_ns)
        if not self.cfg.correct:
            t_ns = t_sensor_ns
        else:
            t_ns = t_recv_ns if suspect else t_sensor_ns + fit.offset_ns(t_sensor_ns)
        newest = self._newest.get(topic)
        if stepped:
            # The sensor's old readings are on another clock: order and gaps restart from here.
            self._newest[topic] = t_sensor_ns
            return SyncVerdict(True, t_ns, clock_step=True)
        if newest is not None and t_sensor_ns < newest:
            return SyncVerdict(True, t_ns, reordered=True)
        self._newest[topic] = t_sensor_ns
        missing = 0
        hz = self.cfg.expected_hz.get(topic)
        if hz and newest is not None:
            period_ns = NS / hz
            gap = t_sensor_ns - newest
            if gap > self.cfg.gap_factor * period_ns:
                missing = max(1, round(gap / period_ns) - 1)
        return SyncVerdict(True, t_ns, missing=missing)
