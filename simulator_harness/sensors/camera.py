"""A cheap forward camera: sky, road, lane markings and boxes in perspective, rendered in NumPy.

The image is produced directly as planar I420 (``yuv420p``: a full-size Y plane followed by
quarter-size U and V planes, shape ``(height * 3 // 2, width)``), which is what the H.265 encoder
eats, so no colour conversion runs per frame. Ground pixels are ray-cast once into camera-frame
distances; each frame only moves them by the ego pose and looks their class up in a colour table.
Boxes are painted as their projected bounding rectangle, far to near, with a lighter rear face,
a dark rear window and tail lights that glow when the object brakes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator_harness.drive import DASH_M, DASH_PERIOD_M, LANE_LINES, ROAD_EDGES_Y_M, Box
from simulator_harness.errors import SensorConfigError

U8Array = npt.NDArray[np.uint8]

#: Ground farther than this (m) is drawn as haze: lane lines there are thinner than a pixel.
MAX_GROUND_M = 250.0


def yuv(r: int, g: int, b: int) -> tuple[int, int, int]:
    """BT.601 limited-range Y, U, V of an sRGB colour (0-255 each)."""
    y = 16 + (65.738 * r + 129.057 * g + 25.064 * b) / 256
    u = 128 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256
    v = 128 + (112.439 * r - 94.154 * g - 18.285 * b) / 256
    return round(y), round(u), round(v)


# Ground classes, indexes into the colour tables.
_GRASS, _ROAD, _LINE, _HAZE = 0, 1, 2, 3
_GROUND_RGB = ((70, 110, 55), (88, 88, 92), (235, 235, 225), (170, 180, 190))
_GROUND_YUV = np.array([yuv(*c) for c in _GROUND_RGB], dtype=np.uint8)
_BOX_RGB = {"lead_vehicle": (30, 70, 160), "parked_car": (150, 40, 35), "post": (200, 200, 200),
            "other": (120, 120, 120)}
#: Per box kind: (rear face, sides) colours in YUV; the sides are a shade darker.
_BOX_COLORS = {k: (yuv(*c), yuv(*(int(v * 0.7) for v in c))) for k, c in _BOX_RGB.items()}
_WINDOW, _LAMP_ON, _LAMP_OFF = yuv(25, 30, 35), yuv(255, 40, 30), yuv(120, 20, 20)
_CORNER_SIGNS = np.array([(ex, ey, ez) for ex in (-1, 1) for ey in (-1, 1) for ez in (-1, 1)],
                         dtype=np.float64)


@dataclass(frozen=True, slots=True)
class CameraModel:
    """A forward pinhole camera with no distortion, level with the road.

    ``mount_x_m`` is how far ahead of the ego origin the camera sits, ``mount_z_m`` its height.
    """

    width_px: int = 640
    height_px: int = 360
    hfov_deg: float = 70.0
    mount_x_m: float = 1.5
    mount_z_m: float = 1.4

    def __post_init__(self) -> None:
        if self.width_px < 16 or self.height_px < 16 or self.width_px % 2 or self.height_px % 2:
            raise SensorConfigError(
                f"camera size {self.width_px}x{self.height_px}: both sides must be even and >= 16"
            )
        if not 10.0 <= self.hfov_deg <= 150.0:
            raise SensorConfigError(f"hfov_deg must be within 10-150 degrees, got {self.hfov_deg}")

    @property
    def fx(self) -> float:
        """Focal length in pixels (square pixels, so also ``fy``)."""
        return self.width_px / 2.0 / math.tan(math.radians(self.hfov_deg) / 2.0)

    @property
    def cx(self) -> float:
        return self.width_px / 2.0

    @property
    def cy(self) -> float:
        return self.height_px / 2.0


class CameraRenderer:
    """Renders I420 frames of the scene seen from an ego pose; reuse one per camera."""

    def __init__(self, model: CameraModel, lane_lines: tuple[tuple[float, bool], ...] = LANE_LINES,
                 road_edges_y_m: tuple[float, float] = ROAD_EDGES_Y_M) -> None:
        """``lane_lines`` ``(y_m, dashed)`` and ``road_edges_y_m`` describe the road along +x; the
        defaults are the demo drive's two lanes."""
        self.model = model
        self._lines, self._edges = lane_lines, road_edges_y_m
        w, h = model.width_px, model.height_px
        self._horizon = hz = math.floor(model.cy) + 1
        self._depth = model.mount_z_m * model.fx / (np.arange(hz, h, dtype=np.float64) + 0.5 - model.cy)
        # Ground row r (from the horizon) meets chroma row r // 2; chroma rows pick every other one.
        self._chroma_rows = np.arange(hz % 2, h - hz, 2)[: h // 2 - (hz + 1) // 2]
        sky_top, sky_bottom = np.array(yuv(90, 140, 215)), np.array(yuv(190, 210, 235))
        ramp = np.linspace(0.0, 1.0, hz)[:, None]
        sky = sky_top * (1 - ramp) + sky_bottom * ramp
        self._sky_y = np.repeat(sky[:, 0:1], w, axis=1).round().astype(np.uint8)
        self._sky_uv = sky[::2, 1:3].round().astype(np.uint8)

    def render(self, x_m: float, y_m: float, yaw_rad: float, boxes: tuple[Box, ...]) -> U8Array:
        """One I420 frame, shape ``(height * 3 // 2, width)``, of ``boxes`` seen from the pose."""
        m = self.model
        w, h, hz = m.width_px, m.height_px, self._horizon
        c, s = math.cos(yaw_rad), math.sin(yaw_rad)
        cam_x, cam_y = x_m + m.mount_x_m * c, y_m + m.mount_x_m * s
        frame = np.empty((h * 3 // 2, w), dtype=np.uint8)
        y_plane, u_plane, v_plane = i420_planes(frame, w, h)
        y_plane[:hz] = self._sky_y
        uv_hz = (hz + 1) // 2
        u_plane[:uv_hz] = self._sky_uv[:uv_hz, 0:1]
        v_plane[:uv_hz] = self._sky_uv[:uv_hz, 1:2]
        # On ground row r the world y falls linearly with the column, so every painted band
        # (road, lines) is one column interval per row: compare columns against row bounds.
        bands = self._ground_bands(cam_x, cam_y, c, s)
        _paint_ground(y_plane[hz:], bands, 0, 1)
        rows = self._chroma_rows
        sub_bands = [(lo[rows], hi[rows], color) for lo, hi, color in bands]
        _paint_ground(u_plane[uv_hz:], sub_bands, 1, 2)
        _paint_ground(v_plane[uv_hz:], sub_bands, 2, 2)
        self._paint_boxes(y_plane, u_plane, v_plane, cam_x, cam_y, c, s, boxes)
        return frame

    def _ground_bands(self, cam_x: float, cam_y: float, c: float,
                      s: float) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], int]]:
        """Per ground row, the column interval ``[lo, hi)`` of the road and of each painted line,
        with its ground class, in painting order."""
        m, d = self.model, self._depth

        def column(world_y: float) -> npt.NDArray[np.float64]:
            return m.cx - 0.5 + m.fx * (cam_y + d * s - world_y) / (c * d)

        bands = [(column(self._edges[1]), column(self._edges[0]), _ROAD)]
        for line_y, dashed in self._lines:
            lo, hi = column(line_y + 0.075), column(line_y - 0.075)
            if dashed:
                left = (line_y - cam_y - d * s) / c
                painted = np.mod(cam_x + d * c - left * s, DASH_PERIOD_M) < DASH_M
                hi = np.where(painted, hi, lo)
            bands.append((lo, hi, _LINE))
        far = d > MAX_GROUND_M
        return [(np.where(far, -1.0, lo).astype(np.float32), np.where(far, -1.0, hi).astype(np.float32),
                 cls) for lo, hi, cls in bands] + [(np.where(far, -1.0, 1e9).astype(np.float32),
                                                    np.full(len(d), 1e9, np.float32), _HAZE)]

    def _paint_boxes(self, yp: U8Array, up: U8Array, vp: U8Array, cam_x: float, cam_y: float,
                     c: float, s: float, boxes: tuple[Box, ...]) -> None:
        if not boxes:
            return
        m = self.model
        geo = np.array([(b.center_x_m, b.center_y_m, b.center_z_m, b.length_m / 2, b.width_m / 2,
                         b.height_m / 2) for b in boxes])
        corners = geo[:, None, :3] + geo[:, None, 3:] * _CORNER_SIGNS[None, :, :]  # (n, 8, 3)
        dx, dy = corners[..., 0] - cam_x, corners[..., 1] - cam_y
        fwd = dx * c + dy * s
        with np.errstate(divide="ignore", invalid="ignore"):
            u = m.cx - m.fx * (-dx * s + dy * c) / fwd
            v = m.cy - m.fx * (corners[..., 2] - m.mount_z_m) / fwd
        ok = (fwd.min(axis=1) >= 0.5) & (fwd.min(axis=1) <= MAX_GROUND_M)
        rear = _CORNER_SIGNS[:, 0] < 0

        def rects(sel: npt.NDArray[np.bool_]) -> list[list[int]]:
            box_u, box_v = u[:, sel], v[:, sel]
            r = np.stack([np.floor(box_u.min(1)), np.floor(box_v.min(1)),
                          np.ceil(box_u.max(1)), np.ceil(box_v.max(1))], axis=1)
            r = np.where(ok[:, None], r, 0.0)
            r[:, 0::2] = np.clip(r[:, 0::2], 0, m.width_px)
            r[:, 1::2] = np.clip(r[:, 1::2], 0, m.height_px)
            return r.astype(np.int64).tolist()  # type: ignore[no-any-return]

        whole, back = rects(np.ones(8, dtype=bool)), rects(rear)
        for i in sorted(np.flatnonzero(ok).tolist(), key=lambda i: -float(fwd[i].min())):
            box = boxes[i]
            body, side = _BOX_COLORS.get(box.kind, _BOX_COLORS["other"])
            _fill(yp, up, vp, whole[i], side)
            _fill(yp, up, vp, back[i], body)
            if box.kind in ("lead_vehicle", "parked_car"):
                u0, v0, u1, v1 = back[i]
                bh, bw = v1 - v0, u1 - u0
                _fill(yp, up, vp, [u0 + bw // 8, v0 + bh // 12, u1 - bw // 8, v0 + bh * 2 // 5], _WINDOW)
                lamp = _LAMP_ON if box.braking else _LAMP_OFF
                ly0, ly1 = v0 + bh // 2, v0 + bh // 2 + max(bh // 8, 1)
                _fill(yp, up, vp, [u0, ly0, u0 + max(bw // 6, 1), ly1], lamp)
                _fill(yp, up, vp, [u1 - max(bw // 6, 1), ly0, u1, ly1], lamp)


def _paint_ground(plane: U8Array,
                  bands: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], int]],
                  channel: int, step: int) -> None:
    """Paint grass, then each band's column interval row by row; plane column ``j`` shows image
    column ``j * step`` (1 for luma, 2 for the subsampled chroma)."""
    plane[:] = _GROUND_YUV[_GRASS, channel]
    n = plane.shape[1]
    for lo, hi, cls in bands:
        first = np.clip(np.ceil(lo / step), 0, n).astype(np.int64).tolist()
        stop = np.clip(np.ceil(hi / step), 0, n).astype(np.int64).tolist()
        value = _GROUND_YUV[cls, channel]
        for row, (j0, j1) in enumerate(zip(first, stop, strict=True)):
            if j0 < j1:
                plane[row, j0:j1] = value


def _fill(yp: U8Array, up: U8Array, vp: U8Array, rect: list[int],
          color: tuple[int, int, int]) -> None:
    u0, v0, u1, v1 = rect
    if u0 >= u1 or v0 >= v1:
        return
    yp[v0:v1, u0:u1] = color[0]
    up[v0 // 2:(v1 + 1) // 2, u0 // 2:(u1 + 1) // 2] = color[1]
    vp[v0 // 2:(v1 + 1) // 2, u0 // 2:(u1 + 1) // 2] = color[2]


def i420_planes(frame: U8Array, width_px: int, height_px: int) -> tuple[U8Array, U8Array, U8Array]:
    """Views of the Y ``(h, w)``, U and V ``(h/2, w/2)`` planes of an I420 frame."""
    flat = frame.reshape(-1)
    n_y, n_c = width_px * height_px, (width_px // 2) * (height_px // 2)
    return (flat[:n_y].reshape(height_px, width_px),
            flat[n_y:n_y + n_c].reshape(height_px // 2, width_px // 2),
            flat[n_y + n_c:n_y + 2 * n_c].reshape(height_px // 2, width_px // 2))


def i420_to_rgb(frame: U8Array, width_px: int, height_px: int) -> U8Array:
    """Convert an I420 frame to an ``(height, width, 3)`` RGB array (for previews and tests)."""
    yp, up, vp = i420_planes(frame, width_px, height_px)
    y = yp.astype(np.float32) - 16.0
    u = np.repeat(np.repeat(up, 2, 0), 2, 1)
    v = np.repeat(np.repeat(vp, 2, 0), 2, 1)
    uf, vf = u.astype(np.float32) - 128.0, v.astype(np.float32) - 128.0
    r = 1.164 * y + 1.596 * vf
    g = 1.164 * y - 0.392 * uf - 0.813 * vf
    b = 1.164 * y + 2.017 * uf
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)
