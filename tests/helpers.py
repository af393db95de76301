"""Helpers several test packages share."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import numpy as np


def encode_h265(n_frames: int, gop: int = 30, size: int = 64, fps: int = 30, shade_step: int = 3) -> list[tuple[bytes, bool]]:
    """Real H.265 access units from PyAV/libx265 as ``(bytes, is_keyframe)``: no B-frames, parameter
    sets repeated in every IDR, a keyframe every ``gop`` frames, a moving bar so frames differ."""
    ctx: Any = av.CodecContext.create("libx265", "w")
    ctx.width = ctx.height = size
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = fps
    ctx.options = {"preset": "ultrafast",
                   "x265-params": f"keyint={gop}:min-keyint={gop}:bframes=0:repeat-headers=1:log-level=error"}
    out: list[tuple[bytes, bool]] = []
    for i in range(n_frames):
        img = np.full((size, size, 3), (i * shade_step) % 255, np.uint8)
        img[:, i % size] = 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(frame)]
    out += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(None)]
    return out
