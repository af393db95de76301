"""The local projection against an exact WGS-84 ECEF → ENU conversion."""

from __future__ import annotations

import numpy as np
import pytest

from downstream.enrich.errors import MapQueryError
from downstream.enrich.maps.geo import WGS84_A_M, WGS84_E2, LocalProjection


def ecef(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    phi, lam = np.radians(lat_deg), np.radians(lon_deg)
    n = WGS84_A_M / np.sqrt(1 - WGS84_E2 * np.sin(phi) ** 2)
    return np.stack([n * np.cos(phi) * np.cos(lam), n * np.cos(phi) * np.sin(lam), n * (1 - WGS84_E2) * np.sin(phi)], -1)


def enu(lat0: float, lon0: float, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lam = np.radians(lat0), np.radians(lon0)
    d = ecef(lat, lon) - ecef(np.array(lat0), np.array(lon0))
    east = -np.sin(lam) * d[:, 0] + np.cos(lam) * d[:, 1]
    north = -np.sin(phi) * np.cos(lam) * d[:, 0] - np.sin(phi) * np.sin(lam) * d[:, 1] + np.cos(phi) * d[:, 2]
    return np.stack([east, north], axis=1)


@pytest.mark.parametrize(("lat0", "lon0"), [(49.006468, 8.435355), (34.13817, -118.36365), (1.2882, 103.7848)])
def test_within_half_a_metre_of_exact_enu_within_2_km(lat0: float, lon0: float) -> None:
    angles = np.radians(np.arange(0, 360, 15))
    lat = lat0 + 2000 * np.sin(angles) / 111_000
    lon = lon0 + 2000 * np.cos(angles) / (111_000 * np.cos(np.radians(lat0)))
    proj = LocalProjection(lat0, lon0)
    assert np.abs(proj.to_local(lat, lon) - enu(lat0, lon0, lat, lon)).max() < 0.5
    back_lat, back_lon = proj.to_geo(proj.to_local(lat, lon))
    assert np.abs(back_lat - lat).max() < 1e-12 and np.abs(back_lon - lon).max() < 1e-12


def test_across_the_antimeridian() -> None:
    xy = LocalProjection(0.0, 179.9999).to_local([0.0], [-179.9999])
    assert xy[0, 0] == pytest.approx(2 * 0.0001 * 111_319.49, rel=1e-4)


def test_bad_inputs() -> None:
    with pytest.raises(MapQueryError):
        LocalProjection(89.5, 0.0)
    with pytest.raises(MapQueryError):
        LocalProjection(0.0, 0.0).to_local([0.0, 1.0], [0.0])
    with pytest.raises(MapQueryError):
        LocalProjection(0.0, 0.0).to_local([float("nan")], [0.0])
