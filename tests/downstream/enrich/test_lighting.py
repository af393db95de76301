"""Lighting from the sun at real GNSS fixes and times, cross-checked with real camera frames."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cloud_ingest.calibration.nuscenes import safe_load
from downstream.enrich.errors import EnrichInputError
from downstream.enrich.lighting import (
    CHECK_CONFIDENCE,
    check_lighting,
    image_brightness,
    lighting_class,
    lighting_tags,
)
from downstream.enrich.maps.geo import LocalProjection
from downstream.enrich.tags import Tag, TagSource
from simulator_harness.scenario.spec import TimeOfDay
from tests.downstream.enrich.real_data import KITTI, NUSC, NUSC_PKL, REAL

#: nuScenes map origins (south-west corners), nuscenes-devkit map_expansion; log n015 (scene-0061)
#: was recorded in singapore-onenorth.
ONENORTH_ORIGIN = (1.2882100868743724, 103.78475189208984)


def rgb(path: object) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))  # type: ignore[arg-type]


@pytest.mark.parametrize(("elevation", "cls", "confidence"), [
    (40.0, TimeOfDay.DAY, 1.0), (9.0, TimeOfDay.DAY, 1.0), (7.5, TimeOfDay.DAY, 0.75), (6.0, TimeOfDay.DUSK, 0.5),
    (0.0, TimeOfDay.DUSK, 1.0), (-4.5, TimeOfDay.DUSK, 0.75), (-7.5, TimeOfDay.NIGHT, 0.75),
    (-30.0, TimeOfDay.NIGHT, 1.0)])
def test_classes_and_confidence_from_elevation(elevation: float, cls: TimeOfDay, confidence: float) -> None:
    got_cls, got_confidence = lighting_class(elevation)
    assert got_cls is cls and got_confidence == pytest.approx(confidence)


def test_real_comma2k19_fixes_give_a_morning_day() -> None:
    """comma2k19 seg40: u-blox fixes (lat, lon, alt, UTC ms, ...) near San Francisco on 2018-08-02 ~16:15 UTC
    (09:15 local): the sun stands well above the horizon, east of south."""
    fixes = np.load(REAL / "comma2k19" / "seg40" / "processed_log" / "GNSS" / "live_gnss_ublox" / "value")
    t_ns = (fixes[:, 3] * 1e6).astype(np.int64)
    assert dt.datetime.fromtimestamp(t_ns[0] / 1e9, dt.UTC).hour == 16
    lighting, period = lighting_tags(t_ns, fixes[:, 0], fixes[:, 1])
    assert lighting == Tag("lighting", "day", TagSource.SOLAR, 1.0)
    assert period == Tag("time_of_day", "morning", TagSource.SOLAR, 1.0)


def test_real_nuscenes_frame_agrees_with_the_sun() -> None:
    """The nuScenes keyframe: the ego's map position placed on WGS-84 from the map origin, its
    CAM_FRONT timestamp, and that very image: day, and the camera agrees."""
    info = safe_load(NUSC_PKL.read_bytes())["data_list"][0]
    x, y = info["ego2global"][0][3], info["ego2global"][1][3]
    lat, lon = LocalProjection(*ONENORTH_ORIGIN).to_geo([[x, y]])
    t_ns = round(info["images"]["CAM_FRONT"]["timestamp"] * 1e9)
    lighting, period = lighting_tags(np.array([t_ns]), lat, lon)
    assert (lighting.value, period.value, lighting.confidence) == ("day", "morning", 1.0)
    check = check_lighting(lighting, [rgb(NUSC / info["images"]["CAM_FRONT"]["img_path"])])
    assert check.check == Tag("lighting_check", "agree", TagSource.IMAGE, CHECK_CONFIDENCE)
    assert check.lighting == lighting and check.median_luma > 100


def test_daytime_image_with_a_night_sun_is_flagged() -> None:
    """KITTI frame 000000 (a daytime drive in Karlsruhe) paired with 23:00 local time there: the sun
    says night, the image does not, so the check disagrees and the tag loses half its confidence."""
    t_ns = int(dt.datetime(2011, 9, 26, 21, 0, tzinfo=dt.UTC).timestamp()) * 10**9
    lighting, _ = lighting_tags(np.array([t_ns]), np.array([49.01]), np.array([8.43]))
    assert lighting.value == "night" and lighting.confidence == 1.0
    check = check_lighting(lighting, [rgb(KITTI / "image_2" / "000000.png")])
    assert check.check is not None and check.check.value == "disagree"
    assert check.lighting == Tag("lighting", "night", TagSource.SOLAR, 0.5)


def test_darkened_image_agrees_with_night_and_contradicts_day() -> None:
    """No real night frame is at hand: the KITTI frame scaled to a fifth of its brightness stands in
    for one, which is enough to check the thresholds work in both directions."""
    dark = (rgb(KITTI / "image_2" / "000000.png") * 0.2).astype(np.uint8)
    night, day = Tag("lighting", "night", TagSource.SOLAR, 0.9), Tag("lighting", "day", TagSource.SOLAR, 0.9)
    assert check_lighting(night, [dark]).check.value == "agree"  # type: ignore[union-attr]
    flagged = check_lighting(day, [dark])
    assert flagged.check is not None and flagged.check.value == "disagree" and flagged.lighting.confidence == 0.45


def test_twilight_implies_no_brightness() -> None:
    dusk = Tag("lighting", "dusk", TagSource.SOLAR, 0.8)
    out = check_lighting(dusk, [rgb(KITTI / "image_2" / "000000.png")])
    assert out.check is None and out.lighting == dusk


def test_brightness_is_the_median_luma() -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    img[:3] = (255, 255, 255)  # three white rows, one black
    assert image_brightness(img) == pytest.approx(255.0)
    assert image_brightness(np.full((2, 2), 7, np.uint8)) == 7.0
    bad_images: list[Any] = [np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4), np.float32), np.zeros((0, 3, 3), np.uint8)]
    for bad in bad_images:
        with pytest.raises(EnrichInputError):
            image_brightness(bad)
    with pytest.raises(EnrichInputError):
        check_lighting(Tag("road_type", "urban", TagSource.MAP, 0.8), [img])
    with pytest.raises(EnrichInputError):
        check_lighting(Tag("lighting", "day", TagSource.SOLAR, 0.8), [])
