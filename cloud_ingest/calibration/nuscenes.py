"""nuScenes calibration from an mmdetection3d info pickle, read with an allowlisting unpickler.

A pickle can name any importable callable and have the unpickler call it, so loading one from
outside is running foreign code. :class:`SafeUnpickler` resolves only the few NumPy and codec
names that plain data (dicts, lists, numbers, NumPy scalars and arrays) needs, and refuses
everything else with :class:`CalibrationFormatError` before anything is called.
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from cloud_ingest.calibration.checks import extrinsics_from_matrix
from cloud_ingest.errors import CalibrationFormatError, InvalidCalibration
from shared.calibration import CalibrationBundle, CameraIntrinsics, SensorExtrinsics

#: Every nuScenes camera image is 1600x900 px; the info file does not repeat it.
NUSCENES_IMAGE_SIZE_PX = (1600, 900)
#: Info files are a few MB per thousand samples; anything far larger is not one.
MAX_PICKLE_BYTES = 256 * 1024 * 1024
_SAME_CALIBRATION_TOL = 1e-6


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Protocol-2 pickles carry raw bytes (NumPy scalar payloads) as latin-1 text plus this call.
    if encoding != "latin1" or not isinstance(text, str):
        raise CalibrationFormatError(f"pickle asked _codecs.encode for {encoding!r}; only latin1 is allowed")
    return codecs.encode(text, "latin1")


def _dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype[Any]:
    dtype: np.dtype[Any] = np.dtype(spec, align=align, copy=copy)
    if dtype.hasobject:
        raise CalibrationFormatError(f"pickle asked for NumPy dtype {dtype}; object dtypes are refused")
    return dtype


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,  # type: ignore[attr-defined]
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,  # type: ignore[attr-defined]
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,  # type: ignore[attr-defined]
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,  # type: ignore[attr-defined]
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only plain-data NumPy names (see :data:`_ALLOWED`)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise CalibrationFormatError(
                f"pickle references {module}.{name}, which is not on the allowlist of plain-data types; "
                "refusing to load it") from None


def safe_load(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`SafeUnpickler`; any failure is a :class:`CalibrationFormatError`."""
    if len(data) > MAX_PICKLE_BYTES:
        raise CalibrationFormatError(f"pickle of {len(data)} bytes exceeds {MAX_PICKLE_BYTES}")
    try:
        return SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except CalibrationFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError) as exc:
        raise CalibrationFormatError(f"not a readable pickle: {type(exc).__name__}: {exc}") from exc


def _matrix(where: str, value: Any, shape: tuple[int, int]) -> np.ndarray[Any, np.dtype[np.float64]]:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CalibrationFormatError(f"{where}: not a numeric matrix: {exc}") from exc
    if m.shape != shape or not np.all(np.isfinite(m)):
        raise CalibrationFormatError(f"{where}: expected a finite {shape[0]}x{shape[1]} matrix, got {m.shape}")
    return m


def _sample_calibration(info: Any, idx: int) -> tuple[tuple[CameraIntrinsics, ...], tuple[SensorExtrinsics, ...]]:
    where = f"data_list[{idx}]"
    if not isinstance(info, dict) or not isinstance(info.get("images"), dict) or \
            not isinstance(info.get("lidar_points"), dict):
        raise CalibrationFormatError(f"{where}: expected a dict with 'images' and 'lidar_points' "
                                     "(mmdetection3d info version 1.1)")
    cameras: list[CameraIntrinsics] = []
    extrinsics: list[SensorExtrinsics] = []
    width, height = NUSCENES_IMAGE_SIZE_PX
    try:
        for name, cam in sorted(info["images"].items()):
            if not isinstance(cam, dict) or "cam2img" not in cam or "cam2ego" not in cam:
                raise CalibrationFormatError(f"{where}.images[{name!r}]: needs cam2img and cam2ego")
            k = _matrix(f"{where}.images[{name!r}].cam2img", cam["cam2img"], (3, 3))
            cameras.append(CameraIntrinsics(str(name), width, height, float(k[0, 0]), float(k[1, 1]),
                                            float(k[0, 2]), float(k[1, 2]), distortion_model="none"))
            extrinsics.append(extrinsics_from_matrix(
                str(name), _matrix(f"{where}.images[{name!r}].cam2ego", cam["cam2ego"], (4, 4))))
        lidar2ego = info["lidar_points"].get("lidar2ego")
        extrinsics.append(extrinsics_from_matrix(
            "LIDAR_TOP", _matrix(f"{where}.lidar_points.lidar2ego", lidar2ego, (4, 4))))
    except InvalidCalibration as exc:
        raise CalibrationFormatError(f"{where}: {exc}") from exc
    return tuple(cameras), tuple(extrinsics)


def import_nuscenes(path: Path, vehicle_id: str, version: str, valid_from_ns: int,
                    valid_to_ns: int | None = None) -> CalibrationBundle:
    """Bundle from an mmdetection3d (info version 1.1) nuScenes ``.pkl``.

    Sensors: the six cameras (``CAM_FRONT``...; intrinsics from ``cam2img``, extrinsics from
    ``cam2ego``) and ``LIDAR_TOP`` (``lidar2ego``). Vehicle frame: the nuScenes ego frame (x forward,
    y left, z up, origin at the rear axle centre on the ground). All sensors share one clock, so
    there are no temporal offsets. Every sample in the file must carry the same calibration;
    a file spanning a calibration change must be imported as separate versions.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CalibrationFormatError(f"nuScenes info {path.name}: cannot read: {exc}") from exc
    doc = safe_load(data)
    samples = doc.get("data_list") if isinstance(doc, dict) else None
    if not isinstance(samples, list) or not samples:
        raise CalibrationFormatError(f"nuScenes info {path.name}: no 'data_list' of samples")
    cameras, extrinsics = _sample_calibration(samples[0], 0)
    for idx, info in enumerate(samples[1:], 1):
        other_cams, other_exts = _sample_calibration(info, idx)
        first = np.array([[e.rotation_wxyz, (*e.translation_m, 0.0)] for e in extrinsics])
        other = np.array([[e.rotation_wxyz, (*e.translation_m, 0.0)] for e in other_exts])
        if other_cams != cameras or first.shape != other.shape or \
                np.abs(first - other).max() > _SAME_CALIBRATION_TOL:
            raise CalibrationFormatError(f"nuScenes info {path.name}: calibration changes at sample {idx}; "
                                         "import each calibration period as its own version")
    return CalibrationBundle(vehicle_id, version, valid_from_ns, valid_to_ns, cameras, extrinsics)
