"""Helpers several test packages share."""

from __future__ import annotations

import importlib
import os
from fractions import Fraction
from types import ModuleType
from typing import Any

import av
import numpy as np
import pytest


def require(reason: str | None) -> None:
    """Go on when ``reason`` is ``None``; else skip with it, or fail under CI (``CI`` set), where every
    server and tool the suite needs is meant to exist and a skip would hide a test that did not run."""
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: a missing server or tool fails the run instead of skipping)")
    pytest.skip(reason)


def require_module(name: str, reason: str) -> ModuleType:
    """Import ``name``, or :func:`require` with ``reason`` when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        require(f"{reason}: {exc}")
        raise


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
