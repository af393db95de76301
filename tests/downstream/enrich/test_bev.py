"""The BEV embedding: raster semantics on constructed points, and distances between real sweeps.

Real sweeps: Argoverse 2 log 7fab2350 (two sweeps 0.1 s apart) and log adcf7d18 (one sweep; both
VLP-32 pairs in Pittsburgh), KITTI 000000 (HDL-64, Karlsruhe), the nuScenes LIDAR_TOP keyframe
(HDL-32, Singapore) and the Ouster OS1-64 recording (two sweeps 0.1 s apart, every second column).
What they can show: two sweeps of one drive a tenth of a second apart embed far closer together
than sweeps of different drives, with the same sensor model (the two AV2 logs) as with different
ones. They cannot show how the distance grows over a whole 20-40 s segment: no log here has more
than two sweeps. A sweep moved 2 m and turned 3°, as the vehicle would a fraction of a second
later, stands in for that part.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from downstream.enrich.bev import CHANNELS, BevGrid, BevProjector, bev_embedding, bev_raster, lidar_columns
from downstream.enrich.errors import EnrichInputError
from shared.segment import BEV_EMBEDDING_DIM, Segment
from tests.downstream.enrich import real_data as rd
from tests.shared.test_contracts import _segment


@pytest.fixture(scope="module")
def sweeps() -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]]:
    """(log, index) → (points (N, 4), AV2 boxes at the sweep time or None)."""
    out: dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]] = {}
    for name, log in (("av2-7fab", rd.AV2_7FAB), ("av2-adcf", rd.AV2_ADCF)):
        tracks = rd.av2_tracks(log)
        for i, t in enumerate(rd.av2_sweep_times(log)):
            k = tracks.time_index(t)
            assert tracks.t_ns[k] == t  # AV2 annotates every sweep
            out[(name, i)] = (lidar_columns(rd.av2_sweep(log, t)), tracks.boxes_at(k))
    out[("kitti", 0)] = (lidar_columns(rd.kitti_sweep()), None)
    out[("nuscenes", 0)] = (lidar_columns(rd.nuscenes_sweep()), None)
    for i in range(2):
        out[("ouster", i)] = (lidar_columns(rd.ouster_sweep(i)), None)
    return out


def distances(emb: dict[Any, np.ndarray]) -> tuple[list[float], list[float]]:
    intra: list[float] = []
    inter: list[float] = []
    for a, b in itertools.combinations(sorted(emb), 2):
        (intra if a[0] == b[0] else inter).append(float(np.linalg.norm(emb[a] - emb[b])))
    return intra, inter


def test_sweeps_of_one_log_lie_closer_than_sweeps_of_different_logs(sweeps: dict[Any, Any]) -> None:
    proj = BevProjector()
    lidar_only = {k: bev_embedding(p, None, proj) for k, (p, _) in sweeps.items()}
    intra, inter = distances(lidar_only)
    assert len(intra) == 2 and len(inter) == 19
    assert max(intra) < 0.2 < 0.6 < min(inter), (intra, inter)
    # The two AV2 logs share the sensor model: the gap is the scene's, not the LiDAR's.
    same_sensor = float(np.linalg.norm(lidar_only[("av2-7fab", 0)] - lidar_only[("av2-adcf", 0)]))
    assert same_sensor > 3 * max(intra)


def test_tracked_boxes_keep_the_separation(sweeps: dict[Any, Any]) -> None:
    proj = BevProjector()
    av2 = {k: bev_embedding(p, b, proj) for k, (p, b) in sweeps.items() if k[0].startswith("av2")}
    assert all(len(sweeps[k][1]) > 40 for k in av2)  # 81 and 47 annotated objects in range
    intra, inter = distances(av2)
    assert max(intra) < 0.2 and min(inter) > 0.6


def test_a_moved_sweep_stays_closer_than_another_drive(sweeps: dict[Any, Any]) -> None:
    proj = BevProjector()
    points = sweeps[("av2-7fab", 0)][0]
    c, s = np.cos(np.radians(3.0)), np.sin(np.radians(3.0))
    moved = points.copy()
    moved[:, 0] = c * (points[:, 0] - 2.0) + s * points[:, 1]
    moved[:, 1] = -s * (points[:, 0] - 2.0) + c * points[:, 1]
    here, there = bev_embedding(points, None, proj), bev_embedding(moved, None, proj)
    other = [bev_embedding(p, None, proj) for k, (p, _) in sweeps.items() if k[0] != "av2-7fab"]
    assert np.linalg.norm(here - there) < min(np.linalg.norm(here - o) for o in other) / 2


def test_embedding_is_deterministic_unit_float32_and_fits_the_segment(sweeps: dict[Any, Any]) -> None:
    points, boxes = sweeps[("av2-adcf", 0)]
    a = bev_embedding(points, boxes, BevProjector(seed=0))
    b = bev_embedding(points.copy(), boxes.copy(), BevProjector(seed=0))
    assert a.dtype == np.float32 and a.shape == (BEV_EMBEDDING_DIM,)
    assert np.array_equal(a, b) and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-6)
    assert not np.allclose(a, bev_embedding(points, boxes, BevProjector(seed=1)))
    seg = Segment.decode(_segment(bev_embedding=a).encode())
    assert seg.bev_embedding is not None and np.array_equal(seg.bev_embedding, a)


def test_raster_channels_on_constructed_points() -> None:
    g = BevGrid()
    ground = np.array([[x, y, -0.3, 10.0] for x in np.arange(-19.0, 19.0, 1.5) for y in (-6.0, 6.0)])
    pole = np.array([[10.1, 5.2, -0.3 + h, 200.0] for h in (0.5, 1.0, 2.5)])  # one cell, 3 returns
    body = np.array([[0.5, 0.5, 0.5, 255.0]])  # inside ego_radius_m: the vehicle itself
    r = bev_raster(np.vstack([ground, pole, body]), np.array([[-10.0, 0.0, 4.0, 2.0, 0.0]]), g)
    assert r.shape == (len(CHANNELS), 160, 160) and r.dtype == np.float32
    ix, iy = int((10.1 + 40) / 0.5), int((5.2 + 40) / 0.5)
    assert r[0, ix, iy] == pytest.approx(np.log1p(3) / np.log1p(16), abs=1e-6)
    assert r[1, ix, iy] == pytest.approx(2.5 / 4.0, abs=1e-6)  # highest return above the ground at -0.3 m
    assert r[2, ix, iy] == pytest.approx(200.0 / 255.0, abs=1e-6)
    assert r[0, 80, 80] == 0.0  # the body return was dropped
    # A 4 m x 2 m box centred at x = -10 covers 8 x 4 cells exactly.
    assert r[3].sum() == pytest.approx(32.0) and r[3, int(-10 / 0.5) + 80 - 4: int(-10 / 0.5) + 80 + 4, 78:82].min() == 1.0
    rotated = bev_raster(np.zeros((0, 4)), np.array([[0.0, 10.0, 4.0, 2.0, np.pi / 2]]), g)
    assert rotated[3].sum() == pytest.approx(32.0) and rotated[3, 78:82, 96:104].min() == 1.0


def test_heights_are_measured_from_the_ground_not_the_frame_origin(sweeps: dict[Any, Any]) -> None:
    points = sweeps[("kitti", 0)][0]
    raised = points.copy()
    raised[:, 2] += 1.0  # the same sweep in a frame whose origin lies 1 m lower
    assert np.allclose(bev_raster(points), bev_raster(raised), atol=1e-6)


def test_bad_inputs_are_typed_errors() -> None:
    with pytest.raises(EnrichInputError, match=r"\(N, 4\)"):
        bev_raster(np.zeros((5, 3)))
    with pytest.raises(EnrichInputError, match="boxes"):
        bev_raster(np.zeros((5, 4)), np.zeros((2, 4)))
    with pytest.raises(EnrichInputError, match="lidar_points_v1"):
        lidar_columns(np.zeros(3, dtype=[("x", "<f4")]))
    with pytest.raises(EnrichInputError, match="whole number"):
        BevGrid(half_extent_m=40.0, cell_m=0.3)
    with pytest.raises(EnrichInputError, match="divide"):
        BevGrid(levels=(3,))
    with pytest.raises(EnrichInputError, match="raster"):
        BevProjector()(np.zeros((4, 10, 10)))


def test_cupy_raster_matches_numpy(sweeps: dict[Any, Any]) -> None:
    """The CuPy path (the raster on a GPU) gives the NumPy embedding; runs only where CuPy and a GPU are."""
    cupy = pytest.importorskip("cupy", reason="CuPy and a GPU are optional (pip install avdata[gpu])")
    points, boxes = sweeps[("av2-adcf", 0)]
    on_gpu = bev_embedding(points, boxes, BevProjector(xp=cupy))
    assert np.allclose(on_gpu, bev_embedding(points, boxes), atol=1e-5)
