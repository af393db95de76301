"""The bird's-eye-view embedding: a raster of one motion-compensated sweep and its tracked objects,
pooled and projected to :data:`shared.segment.BEV_EMBEDDING_DIM` (256) numbers.

**Raster** (:func:`bev_raster`), in the vehicle frame (x forward, y left, z up), over the square
``[-40, 40) m × [-40, 40) m`` in 0.5 m cells (:class:`BevGrid`), shape ``(4, 160, 160)`` float32
with rows along x and columns along y, every channel in [0, 1]:

0. ``occupancy``: ``min(1, log(1 + n) / log(1 + 16))`` for ``n`` returns in the cell;
1. ``max_height``: the highest return above the ground, clipped to 4 m, divided by 4 m. The
   ground is the 10th percentile of z over returns 2.5-20 m from the vehicle (so a frame whose
   origin sits at the IMU or the rear axle gives the same heights as one on the ground);
   returns more than 1 m below the ground (multipath) are dropped;
2. ``mean_intensity``: the mean intensity of the cell's returns / 255 (``LIDAR_DTYPE`` intensity is 0-255);
3. ``objects``: the fraction of the cell's 2 × 2 sub-cell centres inside a tracked box.

Returns within 2.5 m of the origin (the vehicle's own body) and non-finite ones are ignored.

**Embedding** (:class:`BevProjector`): each channel is average-pooled to 4 × 4, 8 × 8 and 16 × 16
blocks; each of the 12 pooled maps is flattened and L2-normalised (so every channel and scale
weighs the same whatever its fill), the 12 are concatenated (``4 · (16 + 64 + 256) = 1344``) and
multiplied by a fixed ``(1344, 256)`` matrix with orthonormal columns, drawn from a seeded Gaussian
and orthonormalised by QR with its sign fixed (as :mod:`vehicle.inference.embedding` does for the
visual embedding); the result is L2-normalised. Same sweep, boxes, grid and seed: same embedding,
bit for bit on one machine.

Arrays go through an array module ``xp`` (NumPy by default; CuPy keeps the raster on the GPU, see
:func:`array_module`); the 256-d embedding always comes back as a NumPy float32 array.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from downstream.enrich.errors import EnrichInputError
from shared.payloads import LIDAR_DTYPE
from shared.segment import BEV_EMBEDDING_DIM

CHANNELS = ("occupancy", "max_height", "mean_intensity", "objects")
OCCUPANCY_SATURATION = 16  # returns per cell at which occupancy reaches 1
MAX_INTENSITY = 255.0
_SUB = 2  # sub-cells per cell side for box coverage


def array_module(name: str = "numpy") -> ModuleType:
    """``numpy`` or ``cupy`` by name; raises :class:`EnrichInputError` when it cannot be imported."""
    if name not in ("numpy", "cupy"):
        raise EnrichInputError(f"array module must be 'numpy' or 'cupy', got {name!r}")
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise EnrichInputError(f"array module {name!r} is not installed (pip install avdata[gpu]): {exc}") from exc


@dataclass(frozen=True)
class BevGrid:
    """Extent and resolution of the raster (metres, vehicle frame) and its height/ground settings."""

    half_extent_m: float = 40.0
    cell_m: float = 0.5
    height_cap_m: float = 4.0
    ego_radius_m: float = 2.5
    ground_radius_m: float = 20.0
    ground_percentile: float = 10.0
    below_ground_m: float = 1.0
    levels: tuple[int, ...] = (4, 8, 16)

    def __post_init__(self) -> None:
        n = 2 * self.half_extent_m / self.cell_m
        if self.cell_m <= 0 or abs(n - round(n)) > 1e-9:
            raise EnrichInputError(f"BEV grid: 2 x half_extent_m ({2 * self.half_extent_m}) must be a whole "
                                   f"number of cells of {self.cell_m} m")
        if not self.levels or any(lv < 1 or round(n) % lv for lv in self.levels):
            raise EnrichInputError(f"BEV grid: every pooling level {self.levels} must divide the {round(n)} cells")
        if not (0 < self.ego_radius_m < self.ground_radius_m) or self.height_cap_m <= 0:
            raise EnrichInputError("BEV grid: need 0 < ego_radius_m < ground_radius_m and height_cap_m > 0")

    @property
    def cells(self) -> int:
        """Cells along each side."""
        return round(2 * self.half_extent_m / self.cell_m)

    @property
    def pooled_dim(self) -> int:
        """Length of the pooled vector :meth:`BevProjector.pooled` returns."""
        return len(CHANNELS) * sum(lv * lv for lv in self.levels)


def lidar_columns(points: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """``(N, 4)`` float32 ``[x, y, z, intensity]`` of a ``LIDAR_DTYPE`` sweep (vehicle frame)."""
    if points.dtype != LIDAR_DTYPE:
        raise EnrichInputError(f"sweep has dtype {points.dtype}, expected lidar_points_v1 (LIDAR_DTYPE)")
    return np.stack([points[c] for c in ("x", "y", "z", "intensity")], axis=1).astype(np.float32)


def _ground_z(xp: ModuleType, r: Any, z: Any, grid: BevGrid) -> Any:
    ring = (r > grid.ego_radius_m) & (r < grid.ground_radius_m)
    if int(ring.sum()) < 50:  # too few returns to tell; the vehicle frame's origin is on the ground
        return xp.float64(0.0)
    return xp.percentile(z[ring], grid.ground_percentile)


def _object_coverage(xp: ModuleType, boxes: Any, grid: BevGrid) -> Any:
    n, sub = grid.cells, grid.cells * _SUB
    step = grid.cell_m / _SUB
    centres = -grid.half_extent_m + step * (xp.arange(sub, dtype=xp.float64) + 0.5)
    hits = xp.zeros((sub, sub), dtype=xp.float32)
    for x, y, length, width, yaw in boxes.tolist():
        reach = 0.5 * float(np.hypot(length, width))
        lo = [int(np.clip(np.floor((c - reach + grid.half_extent_m) / step), 0, sub)) for c in (x, y)]
        hi = [int(np.clip(np.ceil((c + reach + grid.half_extent_m) / step), 0, sub)) for c in (x, y)]
        if lo[0] >= hi[0] or lo[1] >= hi[1]:
            continue  # the box lies outside the raster
        dx = centres[lo[0]:hi[0], None] - x
        dy = centres[None, lo[1]:hi[1]] - y
        c, s = float(np.cos(yaw)), float(np.sin(yaw))
        inside = (xp.abs(c * dx + s * dy) <= length / 2) & (xp.abs(-s * dx + c * dy) <= width / 2)
        hits[lo[0]:hi[0], lo[1]:hi[1]] = xp.maximum(hits[lo[0]:hi[0], lo[1]:hi[1]], inside.astype(xp.float32))
    return hits.reshape(n, _SUB, n, _SUB).mean(axis=(1, 3))


def bev_raster(points: Any, boxes: Any | None = None, grid: BevGrid | None = None,
               xp: ModuleType = np) -> Any:
    """The ``(4, cells, cells)`` float32 raster (an ``xp`` array) of one sweep; see the module docstring.

    ``points``: ``(N, 4)`` ``[x, y, z, intensity]`` in the vehicle frame (see :func:`lidar_columns`).
    ``boxes``: ``(M, 5)`` tracked boxes ``[x_m, y_m, length_m, width_m, yaw_rad]`` at the sweep's time.
    """
    g = grid or BevGrid()
    p = xp.asarray(points, dtype=xp.float64)
    if p.ndim != 2 or p.shape[1] != 4:
        raise EnrichInputError(f"BEV points must be (N, 4) [x, y, z, intensity], got shape {tuple(p.shape)}")
    b = xp.zeros((0, 5)) if boxes is None else xp.asarray(boxes, dtype=xp.float64)
    if b.ndim != 2 or b.shape[1] != 5 or not bool(xp.isfinite(b).all()):
        raise EnrichInputError(f"BEV boxes must be finite (M, 5) [x, y, length, width, yaw], got {tuple(b.shape)}")
    n = g.cells
    p = p[xp.isfinite(p).all(axis=1)]
    r = xp.hypot(p[:, 0], p[:, 1])
    ground = _ground_z(xp, r, p[:, 2], g)
    height = p[:, 2] - ground
    keep = ((r > g.ego_radius_m) & (xp.abs(p[:, 0]) < g.half_extent_m) & (xp.abs(p[:, 1]) < g.half_extent_m)
            & (height >= -g.below_ground_m))
    p, height = p[keep], height[keep]
    ix = xp.clip(xp.floor((p[:, 0] + g.half_extent_m) / g.cell_m).astype(xp.int64), 0, n - 1)
    iy = xp.clip(xp.floor((p[:, 1] + g.half_extent_m) / g.cell_m).astype(xp.int64), 0, n - 1)
    cell = ix * n + iy
    count = xp.bincount(cell, minlength=n * n).astype(xp.float64)
    raster = xp.zeros((len(CHANNELS), n * n), dtype=xp.float32)
    raster[0] = xp.minimum(1.0, xp.log1p(count) / np.log1p(OCCUPANCY_SATURATION))
    h = xp.clip(height, 0.0, g.height_cap_m) / g.height_cap_m
    if int(cell.size):
        # Per-cell maximum without ufunc.at (which CuPy lacks): sort by cell, then by height inside
        # the cell (h / 1.0001 < 1 keeps cells apart), and keep each run's last entry.
        order = xp.argsort(cell.astype(xp.float64) + h / 1.0001)
        cells_sorted = cell[order]
        last = xp.concatenate([cells_sorted[1:] != cells_sorted[:-1], xp.ones(1, dtype=bool)])
        raster[1, cells_sorted[last]] = h[order][last].astype(xp.float32)
    intensity = xp.clip(p[:, 3] / MAX_INTENSITY, 0.0, 1.0)
    total = xp.bincount(cell, weights=intensity, minlength=n * n)
    raster[2] = xp.where(count > 0, total / xp.maximum(count, 1.0), 0.0)
    raster[3] = _object_coverage(xp, b, g).reshape(-1)
    return raster.reshape(len(CHANNELS), n, n)


class BevProjector:
    """Raster ``(4, cells, cells)`` → unit-norm float32 embedding ``(dim,)`` (see the module docstring)."""

    def __init__(self, grid: BevGrid | None = None, dim: int = BEV_EMBEDDING_DIM, seed: int = 0,
                 xp: ModuleType = np) -> None:
        self.grid = grid or BevGrid()
        self.dim, self.seed, self.xp = dim, seed, xp
        in_dim = self.grid.pooled_dim
        if in_dim < dim:
            raise EnrichInputError(f"pooled BEV features have {in_dim} dimensions, fewer than the {dim} asked for")
        q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((in_dim, dim)))
        # QR's signs depend on the LAPACK build; fixing them makes the matrix a function of the seed.
        self._matrix = xp.asarray((q * np.sign(np.diag(r))).astype(np.float32))

    def pooled(self, raster: Any) -> Any:
        """Block-normalised multi-scale average pools of ``raster``, concatenated ``(pooled_dim,)``."""
        xp, n = self.xp, self.grid.cells
        a = xp.asarray(raster, dtype=xp.float32)
        if a.shape != (len(CHANNELS), n, n):
            raise EnrichInputError(f"BEV raster has shape {tuple(a.shape)}, expected ({len(CHANNELS)}, {n}, {n})")
        blocks = []
        for c in range(len(CHANNELS)):
            for lv in self.grid.levels:
                block = a[c].reshape(lv, n // lv, lv, n // lv).mean(axis=(1, 3)).reshape(-1)
                blocks.append(block / max(float(xp.linalg.norm(block)), 1e-12))
        return xp.concatenate(blocks)

    def __call__(self, raster: Any) -> npt.NDArray[np.float32]:
        """The unit-norm NumPy float32 embedding ``(dim,)`` of one raster."""
        out = self.pooled(raster) @ self._matrix
        unit = out / max(float(self.xp.linalg.norm(out)), 1e-12)
        host = unit.get() if hasattr(unit, "get") else unit  # CuPy → NumPy
        return np.asarray(host, dtype=np.float32)


def bev_embedding(points: Any, boxes: Any | None = None,
                  projector: BevProjector | None = None) -> npt.NDArray[np.float32]:
    """One sweep (and its boxes) straight to the 256-d embedding, with the projector's grid and ``xp``."""
    proj = projector or BevProjector()
    return proj(bev_raster(points, boxes, proj.grid, proj.xp))
