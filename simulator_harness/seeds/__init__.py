"""Real seeds: CommonRoad recordings read from XML and turned into closed-loop scenario specs, and
scenarios exported as OpenSCENARIO 1.3.
"""

from simulator_harness.seeds.commonroad import (
    SUPPORTED_VERSIONS,
    CommonRoadScenario,
    Lanelet,
    load_commonroad,
    parse_commonroad,
)
from simulator_harness.seeds.convert import (
    TRUCK_LENGTH_M,
    RoadFrame,
    Seed,
    lane_numbers,
    road_frame,
    seed_from_commonroad,
    spec_to_xosc,
)
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
    "PRECIPITATION",
    "SUPPORTED_VERSIONS",
    "TRUCK_LENGTH_M",
    "CommonRoadScenario",
    "Lanelet",
    "RoadFrame",
    "Seed",
    "XoscActor",
    "XoscEvent",
    "XoscScenario",
    "XoscTimeOfDay",
    "XoscWeather",
    "lane_numbers",
    "load_commonroad",
    "parse_commonroad",
    "road_frame",
    "seed_from_commonroad",
    "spec_to_xosc",
    "to_xosc",
    "write_xosc",
    "xosc_from_commonroad",
]
