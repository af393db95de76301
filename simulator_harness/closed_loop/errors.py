"""The error a batch that cannot be simulated raises."""

from __future__ import annotations

from simulator_harness.errors import SimulatorError


class SimulationError(SimulatorError, ValueError):
    """Scenarios cannot be simulated as asked (mixed roads in one batch, overlaps, bad shapes)."""

    reason = "bad_simulation_input"
