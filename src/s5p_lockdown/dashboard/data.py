"""Load and validate the workflow's ``results/`` directory for the dashboard.

Everything here reads files only (CSV, netCDF, the shipped GeoJSON); nothing imports the
workflow. Units are those of the files: NO2 columns in mol m-2, coverage as a fraction (0-1),
changes as fractions (-0.3 = -30 %), dates as ``datetime64`` days.

Fatal problems (no results directory, a statistics table missing, unreadable or lacking
columns, no country at all) raise :class:`ResultsError` with a message meant for the page: it
names files relative to the results directory, never a path of the server.
Non-fatal gaps (a Europe composite missing, a country without daily values) are collected in
:attr:`DashboardData.problems` and the rest of the dashboard is still shown.

Each change (:data:`ALL_CHANGES`) has its own validity: it is shown when its value
``change_<name>`` is finite, and when not, ``reason_<name>`` says why in plain words (taken from
the table when the workflow wrote it, else derived here from the windows the change needs and
the table's ``reason`` column, see :func:`plain_reason`).

What the results are made from (synthetic orbits or real products, processor versions,
processing date) is read from ``stats/provenance.json`` into :class:`Provenance`.

Optional parts, absent from results of older workflows: the weather-normalised changes
(:data:`WEATHER_CHANGES`; missing columns are added as NaN with a ``weather_adjustment`` note
saying so) and the hotspot statistics (``hotspot_stats.csv``, ``hotspot_daily.csv``), loaded
into :attr:`DashboardData.hotspots` or, when absent or unusable, explained in
:attr:`DashboardData.hotspot_note`; likewise the region statistics of a run with a region file
(``region_stats.csv``, ``region_daily.csv``, ``regions.geojson``) in
:attr:`DashboardData.regions` (when unusable, a sentence in ``problems`` says why).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
import xarray as xr

from s5p_lockdown.errors import S5PLockdownError
from s5p_lockdown.lockdowns import load_lockdown_dates
from s5p_lockdown.outputs import write_atomically
from s5p_lockdown.regions import hotspot_table
from s5p_lockdown.resources import resource_path

RESULTS_ENV = "S5P_RESULTS"
REPO_ROOT = Path(__file__).resolve().parents[3]
"""Repository root of a source checkout (``src/s5p_lockdown/dashboard/data.py`` → 3 up)."""

EUROPE = "EUROPE"
GROUPS = (("pre", "analysis"), ("post", "analysis"), ("pre", "baseline"), ("post", "baseline"))
CHANGES = ("post_vs_baseline", "post_vs_pre", "adjusted")
HEADLINE_CHANGE = "post_vs_baseline"
"""The change shown on the maps and the ranking: post window vs the same days of the baseline
year(s), like the Europe change map (post_analysis / post_baseline - 1)."""

WEATHER_CHANGES = ("weather_adjusted", "low_wind")
"""Wind-normalised changes (see :mod:`s5p_lockdown.weather`); optional columns."""
WEATHER_NOTE_MISSING = ("unavailable: these results have no weather-adjusted changes "
                        "(written by an older workflow)")
ALL_CHANGES = CHANGES + WEATHER_CHANGES
CHANGE_WINDOWS = {
    "post_vs_baseline": ("post_analysis", "post_baseline"),
    "post_vs_pre": ("pre_analysis", "post_analysis"),
    "adjusted": ("pre_analysis", "post_analysis", "pre_baseline", "post_baseline"),
    "weather_adjusted": ("post_analysis", "post_baseline"),
    "low_wind": ("post_analysis", "post_baseline"),
}
"""The windows (``<period>_<role>``) whose days each change needs."""

NO2_VARIABLE = "tropospheric_NO2_column_number_density"
MAX_MAP_CELLS = 120_000
"""Europe maps with more cells are block-averaged (weight-weighted) to stay light in the page."""

STATS_FILE = Path("stats") / "country_stats.csv"
DAILY_FILE = Path("stats") / "country_daily.csv"
WINDOWS_FILE = Path("stats") / "windows.csv"
PROVENANCE_FILE = Path("stats") / "provenance.json"
HOTSPOT_STATS_FILE = Path("stats") / "hotspot_stats.csv"
HOTSPOT_DAILY_FILE = Path("stats") / "hotspot_daily.csv"
REGION_STATS_FILE = Path("stats") / "region_stats.csv"
REGION_DAILY_FILE = Path("stats") / "region_daily.csv"
REGION_OUTLINES_FILE = Path("stats") / "regions.geojson"

_GROUP_KEYS = [f"{period}_{role}" for period, role in GROUPS]
STATS_COLUMNS = (
    ["iso3", "country", "measure", "reference_window", "pre_start", "pre_end", "post_start",
     "post_end", "analysis_year", "baseline_years", "status", "reason"]
    + [f"{q}_{k}" for k in _GROUP_KEYS for q in ("mean", "days", "calendar_days", "coverage")]
    + [f"{p}{c}{s}" for c in CHANGES for p, s in
       (("change_", ""), ("change_", "_low"), ("change_", "_high"), ("significant_", ""))]
)
HOTSPOT_STATS_COLUMNS = ["hotspot"] + [c for c in STATS_COLUMNS if c != "country"]
"""``hotspot_stats.csv``: the country table's columns with ``hotspot`` (name) first and
``iso3`` the hotspot's country."""
REGION_STATS_COLUMNS = ["region", "name", "dates_from"] + [c for c in STATS_COLUMNS if c != "country"]
"""``region_stats.csv``: the country table's columns with ``region`` (id), ``name`` and
``dates_from`` first and ``iso3`` the region's country."""
DAILY_COLUMNS = ["date", "iso3", "mean_no2", "coverage", "pixels"]
WINDOWS_COLUMNS = ["iso3", "period", "year", "role", "start", "end", "window"]


@dataclass
class Provenance:
    """What the results were made from, from ``stats/provenance.json``.

    Attributes
    ----------
    source_kind : str or None
        ``source.kind`` of the workflow's configuration: ``"synthetic"`` (generated demo
        orbits), ``"local"`` or ``"cdse"`` (real products); None when not recorded.
    processor_versions : list of str
        Versions of the L2 processor of the input products (empty for synthetic orbits or when
        not recorded).
    date_created : pandas.Timestamp or None
        When the statistics were written (UTC).
    software : str
        The software that processed the data (``"s5p-lockdown 1.2.3"``), or ``"s5p-lockdown"``.
    min_day_coverage : float or None
        Coverage a day needs to count in the statistics (0-1), if recorded.
    """

    source_kind: str | None = None
    processor_versions: list[str] = field(default_factory=list)
    date_created: pd.Timestamp | None = None
    software: str = "s5p-lockdown"
    min_day_coverage: float | None = None

    @property
    def synthetic(self) -> bool:
        return self.source_kind == "synthetic"


class ResultsError(S5PLockdownError):
    """The results directory cannot feed the dashboard; the message says why, for the page."""


@dataclass
class DashboardData:
    """The statistics tables of one results directory.

    Attributes
    ----------
    root : Path
        The results directory.
    stats : DataFrame
        ``country_stats.csv`` indexed by iso3, rows ranked by country name; date columns as
        ``datetime64``, boolean columns as bool; the weather columns (``change_weather_adjusted``,
        ``change_low_wind`` with ``_low``/``_high``/``significant_``, ``weather_adjustment``)
        always present (NaN / a note when the results lack them). For hotspots (see
        ``hotspots``) indexed and keyed (``iso3`` column) by hotspot name, ``country`` the label
        'Paris (FRA)', ``country_iso3`` the hotspot's country and ``lat``, ``lon``,
        ``radius_km`` from the package's hotspot table (NaN if not listed there).
    daily : DataFrame
        ``country_daily.csv`` with ``date`` as ``datetime64`` (mean_no2 in mol m-2, NaN = no data).
    windows : DataFrame
        ``windows.csv`` (one row per country, period and year).
    stats_csv : bytes
        The statistics table exactly as written by the workflow (for the download).
    lockdown_ends : dict
        iso3 → end of the lockdown, where known (see :func:`_lockdown_ends`).
    provenance : Provenance
        What the results were made from (``stats/provenance.json``).
    problems : list of str
        Non-fatal gaps, one sentence each.
    hotspots : DashboardData or None
        The hotspot statistics in the same form (``hotspot_stats.csv``, ``hotspot_daily.csv``;
        ``windows`` shared), or None when the results have none.
    hotspot_note : str
        Why ``hotspots`` is None (empty otherwise).
    regions : DashboardData or None
        The region statistics in the same form, keyed by region id, ``country`` the label
        'Name (id)', ``country_iso3`` the region's country (``region_stats.csv``,
        ``region_daily.csv``), or None when the run had no region file.
    region_outlines : dict or None
        The regions' outlines (``regions.geojson``, GeoJSON with property ``region``).
    """

    root: Path
    stats: pd.DataFrame
    daily: pd.DataFrame
    windows: pd.DataFrame
    stats_csv: bytes
    lockdown_ends: dict[str, pd.Timestamp] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)
    problems: list[str] = field(default_factory=list)
    hotspots: DashboardData | None = None
    hotspot_note: str = ""
    regions: DashboardData | None = None
    region_outlines: dict | None = None

    @property
    def min_day_coverage(self) -> float | None:
        """Coverage a day needs to count in the statistics (0-1), if known."""
        return self.provenance.min_day_coverage

    def has_change(self, name: str = HEADLINE_CHANGE) -> pd.Series:
        """Boolean per row: the change ``name`` (one of :data:`ALL_CHANGES`) has a value."""
        return np.isfinite(self.stats[f"change_{name}"])

    @property
    def countries(self) -> list[tuple[str, str]]:
        """(country name, iso3) pairs in alphabetical order, for a selector."""
        return [(name, iso3) for iso3, name in self.stats["country"].items()]

    @property
    def baseline_years(self) -> list[int]:
        """All baseline years of the analysis, ascending."""
        years = {int(y) for text in self.stats["baseline_years"] for y in str(text).split()}
        return sorted(years)


@dataclass
class EuropeMaps:
    """Gridded Europe-wide NO2 on the common reference window.

    ``fields`` maps ``"pre_analysis"``, ``"post_analysis"``, ``"pre_baseline"``,
    ``"post_baseline"`` to 2-D float32 arrays (latitude x longitude, mol m-2, NaN = no data)
    and ``"change"`` to post_analysis / post_baseline - 1 in percent (float32: what the page
    and the netCDF download show; half the memory of float64 in every visitor's kernel). ``windows`` gives each
    window's (start, end) dates as ISO strings.
    """

    latitude: np.ndarray
    longitude: np.ndarray
    fields: dict[str, np.ndarray]
    windows: dict[str, tuple[str, str]]
    years: dict[str, int]


def resolve_results_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The results directory: ``$S5P_RESULTS`` if set (relative paths are taken from the
    repository root), else ``results/`` in the repository."""
    environ = os.environ if environ is None else environ
    configured = environ.get(RESULTS_ENV, "").strip()
    path = Path(configured).expanduser() if configured else Path("results")
    return path if path.is_absolute() else REPO_ROOT / path


def _read_csv(root: Path, name: Path, required: list[str]) -> pd.DataFrame:
    path = root / name
    if not path.is_file():
        raise ResultsError(f"{name} is missing: run the workflow first.")
    try:
        table = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ResultsError(f"{name} cannot be read ({type(exc).__name__}).") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ResultsError(f"{name} lacks column(s) {', '.join(missing)}: "
                           "it was written by another version of the workflow.")
    return table


def _as_bool(column: pd.Series) -> pd.Series:
    return column.astype(str).str.strip().str.lower().isin(["true", "1", "yes"])


def read_provenance(root: Path) -> Provenance:
    """The :class:`Provenance` of a results directory; fields the file does not give (or an
    absent or unreadable file) are left unknown."""
    try:
        record = json.loads((root / PROVENANCE_FILE).read_text())
    except (OSError, ValueError):
        return Provenance()
    if not isinstance(record, dict):
        return Provenance()
    config = record.get("config", {})
    try:
        config = json.loads(config) if isinstance(config, str) else config
    except ValueError:
        config = {}
    config = config if isinstance(config, dict) else {}

    def lookup(*keys):
        value = config
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    coverage = lookup("stats", "min_day_coverage")
    created = pd.to_datetime(record.get("date_created"), errors="coerce", utc=True)
    versions = str(record.get("processor_versions") or "")
    return Provenance(
        source_kind=lookup("source", "kind"),
        processor_versions=[v for v in versions.split(",") if v.strip()],
        date_created=None if pd.isna(created) else created,
        software=str(record.get("software") or "s5p-lockdown"),
        min_day_coverage=float(coverage) if isinstance(coverage, (int, float)) else None,
    )


def plain_reason(reason: str, row: Mapping, name: str) -> str:
    """Why the change ``name`` of one row is missing, in plain words, from the statistics'
    ``reason`` (``"pre_baseline: 1 usable days < 3; ..."``), e.g. "only 1 day with enough
    clear sky in the 2019 window before the lockdown (3 needed)". The windows that change needs
    (:data:`CHANGE_WINDOWS`) are named when the reason lists some, else every window it lists;
    for the weather changes without a window problem, the row's ``weather_adjustment`` note;
    "not computed by the workflow" when nothing says why."""
    reference = bool(row.get("reference_window", False))
    periods = {"pre": "before the reference period" if reference else "before the lockdown",
               "post": "of the reference period" if reference else "after the lockdown start"}
    sentences = {}
    for part in str(reason).split(";"):
        key, _, text = part.partition(":")
        key = key.strip()
        numbers = [int(n) for n in text.replace("<", " ").split() if n.isdigit()]
        if key not in CHANGE_WINDOWS["adjusted"] or len(numbers) != 2:
            continue
        (usable, needed), (period, role) = numbers, key.split("_")
        year = row.get("analysis_year") if role == "analysis" else row.get("baseline_years")
        days = "no day" if usable == 0 else f"only {usable} day{'s' if usable > 1 else ''}"
        sentences[key] = (f"{days} with enough clear sky in the {year} window "
                          f"{periods[period]} ({needed} needed)")
    relevant = [text for key, text in sentences.items() if key in CHANGE_WINDOWS[name]]
    note = str(row.get("weather_adjustment", "") or "")
    if relevant or (sentences and not (name in WEATHER_CHANGES and note)):
        return "; ".join(relevant or sentences.values())
    if name in WEATHER_CHANGES and note:
        return note.replace("unavailable: ", "not available: ", 1)
    return "not computed by the workflow"


def _add_reason_columns(stats: pd.DataFrame) -> None:
    """``reason_<name>`` for each change: empty where the change has a value; where not, the
    column of the table when it has one, else :func:`plain_reason`."""
    for name in ALL_CHANGES:
        column = f"reason_{name}"
        given = (stats[column].astype("string").fillna("").str.strip() if column in stats
                 else pd.Series("", index=stats.index, dtype="string"))
        missing = ~np.isfinite(stats[f"change_{name}"])
        derived = [plain_reason(row["reason"], row, name) if missing[i] and not given[i] else
                   given[i] for i, row in stats.iterrows()]
        stats[column] = pd.Series(derived, index=stats.index, dtype="string").where(missing, "")


def _add_weather_columns(stats: pd.DataFrame) -> None:
    """Add the weather columns missing from older results (NaN, not significant, a note)."""
    for name in WEATHER_CHANGES:
        for suffix in ("", "_low", "_high"):
            if f"change_{name}{suffix}" not in stats:
                stats[f"change_{name}{suffix}"] = np.nan
        if f"significant_{name}" not in stats:
            stats[f"significant_{name}"] = False
    for column in ("wind_post_analysis", "wind_post_baseline", "low_wind_threshold"):
        if column not in stats:
            stats[column] = np.nan
    if "weather_adjustment" not in stats:
        stats["weather_adjustment"] = WEATHER_NOTE_MISSING
    stats["weather_adjustment"] = (stats["weather_adjustment"].astype("string")
                                   .fillna(WEATHER_NOTE_MISSING))


def _prepare(stats: pd.DataFrame, daily: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Types of a statistics table and its daily table (in place for ``daily``); returns the
    statistics sorted by ``country`` and indexed by ``iso3``."""
    _add_weather_columns(stats)
    try:
        for column in ("pre_start", "pre_end", "post_start", "post_end"):
            stats[column] = pd.to_datetime(stats[column])
        daily["date"] = pd.to_datetime(daily["date"])
        numeric = [c for c in stats.columns
                   if c.startswith(("mean_", "coverage_", "change_", "wind_"))
                   or c == "low_wind_threshold"]
        stats[numeric] = stats[numeric].apply(pd.to_numeric, errors="raise")
        daily[["mean_no2", "coverage"]] = daily[["mean_no2", "coverage"]].apply(pd.to_numeric)
    except (ValueError, TypeError) as exc:
        raise ResultsError("The statistics tables hold malformed values "
                           f"({type(exc).__name__}).") from None
    for column in ["reference_window"] + [f"significant_{c}" for c in CHANGES + WEATHER_CHANGES]:
        stats[column] = _as_bool(stats[column])
    stats["reason"] = stats["reason"].astype("string").fillna("")
    _add_reason_columns(stats)
    return stats.sort_values("country").set_index("iso3", drop=False)


def load_hotspots(root: Path, windows: pd.DataFrame) -> DashboardData:
    """The hotspot statistics of a results directory (see :attr:`DashboardData.hotspots`).

    Raises :class:`ResultsError` when ``hotspot_stats.csv`` or ``hotspot_daily.csv`` is
    missing or unusable, or holds no hotspot.
    """
    stats = _read_csv(root, HOTSPOT_STATS_FILE, HOTSPOT_STATS_COLUMNS)
    daily = _read_csv(root, HOTSPOT_DAILY_FILE, DAILY_COLUMNS)
    if stats.empty:
        raise ResultsError(f"{HOTSPOT_STATS_FILE} has no hotspot.")
    stats = stats.rename(columns={"iso3": "country_iso3"}).rename(columns={"hotspot": "iso3"})
    stats["iso3"] = stats["iso3"].astype(str)
    stats["country"] = stats["iso3"] + " (" + stats["country_iso3"].astype(str) + ")"
    locations = hotspot_table().set_index("name")
    for column in ("lat", "lon", "radius_km"):
        stats[column] = stats["iso3"].map(locations[column]).astype(float)
    daily["iso3"] = daily["iso3"].astype(str)
    stats = _prepare(stats, daily, root)
    return DashboardData(root=root, stats=stats, daily=daily, windows=windows,
                         stats_csv=(root / HOTSPOT_STATS_FILE).read_bytes(),
                         lockdown_ends=_lockdown_ends(stats))


def load_regions(root: Path, windows: pd.DataFrame) -> tuple[DashboardData, dict]:
    """The region statistics of a results directory and the regions' outlines (see
    :attr:`DashboardData.regions`). Raises :class:`ResultsError` when a region file is
    missing or unusable, or holds no region."""
    stats = _read_csv(root, REGION_STATS_FILE, REGION_STATS_COLUMNS)
    daily = _read_csv(root, REGION_DAILY_FILE, DAILY_COLUMNS)
    if stats.empty:
        raise ResultsError(f"{REGION_STATS_FILE} has no region.")
    try:
        outlines = json.loads((root / REGION_OUTLINES_FILE).read_text())
        outlines["features"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ResultsError(f"{REGION_OUTLINES_FILE} is missing or not GeoJSON.") from None
    stats = stats.rename(columns={"iso3": "country_iso3"}).rename(columns={"region": "iso3"})
    stats["iso3"] = stats["iso3"].astype(str)
    stats["country"] = stats["name"].astype(str) + " (" + stats["iso3"] + ")"
    daily["iso3"] = daily["iso3"].astype(str)
    stats = _prepare(stats, daily, root)
    data = DashboardData(root=root, stats=stats, daily=daily, windows=windows,
                         stats_csv=(root / REGION_STATS_FILE).read_bytes(),
                         lockdown_ends=_lockdown_ends(stats))
    return data, outlines


def load_results(root: str | Path) -> DashboardData:
    """Read and validate the three statistics tables of a results directory, and the hotspot
    tables when there are some.

    Raises :class:`ResultsError` when the dashboard cannot be built; lesser gaps are listed in
    ``problems`` (unusable hotspot tables in ``hotspot_note``, unusable region tables in
    ``problems``).
    """
    root = Path(root)
    if not root.is_dir():
        raise ResultsError("No results directory: the workflow has not been run, or the "
                           "dashboard is not pointed at its results.")
    stats = _read_csv(root, STATS_FILE, STATS_COLUMNS)
    daily = _read_csv(root, DAILY_FILE, DAILY_COLUMNS)
    windows = _read_csv(root, WINDOWS_FILE, WINDOWS_COLUMNS)
    if stats.empty:
        raise ResultsError(f"{STATS_FILE} has no country.")
    stats = _prepare(stats, daily, root)

    hotspots, hotspot_note = None, ""
    if not (root / HOTSPOT_STATS_FILE).is_file():
        hotspot_note = ("these results have no hotspot statistics (they were written by an "
                        "older workflow).")
    else:
        try:
            hotspots = load_hotspots(root, windows)
        except ResultsError as exc:
            hotspot_note = str(exc)
    problems = []
    regions, region_outlines = None, None
    if (root / REGION_STATS_FILE).is_file():
        try:
            regions, region_outlines = load_regions(root, windows)
        except ResultsError as exc:
            problems.append(f"The region statistics cannot be shown: {exc}")
    provenance = read_provenance(root)
    for part in (hotspots, regions):
        if part is not None:
            part.provenance = provenance

    without_daily = sorted(set(stats.index) - set(daily["iso3"]))
    if without_daily:
        names = ", ".join(stats.loc[without_daily, "country"])
        problems.append(f"No daily values for {names}.")
    return DashboardData(
        root=root, stats=stats, daily=daily, windows=windows,
        stats_csv=(root / STATS_FILE).read_bytes(), lockdown_ends=_lockdown_ends(stats),
        provenance=provenance, problems=problems,
        hotspots=hotspots, hotspot_note=hotspot_note,
        regions=regions, region_outlines=region_outlines,
    )


def _coarsen(values: np.ndarray, weight: np.ndarray, factor: int) -> np.ndarray:
    """Weight-weighted block mean over ``factor x factor`` cells (NaN where no weight)."""
    ny, nx = (n // factor * factor for n in values.shape)
    shape = (ny // factor, factor, nx // factor, factor)
    w = np.where(np.isfinite(values), weight, 0.0)[:ny, :nx]
    x = np.nan_to_num(values[:ny, :nx])
    total = w.reshape(shape).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (x * w).reshape(shape).sum(axis=(1, 3)) / total, np.nan)


@dataclass
class MapWindow:
    """One set of windows the gridded maps can show: ``windows`` maps ``"pre_analysis"``,
    ``"post_analysis"``, ``"pre_baseline"``, ``"post_baseline"`` to the composite's name
    (``composites/<name>.nc``); ``label`` says which days and which countries use it."""

    label: str
    windows: dict[str, str]


def map_windows(data: DashboardData) -> list[MapWindow]:
    """The distinct window sets of the results whose four composites exist: the common
    reference window (Europe) first, then the countries' own windows by start date. A set
    with several baseline years shows the first."""
    names = dict(zip(data.stats["iso3"], data.stats["country"]))
    sets: dict[tuple, list[str]] = {}
    for iso3, rows in data.windows.groupby("iso3", sort=False):
        chosen = {}
        for period, role in GROUPS:
            match = rows[(rows["period"] == period) & (rows["role"] == role)]
            if not match.empty:
                row = match.sort_values("year").iloc[0]
                chosen[f"{period}_{role}"] = (str(row["window"]), str(row["start"]),
                                              str(row["end"]), int(row["year"]))
        if len(chosen) == len(GROUPS):
            sets.setdefault(tuple(sorted(chosen.items())), []).append(iso3)
    found = []
    for key, members in sets.items():
        chosen = dict(key)
        if not all((data.root / "composites" / f"{w[0]}.nc").is_file() for w in chosen.values()):
            continue
        start, end, year = chosen["post_analysis"][1:]
        span = f"{pd.Timestamp(start):%-d %b} – {pd.Timestamp(end):%-d %b} {year}"
        versus = f"vs {chosen['post_baseline'][3]}"
        countries = sorted(names[m] for m in members if m in names)
        if EUROPE in members:
            who = "common reference window"
        else:
            who = ", ".join(countries[:3]) + (f" and {len(countries) - 3} more"
                                              if len(countries) > 3 else "")
        found.append((EUROPE not in members, start,
                      MapWindow(f"{span} {versus} ({who})",
                                {k: v[0] for k, v in chosen.items()})))
    return [w for _, _, w in sorted(found, key=lambda item: item[:2])]


def load_europe_maps(data: DashboardData, window: MapWindow | None = None,
                     max_cells: int = MAX_MAP_CELLS) -> EuropeMaps:
    """The four composites of ``window`` (default: the common reference window, else the
    first of :func:`map_windows`) and their change (percent).

    Grids larger than ``max_cells`` are block-averaged, weighting cells by their composite
    ``weight``. The grids read are kept in :func:`maps_cache_dir` (``.npz``, named after the
    composites' paths, sizes and modification times): the next kernel reads them from there
    and never loads the netCDF library (~12 MB less per visitor's kernel). An entry's
    modification time is its last use; the cache is pruned (:func:`prune_maps_cache`) each
    time an entry is added. Raises :class:`ResultsError` when a composite is missing or
    unreadable.
    """
    if window is None:
        rows = data.windows[data.windows["iso3"] == EUROPE]
        chosen = {}
        for period, role in GROUPS:
            match = rows[(rows["period"] == period) & (rows["role"] == role)]
            if match.empty:
                raise ResultsError(f"{WINDOWS_FILE} has no Europe {period} {role} window.")
            chosen[f"{period}_{role}"] = str(match.iloc[0]["window"])
        window = MapWindow("common reference window", chosen)
    known = data.windows.drop_duplicates("window").set_index("window")
    windows, years = {}, {}
    for key, name in window.windows.items():
        windows[key] = (str(known.at[name, "start"]), str(known.at[name, "end"]))
        years[key] = int(known.at[name, "year"])
    paths = {key: data.root / "composites" / f"{window.windows[key]}.nc"
             for key in _GROUP_KEYS}
    cache = _maps_cache_path(paths, max_cells)
    try:
        with np.load(cache) as stored:
            arrays = {name: stored[name] for name in stored.files}
        os.utime(cache)  # its last use, for prune_maps_cache
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):  # none yet, or damaged
        arrays = _read_composites(paths, max_cells)
        try:
            write_atomically(cache, lambda tmp: _save_npz(tmp, arrays))
            prune_maps_cache(cache.parent)
        except OSError:
            pass  # no writable cache folder: every kernel reads the composites
    fields = {key: arrays[key] for key in _GROUP_KEYS}
    with np.errstate(invalid="ignore", divide="ignore"):
        change = 100.0 * (fields["post_analysis"] / fields["post_baseline"] - 1.0)
    fields["change"] = np.where(fields["post_baseline"] > 0, change, np.nan).astype(np.float32)
    return EuropeMaps(latitude=arrays["latitude"], longitude=arrays["longitude"], fields=fields,
                      windows=windows, years=years)


CACHE_ENV = "S5P_DASHBOARD_CACHE"
CACHE_VERSION = 1
"""Bumped when :func:`_read_composites` changes what it returns."""


MAPS_CACHE_KEEP = 32
"""Entries of the maps cache kept at most (the most recently used; ~2 MB each at
:data:`MAX_MAP_CELLS`): window sets of the results served, and of a few older results."""
MAPS_CACHE_MAX_AGE_S = 30 * 86400
"""Entries of the maps cache not used for this long (seconds; 30 days) are removed."""


def prune_maps_cache(folder: Path, keep: int = MAPS_CACHE_KEEP,
                     max_age_s: float = MAPS_CACHE_MAX_AGE_S,
                     now: float | None = None) -> list[Path]:
    """Remove the entries (``maps-*.npz``) of the maps cache ``folder`` beyond the ``keep``
    most recently used, and those not used for ``max_age_s`` seconds before ``now`` (default:
    the current time); the last use of an entry is its modification time. Returns the files
    removed. An entry removed meanwhile by another kernel is no error; an entry a kernel is
    reading stays readable by it (POSIX), and a kernel that looks for a removed entry reads
    the composites again."""
    now = time.time() if now is None else now
    entries = []
    for path in folder.glob("maps-*.npz"):
        try:
            entries.append((path.stat().st_mtime, path))
        except FileNotFoundError:
            continue
    entries.sort(reverse=True)
    removed = []
    for rank, (used, path) in enumerate(entries):
        if rank >= keep or now - used > max_age_s:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # through an open file: np.savez would append ".npz" to the temporary name
    with open(path, "wb") as stream:
        np.savez(stream, **arrays)


def maps_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Folder of the cached gridded maps: ``$S5P_DASHBOARD_CACHE``, else the user's cache
    folder (``~/.cache/s5p-lockdown/dashboard`` on Linux; under systemd, the service's
    ``HOME``)."""
    import platformdirs

    environ = os.environ if environ is None else environ
    configured = environ.get(CACHE_ENV, "").strip()
    return (Path(configured).expanduser() if configured
            else Path(platformdirs.user_cache_dir("s5p-lockdown")) / "dashboard")


def _maps_cache_path(paths: dict[str, Path], max_cells: int) -> Path:
    """The cache file of the maps of four composites: named by a hash of their absolute
    paths, sizes, modification times and inodes (a rewritten composite gets a new file) and of
    ``max_cells``. Raises :class:`ResultsError` when a composite is missing."""
    identity = [CACHE_VERSION, max_cells]
    for key, path in sorted(paths.items()):
        try:
            status = path.stat()
        except OSError:
            raise ResultsError(f"Composite composites/{path.name} is missing or unreadable "
                               "(FileNotFoundError).") from None
        identity.append([key, str(path.resolve()), status.st_size, status.st_mtime_ns,
                         status.st_ino])
    name = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]
    return maps_cache_dir() / f"maps-{name}.npz"


def _read_composites(paths: dict[str, Path], max_cells: int) -> dict[str, np.ndarray]:
    """``latitude``, ``longitude`` and the four NO2 grids (float32, mol m-2; keys of
    ``paths``) of the composites ``paths``, block-averaged when larger than ``max_cells``."""
    arrays = {}
    for key, path in paths.items():
        try:
            with xr.open_dataset(path) as ds:
                values = ds[NO2_VARIABLE].isel(time=0).transpose("latitude", "longitude")
                grid = values.values.astype(np.float64)
                weight = ds["weight"].isel(time=0).transpose("latitude", "longitude").values
                lat, lon = ds["latitude"].values, ds["longitude"].values
        except (OSError, KeyError, ValueError) as exc:
            raise ResultsError(f"Composite composites/{path.name} is missing or "
                               f"unreadable ({type(exc).__name__}).") from None
        factor = int(np.ceil(np.sqrt(grid.size / max_cells)))
        if factor > 1:
            grid = _coarsen(grid, weight, factor)
            lat = lat[: grid.shape[0] * factor].reshape(-1, factor).mean(axis=1)
            lon = lon[: grid.shape[1] * factor].reshape(-1, factor).mean(axis=1)
        if arrays and grid.shape != next(iter(arrays.values())).shape:
            raise ResultsError("The composites of one window set are on different grids.")
        arrays[key] = grid.astype(np.float32)
        arrays["latitude"], arrays["longitude"] = lat, lon
    return arrays


def crop_maps(maps: EuropeMaps, bounds: tuple[float, float, float, float] | None) -> EuropeMaps:
    """``maps`` restricted to ``bounds`` = (west, south, east, north) in degrees, or to the
    rows and columns holding data anywhere when ``bounds`` is None. Unchanged when nothing
    would be left."""
    finite = np.isfinite(maps.fields["post_analysis"]) | np.isfinite(maps.fields["post_baseline"])
    if bounds is None:
        rows, cols = finite.any(axis=1), finite.any(axis=0)
    else:
        west, south, east, north = bounds
        rows = (maps.latitude >= south) & (maps.latitude <= north)
        cols = (maps.longitude >= west) & (maps.longitude <= east)
    if not rows.any() or not cols.any():
        return maps
    rows = slice(np.argmax(rows), rows.size - np.argmax(rows[::-1]))
    cols = slice(np.argmax(cols), cols.size - np.argmax(cols[::-1]))
    return EuropeMaps(latitude=maps.latitude[rows], longitude=maps.longitude[cols],
                      fields={k: v[rows, cols] for k, v in maps.fields.items()},
                      windows=maps.windows, years=maps.years)


def country_bounds(shapes: dict, iso3: str,
                   pad: float = 1.0) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) in degrees of a country's outline plus ``pad`` degrees, or
    None when the outline file does not have it."""
    points = [np.asarray(ring) for f in shapes["features"] if f["properties"]["iso3"] == iso3
              for ring in _rings(f["geometry"])]
    if not points:
        return None
    points = np.concatenate(points)
    return (points[:, 0].min() - pad, points[:, 1].min() - pad,
            points[:, 0].max() + pad, points[:, 1].max() + pad)


def _rings(geometry: dict):
    """Exterior and interior rings of a GeoJSON Polygon/MultiPolygon."""
    polygons = ([geometry["coordinates"]] if geometry["type"] == "Polygon"
                else geometry["coordinates"])
    for polygon in polygons:
        yield from polygon


def grids_netcdf(maps: EuropeMaps) -> bytes:
    """The displayed grids as a netCDF file: the baseline and analysis-year NO2 of the post
    window (mol m-2) and their change (percent), on the maps' latitude/longitude."""
    import tempfile

    dims = ("latitude", "longitude")
    ds = xr.Dataset(
        {"no2_baseline": (dims, maps.fields["post_baseline"].astype(np.float32),
                          {"units": "mol m-2", "long_name": "tropospheric NO2 column, "
                           f"{maps.years['post_baseline']} "
                           f"{' to '.join(maps.windows['post_baseline'])}"}),
         "no2_analysis": (dims, maps.fields["post_analysis"].astype(np.float32),
                          {"units": "mol m-2", "long_name": "tropospheric NO2 column, "
                           f"{maps.years['post_analysis']} "
                           f"{' to '.join(maps.windows['post_analysis'])}"}),
         "change": (dims, maps.fields["change"].astype(np.float32),
                    {"units": "percent", "long_name": "no2_analysis / no2_baseline - 1"})},
        coords={"latitude": ("latitude", maps.latitude, {"units": "degrees_north"}),
                "longitude": ("longitude", maps.longitude, {"units": "degrees_east"})},
        attrs={"source": "s5p-lockdown period composites"})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grids.nc"
        ds.to_netcdf(path)
        return path.read_bytes()


def country_shapes(tolerance: float = 0.03) -> dict:
    """The shipped country outlines as a GeoJSON FeatureCollection (lon/lat degrees),
    simplified to ``tolerance`` degrees so the page stays light."""
    collection = json.loads(resource_path("europe_countries_50m.geojson").read_text())
    for feature in collection["features"]:
        geometry = shapely.geometry.shape(feature["geometry"])
        simplified = shapely.simplify(geometry, tolerance, preserve_topology=True)
        feature["geometry"] = shapely.geometry.mapping(shapely.set_precision(simplified, 1e-3))
    return collection


def country_series(data: DashboardData, iso3: str) -> pd.DataFrame:
    """Daily country means of the analysis year and each baseline year, aligned on the
    calendar day.

    Columns: ``date`` (the analysis-year day the value is plotted at), ``year`` (the year the
    value was observed in), ``mean_no2`` (mol m-2, NaN = no data), ``coverage`` (0-1). A
    baseline 29 February has no analysis-year day when the analysis year is not a leap year
    and is dropped.
    """
    analysis_year = int(data.stats.at[iso3, "analysis_year"])
    rows = data.daily.loc[data.daily["iso3"] == iso3, ["date", "mean_no2", "coverage"]].copy()
    rows["year"] = rows["date"].dt.year
    rows = rows[rows["year"].isin([analysis_year, *data.baseline_years])]
    leap_day = (rows["date"].dt.month == 2) & (rows["date"].dt.day == 29)
    if not pd.Timestamp(year=analysis_year, month=1, day=1).is_leap_year:
        rows = rows[~leap_day]
    rows["date"] = pd.to_datetime({"year": analysis_year, "month": rows["date"].dt.month,
                                   "day": rows["date"].dt.day})
    return rows.sort_values(["year", "date"]).reset_index(drop=True)


def _lockdown_ends(stats: pd.DataFrame) -> dict[str, pd.Timestamp]:
    """Lockdown end per country (or hotspot, by its ``country_iso3``) from the package's
    lockdown table, where the table gives an end and its start is the one the results used
    (``post_start``)."""
    table = load_lockdown_dates()
    ends = {}
    for key, row in stats[~stats["reference_window"]].iterrows():
        iso3 = row["country_iso3"] if "country_iso3" in row.index else key
        if iso3 in table.index:
            start, end = table.at[iso3, "lockdown_start"], table.at[iso3, "lockdown_end"]
            if pd.notna(end) and start == row["post_start"]:
                ends[key] = pd.Timestamp(end)
    return ends
