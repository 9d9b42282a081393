"""The synthetic "true" atmosphere: NO2 columns, wind and clouds as functions of place and day.

Tropospheric NO2 column (mol m-2) at longitude/latitude (degrees) on day ``d``::

    column = (FREE_TROPOSPHERE + seasonal(d) * dispersion(wind)
              * (boundary_layer(lon, lat) + hotspots(lon, lat))) * (1 - reduction(country, d))

- ``FREE_TROPOSPHERE``: 0.4e-5 mol m-2 above the boundary layer, untouched by surface wind.
- ``boundary_layer``: 0.3-1.3e-5 mol m-2 of regional pollution, lowest over the north-western
  ocean; like the plumes it is ventilated by wind, which is why weather alone moves monthly
  country means by 10-20 %, as observed.
- ``hotspots``: Gaussian plumes at the shipped hotspot list (cities and industrial regions,
  peaks 0.3-1.8e-4 mol m-2 before the seasonal factor).
- ``seasonal``: ``1 + 0.3 cos(2 pi (doy - 15) / 365.25)``: winter high, summer low.
- ``dispersion``: ``clip((5 m/s / max(speed, 1 m/s)) ** 0.5, 0.5, 1.8)``: calm days pile NO2 up
  near sources, windy days dilute it. ``speed`` is the synthetic near-surface wind, which is also
  written to the files' ``eastward_wind``/``northward_wind``.
- ``reduction``: the lockdown scenario's fractional reduction of the country containing the
  point, on the scenario's dates (none in other years), or of the scenario region containing
  it when that is larger (a regional lockdown, e.g. northern Italy two days before the rest). It scales the whole tropospheric column
  inside the country's borders, so that with identical weather the expected change of a country
  mean equals the injected reduction. Hotspot-only scenario rows scale just that hotspot's
  plume (a city-only change).

Weather and clouds are smooth random fields (a sum of random plane waves, wavelengths 6-40
degrees), one realisation per calendar day, deterministic for a given seed. By default each
year has its own weather; ``wind_scale`` per year makes a year windier (> 1) or calmer (< 1),
and ``cloud_shift`` per year moves that year's cloud driver (< 0: a sunnier year, e.g. the
lockdown spring of 2020 over western Europe), so that the clear-sky sampling differs
systematically between years.

A second law, ``dispersion_law="plume-inverse"``, checks that the weather adjustment does not
rely on the power law above (which is the form its model fits): only the plumes are
ventilated, as ``clip(4.5 m/s / max(speed, 1 m/s), 0.3, 3)`` (a plume's column falls as the
wind that carries it away), the boundary layer and free troposphere are not::

    column = (FREE_TROPOSPHERE + boundary_layer + seasonal(d) * inverse(wind) * hotspots)
             * (1 - reduction)

With ``uniform_wind`` each day has one wind over the whole domain (the day's mean wind, no
spatial waves).

With ``constant_truth`` the column does not depend on the day at all (``seasonal`` and
``dispersion`` are 1): the only change in time is the lockdown reduction. Wind and clouds are
still drawn and written (the clouds decide which pixels pass qa), so an estimator's sampling
bias can be measured apart from its weather adjustment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

import numpy as np
import pandas as pd

from s5p_lockdown.regions import KM_PER_DEGREE, hotspot_table
from s5p_lockdown.synth.scenario import Scenario

DISPERSION_LAWS = ("power", "plume-inverse")
"""How wind ventilates the column (see the module docstring)."""
FREE_TROPOSPHERE = 0.4e-5
"""Tropospheric NO2 above the boundary layer (mol m-2), not dispersed by surface wind."""


def _plane_waves(rng: np.random.Generator, n_modes: int, wavelength_deg: tuple[float, float]):
    wavelengths = rng.uniform(*wavelength_deg, n_modes)
    angles = rng.uniform(0, 2 * np.pi, n_modes)
    k = 2 * np.pi / wavelengths
    return k * np.cos(angles), k * np.sin(angles), rng.uniform(0, 2 * np.pi, n_modes)


def _evaluate_waves(waves, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Sum of plane waves with unit variance (approximately Gaussian for many modes)."""
    kx, ky, phase = waves
    out = np.zeros(np.shape(lon), dtype=np.float64)
    for i in range(kx.size):
        out += np.cos(kx[i] * lon + ky[i] * lat + phase[i])
    return out * np.sqrt(2.0 / kx.size)


@dataclass(frozen=True)
class DayWeather:
    """Smooth random fields for one day: wind (m s-1) and cloud fraction drivers."""

    mean_wind: tuple[float, float]
    wind_waves_u: tuple
    wind_waves_v: tuple
    wind_amplitude: float
    cloud_waves: tuple
    cloud_bias: float

    def wind(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.wind_amplitude == 0:  # one wind over the whole domain
            return np.full(np.shape(lon), self.mean_wind[0]), np.full(np.shape(lon), self.mean_wind[1])
        u = self.mean_wind[0] + self.wind_amplitude * _evaluate_waves(self.wind_waves_u, lon, lat)
        v = self.mean_wind[1] + self.wind_amplitude * _evaluate_waves(self.wind_waves_v, lon, lat)
        return u, v

    def cloud_fraction(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Effective cloud fraction 0-1, cloudier towards the north."""
        driver = _evaluate_waves(self.cloud_waves, lon, lat) + self.cloud_bias
        driver = driver + 0.025 * (lat - 50.0)
        return 1.0 / (1.0 + np.exp(-2.2 * driver))


@dataclass
class TruthModel:
    """Noise-free NO2, wind and clouds for a scenario (see the module docstring)."""

    scenario: Scenario
    seed: int = 0
    hotspots: pd.DataFrame = field(default_factory=hotspot_table)
    wind_scale: dict[int, float] = field(default_factory=dict)
    same_weather_every_year: bool = False
    cloud_shift: dict[int, float] = field(default_factory=dict)
    constant_truth: bool = False
    dispersion_law: str = "power"
    uniform_wind: bool = False

    def __post_init__(self) -> None:
        if self.dispersion_law not in DISPERSION_LAWS:
            raise ValueError(f"dispersion_law {self.dispersion_law!r}: expected one of {', '.join(DISPERSION_LAWS)}")

    def weather(self, day: date) -> DayWeather:
        """The day's weather, deterministic in (seed, day)."""
        key = day.month * 100 + day.day if self.same_weather_every_year else day.toordinal()
        rng = np.random.default_rng([self.seed, key, 1])
        scale = self.wind_scale.get(day.year, 1.0)
        mean = rng.normal([4.0, 0.5], [2.5, 2.0]) * scale
        return DayWeather(
            mean_wind=(float(mean[0]), float(mean[1])),
            wind_waves_u=_plane_waves(rng, 12, (8, 40)),
            wind_waves_v=_plane_waves(rng, 12, (8, 40)),
            wind_amplitude=0.0 if self.uniform_wind else 3.0 * scale,
            cloud_waves=_plane_waves(rng, 16, (6, 30)),
            cloud_bias=float(rng.normal(0.0, 0.5)) + self.cloud_shift.get(day.year, 0.0),
        )

    @cached_property
    def _hotspot_arrays(self):
        h = self.hotspots
        return (
            h["name"].to_numpy(str),
            h["lon"].to_numpy(float),
            h["lat"].to_numpy(float),
            h["radius_km"].to_numpy(float),
            h["peak_mol_m2"].to_numpy(float),
        )

    def anthropogenic(self, lon: np.ndarray, lat: np.ndarray, day: date | None = None) -> np.ndarray:
        """Sum of hotspot plumes (mol m-2) before seasonal, weather and country lockdown
        factors; on ``day``, plumes with a hotspot-only scenario reduction are reduced."""
        out = np.zeros(np.shape(lon))
        plume_cuts = self.scenario.hotspot_reduction_on(day) if day is not None else {}
        for name, h_lon, h_lat, radius, peak in zip(*self._hotspot_arrays):
            peak = peak * (1.0 - plume_cuts.get(name, 0.0))
            # Cheap pre-selection: plumes beyond 4 radii contribute < 0.04 % of their peak.
            reach = 4 * radius / KM_PER_DEGREE
            near = (np.abs(lat - h_lat) < reach) & (
                np.abs(lon - h_lon) < reach / max(np.cos(np.radians(h_lat)), 0.2)
            )
            if not near.any():
                continue
            dx = (lon[near] - h_lon) * np.cos(np.radians(h_lat)) * KM_PER_DEGREE
            dy = (lat[near] - h_lat) * KM_PER_DEGREE
            out[near] += peak * np.exp(-(dx * dx + dy * dy) / (2 * radius * radius))
        return out

    @staticmethod
    def boundary_layer(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Regional boundary-layer NO2 (mol m-2) before seasonal and wind factors."""
        return 0.8e-5 + 0.3e-5 * np.cos(np.radians(3 * (lat - 30))) + 0.2e-5 * np.tanh(lon / 20)

    @staticmethod
    def seasonal(day: date) -> float:
        doy = calendar_day(day)
        return 1.0 + 0.3 * np.cos(2 * np.pi * (doy - 15) / 365.25)

    @staticmethod
    def dispersion(speed: np.ndarray) -> np.ndarray:
        """The power law: factor on the boundary layer and the plumes."""
        return np.clip((5.0 / np.maximum(speed, 1.0)) ** 0.5, 0.5, 1.8)

    @staticmethod
    def plume_dispersion(speed: np.ndarray) -> np.ndarray:
        """The ``plume-inverse`` law: factor on the plumes alone."""
        return np.clip(4.5 / np.maximum(speed, 1.0), 0.3, 3.0)

    def column(
        self,
        lon: np.ndarray,
        lat: np.ndarray,
        day: date,
        countries: np.ndarray,
        weather: DayWeather | None = None,
        lockdown: bool = True,
        regions: np.ndarray | None = None,
    ) -> np.ndarray:
        """True tropospheric NO2 column (mol m-2) at the points.

        ``countries`` holds the ISO3 code of each point ('' outside every country), ``regions``
        (optional) the id of the scenario region containing it ('' outside them).
        """
        weather = weather or self.weather(day)
        u, v = weather.wind(lon, lat)
        plumes = self.anthropogenic(lon, lat, day if lockdown else None)
        ventilated = self.boundary_layer(lat, lon) + plumes
        if self.constant_truth:
            base = FREE_TROPOSPHERE + ventilated
        elif self.dispersion_law == "plume-inverse":
            speed = np.hypot(u, v)
            base = (FREE_TROPOSPHERE + self.boundary_layer(lat, lon)
                    + self.seasonal(day) * self.plume_dispersion(speed) * plumes)
        else:
            base = FREE_TROPOSPHERE + self.seasonal(day) * self.dispersion(np.hypot(u, v)) * ventilated
        if lockdown:
            base = base * (1.0 - self.scenario.reduction_of(countries, day, regions))
        return base


def calendar_day(day: date) -> float:
    """Day of year on a 365-day calendar (29 February = 59.5), so that the same calendar date
    gets the same seasonal value in leap and common years."""
    if day.month == 2 and day.day == 29:
        return 59.5
    return float(date(2001, day.month, day.day).timetuple().tm_yday)
