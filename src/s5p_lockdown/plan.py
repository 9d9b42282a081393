"""Everything the workflow derives from its configuration, computed in one place.

The Snakefile validates the config against ``workflow/schemas/config.schema.yaml`` (which fills
in defaults) and then calls :func:`make_plan`; rules only look values up in the plan. Errors
here are :class:`~s5p_lockdown.errors.ConfigError` naming the config key, raised before any job
runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from s5p_lockdown.archive import index_local_archive
from s5p_lockdown.errors import ConfigError
from s5p_lockdown.gridding import GridSpec
from s5p_lockdown.lockdowns import load_lockdown_dates, load_region_lockdowns
from s5p_lockdown.windows import WindowSettings, country_windows, days_of, region_windows, window_id

if TYPE_CHECKING:  # region files and masks (xarray, shapely, geopandas: ~0.4 s of every
    # Snakemake job's start-up) are imported only when the config has a regions section
    from s5p_lockdown.region_files import RegionFile

MAP_COUNTRY = "EUROPE"
"""Pseudo-country whose windows are the common reference window, used for the Europe maps."""


@dataclass
class Plan:
    config: dict
    results: Path
    source: str
    grid: GridSpec
    lockdowns: pd.DataFrame
    windows: pd.DataFrame
    days: list[date]
    all_countries: list[str]
    """Every country of the lockdown table, selected or not: the country masks are built for
    all of them, so that selecting countries does not invalidate the cached masks."""
    files_by_day: dict[date, list[str]] = field(default_factory=dict)
    region_file: RegionFile | None = None
    """The regions of the config's ``regions`` section (None without one)."""
    region_windows: pd.DataFrame | None = None
    """Windows of those regions (:func:`s5p_lockdown.windows.region_windows`)."""

    @property
    def region_sets(self) -> list[str]:
        """The region sets the attribution jobs write: countries and hotspots, and regions
        when the config names a region file."""
        from s5p_lockdown.regions import REGION_SETS

        return [kind for kind in REGION_SETS if kind != "regions" or self.region_file is not None]

    # --- weeks: the unit of work for generating and gridding ---------------------------------
    @property
    def weeks(self) -> list[str]:
        return sorted({week_of(d) for d in self.days})

    def week_days(self, week: str) -> list[date]:
        return [d for d in self.days if week_of(d) == week]

    # --- paths --------------------------------------------------------------------------------
    def week_dir(self, week: str) -> str:
        return str(self.results / "daily" / week)

    def daily_path(self, day: date) -> str:
        return str(self.results / "daily" / week_of(day) / f"{day:%Y-%m-%d}.nc")

    @property
    def country_windows(self) -> pd.DataFrame:
        """Windows of the analysed countries (without the Europe map pseudo-country)."""
        return self.windows[self.windows["iso3"] != MAP_COUNTRY]

    @property
    def hotspot_windows(self) -> pd.DataFrame:
        """Windows of the hotspots of the analysed countries: each hotspot takes its
        country's windows (``iso3`` = hotspot name, ``country`` = the country's ISO3)."""
        from s5p_lockdown.regions import hotspot_countries

        frames = []
        for name, iso3 in hotspot_countries(self.config["hotspots"]).items():
            rows = self.country_windows[self.country_windows["iso3"] == iso3]
            if len(rows):
                frames.append(rows.assign(iso3=name, country=iso3))
        return pd.concat(frames, ignore_index=True) if frames else self.country_windows.iloc[:0]

    @property
    def window_ids(self) -> list[str]:
        return sorted(self.windows["window"].unique())

    def window_span(self, window: str) -> tuple[date, date]:
        row = self.windows[self.windows["window"] == window].iloc[0]
        return row["start"], row["end"]

    def window_days(self, window: str) -> list[date]:
        """Days of a window that have data (local source) or will be generated (synthetic)."""
        start, end = self.window_span(window)
        available = set(self.days)
        return [d for d in days_of(start, end) if d in available]

    @property
    def cdse_settings(self) -> dict:
        """Acquisition settings (:meth:`s5p_lockdown.acquire.AcquireSettings.from_mapping`)."""
        settings = {k: v for k, v in self.config["source"]["cdse"].items() if v is not None}
        settings["stream_preference"] = self.config["source"]["stream_preference"]
        return settings

    @property
    def synthetic_regions(self) -> dict | None:
        """The ``regions`` section when the synthetic scenario reduces regions (region rows in
        the scenario file, or, for the default scenario, a regional lockdown table), else None:
        a region file that only adds statistics does not change the synthetic archive."""
        from s5p_lockdown.synth.scenario import Scenario

        section = self.config["regions"]
        if not section:
            return None
        scenario = Scenario.load(self.config["synthetic"]["scenario"], section.get("lockdown_dates"))
        return section if len(scenario.regions) else None

    @property
    def synthetic_settings(self) -> dict:
        s = dict(self.config["synthetic"])
        s.pop("scenario", None)
        s["lat_band"] = tuple(s["lat_band"])
        s["wind_scale"] = {int(k): float(v) for k, v in s["wind_scale"].items()}
        s["cloud_shift"] = {int(k): float(v) for k, v in s["cloud_shift"].items()}
        s["box"] = self.grid.bounds
        return s


def week_of(day: date) -> str:
    """ISO week of a day, e.g. ``2020-W12`` (weeks run Monday to Sunday)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def days_of_week(week: str) -> list[date]:
    year, number = week.split("-W")
    return [date.fromisocalendar(int(year), int(number), d) for d in range(1, 8)]


def _date(value, key: str) -> date:
    try:
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not a date (YYYY-MM-DD)") from None


def _lockdown_table(config: dict) -> tuple[pd.DataFrame, list[str]]:
    """The lockdown table with overrides applied and restricted to the selected countries, and
    the codes of all its countries."""
    table = load_lockdown_dates(config["lockdown_dates"])
    all_codes = list(table.index)
    for iso3, override in config["lockdown_overrides"].items():
        key = f"lockdown_overrides.{iso3}"
        if iso3 not in table.index:
            raise ConfigError(f"{key}: unknown country code {iso3!r} (not in the lockdown table)")
        for column, value in override.items():
            if column == "measure":
                table.loc[iso3, column] = value
            else:
                table.loc[iso3, column] = pd.Timestamp(_date(value, f"{key}.{column}")) if value else pd.NaT
        row = table.loc[iso3]
        if pd.notna(row["lockdown_end"]) and pd.notna(row["lockdown_start"]) and row["lockdown_end"] < row["lockdown_start"]:
            raise ConfigError(f"{key}: lockdown_end {row['lockdown_end']:%Y-%m-%d} is before lockdown_start {row['lockdown_start']:%Y-%m-%d}")
        if (row["measure"] == "none") != pd.isna(row["lockdown_start"]):
            raise ConfigError(f"{key}: measure 'none' goes with no lockdown_start, and any other measure needs one")
    countries = config["countries"]
    if countries != "all":
        unknown = [c for c in countries if c not in table.index]
        if unknown:
            raise ConfigError(
                f"countries: unknown country code(s) {unknown}; known: {', '.join(sorted(table.index))}"
            )
        table = table.loc[list(dict.fromkeys(countries))]
    return table, all_codes


def _regions(config: dict, countries: pd.DataFrame, settings: WindowSettings):
    """The region file of the config's ``regions`` section and its regions' windows (each
    region's own dates from ``regions.lockdown_dates``, else its country's), or (None, None)."""
    section = config.get("regions")
    if not section:
        return None, None
    from s5p_lockdown.region_files import RegionFileSpec, read_region_file

    region_file = read_region_file(RegionFileSpec.from_config(section))
    dates = load_region_lockdowns(section["lockdown_dates"]) if section.get("lockdown_dates") else None
    windows = region_windows(region_file.country_of, dates, countries, settings)
    if windows.empty:
        raise ConfigError(
            f"regions.file: none of the {len(region_file.regions)} regions of {section['file']} lies in "
            "an analysed country (see 'countries'), so no region has lockdown windows")
    return region_file, windows


def _map_rows(settings: WindowSettings) -> pd.DataFrame:
    """Windows of the pseudo-country :data:`MAP_COUNTRY`: the common reference window."""
    table = pd.DataFrame(
        [{"iso3": MAP_COUNTRY, "country": "Europe (reference window)", "measure": "none",
          "lockdown_start": pd.NaT, "lockdown_end": pd.NaT}]
    ).set_index("iso3")
    return country_windows(table, settings)


def make_plan(config: dict) -> Plan:
    """Derive the grid, windows, days and input files from a validated config."""
    windows_cfg = config["windows"]
    analysis_year = config["analysis_year"]
    reference = (
        _date(windows_cfg["reference_start"], "windows.reference_start"),
        _date(windows_cfg["reference_end"], "windows.reference_end"),
    )
    for key, day in zip(("reference_start", "reference_end"), reference):
        if day.year != analysis_year:
            raise ConfigError(f"windows.{key}: {day} is not in the analysis_year {analysis_year}")
    settings = WindowSettings(
        analysis_year=analysis_year,
        baseline_years=tuple(config["baseline_years"]),
        pre_days=windows_cfg["pre_days"],
        post_days=windows_cfg["post_days"],
        reference_start=reference[0],
        reference_end=reference[1],
    )
    grid_cfg = config["grid"]
    grid = GridSpec.from_bbox(grid_cfg["south"], grid_cfg["north"], grid_cfg["west"],
                              grid_cfg["east"], grid_cfg["resolution"])
    lockdowns, all_codes = _lockdown_table(config)
    windows = pd.concat([country_windows(lockdowns, settings), _map_rows(settings)], ignore_index=True)
    region_file, regional = _regions(config, windows[windows["iso3"] != MAP_COUNTRY], settings)
    spans = windows if regional is None else pd.concat([windows, regional])
    needed = {d for s, e in spans[["start", "end"]].itertuples(index=False) for d in days_of(s, e)}
    # Work is done by whole ISO weeks, so that another date configuration finds every day of
    # an already processed week (nothing is regridded when windows move within weeks).
    weeks = {week_of(d) for d in needed}
    days = sorted(d for w in weeks for d in days_of_week(w))
    source = config["source"]["kind"]
    plan = Plan(config, Path(config["results"]), source, grid, lockdowns, windows, days, all_codes,
                region_file=region_file, region_windows=regional)
    if source == "local":
        index = index_local_archive(
            config["source"]["archive"], config["source"]["pattern"],
            tuple(config["source"]["stream_preference"]),
        )
        wanted = set(days)
        for day, group in index.groupby("day"):
            if day in wanted:
                plan.files_by_day[day] = list(group["path"])
        plan.days = sorted(plan.files_by_day)
        _check_data_coverage(plan, config["source"]["on_missing_data"])
    return plan


def _check_data_coverage(plan: Plan, on_missing: str) -> None:
    empty = [w for w in plan.window_ids if not plan.window_days(w)]
    if not plan.days:
        raise ConfigError(
            f"source.archive: no L2 NO2 file under {plan.config['source']['archive']!r} "
            f"(pattern {plan.config['source']['pattern']!r}) falls on a day the windows need "
            f"({plan.windows['start'].min()} .. {plan.windows['end'].max()})"
        )
    if empty and on_missing == "error":
        rows = plan.windows[plan.windows["window"].isin(empty)]
        where = ", ".join(f"{r.iso3} {r.period} {r.year} ({r.window})" for r in rows.itertuples())
        raise ConfigError(
            f"source.archive: no data for these windows: {where}. Add the files, restrict "
            "'countries', or set source.on_missing_data: flag to report them as missing"
        )


__all__ = ["Plan", "make_plan", "window_id", "week_of", "days_of_week", "MAP_COUNTRY"]
