"""Lockdown scenarios for synthetic data: which country loses how much NO2, and when.

A scenario file is a CSV with columns ``iso3, reduction, start, end`` and optionally
``hotspot`` and ``region``: ``reduction`` is the fractional reduction of the tropospheric column
(0.3 = -30 %) applied inside the country's borders from ``start`` to ``end`` inclusive (ISO
dates; blank ``end`` = until further notice). A row naming a ``hotspot`` (a name from the
hotspot table) instead reduces only that hotspot's emission plume, leaving the rest of the
country alone (a city-only change). A row naming a ``region`` (an id of the workflow's region
file, :mod:`s5p_lockdown.region_files`; ``iso3`` its country) reduces the column inside that
region: where both a region's and its country's reductions are in force, the larger applies
(the strongest measure), so a region locked down before its country keeps its country's
reduction afterwards. Rows with reduction 0 (countries without a lockdown) may be present for
completeness.

The default scenario derives from the shipped lockdown-dates table, with a reduction per kind of
measure (:data:`DEFAULT_REDUCTION_BY_MEASURE`), in the table's year (2020): the baseline year
(2019) therefore has no reduction; with a regional lockdown table
(:func:`s5p_lockdown.lockdowns.load_region_lockdowns`, the workflow's ``regions.lockdown_dates``)
its rows become region rows the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from s5p_lockdown.errors import ConfigError
from s5p_lockdown.lockdowns import load_lockdown_dates, load_region_lockdowns

DEFAULT_REDUCTION_BY_MEASURE = {
    "national": 0.30,
    "partial": 0.20,
    "regional": 0.15,
    "targeted": 0.15,
    "none": 0.0,
}
"""Injected fractional reductions by kind of measure; national values are at the low end of the
published -20 to -50 % urban changes, since they apply to country means."""


@dataclass(frozen=True)
class Scenario:
    """Per-country reductions; ``table`` is indexed by iso3 with columns reduction, start, end
    (``datetime64``, ``end`` NaT = open-ended); ``hotspots`` likewise by hotspot name and
    ``regions`` by region id, each with the country's ``iso3`` as an extra column."""

    table: pd.DataFrame
    hotspots: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["reduction", "start", "end", "iso3"])
    )
    regions: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["reduction", "start", "end", "iso3"])
    )

    @classmethod
    def default(cls, lockdown_table: str | Path | None = None,
                region_table: str | Path | None = None) -> Scenario:
        """Reductions by measure from the lockdown table (default the shipped one) and, when
        given, from a regional lockdown table."""
        table = _by_measure(load_lockdown_dates(lockdown_table))
        if region_table is None:
            return cls(table)
        regional = load_region_lockdowns(region_table)
        return cls(table, regions=_by_measure(regional).assign(iso3=regional["iso3"]))

    @classmethod
    def read(cls, path: str | Path) -> Scenario:
        """Read a scenario CSV; errors name the file, the row and the column."""
        path = Path(path)
        try:
            raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, pd.errors.ParserError) as exc:
            raise ConfigError(f"scenario {path}: cannot be read: {exc}") from None
        missing = {"iso3", "reduction", "start", "end"} - set(raw.columns)
        if missing:
            raise ConfigError(f"scenario {path}: missing column(s) {sorted(missing)}")
        rows, hotspot_rows, region_rows = {}, {}, {}
        for _, row in raw.iterrows():
            iso3 = row["iso3"].strip().upper()
            hotspot = row.get("hotspot", "").strip()
            region = row.get("region", "").strip()
            try:
                reduction = float(row["reduction"])
                start = pd.Timestamp(row["start"]) if row["start"].strip() else pd.NaT
                end = pd.Timestamp(row["end"]) if row["end"].strip() else pd.NaT
            except ValueError as exc:
                raise ConfigError(f"scenario {path}: row {iso3}: {exc}") from None
            if not 0.0 <= reduction < 1.0:
                raise ConfigError(f"scenario {path}: row {iso3}: reduction must be in [0, 1)")
            if reduction > 0 and pd.isna(start):
                raise ConfigError(f"scenario {path}: row {iso3}: a reduction needs a start date")
            if hotspot and region:
                raise ConfigError(f"scenario {path}: row {iso3}: give a hotspot or a region, not both")
            if hotspot:
                hotspot_rows[hotspot] = (reduction, start, end, iso3)
            elif region:
                if region in region_rows:
                    raise ConfigError(f"scenario {path}: region {region} appears twice")
                region_rows[region] = (reduction, start, end, iso3)
            else:
                rows[iso3] = (reduction, start, end)
        table = pd.DataFrame.from_dict(rows, orient="index", columns=["reduction", "start", "end"])
        table.index.name = "iso3"
        columns = ["reduction", "start", "end", "iso3"]
        hotspots = pd.DataFrame.from_dict(hotspot_rows, orient="index", columns=columns)
        regions = pd.DataFrame.from_dict(region_rows, orient="index", columns=columns)
        return cls(table, hotspots, regions)

    @classmethod
    def load(cls, path: str | Path | None = None, region_table: str | Path | None = None) -> Scenario:
        """The scenario file at ``path``, or the default scenario (with the regional lockdown
        table ``region_table`` when given) when ``path`` is None."""
        return cls.read(path) if path else cls.default(region_table=region_table)

    def write(self, path: str | Path) -> None:
        """Write the scenario CSV atomically."""
        from s5p_lockdown.outputs import write_csv

        countries = self.table.reset_index().assign(hotspot="", region="")
        hotspots = self.hotspots.rename_axis("hotspot").reset_index().assign(region="")
        regions = self.regions.rename_axis("region").reset_index().assign(hotspot="")
        out = pd.concat([countries, hotspots, regions], ignore_index=True)
        for column in ("start", "end"):
            out[column] = pd.to_datetime(out[column]).dt.strftime("%Y-%m-%d").fillna("")
        write_csv(out[["iso3", "reduction", "start", "end", "hotspot", "region"]], path, index=False)

    def reduction_on(self, day: date) -> dict[str, float]:
        """Reduction of each country active on ``day`` (countries with none are omitted)."""
        return _active(self.table, day)

    def hotspot_reduction_on(self, day: date) -> dict[str, float]:
        """Reduction of each hotspot plume active on ``day``."""
        return _active(self.hotspots, day)

    def region_reduction_on(self, day: date) -> dict[str, float]:
        """Reduction of each region active on ``day``."""
        return _active(self.regions, day)

    def reduction_of(self, countries: np.ndarray, day: date, regions: np.ndarray | None = None) -> np.ndarray:
        """Fractional reduction on ``day`` at points whose country codes are ``countries`` and
        (optional) region ids are ``regions`` (``""`` outside every region of the scenario):
        the larger of the country's and the region's reduction in force."""
        out = np.zeros(np.shape(countries), dtype=np.float64)
        for iso3, reduction in self.reduction_on(day).items():
            out[countries == iso3] = reduction
        if regions is not None:
            for region, reduction in self.region_reduction_on(day).items():
                inside = regions == region
                out[inside] = np.maximum(out[inside], reduction)
        return out


def _by_measure(dates: pd.DataFrame) -> pd.DataFrame:
    """reduction (by measure), start, end of a lockdown table, same index."""
    return pd.DataFrame({"reduction": dates["measure"].map(DEFAULT_REDUCTION_BY_MEASURE).astype(float),
                         "start": dates["lockdown_start"], "end": dates["lockdown_end"]})


def _active(table: pd.DataFrame, day: date) -> dict[str, float]:
    if table.empty:
        return {}
    ts = pd.Timestamp(day)
    start, end = pd.to_datetime(table["start"]), pd.to_datetime(table["end"])
    active = (table["reduction"] > 0) & (start <= ts) & (end.isna() | (ts <= end))
    return table.loc[active, "reduction"].astype(float).to_dict()
