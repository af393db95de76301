"""The map-provider contract, run against every registered reader on its real file, and the map set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from downstream.enrich.errors import UnknownMapFormat
from downstream.enrich.maps.context import GNSS_BOX, GeoTrajectory, LocalTrajectory, MapContext, Trajectory
from downstream.enrich.maps.protocol import MapProvider
from downstream.enrich.maps.registry import FORMATS, MapSet, open_map
from tests.downstream.enrich.real_data import AV2_ADCF, AV2_ADCF_MAP, COMMONROAD_US101, LANELET2_OSM, av2_poses

FILES = {"lanelet2": LANELET2_OSM, "commonroad": COMMONROAD_US101, "av2": AV2_ADCF_MAP}
KARLSRUHE = GeoTrajectory(np.array([49.00520, 49.00525]), np.array([8.41555, 8.41590]))
PARIS = GeoTrajectory(np.array([48.8566]), np.array([2.3522]))


def on_map(fmt: str, m: MapProvider) -> Trajectory:
    """A trajectory each map covers: Karlsruhe's junction, the US-101 origin, the AV2 log's path."""
    if fmt == "lanelet2":
        return KARLSRUHE
    if fmt == "commonroad":
        return LocalTrajectory(np.array([[0.0, 0.0], [10.0, -10.0]]), m.frame)
    return LocalTrajectory(av2_poses(AV2_ADCF).translation_m[:, :2], m.frame)


def test_every_format_is_registered() -> None:
    assert set(FORMATS) == set(FILES)


@pytest.mark.parametrize("fmt", sorted(FILES))
def test_provider_contract(fmt: str) -> None:
    m = open_map(fmt, FILES[fmt])
    assert isinstance(m, MapProvider) and m.fmt == fmt
    ctx = m.context(on_map(fmt, m), 25.0)
    assert ctx is not None and ctx.covered and ctx.source == fmt and ctx.lanes
    for group in (ctx.lanes, ctx.crosswalks, ctx.stop_lines, ctx.signals):
        d = [f.distance_m for f in group]
        assert d == sorted(d) and all(0 <= x <= 25.0 for x in d)
    body = json.loads(json.dumps(ctx.to_body()))
    assert MapContext.from_body(body).to_body() == ctx.to_body()
    summary = ctx.summary()
    assert summary["lanes"] == len(ctx.lanes) and summary["covered"] is True
    assert all(isinstance(v, str | int | float | bool | list) for v in summary.values())
    far = PARIS if fmt == "lanelet2" else LocalTrajectory(np.array([[1e6, 1e6]]), m.frame)
    assert m.context(far, 25.0) is None
    assert m.context(on_map(fmt, m), 25.0).to_body() == ctx.to_body()  # type: ignore[union-attr]


def test_unknown_format() -> None:
    with pytest.raises(UnknownMapFormat, match="known: av2, commonroad, lanelet2"):
        open_map("opendrive", Path("x.xodr"))


def test_map_set_answers_with_the_first_covering_map_else_the_gnss_box() -> None:
    maps = MapSet([open_map("av2", AV2_ADCF_MAP), open_map("lanelet2", LANELET2_OSM)])
    here = maps.context_or_box(KARLSRUHE, 30.0)  # the AV2 map cannot place it and is passed over
    assert here.source == "lanelet2" and here.covered
    box = maps.context_or_box(PARIS, 30.0)
    assert (box.source, box.covered, box.georeference) == (GNSS_BOX, False, "none")
    assert box.summary()["lat_min_deg"] == 48.8566 and box.lanes == ()
    assert MapContext.from_body(json.loads(json.dumps(box.to_body()))).to_body() == box.to_body()
    local = LocalTrajectory(av2_poses(AV2_ADCF).translation_m[:, :2], "av2:PIT_city_57819")
    assert maps.context(local, 10.0).source == "av2"  # type: ignore[union-attr]
    assert maps.context(LocalTrajectory(np.zeros((1, 2)), "elsewhere"), 10.0) is None


def test_bad_queries_and_documents_are_typed_errors() -> None:
    from downstream.enrich.errors import MapQueryError

    m = open_map("lanelet2", LANELET2_OSM)
    with pytest.raises(MapQueryError, match="radius"):
        m.context(KARLSRUHE, 0.0)
    with pytest.raises(MapQueryError, match="non-empty"):
        GeoTrajectory(np.array([]), np.array([]))
    with pytest.raises(MapQueryError, match="finite"):
        LocalTrajectory(np.array([[np.nan, 0.0]]), "x")
    with pytest.raises(MapQueryError, match="malformed"):
        MapContext.from_body({"covered": True})
    with pytest.raises(MapQueryError, match="GeoTrajectory"):
        MapSet([m]).context_or_box(LocalTrajectory(np.zeros((1, 2)), "x"), 10.0)  # type: ignore[arg-type]
