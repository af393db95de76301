"""Importers that turn public dataset calibration files into a :class:`CalibrationBundle`.

Every importer returns the bundle in the project's vehicle frame convention (x forward, y left,
z up, metres) with camera extrinsics for the optical frame (x right, y down, z forward).
:func:`import_calibration` is the entry point of ``avdata-cloud calib import``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cloud_ingest.calibration.checks import extrinsics_from_matrix, validate_bundle
from cloud_ingest.calibration.geometry import FloatArray, quat_to_matrix, se3, se3_compose, se3_inverse
from cloud_ingest.calibration.nuscenes import import_nuscenes
from cloud_ingest.errors import CalibrationFormatError, InvalidCalibration
from shared.calibration import CalibrationBundle, CameraIntrinsics, SensorExtrinsics
from shared.errors import ContractError

#: KITTI object-benchmark images are 1242x375 for most sequences; the real size is read from the
#: sibling ``image_2/<frame>.png`` when it is there.
KITTI_DEFAULT_SIZE_PX = (1242, 375)
_KITTI_SHAPES = {"P2": (3, 4), "R0_rect": (3, 3), "Tr_velo_to_cam": (3, 4), "Tr_imu_to_velo": (3, 4)}
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _kitti_matrices(path: Path) -> dict[str, FloatArray]:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationFormatError(f"KITTI calibration {path.name}: cannot read: {exc}") from exc
    found: dict[str, FloatArray] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        if not sep:
            raise CalibrationFormatError(f"KITTI calibration {path.name}:{lineno}: expected 'KEY: numbers'")
        try:
            found[key.strip()] = np.array([float(v) for v in rest.split()])
        except ValueError as exc:
            raise CalibrationFormatError(f"KITTI calibration {path.name}:{lineno} ({key.strip()}): "
                                         f"{exc}") from exc
    out: dict[str, FloatArray] = {}
    for key, shape in _KITTI_SHAPES.items():
        if key not in found:
            raise CalibrationFormatError(f"KITTI calibration {path.name}: missing {key} "
                                         f"(has {', '.join(found) or 'nothing'})")
        if found[key].size != shape[0] * shape[1] or not np.all(np.isfinite(found[key])):
            raise CalibrationFormatError(f"KITTI calibration {path.name}: {key} needs "
                                         f"{shape[0] * shape[1]} finite numbers, got {found[key].size}")
        out[key] = found[key].reshape(shape)
    return out


def _png_size(path: Path) -> tuple[int, int] | None:
    try:
        with path.open("rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != _PNG_MAGIC or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def import_kitti(path: Path, vehicle_id: str, version: str, valid_from_ns: int,
                 valid_to_ns: int | None = None) -> CalibrationBundle:
    """Bundle from a KITTI object-benchmark ``calib/<frame>.txt``.

    Vehicle frame: the OXTS IMU frame (x forward, y left, z up; origin at the IMU), which the file
    links to the Velodyne through ``Tr_imu_to_velo``. Sensors: ``oxts`` (identity), ``velodyne``
    and ``image_2``, the rectified left colour camera with intrinsics from ``P2``. ``P2 = K [I | t]``
    in rectified camera-0 coordinates, so ``image_2_T_velo = [I | K⁻¹ P2[:, 3]] R0_rect Tr_velo_to_cam``.
    Images are rectified: no distortion.
    """
    m = _kitti_matrices(path)
    p2 = m["P2"]
    k = p2[:, :3]
    if abs(k[0, 1]) > 1e-9 or np.any(np.abs(k[2] - (0.0, 0.0, 1.0)) > 1e-9) or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise CalibrationFormatError(f"KITTI calibration {path.name}: P2 is not a rectified pinhole "
                                     f"projection K [I | t]: {p2.tolist()}")
    try:
        velo_T_imu = se3(m["Tr_imu_to_velo"][:, :3], m["Tr_imu_to_velo"][:, 3])
        cam0_T_velo = se3(m["Tr_velo_to_cam"][:, :3], m["Tr_velo_to_cam"][:, 3])
        rect_T_cam0 = se3(m["R0_rect"], np.zeros(3))
        cam2_T_rect = se3(np.eye(3), np.linalg.solve(k, p2[:, 3]))
    except np.linalg.LinAlgError as exc:
        raise CalibrationFormatError(f"KITTI calibration {path.name}: singular P2: {exc}") from exc
    vehicle_T_velo = se3_inverse(velo_T_imu)
    vehicle_T_cam2 = se3_compose(vehicle_T_velo, se3_inverse(cam2_T_rect @ rect_T_cam0 @ cam0_T_velo))
    width, height = _png_size(path.parent.parent / "image_2" / f"{path.stem}.png") or KITTI_DEFAULT_SIZE_PX
    camera = CameraIntrinsics("image_2", width, height, float(k[0, 0]), float(k[1, 1]), float(k[0, 2]),
                              float(k[1, 2]), distortion_model="none")
    extrinsics = (
        SensorExtrinsics("oxts", (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
        extrinsics_from_matrix("velodyne", vehicle_T_velo),
        extrinsics_from_matrix("image_2", vehicle_T_cam2),
    )
    return CalibrationBundle(vehicle_id, version, valid_from_ns, valid_to_ns, (camera,), extrinsics)


def _feather_rows(path: Path, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    import pyarrow as pa  # only this importer needs pyarrow
    import pyarrow.feather as feather

    try:
        table = feather.read_table(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise CalibrationFormatError(f"Argoverse 2 calibration {path.name}: cannot read: {exc}") from exc
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise CalibrationFormatError(f"Argoverse 2 calibration {path.name}: missing columns {missing}")
    rows: list[dict[str, Any]] = table.select(list(columns)).to_pylist()
    return rows


def import_av2(path: Path, vehicle_id: str, version: str, valid_from_ns: int,
               valid_to_ns: int | None = None) -> CalibrationBundle:
    """Bundle from an Argoverse 2 log directory (or its ``calibration/`` directory).

    Reads ``egovehicle_SE3_sensor.feather`` (every camera and both LiDARs, already
    ``vehicle_T_sensor`` as quaternion + translation) and ``intrinsics.feather`` (pinhole plus
    radial k1 k2 k3, stored as plumb_bob with zero tangential terms). Vehicle frame: the AV2
    egovehicle frame (x forward, y left, z up, origin at the rear axle centre on the ground).
    """
    calib_dir = path / "calibration" if (path / "calibration").is_dir() else path
    poses = _feather_rows(calib_dir / "egovehicle_SE3_sensor.feather",
                          ("sensor_name", "qw", "qx", "qy", "qz", "tx_m", "ty_m", "tz_m"))
    intrinsics = _feather_rows(calib_dir / "intrinsics.feather",
                               ("sensor_name", "fx_px", "fy_px", "cx_px", "cy_px", "k1", "k2", "k3",
                                "width_px", "height_px"))
    try:
        extrinsics = tuple(
            extrinsics_from_matrix(str(r["sensor_name"]), se3(
                quat_to_matrix([r["qw"], r["qx"], r["qy"], r["qz"]]), [r["tx_m"], r["ty_m"], r["tz_m"]]))
            for r in poses)
        cameras = tuple(
            CameraIntrinsics(str(r["sensor_name"]), int(r["width_px"]), int(r["height_px"]),
                             float(r["fx_px"]), float(r["fy_px"]), float(r["cx_px"]), float(r["cy_px"]),
                             "plumb_bob", (float(r["k1"]), float(r["k2"]), 0.0, 0.0, float(r["k3"])))
            for r in intrinsics)
    except (TypeError, ValueError, InvalidCalibration) as exc:  # None cells, degenerate quaternions
        raise CalibrationFormatError(f"Argoverse 2 calibration in {calib_dir.name}: {exc}") from exc
    posed = {e.sensor_id for e in extrinsics}
    unposed = [c.sensor_id for c in cameras if c.sensor_id not in posed]
    if unposed:
        raise CalibrationFormatError(f"Argoverse 2 calibration: cameras without extrinsics: {unposed}")
    return CalibrationBundle(vehicle_id, version, valid_from_ns, valid_to_ns, cameras, extrinsics)


Importer = Callable[[Path, str, str, int, "int | None"], CalibrationBundle]
#: Format name (the ``--format`` of ``avdata-cloud calib import``) → importer.
def import_avdata(path: Path, vehicle_id: str, version: str, valid_from_ns: int,
                  valid_to_ns: int | None) -> CalibrationBundle:
    """Our own format: one ``avdata.CalibrationBundle`` envelope (what ``avdata-sim calibration``
    writes). Vehicle, version and validity come from the command line, like the other formats."""
    try:
        bundle = CalibrationBundle.decode(path.read_bytes())
    except ContractError as exc:
        raise CalibrationFormatError(f"{path.name}: not an avdata calibration bundle: {exc}") from exc
    return replace(bundle, vehicle_id=vehicle_id, version=version, valid_from_ns=valid_from_ns,
                   valid_to_ns=valid_to_ns)


FORMATS: dict[str, Importer] = {"kitti": import_kitti, "nuscenes": import_nuscenes, "av2": import_av2,
                                "avdata": import_avdata}


def import_calibration(path: Path | str, fmt: str, vehicle_id: str, version: str, valid_from_ns: int,
                       valid_to_ns: int | None = None) -> CalibrationBundle:
    """Read ``path`` in format ``fmt`` (``kitti`` | ``nuscenes`` | ``av2`` | ``avdata``) into a validated bundle.

    ``path`` is the KITTI ``calib/<frame>.txt``, the nuScenes (mmdetection3d) info ``.pkl``, or the
    AV2 log (or ``calibration/``) directory. Raises :class:`CalibrationFormatError` for an unknown
    format or an unreadable file and :class:`InvalidCalibration` for a bundle that fails
    :func:`~cloud_ingest.calibration.checks.validate_bundle`.
    """
    importer = FORMATS.get(fmt)
    if importer is None:
        raise CalibrationFormatError(f"unknown calibration format {fmt!r} (known: {', '.join(FORMATS)})")
    source = Path(path)
    if not source.exists():
        raise CalibrationFormatError(f"{fmt} calibration not found: {source}")
    bundle = importer(source, vehicle_id, version, valid_from_ns, valid_to_ns)
    validate_bundle(bundle)
    return bundle
