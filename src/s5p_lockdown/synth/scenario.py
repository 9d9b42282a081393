"""Lockdown scenarios for synthetic data: which country loses how much NO2, and when.

A scenario file is a CSV with columns ``iso3, reduction, start, end`` and optionally
``hotspot``: ``reduction`` is the fractional reduction of the tropospheric column (0.3 = -30 %)
applied inside the country's borders from ``start`` to ``end`` inclusive (ISO dates; blank
``end`` = until further notice). A row naming a ``hotspot`` (a name from the hotspot table)
instead reduces only that hotspot's emission plume, leaving the rest of the country alone
(a city-only change). Rows with reduction 0 (countries without a lockdown) may be present for
completeness.

The default scenario derives from the shipped lockdown-dates table, with a reduction per kind of
measure (:data:`DEFAULT_REDUCTION_BY_MEASURE`), in the table's year (2020): the baseline year
(2019) therefore has no reduction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from s5p_lockdown.errors import ConfigError
from s5p_lockdown.lockdowns import load_lockdown_dates

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
    (``datetime64``, ``end`` NaT = open-ended); ``hotspots`` likewise by hotspot name, with the
    hotspot's ``iso3`` as an extra column."""

    table: pd.DataFrame
    hotspots: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["reduction", "start", "end", "iso3"])
    )

    @classmethod
    def default(cls, lockdown_table: str | Path | None = None) -> Scenario:
        dates = load_lockdown_dates(lockdown_table)
        table = pd.DataFrame(
            {
                "reduction": dates["measure"].map(DEFAULT_REDUCTION_BY_MEASURE).astype(float),
                "start": dates["lockdown_start"],
                "end": dates["lockdown_end"],
            }
        )
        return cls(table)

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
        rows, hotspot_rows = {}, {}
        for _, row in raw.iterrows():
            iso3 = row["iso3"].strip().upper()
            hotspot = row.get("hotspot", "").strip()
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
            if hotspot:
                hotspot_rows[hotspot] = (reduction, start, end, iso3)
            else:
                rows[iso3] = (reduction, start, end)
        table = pd.DataFrame.from_dict(rows, orient="index", columns=["reduction", "start", "end"])
        table.index.name = "iso3"
        hotspots = pd.DataFrame.from_dict(
            hotspot_rows, orient="index", columns=["reduction", "start", "end", "iso3"]
        )
        return cls(table, hotspots)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Scenario:
        """The scenario file at ``path``, or the default scenario when ``path`` is None."""
        return cls.read(path) if path else cls.default()

    def write(self, path: str | Path) -> None:
        """Write the scenario CSV atomically."""
        from s5p_lockdown.outputs import write_csv

        countries = self.table.reset_index().assign(hotspot="")
        hotspots = self.hotspots.rename_axis("hotspot").reset_index()
        out = pd.concat([countries, hotspots], ignore_index=True)
        for column in ("start", "end"):
            out[column] = pd.to_datetime(out[column]).dt.strftime("%Y-%m-%d").fillna("")
        write_csv(out[["iso3", "reduction", "start", "end", "hotspot"]], path, index=False)

    def reduction_on(self, day: date) -> dict[str, float]:
        """Reduction of each country active on ``day`` (countries with none are omitted)."""
        return _active(self.table, day)

    def hotspot_reduction_on(self, day: date) -> dict[str, float]:
        """Reduction of each hotspot plume active on ``day``."""
        return _active(self.hotspots, day)

    def reduction_of(self, countries: np.ndarray, day: date) -> np.ndarray:
        """Fractional reduction at points whose country codes are ``countries`` on ``day``."""
        out = np.zeros(np.shape(countries), dtype=np.float64)
        for iso3, reduction in self.reduction_on(day).items():
            out[countries == iso3] = reduction
        return out


def _active(table: pd.DataFrame, day: date) -> dict[str, float]:
    if table.empty:
        return {}
    ts = pd.Timestamp(day)
    start, end = pd.to_datetime(table["start"]), pd.to_datetime(table["end"])
    active = (table["reduction"] > 0) & (start <= ts) & (end.isna() | (ts <= end))
    return table.loc[active, "reduction"].astype(float).to_dict()
