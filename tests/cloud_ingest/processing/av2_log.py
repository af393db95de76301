"""The Argoverse 2 sensor log in tests/fixtures/real/av2/log as test inputs, and a residual measure.

- ``city_SE3_egovehicle.feather``: 2,706 6-DoF poses of the ego vehicle in the city frame over
  15.95 s (~170 Hz, irregular: some are only 5-10 ns apart), as :class:`VehiclePose` samples, and
  the planar view of the same poses (x, y, yaw; z and roll/pitch dropped) as :class:`VehicleState`.
- ``sensors/lidar/*.feather``: two sweeps 100 ms apart, points in the ego frame, float16 x/y/z,
  per-point ``offset_ns`` (2.7-106 ms). Argo distributes them already motion-compensated to the
  sweep timestamp (av2-api, ``av2/structures/sweep.py``: "We have egomotion-compensated the lidar
  sensor data to the egovehicle reference timestamp"); the tests check that claim on the data.
- ``annotations.feather``: 3D cuboids at each sweep time; points inside one (grown by a margin) are
  not static structure.

:func:`plane_residual_m` is the point-to-plane residual used by ICP: for each query point, the
distance to the plane fitted through its k nearest neighbours in a reference cloud.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.feather as feather

from cloud_ingest.calibration.geometry import quat_to_matrix
from shared.payloads import VehiclePose, VehicleState

AV2 = Path(__file__).parents[2] / "fixtures" / "real" / "av2" / "log"
SWEEP_T_NS = (315966265259836000, 315966265360032000)


def _columns(path: Path) -> dict[str, np.ndarray]:
    table = feather.read_table(path)
    return {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names}


@dataclass(frozen=True)
class Sweep:
    """One AV2 sweep: ``t_ns``, ego-frame points ``xyz_m (N, 3)``, ``offset_ns (N,)``, ``static (N,)``."""

    t_ns: int
    xyz_m: np.ndarray
    offset_ns: np.ndarray
    static: np.ndarray


def pose_samples() -> tuple[list[int], list[VehiclePose]]:
    """The pose table as (times, 6-DoF poses), in file order."""
    c = _columns(AV2 / "city_SE3_egovehicle.feather")
    poses = [VehiclePose((float(x), float(y), float(z)), (float(w), float(i), float(j), float(k)))
             for x, y, z, w, i, j, k in zip(c["tx_m"], c["ty_m"], c["tz_m"], c["qw"], c["qx"], c["qy"], c["qz"],
                                            strict=True)]
    return [int(t) for t in c["timestamp_ns"]], poses


def planar_states(times: list[int], poses: list[VehiclePose]) -> list[VehicleState]:
    """The same poses as a planar vehicle state would carry them: x, y and the heading of the x axis.

    Speed is the horizontal speed over ±50 ms of the positions (only the radar and extrapolation
    use it; the sweeps here sit mid-log).
    """
    t = np.asarray(times, dtype=np.int64) - times[0]
    xy = np.array([p.position_m[:2] for p in poses])
    rot = quat_to_matrix(np.array([p.rotation_wxyz for p in poses]))
    yaw = np.arctan2(rot[:, 1, 0], rot[:, 0, 0])
    lo, hi = np.maximum(t - 50_000_000, t[0]), np.minimum(t + 50_000_000, t[-1])
    dx = np.stack([np.interp(hi, t, xy[:, i]) - np.interp(lo, t, xy[:, i]) for i in range(2)], axis=1)
    speed = np.linalg.norm(dx, axis=1) / ((hi - lo) * 1e-9)
    return [VehicleState(float(x), float(y), float(a), float(v), 0.0, 0.0, 0.0, False)
            for (x, y), a, v in zip(xy, yaw, speed, strict=True)]


def static_mask(xyz_m: np.ndarray, t_ns: int, margin_m: float = 1.0) -> np.ndarray:
    """Points outside every cuboid annotated at ``t_ns`` (each grown by ``margin_m`` on all sides)."""
    a = _columns(AV2 / "annotations.feather")
    keep = np.ones(len(xyz_m), bool)
    for i in np.nonzero(a["timestamp_ns"] == t_ns)[0]:
        local = (xyz_m - [a["tx_m"][i], a["ty_m"][i], a["tz_m"][i]]) @ quat_to_matrix(
            [a["qw"][i], a["qx"][i], a["qy"][i], a["qz"][i]])
        half = np.array([a["length_m"][i], a["width_m"][i], a["height_m"][i]]) / 2 + margin_m
        keep &= ~np.all(np.abs(local) <= half, axis=1)
    return keep


def sweeps() -> list[Sweep]:
    """Both sweeps, in time order."""
    out = []
    for t_ns in SWEEP_T_NS:
        c = _columns(AV2 / "sensors" / "lidar" / f"{t_ns}.feather")
        xyz = np.stack([c["x"], c["y"], c["z"]], axis=1).astype(np.float64)
        out.append(Sweep(t_ns, xyz, c["offset_ns"].astype(np.int64), static_mask(xyz, t_ns)))
    return out


def plane_residual_m(reference: np.ndarray, query: np.ndarray, k: int = 16,
                     radius_m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Point-to-plane distance ``(N,)`` of each query point to its ``k`` nearest reference points,
    and ``|n_z|`` ``(N,)`` of that plane's normal. NaN where the neighbours reach beyond ``radius_m``
    or do not span a plane (they must be thin across it but not lie along a line).

    Exact k-NN on a voxel grid of ``radius_m`` cells: every reference point within ``radius_m`` of a
    query lies in the 27 cells around the query's cell.
    """
    keys = np.floor(reference / radius_m).astype(np.int64)
    order = np.lexsort(keys.T[::-1])
    cells, first, count = np.unique(keys[order], axis=0, return_index=True, return_counts=True)
    table = {tuple(c): (a, a + n) for c, a, n in zip(cells.tolist(), first, count, strict=True)}
    q_cells, q_group = np.unique(np.floor(query / radius_m).astype(np.int64), axis=0, return_inverse=True)
    q_group = q_group.reshape(-1)
    around = [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]
    dist, nz = np.full(len(query), np.nan), np.full(len(query), np.nan)
    for g, (x, y, z) in enumerate(q_cells.tolist()):
        spans = [table[key] for key in ((x + a, y + b, z + c) for a, b, c in around) if key in table]
        cand = reference[order[np.concatenate([np.arange(lo, hi) for lo, hi in spans])]] if spans else reference[:0]
        if len(cand) < k:
            continue
        rows = np.nonzero(q_group == g)[0]
        d2 = np.sum((query[rows, None, :] - cand[None]) ** 2, axis=-1)
        nn = np.argpartition(d2, k - 1, axis=1)[:, :k]
        near = np.take_along_axis(d2, nn, axis=1).max(axis=1) < radius_m**2
        nb = cand[nn]
        centre = nb.mean(axis=1)
        spread, axes = np.linalg.eigh(np.einsum("nki,nkj->nij", nb - centre[:, None], nb - centre[:, None]) / k)
        normal = axes[:, :, 0]
        planar = near & (spread[:, 0] < 0.05 * spread[:, 1]) & (spread[:, 1] > 0.1 * spread[:, 2])
        dist[rows] = np.where(planar, np.abs(np.einsum("ni,ni->n", query[rows] - centre, normal)), np.nan)
        nz[rows] = np.abs(normal[:, 2])
    return dist, nz
