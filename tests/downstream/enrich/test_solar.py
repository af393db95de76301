"""The sun's position against published values: Meeus's worked examples and NREL's SPA reference case."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from downstream.enrich.errors import EnrichInputError
from downstream.enrich.solar import julian_date, solar_coordinates, sun_position, sun_positions


def utc_ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC).timestamp()) * 10**9


def test_julian_dates_of_known_instants() -> None:
    assert julian_date(0) == 2_440_587.5  # the Unix epoch
    assert julian_date(utc_ns(2000, 1, 1, 12)) == 2_451_545.0  # J2000.0 (UT; TT differs by ~64 s)


def test_meeus_example_25a_sun_on_1992_october_13() -> None:
    """Meeus, Astronomical Algorithms (2nd ed.), example 25.a, 1992 Oct 13.0 TD (JD 2448908.5):
    apparent longitude 199.90895°, declination -7.78507°, right ascension 198.38083°, R 0.99766 AU."""
    sun = solar_coordinates(2_448_908.5)
    assert float(sun.apparent_longitude_deg) == pytest.approx(199.90895, abs=1e-4)
    assert float(sun.declination_deg) == pytest.approx(-7.78507, abs=1e-4)
    assert float(sun.right_ascension_deg) == pytest.approx(198.38083, abs=1e-4)
    assert float(sun.distance_au) == pytest.approx(0.99766, abs=1e-5)


def test_meeus_example_28a_equation_of_time() -> None:
    """Meeus example 28.a: on 1992 Oct 13.0 TD the equation of time is 13m 42.6s (13.71 min)."""
    assert float(solar_coordinates(2_448_908.5).equation_of_time_min) == pytest.approx(13.71, abs=0.01)


def test_nrel_spa_reference_case() -> None:
    """Reda & Andreas, NREL/TP-560-34302, Table A5.1: 2003-10-17 12:30:30 local (UTC-7) at 39.742476 N,
    105.1786 W: topocentric zenith 50.11162° (refracted), azimuth 194.34024° from north."""
    sun = sun_position(utc_ns(2003, 10, 17, 19, 30, 30), 39.742476, -105.1786)
    assert sun.elevation_deg == pytest.approx(90.0 - 50.11162, abs=0.01)
    assert sun.azimuth_deg == pytest.approx(194.34024, abs=0.01)
    assert sun.hour_angle_deg > 0  # half past noon local clock, past solar noon


def test_polar_night_and_midnight_sun() -> None:
    """At 80° N the December sun never rises and the June sun never sets (a day of hourly samples)."""
    hours = np.arange(24, dtype=np.int64) * 3600 * 10**9
    december, _, _ = sun_positions(utc_ns(2024, 12, 21) + hours, 80.0, 15.0)
    june, _, _ = sun_positions(utc_ns(2024, 6, 21) + hours, 80.0, 15.0)
    assert december.max() < -6.0 and june.min() > 0.0


def test_noon_sun_is_due_south_north_of_the_tropics() -> None:
    # Find local solar noon at Karlsruhe on the equinox: the elevation peaks where the azimuth is ~180°.
    minutes = utc_ns(2024, 3, 20, 9) + np.arange(0, 6 * 60, dtype=np.int64) * 60 * 10**9
    elevation, azimuth, hour_angle = sun_positions(minutes, 49.0, 8.4)
    peak = int(np.argmax(elevation))
    assert azimuth[peak] == pytest.approx(180.0, abs=0.5) and abs(hour_angle[peak]) < 0.3
    assert elevation[peak] == pytest.approx(90.0 - 49.0, abs=0.7)  # declination ~0 at the equinox


def test_vectorised_equals_scalar() -> None:
    t = utc_ns(2018, 8, 2, 16, 14, 50)
    elevation, azimuth, _ = sun_positions([t, t], [37.72, -33.9], [-122.47, 18.4])
    assert elevation[0] == sun_position(t, 37.72, -122.47).elevation_deg
    assert azimuth[1] == sun_position(t, -33.9, 18.4).azimuth_deg


@pytest.mark.parametrize(("lat", "lon"), [(91.0, 0.0), (0.0, 181.0), (float("nan"), 0.0)])
def test_bad_places_are_rejected(lat: float, lon: float) -> None:
    with pytest.raises(EnrichInputError, match="latitude"):
        sun_position(0, lat, lon)
