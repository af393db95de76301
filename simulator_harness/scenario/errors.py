"""The error a malformed scenario spec raises."""

from __future__ import annotations

from simulator_harness.errors import SimulatorError


class ScenarioError(SimulatorError, ValueError):
    """A scenario spec is malformed or unreadable; the message names the bad key."""

    reason = "bad_scenario"
