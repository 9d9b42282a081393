"""Per-country statistics from daily grids and fractional country masks.

Area weighting. A grid cell's weight in a country mean is ``cos(lat) x f x W`` where ``f`` is
the fraction of the cell inside the country (planar, from :mod:`s5p_lockdown.regions`),
``cos(lat)`` makes it proportional to the cell's area on the sphere, and ``W`` is the cell's
composite weight (Σ of pixel overlap fractions), so cells seen by more pixels count more, as in
the composite itself. For one day ``d`` and country ``c``::

    S[d,c] = Σ_cells cos(lat) f W_d x_d        A[d,c] = Σ_cells cos(lat) f W_d

and the mean over a window of days (a ``weight``-weighted period composite) is exactly
``Σ_d S / Σ_d A``: window statistics are computed from the daily table, which is also what
makes a bootstrap over days cheap.

Changes (fractions, -0.3 = -30 %), "analysis" = lockdown year, "baseline" = baseline year(s):

- ``change_post_vs_baseline`` = post_analysis / post_baseline - 1
- ``change_post_vs_pre`` = post_analysis / pre_analysis - 1
- ``change_adjusted`` = (post_analysis / pre_analysis) / (post_baseline / pre_baseline) - 1

Confidence intervals: percentile bootstrap over days (days resampled with replacement within
each of the four windows, keeping each day's cells together, so spatial correlation within a
day is kept and day-to-day (weather) variability, which dominates, is what is resampled).
A window with fewer than ``min_days`` usable days (a day is usable when at least
``min_day_coverage`` of the country's area has data) gives NaN and a reason.

Weather-normalised changes (``change_weather_adjusted``, ``change_low_wind``) are described in
:mod:`s5p_lockdown.weather`. The same functions serve hotspots: their "iso3" is the hotspot's
code and their windows are those of the hotspot's country.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from s5p_lockdown.gridding import schema
from s5p_lockdown.intervals import change_columns
from s5p_lockdown.weather import weather_statistics

GROUPS = (("pre", "analysis"), ("post", "analysis"), ("pre", "baseline"), ("post", "baseline"))
CHANGES = ("post_vs_baseline", "post_vs_pre", "adjusted")


@dataclass(frozen=True)
class StatsSettings:
    min_days: int = 3
    min_day_coverage: float = 0.1
    bootstrap: int = 1000
    confidence: float = 0.95
    seed: int = 0


def _cell_area_weights(latitude: np.ndarray, n_lon: int) -> np.ndarray:
    return np.repeat(np.cos(np.radians(latitude))[:, None], n_lon, axis=1)


def country_daily(daily_paths: list[str | Path], masks: xr.DataArray) -> pd.DataFrame:
    """Daily country table: one row per (date, iso3) with ``mean_no2`` (mol m-2, NaN without
    data), ``sum_weighted_no2`` (S), ``sum_weight`` (A), ``coverage`` (fraction of the
    country's area with data, 0-1), ``pixels`` (Σ f x pixel_count, rounded), ``orbits`` and
    ``wind_speed`` (m s-1, same area weighting; NaN when the grids have no wind).

    Daily files are named ``YYYY-MM-DD.nc``; ``masks`` is (country, latitude, longitude) on the
    same grid.
    """
    fractions = masks.values.reshape(masks.sizes["country"], -1).astype(np.float64)
    area = _cell_area_weights(masks["latitude"].values, masks.sizes["longitude"]).ravel()
    area_fraction = fractions * area  # (country, cells)
    country_area = area_fraction.sum(axis=1)
    codes = masks["country"].values.astype(str)
    frames = []
    for path in sorted(map(Path, daily_paths)):
        with xr.open_dataset(path) as ds:
            value = ds[schema.VALUE].values[0].ravel()
            weight = np.nan_to_num(ds[schema.WEIGHT].values[0].ravel())
            pixels = np.clip(ds[schema.PIXEL_COUNT].values[0].ravel(), 0, None).astype(np.float64)
            orbits = len([s for s in ds.attrs.get("source_product", "").split(",") if s])
            speed = ds["wind_speed"].values[0].ravel() if "wind_speed" in ds else np.full(value.shape, np.nan)
        has_data = np.isfinite(value) & (weight > 0)
        x = np.where(has_data, value, 0.0)
        w = np.where(has_data, weight, 0.0)
        s = area_fraction @ (w * x)
        a = area_fraction @ w
        covered = area_fraction @ has_data.astype(np.float64)
        has_wind = has_data & np.isfinite(speed)
        wind_weight = area_fraction @ np.where(has_wind, weight, 0.0)
        wind_sum = area_fraction @ np.where(has_wind, weight * speed, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            frames.append(
                pd.DataFrame(
                    {
                        "date": path.stem,
                        "iso3": codes,
                        "mean_no2": np.where(a > 0, s / np.where(a > 0, a, 1), np.nan),
                        "sum_weighted_no2": s,
                        "sum_weight": a,
                        "coverage": np.where(country_area > 0, covered / country_area, 0.0),
                        "pixels": np.rint(fractions @ pixels).astype(np.int64),
                        "orbits": orbits,
                        "wind_speed": np.where(wind_weight > 0, wind_sum / np.where(wind_weight > 0, wind_weight, 1), np.nan),
                    }
                )
            )
    if not frames:
        raise ValueError("country_daily: no daily grid given")
    return pd.concat(frames, ignore_index=True)


def _bootstrap_means(s: np.ndarray, a: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` bootstrap replicates of Σ s / Σ a with the days resampled with replacement."""
    index = rng.integers(0, s.size, size=(n, s.size))
    return s[index].sum(axis=1) / a[index].sum(axis=1)


def _changes(m: dict) -> dict[str, np.ndarray | float]:
    pre_a, post_a = m[("pre", "analysis")], m[("post", "analysis")]
    pre_b, post_b = m[("pre", "baseline")], m[("post", "baseline")]
    return {
        "post_vs_baseline": post_a / post_b - 1,
        "post_vs_pre": post_a / pre_a - 1,
        "adjusted": (post_a / pre_a) / (post_b / pre_b) - 1,
    }


def country_statistics(
    daily: pd.DataFrame,
    windows: pd.DataFrame,
    settings: StatsSettings = StatsSettings(),
) -> pd.DataFrame:
    """One row per country (see ``config/README.md`` for the columns).

    ``daily`` comes from :func:`country_daily`; ``windows`` from
    :func:`s5p_lockdown.windows.country_windows`.
    """
    daily = daily.copy()
    daily["date"] = pd.to_datetime(daily["date"]).dt.date
    rows = []
    tail = (1 - settings.confidence) / 2
    for iso3, country_windows in windows.groupby("iso3", sort=False):
        first = country_windows.iloc[0]
        row = {
            "iso3": iso3,
            "country": first["country"],
            "measure": first["measure"],
            "reference_window": bool(first["reference_window"]),
        }
        analysis = country_windows[country_windows["role"] == "analysis"].set_index("period")
        for period in ("pre", "post"):
            row[f"{period}_start"] = analysis.loc[period, "start"]
            row[f"{period}_end"] = analysis.loc[period, "end"]
        row["analysis_year"] = int(analysis["year"].iloc[0])
        row["baseline_years"] = " ".join(
            str(y) for y in sorted(country_windows.loc[country_windows["role"] == "baseline", "year"].unique())
        )
        of_country = daily[daily["iso3"] == iso3]
        means, samples, reasons, group_days = {}, {}, [], {}
        rng = np.random.default_rng([settings.seed, zlib.crc32(iso3.encode())])
        for period, role in GROUPS:
            spans = country_windows[(country_windows["period"] == period) & (country_windows["role"] == role)]
            days = set()
            for start, end in spans[["start", "end"]].itertuples(index=False):
                days.update(pd.date_range(start, end).date)
            in_window = of_country[of_country["date"].isin(days)]
            usable = in_window[(in_window["sum_weight"] > 0) & (in_window["coverage"] >= settings.min_day_coverage)]
            group_days[(period, role)] = usable
            key = f"{period}_{role}"
            row[f"days_{key}"] = len(usable)
            row[f"calendar_days_{key}"] = len(days)
            row[f"pixels_{key}"] = int(usable["pixels"].sum())
            row[f"coverage_{key}"] = float(in_window["coverage"].sum() / len(days)) if days else 0.0
            if len(usable) < settings.min_days:
                reasons.append(f"{key}: {len(usable)} usable days < {settings.min_days}")
                means[(period, role)] = np.nan
                samples[(period, role)] = np.full(settings.bootstrap, np.nan)
                row[f"mean_{key}"] = np.nan
                continue
            s, a = usable["sum_weighted_no2"].to_numpy(), usable["sum_weight"].to_numpy()
            means[(period, role)] = s.sum() / a.sum()
            row[f"mean_{key}"] = means[(period, role)]
            samples[(period, role)] = _bootstrap_means(s, a, settings.bootstrap, rng)
        estimates = _changes(means)
        replicates = _changes(samples)
        for name in CHANGES:
            row.update(change_columns(name, estimates[name], replicates[name], tail))
        row.update(weather_statistics(group_days, settings.min_days, settings.bootstrap, tail, rng))
        row["status"] = "ok" if not reasons else "insufficient data"
        row["reason"] = "; ".join(reasons)
        rows.append(row)
    return pd.DataFrame(rows)
