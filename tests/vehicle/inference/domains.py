"""Frames of three domains for the OOD tests: KITTI (fit and held back), nuScenes, rendered synthetic.

KITTI frames 000001-000016 (``kitti_tiny/fit``) are the only frames any reference in these tests
is fitted on. The held-back domain frames are distinct frames never used in a fit: KITTI
000017-000024 (``kitti_tiny/held_back``) and 000000 (``kitti/image_2``, a PNG).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from shared.messages import SensorMessage
from simulator_harness.drive import Box
from simulator_harness.sensors.camera import CameraModel, CameraRenderer, i420_to_rgb

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real"
KITTI_FIT = REAL / "kitti_tiny" / "fit"
KITTI_HELD_BACK = REAL / "kitti_tiny" / "held_back"
KITTI_000000 = REAL / "kitti" / "image_2"
NUSCENES = REAL / "nuscenes"
CMD = [sys.executable, "-m", "vehicle.cli"]


def load_bgr(path: Path) -> np.ndarray:
    """Decode a PNG/JPEG with PyAV to an (H, W, 3) uint8 BGR array."""
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="bgr24")


def images(*directories: Path) -> list[tuple[str, np.ndarray]]:
    """``(file name, BGR)`` of every .jpg/.jpeg/.png in ``directories``, by name."""
    return [(p.name, load_bgr(p)) for d in directories for p in sorted(d.iterdir())
            if p.suffix in (".jpg", ".jpeg", ".png")]


def synthetic_frames() -> Iterator[tuple[str, np.ndarray]]:
    """Nine frames of the simulator's camera: three scenes at each of three image sizes (BGR)."""
    for w, h, fov in ((1242, 376, 80.0), (640, 360, 70.0), (1600, 900, 65.0)):
        renderer = CameraRenderer(CameraModel(width_px=w, height_px=h, hfov_deg=fov))
        for k in range(3):
            boxes = (Box("lead_vehicle", 18.0 + 12 * k, 0.0, 0.75, 4.5, 1.8, 1.5, braking=k == 1),
                     Box("parked_car", 10.0 + 7 * k, 4.5, 0.75, 4.5, 1.8, 1.5),
                     Box("post", 25.0 + 5 * k, -5.0, 1.0, 0.2, 0.2, 2.0))[: k + 1]
            i420 = renderer.render(40.0 * k, 0.5 * (k - 1), 0.03 * (k - 1), boxes)
            yield f"synthetic_{w}x{h}_{k}", np.ascontiguousarray(i420_to_rgb(i420, w, h)[:, :, ::-1])


def h265_messages(frames: list[np.ndarray], topic: str, gop: int = 8, size: tuple[int, int] = (1238, 374),
                  t0_ns: int = 1_000_000_000, period_ns: int = 100_000_000) -> list[SensorMessage]:
    """``frames`` cropped to ``size`` (w, h; H.265 4:2:0 wants even sides) as libx265 access units."""
    w, h = size
    enc = av.CodecContext.create("libx265", "w")
    assert isinstance(enc, av.VideoCodecContext)
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, 10), Fraction(10)
    enc.gop_size = gop
    enc.options = {"x265-params": f"repeat-headers=1:bframes=0:log-level=none:keyint={gop}:min-keyint={gop}",
                   "preset": "ultrafast", "tune": "zerolatency", "crf": "18"}
    packets = []
    for i, bgr in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr[:h, :w]), format="bgr24")
        frame.pts = i
        packets += list(enc.encode(frame))
    packets += list(enc.encode(None))
    assert len(packets) == len(frames)
    return [SensorMessage(topic=topic, sensor_id="cam0", t_sensor_ns=t0_ns + i * period_ns, t_recv_ns=0, seq=i,
                          encoding="h265", payload=bytes(p), keyframe=bool(p.is_keyframe))
            for i, p in enumerate(packets)]


def run_cli(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """``avdata-vehicle ARGS`` as a real process."""
    return subprocess.run([*CMD, *args], capture_output=True, text=True, timeout=timeout_s)
