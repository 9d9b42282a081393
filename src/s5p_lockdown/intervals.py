"""A change, its bootstrap percentile interval and significance flag, as table columns (shared
by the raw changes of :mod:`s5p_lockdown.stats` and the weather-normalised ones of
:mod:`s5p_lockdown.weather`)."""

from __future__ import annotations

import numpy as np


def change_columns(name: str, estimate: float, replicates: np.ndarray, tail: float,
                   min_finite: int = 0) -> dict:
    """``change_<name>`` (the estimate), ``change_<name>_low``/``_high`` (the ``tail`` and
    ``1 - tail`` quantiles of the bootstrap ``replicates``, NaN ignored) and
    ``significant_<name>`` (the interval excludes zero). The interval is NaN when the estimate
    is NaN or when at most ``min_finite`` replicates are finite."""
    estimate = float(estimate)
    replicates = np.asarray(replicates, dtype=float)
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
