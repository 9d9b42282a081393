"""A change, its bootstrap percentile interval and significance flag, as table columns (shared
by the raw changes of :mod:`s5p_lockdown.stats` and the weather-normalised ones of
:mod:`s5p_lockdown.weather`).

Small-sample correction. Resampling ``n`` days with replacement gives a mean whose bootstrap
variance is the plug-in estimate of its sampling variance, ``(n - 1) / n`` of the unbiased one
(for a mean over a subset of the days, e.g. the calm ones, ``n`` is the subset's size), so a percentile
interval from a window of 7 days is ~7 % too narrow and holds the truth less often than its
level says (measured: 87-89 % instead of 95 % for the four-window and low-wind changes, whose
windows hold the fewest days). Replicates are therefore widened about the estimate by
``sqrt(n / (n - 1))`` on the log scale (a widened ratio or mean stays positive). It is the
variance part of Hesterberg's "expanded percentile interval" (T. C. Hesterberg, 2015, What
teachers should know about the bootstrap, The American Statistician 69(4)); its second part, a
Student-t quantile for ``n - 1`` degrees of freedom, is not applied (the accuracy benchmark,
``benchmarks/bench_accuracy.py``, finds the intervals calibrated without it).

Two ways, by what is resampled:

- :func:`widened_window_means`: a change that is a ratio of window means, each window's days
  resampled independently of the others (the raw changes), has the log-variance
  ``Σ_g var(log M_g)``; each window mean's replicates are widened by its *own* window's
  ``sqrt(n_g / (n_g - 1))`` before the ratio is formed, exact for every window. (Widening the
  ratio by the fewest days' factor instead is conservative for the windows with more days.)
- :func:`widened`: the change's own replicates widened by ``n``, for a change that is not a
  plain ratio of window means (the weather-normalised ones: ``n`` the fewest days of the
  windows it compares, conservative for the others).
"""

from __future__ import annotations

import numpy as np


def widened(estimate: float, replicates: np.ndarray, days: int | None) -> np.ndarray:
    """``replicates`` of a change (fractions, > -1) widened about ``estimate`` by
    ``sqrt(days / (days - 1))`` on the log-ratio scale (see the module docstring); unchanged
    when ``days`` is None or below 2."""
    replicates = np.asarray(replicates, dtype=float)
    if days is None or days < 2 or not np.isfinite(estimate) or estimate <= -1:
        return replicates
    factor = np.sqrt(days / (days - 1))
    centre = np.log1p(estimate)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.expm1(centre + factor * (np.log1p(replicates) - centre))


def widened_window_means(means: np.ndarray, days) -> np.ndarray:
    """Window means ``means`` (R + 1, k; row 0 the estimate, rows 1.. bootstrap replicates; any
    unit, e.g. mol m-2) with each column's replicates widened about its estimate by
    ``sqrt(days[g] / (days[g] - 1))`` on the log scale (see the module docstring): the relative
    deviation ``M / M_estimate - 1`` of a replicate goes through :func:`widened`. A column whose
    estimate is not positive (no log scale) or whose window has fewer than 2 days is left as it
    is."""
    means = np.array(means, dtype=float)
    for g, n in enumerate(days):
        estimate = means[0, g]
        if np.isfinite(estimate) and estimate > 0:
            means[1:, g] = estimate * (1 + widened(0.0, means[1:, g] / estimate - 1, n))
    return means


def change_columns(name: str, estimate: float, replicates: np.ndarray, tail: float,
                   min_finite: int = 0, days: int | None = None) -> dict:
    """``change_<name>`` (the estimate), ``change_<name>_low``/``_high`` (the ``tail`` and
    ``1 - tail`` quantiles of the bootstrap ``replicates``, NaN ignored, widened for ``days``,
    the fewest days resampled in a window compared: :func:`widened`) and
    ``significant_<name>`` (the interval excludes zero). The interval is NaN when the estimate
    is NaN or when at most ``min_finite`` replicates are finite."""
    estimate = float(estimate)
    replicates = widened(estimate, replicates, days)
    if np.isfinite(estimate) and np.isfinite(replicates).sum() > min_finite:
        low, high = np.nanquantile(replicates, [tail, 1 - tail])
    else:
        low = high = np.nan
    return {
        f"change_{name}": estimate,
        f"change_{name}_low": float(low),
        f"change_{name}_high": float(high),
        f"significant_{name}": bool(np.isfinite(low) and (low > 0 or high < 0)),
    }
