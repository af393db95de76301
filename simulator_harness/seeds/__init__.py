"""Real seeds: CommonRoad recordings (2018b, 2020a) read from XML, checked against the simulator's
road model and turned into closed-loop scenario specs, and scenarios exported as OpenSCENARIO 1.3.
"""

from simulator_harness.seeds.commonroad import (
    SUPPORTED_VERSIONS,
    CommonRoadScenario,
    Lanelet,
    load_commonroad,
    parse_commonroad,
)
from simulator_harness.seeds.convert import (
    SEED_SPREAD,
    TRUCK_LENGTH_M,
    Seed,
    actor_kind,
    recorded_tracks,
    seed_from_commonroad,
    spec_to_xosc,
)
from simulator_harness.seeds.errors import CommonRoadVersionError, NoAgentsError, RoadNetworkError
from simulator_harness.seeds.network import MAX_HEADING_DEG, RoadFrame, lane_numbers, road_frame, straight_road
from simulator_harness.seeds.obstacles import DynamicRecord, StaticObstacle, read_obstacles
from simulator_harness.seeds.openscenario import (
    CLOUD_COVER,
    EVENT_KINDS,
    PRECIPITATION,
    XoscActor,
    XoscEvent,
    XoscScenario,
    XoscTimeOfDay,
    XoscWeather,
    to_xosc,
    write_xosc,
    xosc_from_commonroad,
)

__all__ = [
    "CLOUD_COVER",
    "EVENT_KINDS",
    "MAX_HEADING_DEG",
    "PRECIPITATION",
    "SEED_SPREAD",
    "SUPPORTED_VERSIONS",
    "TRUCK_LENGTH_M",
    "CommonRoadScenario",
    "CommonRoadVersionError",
    "DynamicRecord",
    "Lanelet",
    "NoAgentsError",
    "RoadFrame",
    "RoadNetworkError",
    "Seed",
    "StaticObstacle",
    "XoscActor",
    "XoscEvent",
    "XoscScenario",
    "XoscTimeOfDay",
    "XoscWeather",
    "actor_kind",
    "lane_numbers",
    "load_commonroad",
    "parse_commonroad",
    "read_obstacles",
    "recorded_tracks",
    "road_frame",
    "seed_from_commonroad",
    "spec_to_xosc",
    "straight_road",
    "to_xosc",
    "write_xosc",
    "xosc_from_commonroad",
]
