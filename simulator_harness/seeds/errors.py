"""Errors of the CommonRoad import: precise subclasses of
:class:`~simulator_harness.errors.CommonRoadError`, each with a one-line message that names the file,
lanelet or obstacle and says what to do.
"""

from __future__ import annotations

from simulator_harness.errors import CommonRoadError


class CommonRoadVersionError(CommonRoadError):
    """The file's ``commonRoadVersion`` is missing, or one this importer does not read (its
    ``reason`` stays ``bad_commonroad_file``: to a caller it is a file this importer cannot use)."""


class NoAgentsError(CommonRoadError):
    """The file yields no road user to simulate (no dynamic obstacle, or none on a lanelet)."""

    reason = "no_agents"

    def __init__(self, source: str, why: str) -> None:
        super().__init__(f"{source}: {why}; a seed needs at least one recorded road user on the road")
        self.source = source


class RoadNetworkError(CommonRoadError):
    """The lanelet network is not a road the simulator models (one straight, one-way, multi-lane road
    whose lanes run its whole length); ``lanelet_id`` names the lanelet where that shows."""

    reason = "unsupported_road_network"

    def __init__(self, lanelet_id: int, why: str) -> None:
        super().__init__(f"lanelet {lanelet_id}: {why}; the simulator models one straight one-way road of "
                         "parallel lanes, so this network cannot be simulated faithfully")
        self.lanelet_id = lanelet_id
        self.why = why
