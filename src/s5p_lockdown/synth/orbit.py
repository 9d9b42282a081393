"""Sentinel-5P orbit and TROPOMI pixel geometry for synthetic orbits.

A circular sun-synchronous orbit (inclination 98.7 degrees, ~14.2 orbits a day, ascending node
at 13:30 local solar time) on a spherical Earth. The sub-satellite point moves along a great
circle in the inertial frame while the Earth turns underneath. Across track, 450 ground pixels
are spaced uniformly in *scan angle*, so on the ground they widen towards the swath edges
(~3.5 km at nadir to ~15 km at the edges; ~2,700 km swath). Along track a scanline lasts 1.08 s
(7 km) before 2019-08-06 and 0.84 s (5.5 km) after. Pixel corners are shared between
neighbouring pixels, as in the real product: corner (i, j) of the corner grid is pixel corner 0
of pixel (i, j), corner 1 of (i, j-1), corner 2 of (i-1, j-1) and corner 3 of (i-1, j).

Conventions: angles in degrees, longitudes in [-180, 180), times as numpy datetime64[ms] UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

EARTH_RADIUS_KM = 6371.0
ALTITUDE_KM = 824.0
INCLINATION_DEG = 98.7
ORBITS_PER_DAY = 14.2
ORBIT_PERIOD_S = 86400.0 / ORBITS_PER_DAY
SIDEREAL_DAY_S = 86164.1
ASCENDING_NODE_LOCAL_HOUR = 13.5
N_GROUND_PIXELS = 450
NADIR_PIXEL_WIDTH_KM = 3.5
ALONG_TRACK_CHANGE = date(2019, 8, 6)
"""From this day on a scanline is 0.84 s (5.5 km along track), before it 1.08 s (7 km)."""

REFERENCE_ORBIT = 12367
REFERENCE_ORBIT_START = np.datetime64("2020-03-03T01:35:47", "ms")
"""A real orbit start (file name of orbit 12367), anchoring synthetic orbit numbers and times."""

_ASC_NODE_AFTER_START_S = 0.75 * ORBIT_PERIOD_S
"""Orbit files start near the southern turning point of the night side; the ascending equator
crossing of the day side follows about three quarters of an orbit later (orbit 12367: start
01:35:47, day-side equator crossing ~02:26:30)."""


def scanline_seconds(day: date) -> float:
    """Duration of one scanline (s): 1.08 before 2019-08-06, 0.84 from that day on."""
    return 0.84 if day >= ALONG_TRACK_CHANGE else 1.08


def scanline_phase(orbit: int) -> float:
    """Where an orbit's scanlines start, as a fraction of a scanline in [0, 1): the orbit number
    times the golden ratio, modulo 1 (evenly spread over consecutive orbits, deterministic)."""
    return (orbit * 0.6180339887498949) % 1.0


def orbit_start(orbit: int) -> np.datetime64:
    """Nominal start time (UTC) of an orbit file."""
    return REFERENCE_ORBIT_START + np.timedelta64(
        int(round((orbit - REFERENCE_ORBIT) * ORBIT_PERIOD_S * 1000)), "ms"
    )


def equator_crossing(orbit: int) -> np.datetime64:
    """Time (UTC) of the orbit's ascending (day-side) equator crossing."""
    return orbit_start(orbit) + np.timedelta64(int(_ASC_NODE_AFTER_START_S * 1000), "ms")


def orbits_crossing_day(day: date) -> list[int]:
    """Orbits whose ascending equator crossing falls on ``day`` (UTC)."""
    day_start = np.datetime64(datetime(day.year, day.month, day.day), "ms")
    first = REFERENCE_ORBIT + int(
        np.floor(
            ((day_start - REFERENCE_ORBIT_START) / np.timedelta64(1, "s") - _ASC_NODE_AFTER_START_S)
            / ORBIT_PERIOD_S
        )
    )
    orbits = []
    for orbit in range(first - 1, first + 17):
        crossing = equator_crossing(orbit)
        if day_start <= crossing < day_start + np.timedelta64(1, "D"):
            orbits.append(orbit)
    return orbits


@dataclass(frozen=True)
class SwathGeometry:
    """Geometry of a run of scanlines of one orbit.

    Attributes (n = scanlines, m = ground pixels):
    ``times`` (n,) datetime64[ms]; ``latitude``/``longitude`` (n, m) pixel centres;
    ``corner_latitude``/``corner_longitude`` (n+1, m+1) corner grid; ``satellite_latitude``/
    ``satellite_longitude`` (n,); ``viewing_zenith_angle`` (m,) degrees at the ground;
    ``across_track_km`` (m,) pixel width.
    """

    times: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray
    corner_latitude: np.ndarray
    corner_longitude: np.ndarray
    satellite_latitude: np.ndarray
    satellite_longitude: np.ndarray
    viewing_zenith_angle: np.ndarray
    across_track_km: np.ndarray

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel corner arrays (n, m, 4) in the product's corner order (0: i,j; 1: i,j+1;
        2: i+1,j+1; 3: i+1,j)."""
        out = []
        for grid in (self.corner_latitude, self.corner_longitude):
            out.append(
                np.stack([grid[:-1, :-1], grid[:-1, 1:], grid[1:, 1:], grid[1:, :-1]], axis=-1)
            )
        return out[0], out[1]


def _scan_angles(n_pixels: int) -> np.ndarray:
    """Across-track scan-angle edges (radians), uniform so that nadir pixels are 3.5 km wide
    for the full 450-pixel swath. ``n_pixels`` < 450 aggregates neighbouring pixels."""
    step = NADIR_PIXEL_WIDTH_KM / ALTITUDE_KM
    half = step * N_GROUND_PIXELS / 2
    return np.linspace(-half, half, n_pixels + 1)


def _earth_central_angle(scan: np.ndarray) -> np.ndarray:
    """Earth central angle (radians) between nadir and the ground point seen at ``scan``."""
    ratio = (EARTH_RADIUS_KM + ALTITUDE_KM) / EARTH_RADIUS_KM
    return np.arcsin(np.clip(ratio * np.sin(scan), -1, 1)) - scan


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    lat_r, lon_r = np.radians(lat), np.radians(lon)
    return np.stack(
        [np.cos(lat_r) * np.cos(lon_r), np.cos(lat_r) * np.sin(lon_r), np.sin(lat_r)], axis=-1
    )


def _to_latlon(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    lat = np.degrees(np.arctan2(z, np.hypot(x, y)))
    lon = np.degrees(np.arctan2(y, x))
    return lat, np.where(lon >= 180.0, lon - 360.0, lon)


def _ground_track(orbit: int, seconds_from_crossing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-satellite (lat, lon) in degrees at times relative to the ascending crossing."""
    crossing = equator_crossing(orbit)
    utc_hours = (crossing - crossing.astype("datetime64[D]")) / np.timedelta64(1, "h")
    node_lon = (ASCENDING_NODE_LOCAL_HOUR - utc_hours) * 15.0
    arg_lat = 2 * np.pi * seconds_from_crossing / ORBIT_PERIOD_S
    inc = np.radians(INCLINATION_DEG)
    lat = np.degrees(np.arcsin(np.sin(inc) * np.sin(arg_lat)))
    inertial = np.degrees(np.arctan2(np.cos(inc) * np.sin(arg_lat), np.cos(arg_lat)))
    earth_turn = 360.0 * seconds_from_crossing / SIDEREAL_DAY_S
    lon = np.mod(node_lon + inertial - earth_turn + 180.0, 360.0) - 180.0
    return lat, lon


def _crossing_seconds_for_latitude(lat: float) -> float:
    """Seconds after the ascending crossing at which the ground track reaches ``lat``."""
    inc = np.radians(INCLINATION_DEG)
    arg_lat = np.arcsin(np.clip(np.sin(np.radians(lat)) / np.sin(inc), -1, 1))
    return float(arg_lat / (2 * np.pi) * ORBIT_PERIOD_S)


def swath(
    orbit: int,
    day: date,
    lat_band: tuple[float, float] | None = (28.0, 74.0),
    n_scanlines: int | None = None,
    across_track_step: int = 1,
    along_track_step: int = 1,
) -> SwathGeometry:
    """Geometry of the day-side part of ``orbit``.

    Parameters
    ----------
    lat_band
        Keep scanlines whose sub-satellite latitude lies in this band (degrees); ``None`` keeps
        the whole day side, pole to pole.
    n_scanlines
        With ``lat_band=None``: number of scanlines centred on the equator crossing (a real full
        OFFL orbit has ~3,200-4,200); default: the day side (argument of latitude ±90°).
    across_track_step, along_track_step
        Aggregate this many native pixels into one (keeps synthetic files small). The across-track
        step must divide 450.
    """
    if N_GROUND_PIXELS % across_track_step:
        raise ValueError(f"across_track_step {across_track_step} must divide {N_GROUND_PIXELS}")
    dt = scanline_seconds(day) * along_track_step
    # The scanline clock is not locked to the orbit: each orbit's scanlines start at their own
    # fraction of a scanline (from the orbit number), so the latitudes sampled differ from orbit
    # to orbit as in real data. (With one phase for all, every orbit sampled the same latitudes,
    # and the mean of a small hotspot depended on where they fell: a bias of up to 4 % between
    # the years' pixel sizes in bench_accuracy's noiseless mode.)
    phase = scanline_phase(orbit) * dt
    if lat_band is not None:
        t0 = _crossing_seconds_for_latitude(lat_band[0]) - phase
        t1 = _crossing_seconds_for_latitude(lat_band[1])
        n_scan = max(int(np.ceil((t1 - t0) / dt)), 1)
    else:
        n_scan = n_scanlines or int(round(0.5 * ORBIT_PERIOD_S / dt))
        t0 = -0.5 * n_scan * dt - phase
    edge_seconds = t0 + np.arange(n_scan + 1) * dt
    centre_seconds = edge_seconds[:-1] + 0.5 * dt

    # Corner grid: along-track edge lines x across-track scan-angle edges.
    track_lat, track_lon = _ground_track(orbit, edge_seconds)
    ahead_lat, ahead_lon = _ground_track(orbit, edge_seconds + 0.5)
    nadir = _unit_vectors(track_lat, track_lon)
    ahead = _unit_vectors(ahead_lat, ahead_lon)
    # Across-track unit vector: perpendicular to nadir and to the direction of motion, pointing
    # to the right of the ground track (east for an ascending, north-going pass).
    across = np.cross(ahead - nadir, nadir)
    across /= np.linalg.norm(across, axis=-1, keepdims=True)
    n_pix = N_GROUND_PIXELS // across_track_step
    scan_edges = _scan_angles(n_pix)
    gamma = _earth_central_angle(scan_edges)
    corners = (
        np.cos(gamma)[None, :, None] * nadir[:, None, :]
        + np.sin(gamma)[None, :, None] * across[:, None, :]
    )
    corner_lat, corner_lon = _to_latlon(corners)

    # Pixel centres: normalised mean of the four corner vectors.
    centre = corners[:-1, :-1] + corners[:-1, 1:] + corners[1:, 1:] + corners[1:, :-1]
    centre /= np.linalg.norm(centre, axis=-1, keepdims=True)
    lat, lon = _to_latlon(centre)

    sat_lat, sat_lon = _ground_track(orbit, centre_seconds)
    scan_centres = 0.5 * (scan_edges[:-1] + scan_edges[1:])
    vza = np.degrees(scan_centres + _earth_central_angle(scan_centres))
    width = EARTH_RADIUS_KM * np.diff(gamma)
    crossing = equator_crossing(orbit)
    times = crossing + (centre_seconds * 1000).round().astype("int64").astype("timedelta64[ms]")
    return SwathGeometry(
        times=times,
        latitude=lat,
        longitude=lon,
        corner_latitude=corner_lat,
        corner_longitude=corner_lon,
        satellite_latitude=sat_lat,
        satellite_longitude=sat_lon,
        viewing_zenith_angle=vza,
        across_track_km=width,
    )


def swath_overlaps(geometry: SwathGeometry, box: tuple[float, float, float, float]) -> bool:
    """True when any pixel centre lies in ``box`` = (south, north, west, east), degrees."""
    south, north, west, east = box
    lat, lon = geometry.latitude, geometry.longitude
    inside = (lat >= south) & (lat <= north) & (np.mod(lon - west, 360.0) <= east - west)
    return bool(inside.any())
