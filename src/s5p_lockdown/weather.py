"""Weather normalisation of lockdown changes with the wind every S5P file carries.

Wind disperses NO2: a windy month looks like a lockdown. Two corrections, both per country
(or hotspot) from its daily table (columns ``sum_weighted_no2``, ``sum_weight``,
``mean_no2`` in mol m-2 and ``wind_speed`` in m s-1):

**Wind model** (``change_weather_adjusted``). On the baseline year(s) — the days of both the pre
and the post baseline windows — fit by least squares::

    log(no2_d) = a + b log(wind_d) + c [d in the post window]

(a power law: plume columns scale roughly as 1/wind; ``c`` carries the seasonal step between
the two windows), each day weighted by its area weight ``A_d``. The expected NO2 of each analysis-year post day under the wind actually
observed that day is ``exp(a + b log(wind_d) + c)`` times Duan's smearing factor (the mean of
the exponentiated residuals, which removes the bias of back-transforming a log fit). The
adjusted change is ``Σ_d A_d no2_d / Σ_d A_d expected_d - 1`` over the analysis post days
(``A_d`` the day's area weight, as for the raw means). Wind direction is not used: over
country-sized areas the speed explains most of the dispersion, and a sector term would need
more baseline days than a lockdown window offers.

**Low-wind days** (``change_low_wind``), the transparent variant: the raw post-window change
using only days whose country wind is at or below the median wind of all post-window days of
both years.

Intervals: percentile bootstrap over days (baseline and analysis days resampled independently,
the model refitted for each replicate). Without wind (processor < 1.3) or with too few days,
both are NaN and ``weather_adjustment`` says why; the raw change stands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MIN_BASELINE_DAYS = 6


@dataclass
class DayTable:
    """Usable days of one window group: S, A, mean and wind (arrays of equal length)."""

    s: np.ndarray
    a: np.ndarray
    wind: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame) -> DayTable:
        return cls(
            frame["sum_weighted_no2"].to_numpy(float),
            frame["sum_weight"].to_numpy(float),
            frame["wind_speed"].to_numpy(float) if "wind_speed" in frame else np.full(len(frame), np.nan),
        )

    def take(self, index: np.ndarray) -> DayTable:
        return DayTable(self.s[index], self.a[index], self.wind[index])

    def where(self, mask: np.ndarray) -> DayTable:
        return DayTable(self.s[mask], self.a[mask], self.wind[mask])

    @property
    def mean(self) -> np.ndarray:
        return self.s / self.a

    def __len__(self) -> int:
        return self.s.size


def _fit(pre: DayTable, post: DayTable) -> tuple[np.ndarray, float] | None:
    """Coefficients (a, b, c) of the wind model, least squares weighted by each day's area
    weight A (days seen over more of the country are more reliable), and Duan's smearing
    factor (A-weighted mean of the exponentiated residuals)."""
    y = np.log(np.concatenate([pre.mean, post.mean]))
    wind = np.concatenate([pre.wind, post.wind])
    is_post = np.concatenate([np.zeros(len(pre)), np.ones(len(post))])
    weight = np.concatenate([pre.a, post.a])
    design = np.column_stack([np.ones_like(y), np.log(wind), is_post])
    if np.linalg.matrix_rank(design) < 3:
        return None
    root = np.sqrt(weight)
    coef, *_ = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)
    smearing = float(np.average(np.exp(y - design @ coef), weights=weight))
    return coef, smearing


def adjusted_change(pre_b: DayTable, post_b: DayTable, post_a: DayTable) -> float:
    """Observed / expected - 1 for the analysis post days under the wind model (NaN if the
    model cannot be fitted)."""
    fitted = _fit(pre_b, post_b)
    if fitted is None or not len(post_a):
        return np.nan
    (a, b, c), smearing = fitted
    expected = np.exp(a + b * np.log(post_a.wind) + c) * smearing
    return float(post_a.s.sum() / (post_a.a * expected).sum() - 1)


def low_wind_change(post_a: DayTable, post_b: DayTable, threshold: float, min_days: int) -> float:
    calm_a = post_a.where(post_a.wind <= threshold)
    calm_b = post_b.where(post_b.wind <= threshold)
    if len(calm_a) < min_days or len(calm_b) < min_days:
        return np.nan
    return float((calm_a.s.sum() / calm_a.a.sum()) / (calm_b.s.sum() / calm_b.a.sum()) - 1)


def weather_statistics(
    groups: dict[tuple[str, str], pd.DataFrame],
    min_days: int,
    replicates: int,
    tail: float,
    rng: np.random.Generator,
) -> dict:
    """Wind-adjusted and low-wind changes with bootstrap intervals for one country.

    ``groups`` maps (period, role) to the usable days of that window (see
    :func:`s5p_lockdown.stats.country_statistics`).
    """
    tables = {key: DayTable.of(frame) for key, frame in groups.items()}
    tables = {key: t.where(np.isfinite(t.wind) & (t.wind > 0) & (t.mean > 0)) for key, t in tables.items()}
    pre_b, post_b = tables[("pre", "baseline")], tables[("post", "baseline")]
    post_a = tables[("post", "analysis")]
    row = {
        "wind_post_analysis": _mean_wind(post_a),
        "wind_post_baseline": _mean_wind(post_b),
    }
    names = ("weather_adjusted", "low_wind")
    has_wind = any(np.isfinite(DayTable.of(f).wind).any() for f in groups.values())
    if not has_wind:
        reason = "unavailable: no wind in the input files (processor < 1.3?); use the raw change"
    elif len(pre_b) + len(post_b) < MIN_BASELINE_DAYS or len(post_b) < 2 or len(pre_b) < 2:
        reason = f"unavailable: {len(pre_b) + len(post_b)} baseline days with wind (need {MIN_BASELINE_DAYS})"
    elif len(post_a) < min_days:
        reason = f"unavailable: {len(post_a)} analysis post days with wind (need {min_days})"
    else:
        reason = f"wind model fitted on {len(pre_b) + len(post_b)} baseline days"
        baseline_wind = np.concatenate([pre_b.wind, post_b.wind])
        outside = np.mean((post_a.wind < baseline_wind.min()) | (post_a.wind > baseline_wind.max()))
        if outside > 0.5:
            reason += (f"; extrapolated: {100 * outside:.0f} % of the analysis days are windier or "
                       "calmer than any baseline day")
    row["weather_adjustment"] = reason
    if not reason.startswith("wind model"):
        for name in names:
            row.update({f"change_{name}": np.nan, f"change_{name}_low": np.nan,
                        f"change_{name}_high": np.nan, f"significant_{name}": False})
        return row
    threshold = float(np.median(np.concatenate([post_a.wind, post_b.wind])))
    row["low_wind_threshold"] = threshold
    estimates = {
        "weather_adjusted": adjusted_change(pre_b, post_b, post_a),
        "low_wind": low_wind_change(post_a, post_b, threshold, min_days),
    }
    samples = {name: np.empty(replicates) for name in names}
    for i in range(replicates):
        pb, qb, qa = (t.take(rng.integers(0, len(t), len(t))) for t in (pre_b, post_b, post_a))
        samples["weather_adjusted"][i] = adjusted_change(pb, qb, qa)
        samples["low_wind"][i] = low_wind_change(qa, qb, threshold, 1)
    for name in names:
        estimate = estimates[name]
        if np.isfinite(estimate) and np.isfinite(samples[name]).sum() > replicates // 2:
            low, high = np.nanquantile(samples[name], [tail, 1 - tail])
        else:
            low = high = np.nan
        row[f"change_{name}"] = estimate
        row[f"change_{name}_low"] = float(low)
        row[f"change_{name}_high"] = float(high)
        row[f"significant_{name}"] = bool(np.isfinite(low) and (low > 0 or high < 0))
    return row


def _mean_wind(table: DayTable) -> float:
    return float((table.a * table.wind).sum() / table.a.sum()) if len(table) else np.nan
