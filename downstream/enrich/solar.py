"""The sun's position for a place and a UTC time: the NOAA solar calculator's algorithm.

The NOAA Global Monitoring Laboratory's solar calculator implements the low-precision solar
coordinates of Meeus, *Astronomical Algorithms* (2nd ed., ch. 25, the equation of time of ch. 28)
plus a piecewise refraction model; this module is that algorithm, vectorised over NumPy arrays.

- :func:`solar_coordinates`: apparent longitude, declination, right ascension, distance and the
  equation of time at a Julian date (Meeus example 25.a and 28.a are its tests).
- :func:`sun_position`: elevation above the horizon (refraction included, as the eye or a camera
  sees it) and azimuth (degrees clockwise from true north) at WGS-84 latitude/longitude.

Tested against published values: Meeus's example 25.a to 1e-4° (the same algorithm), and NREL's
SPA reference case (Reda & Andreas 2004, itself good to ±0.0003°) to 0.01° in elevation and
azimuth. Near the horizon refraction varies with the weather by a few tenths of a degree, which no
model of this kind captures. Times are UTC
nanoseconds since the Unix epoch (leap seconds not counted, as in Unix time); ΔT (TT − UT, about
a minute) is neglected, a 0.001° error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from downstream.enrich.errors import EnrichInputError

FloatArray = npt.NDArray[np.float64]
_NS_PER_DAY = 86_400 * 10**9
_UNIX_EPOCH_JD = 2_440_587.5
_J2000_JD = 2_451_545.0


@dataclass(frozen=True, eq=False)
class SolarCoordinates:
    """Geocentric solar coordinates at one or many instants (degrees, AU, minutes of time)."""

    apparent_longitude_deg: FloatArray
    declination_deg: FloatArray
    right_ascension_deg: FloatArray
    distance_au: FloatArray
    equation_of_time_min: FloatArray


@dataclass(frozen=True, slots=True)
class SunPosition:
    """The sun seen from one place at one instant: elevation (refraction included) and azimuth."""

    elevation_deg: float
    azimuth_deg: float
    hour_angle_deg: float  # negative before local solar noon, positive after


def julian_date(t_utc_ns: npt.ArrayLike) -> FloatArray:
    """Julian date of UTC nanoseconds since the Unix epoch (days split off first to keep precision)."""
    t = np.asarray(t_utc_ns, dtype=np.int64)
    days, rest = np.divmod(t, _NS_PER_DAY)
    return np.asarray(_UNIX_EPOCH_JD + days + rest / _NS_PER_DAY, dtype=np.float64)


def solar_coordinates(jd: npt.ArrayLike) -> SolarCoordinates:
    """The sun's apparent position at Julian date(s) ``jd`` (Meeus ch. 25 low precision, ch. 28 EoT)."""
    t = (np.asarray(jd, dtype=np.float64) - _J2000_JD) / 36525.0  # Julian centuries since J2000.0
    l0 = np.mod(280.46646 + t * (36000.76983 + t * 0.0003032), 360.0)
    m = np.radians(357.52911 + t * (35999.05029 - 0.0001537 * t))
    e = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    c = (np.sin(m) * (1.914602 - t * (0.004817 + 0.000014 * t)) + np.sin(2 * m) * (0.019993 - 0.000101 * t)
         + np.sin(3 * m) * 0.000289)
    true_long = l0 + c
    distance = 1.000001018 * (1 - e * e) / (1 + e * np.cos(m + np.radians(c)))
    omega = np.radians(125.04 - 1934.136 * t)
    lam = np.radians(true_long - 0.00569 - 0.00478 * np.sin(omega))
    eps0 = 23.0 + (26.0 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60.0) / 60.0
    eps = np.radians(eps0 + 0.00256 * np.cos(omega))
    ra = np.degrees(np.arctan2(np.cos(eps) * np.sin(lam), np.cos(lam)))
    dec = np.degrees(np.arcsin(np.sin(eps) * np.sin(lam)))
    y = np.tan(eps / 2) ** 2
    l0r = np.radians(l0)
    eot_rad = (y * np.sin(2 * l0r) - 2 * e * np.sin(m) + 4 * e * y * np.sin(m) * np.cos(2 * l0r)
               - 0.5 * y * y * np.sin(4 * l0r) - 1.25 * e * e * np.sin(2 * m))
    return SolarCoordinates(np.mod(np.degrees(lam), 360.0), dec, np.mod(ra, 360.0), distance,
                            4.0 * np.degrees(eot_rad))


def refraction_deg(elevation_deg: npt.ArrayLike) -> FloatArray:
    """Atmospheric refraction (degrees, to add) at a geometric elevation, NOAA's piecewise model."""
    h = np.asarray(elevation_deg, dtype=np.float64)
    tan_h = np.tan(np.radians(np.clip(h, -89.0, 89.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        high = 58.1 / tan_h - 0.07 / tan_h**3 + 0.000086 / tan_h**5
        low = 1735.0 + h * (-518.2 + h * (103.4 + h * (-12.79 + h * 0.711)))
        below = -20.772 / tan_h
    arcsec = np.where(h > 85.0, 0.0, np.where(h > 5.0, high, np.where(h > -0.575, low, below)))
    return np.asarray(arcsec / 3600.0, dtype=np.float64)


def _check_place(lat: FloatArray, lon: FloatArray) -> None:
    if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
        raise EnrichInputError("sun position: latitude and longitude must be finite numbers")
    if np.any(np.abs(lat) > 90.0) or np.any(np.abs(lon) > 180.0):
        raise EnrichInputError(f"sun position: latitude must lie in [-90, 90] and longitude in [-180, 180] "
                               f"degrees, got lat {lat.min()}..{lat.max()}, lon {lon.min()}..{lon.max()}")


def sun_positions(t_utc_ns: npt.ArrayLike, lat_deg: npt.ArrayLike,
                  lon_deg: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(elevation_deg, azimuth_deg, hour_angle_deg)`` arrays, broadcast over the inputs.

    Elevation includes refraction; azimuth is clockwise from true north; longitude east-positive.
    Raises :class:`EnrichInputError` for a non-finite or out-of-range place.
    """
    lat = np.asarray(lat_deg, dtype=np.float64)
    lon = np.asarray(lon_deg, dtype=np.float64)
    _check_place(lat, lon)
    t = np.asarray(t_utc_ns, dtype=np.int64)
    sun = solar_coordinates(julian_date(t))
    minutes_utc = np.mod(t, _NS_PER_DAY) / 60e9
    true_solar_min = np.mod(minutes_utc + sun.equation_of_time_min + 4.0 * lon, 1440.0)
    hour_angle = true_solar_min / 4.0 - 180.0
    ha, phi, dec = np.radians(hour_angle), np.radians(lat), np.radians(sun.declination_deg)
    cos_zen = np.clip(np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.cos(ha), -1.0, 1.0)
    geometric = 90.0 - np.degrees(np.arccos(cos_zen))
    # Meeus 13.5: azimuth from south, westward; +180 turns it into the compass bearing from north.
    azimuth = np.mod(np.degrees(np.arctan2(np.sin(ha), np.cos(ha) * np.sin(phi) - np.tan(dec) * np.cos(phi)))
                     + 180.0, 360.0)
    return geometric + refraction_deg(geometric), azimuth, hour_angle


def sun_position(t_utc_ns: int, lat_deg: float, lon_deg: float) -> SunPosition:
    """The sun at one place and instant; see :func:`sun_positions`."""
    elevation, azimuth, hour_angle = sun_positions(t_utc_ns, lat_deg, lon_deg)
    return SunPosition(float(elevation), float(azimuth), float(hour_angle))
