"""Camera: the rendered scene is where the geometry says, and the H.265 stream decodes with PyAV."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest

from shared.messages import SensorMessage, from_frames
from simulator_harness.drive import DriveParams, ego_trajectory, scene_at
from simulator_harness.errors import EncoderError, SensorConfigError
from simulator_harness.sensors import (
    CAMERA_SPEC,
    CameraModel,
    CameraRenderer,
    CameraSensor,
    H265Encoder,
    i420_planes,
    nal_unit_types,
)
from simulator_harness.sensors.encoder import NAL_IDR_N_LP, NAL_IDR_W_RADL, NAL_PPS, NAL_SPS, NAL_VPS
from simulator_harness.trajectory import EGO

W, H = 640, 360
N_FRAMES = 61  # two GOPs and the first frame of a third
IDR = {NAL_IDR_W_RADL, NAL_IDR_N_LP}


def _render(t_s: float, params: DriveParams | None = None) -> np.ndarray:
    params = params or DriveParams()
    tr = ego_trajectory(params, t_s)
    renderer = CameraRenderer(CameraModel(W, H))
    return renderer.render(float(tr.x_m[EGO, 0]), float(tr.y_m[EGO, 0]), float(tr.yaw_rad[EGO, 0]),
                           scene_at(params, t_s))


Stream = tuple[list[np.ndarray], list[tuple[bytes, bool]]]


@pytest.fixture(scope="module")
def stream() -> Stream:
    """Frames rendered along the drive and the access units the sensor produced for them."""
    params = DriveParams(brake_at_s=1.0)
    sensor = CameraSensor(params, CameraModel(W, H), CAMERA_SPEC)
    renderer = CameraRenderer(CameraModel(W, H))
    frames: list[np.ndarray] = []
    units: list[tuple[bytes, bool]] = []
    for k in range(N_FRAMES):
        t = k / 30.0
        tr = ego_trajectory(params, t)
        frames.append(renderer.render(float(tr.x_m[EGO, 0]), float(tr.y_m[EGO, 0]), float(tr.yaw_rad[EGO, 0]),
                                      scene_at(params, t)))
        units.extend((bytes(c.payload), c.keyframe) for c in sensor.capture(k))
    return frames, units


def _decode(payloads: list[bytes]) -> list[av.VideoFrame]:
    dec = av.CodecContext.create("hevc", "r")
    out: list[av.VideoFrame] = []
    for p in payloads:
        out.extend(dec.decode(av.Packet(p)))
    out.extend(dec.decode(None))
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10.0 * float(np.log10(255.0**2 / max(mse, 1e-9)))


def test_render_shows_sky_road_and_the_lead_vehicle() -> None:
    frame = _render(2.0)
    assert frame.shape == (H * 3 // 2, W) and frame.dtype == np.uint8
    _y, u, v = i420_planes(frame, W, H)
    assert u[5, 5] > 140 and v[5, 5] < 128  # sky: blue
    assert abs(int(u[-5, W // 4]) - 128) < 6 and abs(int(v[-5, W // 4]) - 128) < 6  # road: grey
    # The lead car (blue, 1.9 m wide, rear face 27.7 m ahead of the ego origin) seen through a
    # pinhole 1.5 m ahead of the origin; the ego weaves a little, so use its exact pose.
    model = CameraModel(W, H)
    tr = ego_trajectory(DriveParams(), 2.0)
    yaw = float(tr.yaw_rad[EGO, 0])
    cam = np.array([tr.x_m[EGO, 0] + 1.5 * np.cos(yaw), tr.y_m[EGO, 0] + 1.5 * np.sin(yaw)])
    rear_x = scene_at(DriveParams(), 2.0)[0].center_x_m - 2.3
    expected = []
    for side_y in (-0.95, 0.95):
        d = np.array([rear_x, side_y]) - cam
        fwd, left = d[0] * np.cos(yaw) + d[1] * np.sin(yaw), -d[0] * np.sin(yaw) + d[1] * np.cos(yaw)
        expected.append(model.cx - model.fx * left / fwd)
    row = int(model.cy + model.fx * (1.4 - 0.3) / (rear_x - cam[0]))  # 0.3 m above the road
    cols = np.flatnonzero(u[row // 2] > 150) * 2  # chroma is subsampled by two
    assert cols.size > 0
    assert cols.min() == pytest.approx(min(expected), abs=3)
    assert cols.max() + 2 == pytest.approx(max(expected), abs=3)


def test_lead_brake_lights_glow_while_it_brakes() -> None:
    def red_pixels(frame: np.ndarray) -> int:
        _, u, v = i420_planes(frame, W, H)
        return int(np.count_nonzero((v > 200) & (u < 128)))

    assert red_pixels(_render(8.7)) > 2 * max(red_pixels(_render(5.0)), 1)


def test_keyframes_every_30_frames_with_parameter_sets(stream: Stream) -> None:
    _, units = stream
    assert len(units) == N_FRAMES  # one access unit per frame
    assert [i for i, (_, key) in enumerate(units) if key] == [0, 30, 60]
    for payload, key in units:
        types = nal_unit_types(payload)
        if key:
            assert types[:3] == [NAL_VPS, NAL_SPS, NAL_PPS]
            assert IDR & set(types)
        else:
            assert not {NAL_VPS, NAL_SPS, NAL_PPS} & set(types)
            assert not IDR & set(types)


def test_every_frame_decodes_from_the_first_keyframe(stream: Stream) -> None:
    frames, units = stream
    decoded = _decode([p for p, _ in units])
    assert len(decoded) == N_FRAMES
    for k, got in enumerate(decoded):
        assert (got.width, got.height) == (W, H)
        assert _psnr(got.to_ndarray(format="yuv420p")[:H], frames[k][:H]) > 30.0


def test_each_keyframe_decodes_alone_and_starts_a_clip(stream: Stream) -> None:
    frames, units = stream
    for k in (0, 30, 60):
        alone = _decode([units[k][0]])
        assert len(alone) == 1
        assert _psnr(alone[0].to_ndarray(format="yuv420p")[:H], frames[k][:H]) > 30.0
    clip = _decode([p for p, _ in units[30:]])
    assert len(clip) == N_FRAMES - 30


def test_access_units_survive_the_sensor_message_envelope(stream: Stream) -> None:
    _, units = stream
    payload, key = units[30]
    msg = SensorMessage("camera/front", "cam_front", 1, 0, 30, "h265", payload, key)
    back = from_frames([bytes(f) for f in msg.to_frames()])
    assert back.keyframe and bytes(back.payload) == payload
    assert len(_decode([bytes(back.payload)])) == 1


def test_bad_sizes_and_frames_are_typed_errors() -> None:
    with pytest.raises(SensorConfigError, match="even"):
        CameraModel(641, 360)
    enc = H265Encoder(64, 48)
    with pytest.raises(EncoderError, match="expected"):
        enc.encode(np.zeros((48, 64), dtype=np.uint8))
    assert enc.encode(np.zeros((72, 64), dtype=np.uint8))[0].keyframe


@pytest.mark.parametrize("yaw_rad", [math.pi / 2, -math.pi / 2, math.pi])
def test_side_and_rear_cameras_render_without_numeric_faults(yaw_rad: float) -> None:
    """The full suite mounts cameras at ±90° and 180°: no division by cos(yaw) = 0, no NaN columns."""
    renderer = CameraRenderer(CameraModel(width_px=320, height_px=180))
    with np.errstate(all="raise"):
        frame = renderer.render(0.0, 0.0, yaw_rad, ())
    assert frame.shape == (270, 320) and frame.dtype == np.uint8
    assert frame[:90].std() > 0 or frame[90:180].std() > 0  # sky ramp or ground: not a blank frame
