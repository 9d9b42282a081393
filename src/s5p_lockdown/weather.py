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

from s5p_lockdown.intervals import change_columns

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

    def where(self, mask: np.ndarray) -> DayTable:
        return DayTable(self.s[mask], self.a[mask], self.wind[mask])

    @property
    def mean(self) -> np.ndarray:
        return self.s / self.a

    def __len__(self) -> int:
        return self.s.size


def _fit(y: np.ndarray, log_wind: np.ndarray, is_post: np.ndarray,
         weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The wind model fitted to ``R`` samples at once (arrays (R, n) of log NO2, log wind,
    post-window indicator and area weight A): coefficients (R, 3) = (a, b, c) by least squares
    weighted by A (days seen over more of the country are more reliable), and Duan's smearing
    factor (R,) (A-weighted mean of the exponentiated residuals). NaN where the design has
    rank < 3 (e.g. a constant wind). Solved with the 3 x 3 normal equations of every sample in
    one batch: a bootstrap refits the model a thousand times per country."""
    design = np.stack([np.ones_like(y), log_wind, is_post], axis=-1)  # (R, n, 3)
    weighted = design * weight[..., None]
    normal = np.einsum("rni,rnj->rij", weighted, design)
    rhs = np.einsum("rni,rn->ri", weighted, y)
    coef = np.full(rhs.shape, np.nan)
    ok = np.linalg.matrix_rank(design) == 3
    if ok.any():
        coef[ok] = np.linalg.solve(normal[ok], rhs[ok][..., None])[..., 0]
    residual = y - np.einsum("rni,ri->rn", design, coef)
    smearing = (weight * np.exp(residual)).sum(axis=1) / weight.sum(axis=1)
    return coef, smearing


def adjusted_changes(pre_b: DayTable, post_b: DayTable, post_a: DayTable,
                     samples: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Observed / expected - 1 for the analysis post days under the wind model fitted on the
    baseline days (NaN where the model cannot be fitted). ``samples``: day indices (R, n) into
    each table (bootstrap replicates); without them, the one estimate on all days (shape (1,))."""
    if samples is None:
        samples = tuple(np.arange(len(t))[None] for t in (pre_b, post_b, post_a))
    i_pre, i_post, i_analysis = samples
    if not len(post_a):
        return np.full(i_pre.shape[0], np.nan)
    y = np.log(np.concatenate([pre_b.mean[i_pre], post_b.mean[i_post]], axis=1))
    log_wind = np.log(np.concatenate([pre_b.wind[i_pre], post_b.wind[i_post]], axis=1))
    is_post = np.concatenate([np.zeros(i_pre.shape), np.ones(i_post.shape)], axis=1)
    weight = np.concatenate([pre_b.a[i_pre], post_b.a[i_post]], axis=1)
    coef, smearing = _fit(y, log_wind, is_post, weight)
    a, b, c = coef.T
    expected = np.exp(a[:, None] + b[:, None] * np.log(post_a.wind[i_analysis]) + c[:, None])
    expected *= smearing[:, None]
    return post_a.s[i_analysis].sum(axis=1) / (post_a.a[i_analysis] * expected).sum(axis=1) - 1


def low_wind_changes(post_a: DayTable, post_b: DayTable, threshold: float, min_days: int,
                     samples: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Raw post-window change on the days with wind at or below ``threshold`` (NaN with fewer
    than ``min_days`` such days in either year). ``samples``: day indices (R, n) into
    ``post_a`` and ``post_b``; without them, the one estimate on all days (shape (1,))."""
    if samples is None:
        samples = (np.arange(len(post_a))[None], np.arange(len(post_b))[None])
    means = []
    for table, index in zip((post_a, post_b), samples):
        calm = table.wind[index] <= threshold
        s = np.where(calm, table.s[index], 0.0).sum(axis=1)
        a = np.where(calm, table.a[index], 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append(np.where(calm.sum(axis=1) >= min_days, s / a, np.nan))
    return means[0] / means[1] - 1


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
            row.update(change_columns(name, np.nan, [], tail))
        return row
    threshold = float(np.median(np.concatenate([post_a.wind, post_b.wind])))
    row["low_wind_threshold"] = threshold
    estimates = {
        "weather_adjusted": float(adjusted_changes(pre_b, post_b, post_a)[0]),
        "low_wind": float(low_wind_changes(post_a, post_b, threshold, min_days)[0]),
    }
    # bootstrap: days resampled with replacement, each table on its own, model refitted
    i_pre, i_post, i_analysis = (rng.integers(0, len(t), (replicates, len(t)))
                                 for t in (pre_b, post_b, post_a))
    samples = {
        "weather_adjusted": adjusted_changes(pre_b, post_b, post_a, (i_pre, i_post, i_analysis)),
        "low_wind": low_wind_changes(post_a, post_b, threshold, 1, (i_analysis, i_post)),
    }
    for name in names:  # an interval needs the model fitted in most replicates
        row.update(change_columns(name, estimates[name], samples[name], tail,
                                  min_finite=replicates // 2))
    return row


def _mean_wind(table: DayTable) -> float:
    return float((table.a * table.wind).sum() / table.a.sum()) if len(table) else np.nan
