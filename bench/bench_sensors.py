"""Synthetic camera: render + H.265 encode frames per second, beside a raw PyAV encode.

The limit is libx265 through PyAV with the same settings encoding one constant frame over and
over (no rendering, no change between frames): the fastest this encoder can go on this machine.
Our path renders each frame of the drive (NumPy) and encodes it; the demo needs 30 fps.
"""

from __future__ import annotations

import time
from fractions import Fraction

import av
import numpy as np

from bench.common import Figure, main_for
from simulator_harness.drive import DriveParams, ego_trajectory, scene_at
from simulator_harness.sensors import CAMERA_SPEC, CameraModel, CameraSensor, H265Encoder
from simulator_harness.trajectory import EGO

W, H = 640, 360


def _raw_encode_fps(n: int) -> float:
    ctx = av.CodecContext.create("libx265", "w")
    ctx.width, ctx.height, ctx.pix_fmt = W, H, "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, 30), Fraction(30, 1)
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency",
                   "x265-params": "keyint=30:min-keyint=30:bframes=0:scenecut=0:open-gop=0:"
                                  "repeat-headers=1:log-level=error:pools=1:frame-threads=1"}
    ctx.open()
    constant = np.full((H * 3 // 2, W), 128, dtype=np.uint8)
    start = time.perf_counter()
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(constant, format="yuv420p")
        frame.pts = i
        ctx.encode(frame)
    return n / (time.perf_counter() - start)


def run(quick: bool = False) -> list[Figure]:
    """Render + encode fps of the demo camera, and encode-only fps of its frames."""
    n = 30 if quick else 300
    raw_fps = _raw_encode_fps(n)
    drive = DriveParams()
    sensor = CameraSensor(drive, CameraModel(W, H), CAMERA_SPEC)
    start = time.perf_counter()
    for k in range(n):
        sensor.capture(k)
    ours_fps = n / (time.perf_counter() - start)
    traj = ego_trajectory(drive, np.arange(n) / 30.0)
    rendered = [sensor.renderer.render(float(traj.x_m[EGO, k]), float(traj.y_m[EGO, k]), float(traj.yaw_rad[EGO, k]),
                                       scene_at(drive, k / 30.0)) for k in range(n)]
    encoder = H265Encoder(W, H)
    start = time.perf_counter()
    for frame in rendered:
        encoder.encode(frame)
    encode_fps = n / (time.perf_counter() - start)
    return [
        Figure("sim_camera_render_encode_640x360", ours_fps, "fps", raw_fps,
               "raw PyAV libx265 encode of a constant frame", note="demo needs 30 fps"),
        Figure("sim_camera_encode_only_640x360", encode_fps, "fps", raw_fps,
               "raw PyAV libx265 encode of a constant frame", note="pre-rendered road frames"),
    ]


if __name__ == "__main__":
    main_for(run)
