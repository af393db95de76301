"""Enrichment throughput for a 40 s segment, beside the bare model computations on the same inputs.

The segment is a real drive (:mod:`tests.downstream.enrich.drive`): real KITTI frames as 10 Hz H.265,
the vehicle's YOLOX-nano scores and embeddings at 2 Hz, the real KITTI sweep at 10 Hz (every fourth
return, ~30k points, a 32-beam sensor's worth), GNSS along a lane of the real Lanelet2 map of
Karlsruhe; ingested through the real pipeline (SQLite, local store, KITTI calibration, so
``calibrated.mcap`` exists). Figures, in segments/s:

- ``enrich_segments_per_s``: the whole path of one segment as the service runs it (``enrich run
  --segment``): the record from the DB, the raw snapshot's scores, GNSS, states and a keyframe (PyAV),
  the middle sweep from ``processed/``, the computation, the write-once document, the DB commit. Each
  repetition is a new enricher version, so every one writes for real.
- ``enrich_compute_segments_per_s``: the computation alone on decoded inputs (pooling, BEV, map
  context, solar lighting and the brightness check, tags, events, the description).

The limit of both is the bare model computations on the same decoded inputs, in the same run: the
pooled visual embedding plus the BEV raster and projection of the middle sweep, no I/O and no tags.
No cloud encoder runs (none can be installed with its weights), so there is no encoder session to
compare with.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.common import Figure, main_for
from cloud_ingest.config import CloudConfig
from cloud_ingest.storage.metadata.registry import open_db
from cloud_ingest.storage.objects.local import LocalObjectStore
from downstream.enrich.bev import BevProjector, bev_embedding
from downstream.enrich.config import EnrichConfig, MapFile
from downstream.enrich.runtime import enrich_now, open_runtime
from downstream.enrich.visual import pool_embeddings
from tests.downstream.enrich.drive import Drive, ingest, register_kitti_calibration, write_drive
from tests.downstream.enrich.real_data import LANELET2_OSM


def _rate(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return 1.0 / statistics.median(times)


def run(quick: bool = False) -> list[Figure]:
    duration = 20.0 if quick else 40.0
    repeat = 2 if quick else 5
    with tempfile.TemporaryDirectory(prefix="bench-enrich-") as tmp:
        root = Path(tmp)
        cloud = CloudConfig(data_dir=root / "cloud")
        db = open_db("sqlite", sqlite_path=str(cloud.sqlite_path))
        db.migrate()
        register_kitti_calibration(db, "car-1")
        snap = root / "drive.mcap"
        sha = write_drive(snap, Drive(duration_s=duration, lidar_hz=10, point_step=4))
        (seg,) = ingest(db, LocalObjectStore(cloud.store_dir), root, snap, sha)
        db.close()
        maps = (MapFile("lanelet2", LANELET2_OSM),)
        rates = []
        for v in range(1, repeat + 1):
            rt = open_runtime(cloud, EnrichConfig(version=v, maps=maps))
            t0 = time.perf_counter()
            assert enrich_now(rt, [seg.segment_id]) == {seg.segment_id: "enriched"}
            rates.append(1.0 / (time.perf_counter() - t0))
            inputs = rt.reader.read(seg)
            service = rt.service
            rt.close()
        ours = statistics.median(rates)
        compute = _rate(lambda: service.enrich(inputs), repeat * 2)
        assert inputs.visual is not None and inputs.sweep is not None
        vis, points, projector = inputs.visual, inputs.sweep.points, BevProjector()
        bare = _rate(lambda: (pool_embeddings(vis.embeddings), bev_embedding(points, None, projector)), repeat * 2)
    note = (f"{duration:.0f} s segment: {len(vis.frames)} scored frames, {points.shape[0]} points/sweep; "
            "median of {repeat} runs").replace("{repeat}", str(repeat))
    limit = "pooled embedding + BEV on decoded inputs (no I/O)"
    return [Figure("enrich_segments_per_s", ours, "segments/s", bare, limit, note=note),
            Figure("enrich_compute_segments_per_s", compute, "segments/s", bare, limit,
                   note="tags, map, lighting check and description included, no I/O")]


if __name__ == "__main__":
    main_for(run)
