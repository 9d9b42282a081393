"""Generate a synthetic archive of S5P L2 NO2 orbits with known truth.

Layout written under the archive folder::

    YYYY/MM/DD/S5P_<stream>_L2__NO2____<start>_<end>_<orbit>_....nc   one file per orbit
    scenario.csv        injected reductions (iso3, reduction, start, end)
    truth_daily.csv     noise-free daily country and hotspot means (see
                        :meth:`ArchiveGenerator.daily_truth`)
    synth.json          the generator settings, seed and software version

Each orbit crossing the box on a day is written (about 5-6 a day over Europe). The measured
column is the true column plus Gaussian retrieval noise whose standard deviation is the
``precision`` written to the file; clouds and snow lower ``qa_value`` below 0.75; about 0.3 % of
pixels are failed retrievals (fill values, qa 0).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from s5p_lockdown import __version__
from s5p_lockdown.errors import ConfigError
from s5p_lockdown.regions import KM_PER_DEGREE, country_of_points, load_countries
from s5p_lockdown.synth.field import DayWeather, TruthModel, calendar_day
from s5p_lockdown.synth.orbit import orbits_crossing_day, swath, swath_overlaps
from s5p_lockdown.synth.scenario import Scenario
from s5p_lockdown.synth.writer import OrbitFields, product_name, write_orbit

log = logging.getLogger(__name__)

EUROPE_BOX = (34.0, 72.0, -25.0, 45.0)
"""(south, north, west, east), degrees: the project's default analysis region."""

FAILED_RETRIEVAL_FRACTION = 0.003
TRUTH_RESOLUTION_DEG = 0.2
#: Spacing (km) of the lattice a hotspot's true mean is taken on: fine enough for the smallest
#: hotspots (12-15 km radius hold ~110-180 points; a 0.2 degree lattice held 1-3, too few for a
#: disc on a border or a steep plume).
HOTSPOT_TRUTH_SPACING_KM = 2.0


@dataclass
class SynthSettings:
    """Settings of a synthetic archive (all serialised to ``synth.json``).

    ``across_track_step``/``along_track_step`` aggregate native pixels (1 = full resolution,
    450 pixels x 5.5 km scanlines); ``lat_band`` limits the scanlines written (degrees);
    ``wind_scale`` maps a year to a wind-speed multiplier (e.g. ``{2020: 1.4}``: a windier
    lockdown year); ``same_weather_every_year`` reuses each calendar day's weather in every year;
    ``cloud_shift`` maps a year to a shift of its cloud driver (e.g. ``{2020: -0.6}``: a sunnier
    lockdown year, so clear-sky sampling differs between years); ``constant_truth`` makes the
    true column constant in time apart from the lockdown (no season, no wind dispersion);
    ``dispersion_law`` (``power`` or ``plume-inverse``) and ``uniform_wind`` (one wind a day
    over the whole domain) choose how wind ventilates the column
    (:mod:`s5p_lockdown.synth.field`).
    """

    seed: int = 0
    box: tuple[float, float, float, float] = EUROPE_BOX
    lat_band: tuple[float, float] = (28.0, 74.0)
    across_track_step: int = 1
    along_track_step: int = 1
    stream: str = "RPRO"
    processor_version: str = "2.4.0"
    collection: int = 3
    noise: bool = True
    wind_scale: dict[int, float] = field(default_factory=dict)
    same_weather_every_year: bool = False
    cloud_shift: dict[int, float] = field(default_factory=dict)
    constant_truth: bool = False
    dispersion_law: str = "power"
    uniform_wind: bool = False


def daterange(start: date, end: date) -> list[date]:
    """Days from ``start`` to ``end`` inclusive."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


class ArchiveGenerator:
    """Writes synthetic orbits and their truth for a scenario (see the module docstring)."""

    def __init__(self, settings: SynthSettings, scenario: Scenario | None = None, regions=None):
        """``regions``: the :class:`s5p_lockdown.region_files.RegionFile` whose ids the
        scenario's region rows name (needed only when it has some)."""
        self.settings = settings
        self.scenario = scenario or Scenario.default()
        self.scenario_regions = _scenario_regions(self.scenario, regions)
        self.model = TruthModel(
            self.scenario,
            seed=settings.seed,
            wind_scale=dict(settings.wind_scale),
            same_weather_every_year=settings.same_weather_every_year,
            cloud_shift=dict(settings.cloud_shift),
            constant_truth=settings.constant_truth,
            dispersion_law=settings.dispersion_law,
            uniform_wind=settings.uniform_wind,
        )
        self.countries = load_countries()
        self._truth_points = None
        self._hotspot_truth = None

    # --- orbits -------------------------------------------------------------------------------
    def orbit_fields(self, geometry, day: date, orbit: int, weather: DayWeather) -> OrbitFields:
        """Measured values for one orbit: truth + noise, clouds, snow, qa, wind."""
        s = self.settings
        lon, lat = geometry.longitude, geometry.latitude
        rng = np.random.default_rng([s.seed, orbit, 7])
        countries = country_of_points(lon, lat, self.countries)
        truth = self.model.column(lon, lat, day, countries, weather, regions=self.region_of(lon, lat))
        aggregation = s.across_track_step * s.along_track_step
        cloud = np.clip(weather.cloud_fraction(lon, lat) + rng.normal(0, 0.05, lon.shape), 0, 1)
        precision = np.sqrt((1.2e-5) ** 2 + (0.3 * np.clip(truth - 1.5e-5, 0, None)) ** 2)
        precision = precision * (1 + cloud) / np.sqrt(aggregation)
        measured = truth + (rng.normal(0, 1, lon.shape) * precision if s.noise else 0.0)
        doy = calendar_day(day)
        snow_line = 60.0 + 8.0 * np.sin(2 * np.pi * (doy - 80) / 365.25)
        snow = (lat > snow_line + rng.normal(0, 2, lon.shape)).astype(np.uint8) * 103
        qa = np.select([cloud < 0.2, cloud < 0.35, cloud < 0.7], [1.0, 0.84, 0.74], 0.5)
        qa = np.where(snow > 0, 0.5, qa)
        failed = rng.random(lon.shape) < FAILED_RETRIEVAL_FRACTION
        qa = np.where(failed, 0.0, qa)
        u, v = weather.wind(lon, lat)
        return OrbitFields(
            column=np.where(failed, np.nan, measured),
            precision=np.where(failed, np.nan, precision),
            qa=qa,
            cloud_fraction=cloud,
            eastward_wind=u + rng.normal(0, 0.3, lon.shape),
            northward_wind=v + rng.normal(0, 0.3, lon.shape),
            surface_pressure=101_000.0 + 1_500.0 * np.tanh(u / 10.0),
            snow_ice=snow,
            stratospheric_column=3.0e-5 + 1.0e-5 * (lat - 30.0) / 40.0,
        )

    def region_of(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray | None:
        """Id of the scenario region containing each point (``""`` outside them), None when the
        scenario has no region rows."""
        if not self.scenario_regions:
            return None
        return country_of_points(lon, lat, self.scenario_regions)

    def write_day(self, archive: Path, day: date) -> list[Path]:
        """Write every orbit of ``day`` that crosses the box; returns the written paths."""
        s = self.settings
        weather = self.model.weather(day)
        written = []
        for orbit in orbits_crossing_day(day):
            geometry = swath(
                orbit, day, lat_band=s.lat_band, across_track_step=s.across_track_step,
                along_track_step=s.along_track_step,
            )
            if not swath_overlaps(geometry, s.box):
                continue
            fields = self.orbit_fields(geometry, day, orbit, weather)
            name = product_name(geometry, orbit, s.stream, s.processor_version, s.collection)
            folder = archive / f"{day:%Y/%m/%d}"
            written.append(write_orbit(folder, geometry, fields, name))
        return written

    # --- truth --------------------------------------------------------------------------------
    def _truth_grid(self):
        if self._truth_points is None:
            south, north, west, east = self.settings.box
            r = TRUTH_RESOLUTION_DEG
            lat, lon = np.meshgrid(
                np.arange(south + r / 2, north, r), np.arange(west + r / 2, east, r), indexing="ij"
            )
            lon, lat = lon.ravel(), lat.ravel()
            self._truth_points = (lon, lat, country_of_points(lon, lat, self.countries),
                                  self.region_of(lon, lat))
        return self._truth_points

    def _hotspot_lattice(self):
        """The hotspots' truth points: lon, lat, countries and regions of a lattice of
        :data:`HOTSPOT_TRUTH_SPACING_KM` inside each hotspot's radius and the box, and each
        hotspot's slice of those arrays."""
        if self._hotspot_truth is None:
            south, north, west, east = self.settings.box
            lons, lats, slices, start = [], [], {}, 0
            for row in self.model.hotspots.itertuples(index=False):
                n = int(np.ceil(row.radius_km / HOTSPOT_TRUTH_SPACING_KM))
                dy, dx = np.meshgrid(*2 * [np.arange(-n, n + 1) * HOTSPOT_TRUTH_SPACING_KM], indexing="ij")
                inside = dx * dx + dy * dy <= row.radius_km**2
                lat = row.lat + dy[inside] / KM_PER_DEGREE
                lon = row.lon + dx[inside] / (KM_PER_DEGREE * np.cos(np.radians(row.lat)))
                keep = (lat >= south) & (lat <= north) & (lon >= west) & (lon <= east)
                lons.append(lon[keep])
                lats.append(lat[keep])
                slices[row.name] = slice(start, start + int(keep.sum()))
                start += int(keep.sum())
            lon, lat = np.concatenate(lons or [np.zeros(0)]), np.concatenate(lats or [np.zeros(0)])
            self._hotspot_truth = (lon, lat, country_of_points(lon, lat, self.countries),
                                   self.region_of(lon, lat), slices)
        return self._hotspot_truth

    def _weighted_sums(self, lon, lat, countries, regions, day: date, weather: DayWeather) -> np.ndarray:
        """(points, 4): cos(lat) and cos(lat) times the true column with and without the
        lockdown and times the wind speed."""
        with_lockdown = self.model.column(lon, lat, day, countries, weather, regions=regions)
        without = self.model.column(lon, lat, day, countries, weather, lockdown=False)
        weight = np.cos(np.radians(lat))
        speed = np.hypot(*weather.wind(lon, lat))
        return np.stack([weight, with_lockdown * weight, without * weight, speed * weight], axis=1)

    def daily_truth(self, day: date) -> pd.DataFrame:
        """Noise-free regional means for ``day``: one row per country (``kind`` country, code in
        ``iso3``) and per hotspot (``kind`` hotspot, name in ``iso3``) with ``no2_truth`` (with
        the lockdown), ``no2_no_lockdown`` (mol m-2; means over a 0.2 degree lattice inside the
        region and the box, a 2 km one inside a hotspot's radius, weighted by cos(latitude)), ``reduction`` (injected fraction that
        day: the country's, or the hotspot-only plume reduction) and ``wind_speed`` (m s-1);
        and per region of the scenario's region rows (``kind`` region, id in ``iso3``;
        ``reduction`` the larger of the region's and its country's in force)."""
        lon, lat, countries, regions = self._truth_grid()
        weather = self.model.weather(day)
        frame = pd.DataFrame(self._weighted_sums(lon, lat, countries, regions, day, weather),
                             columns=["w", "a", "b", "s"]).assign(iso3=countries)
        sums = frame[frame["iso3"] != ""].groupby("iso3").sum(numeric_only=True)
        *points, slices = self._hotspot_lattice()
        values = self._weighted_sums(*points, day, weather)
        hotspot_sums = {name: values[part].sum(axis=0) for name, part in slices.items()
                        if part.stop > part.start}
        if hotspot_sums:
            sums = pd.concat([sums, pd.DataFrame.from_dict(hotspot_sums, orient="index",
                                                           columns=["w", "a", "b", "s"])])
        kinds = {c: "country" for c in sums.index} | {name: "hotspot" for name in hotspot_sums}
        if regions is not None:
            inside = regions != ""
            region_sums = frame[inside].groupby(regions[inside]).sum(numeric_only=True)
            sums = pd.concat([sums, region_sums[["w", "a", "b", "s"]]])
            kinds |= {region: "region" for region in region_sums.index}
        country_cuts = self.scenario.reduction_on(day)
        reductions = {**country_cuts, **self.scenario.hotspot_reduction_on(day)}
        region_cuts = self.scenario.region_reduction_on(day)
        for region, iso3 in self.scenario.regions["iso3"].items():
            reductions[region] = max(region_cuts.get(region, 0.0), country_cuts.get(iso3, 0.0))
        return pd.DataFrame(
            {
                "date": day.isoformat(),
                "kind": [kinds[c] for c in sums.index],
                "iso3": sums.index,
                "no2_truth": sums["a"] / sums["w"],
                "no2_no_lockdown": sums["b"] / sums["w"],
                "reduction": [reductions.get(c, 0.0) for c in sums.index],
                "wind_speed": sums["s"] / sums["w"],
            }
        ).reset_index(drop=True)

    # --- archive ------------------------------------------------------------------------------
    def generate(
        self,
        archive: str | Path,
        days: Iterable[date],
        progress: Callable[[str], None] | None = None,
    ) -> list[Path]:
        """Write all orbits of ``days`` plus scenario, truth and settings files."""
        archive = Path(archive)
        archive.mkdir(parents=True, exist_ok=True)
        days = sorted(set(days))
        written, truth = [], []
        started = time.perf_counter()
        for index, day in enumerate(days, 1):
            written += self.write_day(archive, day)
            truth.append(self.daily_truth(day))
            if progress:
                elapsed = time.perf_counter() - started
                progress(
                    f"[{index}/{len(days)}] {day}: {len(written)} orbit files, "
                    f"{elapsed:.1f} s elapsed, ~{elapsed / index * (len(days) - index):.0f} s left"
                )
        self.scenario.write(archive / "scenario.csv")
        truth_frame = pd.concat(truth, ignore_index=True)
        truth_path = archive / "truth_daily.csv"
        if truth_path.exists():  # regenerating part of an archive: keep other days' truth
            previous = pd.read_csv(truth_path)
            previous = previous[~previous["date"].isin(truth_frame["date"])]
            truth_frame = pd.concat([previous, truth_frame]).sort_values(["date", "iso3"])
        _write_csv_atomically(truth_frame, truth_path)
        settings = asdict(self.settings)
        settings.update(software_version=__version__, days=[d.isoformat() for d in days])
        (archive / "synth.json").write_text(json.dumps(settings, indent=2, default=str))
        return written


def _scenario_regions(scenario: Scenario, regions) -> dict:
    """The polygons (id -> Country) of the regions the scenario's region rows name; a row
    naming a region the region file lacks, or region rows without a region file, is a
    ConfigError."""
    wanted = list(scenario.regions.index)
    if not wanted:
        return {}
    if regions is None:
        raise ConfigError(f"the scenario reduces regions {wanted[:5]} but no region file is given "
                          "(the workflow's regions section)")
    unknown = [r for r in wanted if r not in regions.regions]
    if unknown:
        raise ConfigError(f"the scenario reduces regions {unknown[:10]} that {regions.spec.file} does not have")
    return {r: regions.regions[r] for r in wanted}


def _write_csv_atomically(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
