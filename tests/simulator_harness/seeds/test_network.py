"""The lanelet network against the simulator's road: the real NGSIM US-101 map (with its slip road)
is straightened with warnings; on-ramps, merges, forks, intersections, turns, two-way roads and
lanes that begin or end inside the map are refused with the lanelet named."""

from __future__ import annotations

import pytest

from simulator_harness.errors import CommonRoadError
from simulator_harness.seeds import RoadNetworkError, load_commonroad, parse_commonroad, seed_from_commonroad
from simulator_harness.seeds.network import straight_road
from tests.simulator_harness.seeds.crdocs import US101, W, document, lane, mover, strip, two_lane_road

CAR = mover(100, 20.0, 0.0, 20.0)


def test_real_us101_map_is_straightened_with_its_slip_road_reported() -> None:
    frame, warnings = straight_road(load_commonroad(US101))
    assert frame.lanes == 6 and frame.lane_of[15] == frame.lane_of[16] == 0
    assert len(warnings) == 2
    assert warnings[0].startswith("lanelet 15 (lane 0) strays up to 4.0 m")
    assert warnings[1].startswith("lanelets 15 (lane 0) and 12 (lane 1) run side by side for 92 m without an adjacency")


def test_an_on_ramp_that_stays_a_lane_is_simulated() -> None:
    # The ramp (lanelet 7) converges at 9° and continues as lane 0 to the end of the map, as on US-101.
    body = (strip(7, (0.0, -20.0), (100.0, -W), succ=(8,)) + lane(8, -1, 100, 250, pred=(7,), left=2)
            + lane(1, 0, 0, 100, succ=(2,), left=3) + lane(2, 0, 100, 250, pred=(1,), left=4, right=8)
            + lane(3, 1, 0, 100, succ=(4,), right=1) + lane(4, 1, 100, 250, pred=(3,), right=2) + CAR)
    seed = seed_from_commonroad(parse_commonroad(document(body)))
    assert seed.spec.road.lanes == 3 and seed.frame.lane_of[7] == seed.frame.lane_of[8] == 0
    assert any(w.startswith("lanelet 7 (lane 0) strays up to") for w in seed.warnings)
    assert any(w.startswith("lanelets 7 (lane 0) and 1 (lane 1) run side by side") for w in seed.warnings)


REFUSED = {
    "on-ramp whose acceleration lane ends": (
        strip(7, (0.0, -20.0), (100.0, -W), succ=(8,)) + lane(8, -1, 100, 170, pred=(7,), left=2)
        + lane(1, 0, 0, 100, succ=(2,), left=3) + lane(2, 0, 100, 250, pred=(1,), left=4, right=8)
        + lane(3, 1, 0, 100, succ=(4,), right=1) + lane(4, 1, 100, 250, pred=(3,), right=2),
        8, "ends lane 0 at s = 170 m of the 251 m road (a lane that ends"),  # the axis tilts 1° toward the ramp
    "two lanes merging into one": (
        lane(1, 0, 0, 100, succ=(5,), left=3) + lane(3, 1, 0, 100, succ=(5,), right=1)
        + lane(5, 0, 100, 200, pred=(1, 3)), 5, "is where lanelets 1, 3 merge (an on-ramp or a merge)"),
    "off-ramp fork": (
        lane(1, 0, 0, 100, succ=(2, 9)) + lane(2, 0, 100, 200, pred=(1,)) + strip(9, (100, 0), (200, -30), pred=(1,)),
        1, "forks into lanelets 2, 9 (an off-ramp or a lane split)"),
    "intersection": (
        lane(1, 0, -100, 100) + strip(10, (0, -30), (0, 30))
        + '<intersection id="50"><incoming id="51"><incomingLanelet ref="1"/></incoming>'
          '<incoming id="52"><incomingLanelet ref="10"/></incoming></intersection>',
        1, "enters intersection 50 (incoming lanelets 1, 10)"),
    "crossing road not linked to the main road": (
        lane(1, 0, -100, 100) + strip(10, (0, -30), (0, 30)), 10, "is not connected to lanelet 1 (two separate roads)"),
    "a 90 degree turn": (lane(1, 0, 0, 200, succ=(2,)) + strip(2, (200, 0), (200, 60), pred=(1,)),
                         2, "heads 90° off the road axis"),
    "two-way road": (lane(1, 0, 0, 200, left=3, left_dir="opposite") + lane(3, 1, 0, 200, left=1, left_dir="opposite"),
                     1, "its left neighbour 3 is driven the other way (a two-way road)"),
    "a lane that begins mid-road": (lane(1, 0, 0, 250, left=4) + lane(4, 1, 80, 250, right=1),
                                    4, "starts lane 1 at s = 80 m of the 250 m road (a lane that begins"),
    "too wide": (strip(1, (0, 0), (200, 0), width=6.0), 1, "is 6.00 m wide, outside 2.5..5.0 m"),
    "sidewalk": (two_lane_road() + lane(6, 2, 0, 250, extra="<laneletType>sidewalk</laneletType>"),
                 6, "is a sidewalk, not a vehicle lane"),
    "dangling link": (lane(1, 0, 0, 200, succ=(99,)), 1, "links to lanelet 99, which the file does not hold"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_networks_the_simulator_cannot_model_are_refused_naming_the_lanelet(name: str) -> None:
    body, lanelet_id, why = REFUSED[name]
    cr = parse_commonroad(document(body + CAR))
    with pytest.raises(RoadNetworkError, match=f"^lanelet {lanelet_id}: ") as info:
        seed_from_commonroad(cr)
    err = info.value
    assert isinstance(err, CommonRoadError) and err.reason == "unsupported_road_network"
    assert err.lanelet_id == lanelet_id and why in err.why and "\n" not in str(err)
