"""The CommonRoad reader: the real NGSIM US-101 lanelets, and the elements that file does not have."""

from __future__ import annotations

import numpy as np
import pytest

from downstream.enrich.errors import MapFormatError, MapQueryError
from downstream.enrich.maps.commonroad import load_commonroad_map, parse_commonroad_map
from downstream.enrich.maps.context import GeoTrajectory, LocalTrajectory
from simulator_harness.seeds.commonroad import load_commonroad
from tests.downstream.enrich.real_data import COMMONROAD_US101


def test_us101_lanelets_types_and_road_class() -> None:
    m = load_commonroad_map(COMMONROAD_US101)
    seed = load_commonroad(COMMONROAD_US101)  # the simulator's reader of the same file
    assert m.frame == "commonroad:USA_US101-4_1_T-1" and m.road_classes == ("highway",)
    assert sorted(la.lane_id for la in m.lanes) == sorted(str(la.lanelet_id) for la in seed.lanelets)
    for la in seed.lanelets:
        mine = next(x for x in m.lanes if x.lane_id == str(la.lanelet_id))
        assert mine.lane_type == "urban" and np.allclose(mine.centre_m, la.centre_m)


def test_a_recorded_vehicle_finds_the_lanes_it_drives() -> None:
    m = load_commonroad_map(COMMONROAD_US101)
    tr = load_commonroad(COMMONROAD_US101).trajectories
    row = int(np.argmax(tr.valid.sum(axis=1)))
    xy = np.stack([tr.x_m[row][tr.valid[row]], tr.y_m[row][tr.valid[row]]], axis=1)
    ctx = m.context(LocalTrajectory(xy, m.frame), 2.0)
    assert ctx is not None and ctx.georeference == "local" and ctx.origin_lat_deg == 34.13817
    assert ctx.lanes[0].distance_m < 1.0 and len(ctx.lanes) < len(m.lanes)
    wide = m.context(LocalTrajectory(xy, m.frame), 40.0)
    assert wide is not None and len(wide.lanes) == len(m.lanes)


def test_wgs84_queries_are_placed_by_the_location_point_and_say_so() -> None:
    m = load_commonroad_map(COMMONROAD_US101)
    ctx = m.context(GeoTrajectory(np.array([34.13817]), np.array([-118.36365])), 60.0)
    assert ctx is not None and ctx.georeference == "approximate"
    assert m.context(GeoTrajectory(np.array([34.2]), np.array([-118.36365])), 60.0) is None


def test_a_query_in_another_frame_is_refused() -> None:
    m = load_commonroad_map(COMMONROAD_US101)
    with pytest.raises(MapQueryError, match="frame"):
        m.context(LocalTrajectory(np.zeros((1, 2)), "av2:PIT_city_57819"), 10.0)


NETWORK = b"""<?xml version="1.0"?>
<commonRoad commonRoadVersion="2020a" benchmarkID="DEU_Test-1">
  <location><gpsLatitude>999</gpsLatitude><gpsLongitude>999</gpsLongitude></location>
  <scenarioTags><urban/></scenarioTags>
  <lanelet id="1">
    <leftBound><point><x>0</x><y>3</y></point><point><x>50</x><y>3</y></point></leftBound>
    <rightBound><point><x>0</x><y>0</y></point><point><x>50</x><y>0</y></point></rightBound>
    <laneletType>urban</laneletType><trafficSignRef ref="10"/>
    <stopLine><point><x>50</x><y>0</y></point><point><x>50</x><y>3</y></point><lineMarking>solid</lineMarking></stopLine>
  </lanelet>
  <lanelet id="2">
    <leftBound><point><x>50</x><y>3</y></point><point><x>60</x><y>3</y></point></leftBound>
    <rightBound><point><x>50</x><y>0</y></point><point><x>60</x><y>0</y></point></rightBound>
  </lanelet>
  <trafficSign id="10"><trafficSignElement><trafficSignID>274</trafficSignID>
    <additionalValue>8.33</additionalValue></trafficSignElement><position><point><x>5</x><y>-1</y></point></position>
  </trafficSign>
  <trafficLight id="20"><cycle/><position><point><x>51</x><y>4</y></point></position></trafficLight>
  <intersection id="30"><incoming id="31"><incomingLanelet ref="1"/><successorsStraight ref="2"/></incoming></intersection>
</commonRoad>"""


def test_signs_lights_stop_lines_and_intersections() -> None:
    m = parse_commonroad_map(NETWORK)
    assert m.projection is None and m.road_classes == ("urban",)  # 999: CommonRoad's "no location"
    first, second = m.lanes
    assert (first.speed_limit_mps, first.speed_limit_source, first.in_intersection) == (8.33, "map", False)
    assert (second.lane_type, second.in_intersection) == ("unknown", True)
    assert [s.feature_id for s in m.stop_lines] == ["1/stop"]
    assert sorted(s.kind for s in m.signals) == ["traffic_light", "traffic_sign:274"]
    ctx = m.context(LocalTrajectory(np.array([[0.0, 1.5], [40.0, 1.5]]), m.frame), 15.0)
    assert ctx is not None and ctx.stop_lines[0].distance_m == pytest.approx(10.0)
    assert [s.signal_id for s in ctx.signals] == ["10", "20"]


@pytest.mark.parametrize(("doc", "match"), [
    (b"<commonRoad", "well-formed"), (b"<osm/>", "expected <commonRoad>"),
    (b"<commonRoad/>", "no <lanelet>"),
    (b"<commonRoad><lanelet id='1'><leftBound><point><x>0</x><y>0</y></point></leftBound></lanelet></commonRoad>",
     "bounds need"),
])
def test_malformed_files_are_typed_errors(doc: bytes, match: str) -> None:
    with pytest.raises(MapFormatError, match=match):
        parse_commonroad_map(doc)
