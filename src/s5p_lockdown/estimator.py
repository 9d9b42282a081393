"""The common-support estimator of a region's change between windows, and its day bootstrap.

For windows ``G_1 … G_k`` (sets of days) of one region (:class:`~s5p_lockdown.cells.CellTable`),
with day counts ``c_d`` (1 for every day of the window for the estimate; multinomial counts of
a resample of the window's days, with replacement, for a bootstrap replicate):

1. per-cell window composites ``X_ig = Σ_d c_d s_di / Σ_d c_d n_di``: the mean of the
   region's pixels centred in cell i over the window's days (``s`` the sum of their columns,
   ``n`` their number, see :mod:`s5p_lockdown.attribution`);
2. the common support ``C``: the cells with data (``Σ_d c_d n_di > 0``) in *every* window
   compared;
3. the region mean of each window over the same cells with the same weights
   ``M_g = Σ_{i∈C} w_i X_ig / Σ_{i∈C} w_i``, ``w_i`` = cos(lat_i) × region fraction of cell i.

The spatial weights ``w_i`` do not depend on where or when the sky was clear, so a window in
which the cities happened to be clear more often does not read higher: with a truth constant in
time, every ``X_ig`` estimates the same cell value in every window and the ratio of two ``M_g``
is 1 within noise, whatever the clouds did. Clouds only decide which cells are in ``C`` and how
noisy each ``X_ig`` is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from s5p_lockdown.cells import CellTable

MAX_CHUNK_VALUES = 2_000_000
"""Replicates are processed in chunks of at most this many (replicate × cell) values per array
(16 MB each in float64), so a large country's bootstrap at a fine grid stays within a job's
memory."""


@dataclass(frozen=True)
class WindowSums:
    """Per-cell sums over a window's days for R day-count vectors: ``value`` (R, n_cells)
    ``Σ_d c_d s_di`` (mol m-2) and ``weight`` (R, n_cells) ``Σ_d c_d n_di`` (pixels)."""

    value: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True)
class SupportMeans:
    """Window means on the common support, one row per set of day counts.

    ``means`` (R, k) in mol m-2 (NaN where the support is empty); ``cells`` (R,) the number of
    cells in the support; ``area_share`` (R,) their share of the region's area (0-1, by
    cos(lat) × fraction)."""

    means: np.ndarray
    cells: np.ndarray
    area_share: np.ndarray


def day_counts(n_days: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """(replicates, n_days) multinomial counts of ``n_days`` days drawn with replacement: each
    row is one bootstrap resample of a window's days, keeping each day's cells (and its pixel
    counts and sums) together."""
    if not n_days:
        return np.zeros((replicates, 0))
    draws = rng.integers(0, n_days, size=(replicates, n_days))
    flat = (np.arange(replicates)[:, None] * n_days + draws).ravel()
    return np.bincount(flat, minlength=replicates * n_days).reshape(replicates, n_days).astype(np.float64)


def every_day(table: CellTable) -> np.ndarray:
    """(1, n_days) counts of the estimate: every day of the window once."""
    return np.ones((1, len(table.dates)))


def chunks(n_rows: int, n_cells: int):
    """Slices of at most :data:`MAX_CHUNK_VALUES` / ``n_cells`` rows covering ``n_rows``."""
    step = max(1, MAX_CHUNK_VALUES // max(1, n_cells))
    return [slice(start, start + step) for start in range(0, n_rows, step)]


def window_sums(table: CellTable, counts: np.ndarray) -> WindowSums:
    """The per-cell sums of ``table``'s days for each row of ``counts`` (R, n_days)."""
    return WindowSums(counts @ table.weighted_value, counts @ table.weight)


def support_means(windows: Sequence[WindowSums], area: np.ndarray) -> SupportMeans:
    """Region means of the windows' per-cell composites ``value / weight`` on the cells with
    data in all of them, weighted by the cells' ``area`` in the region (see the module
    docstring)."""
    support = np.logical_and.reduce([w.weight > 0 for w in windows])
    support_weight = np.where(support, area, 0.0)
    total = support_weight.sum(axis=1)
    means = np.full((support.shape[0], len(windows)), np.nan)
    for g, w in enumerate(windows):
        composite = np.divide(w.value, w.weight, out=np.zeros_like(w.value), where=support)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[:, g] = np.where(total > 0, (support_weight * composite).sum(axis=1) / total, np.nan)
    total_area = area.sum()
    share = np.where(support, area, 0.0).sum(axis=1) / total_area if total_area > 0 else np.zeros(len(total))
    return SupportMeans(means, support.sum(axis=1), share)


def common_support_means(windows: Sequence[CellTable], counts: Sequence[np.ndarray]) -> SupportMeans:
    """:func:`support_means` of ``windows`` (same region, same cells; each restricted to its
    days) for each row of ``counts`` (one (R, n_days) array per window), in chunks of rows."""
    replicates = counts[0].shape[0]
    first = windows[0]
    parts = [support_means([window_sums(t, c[rows]) for t, c in zip(windows, counts)],
                           first.area)
             for rows in chunks(replicates, first.area.size)]
    return SupportMeans(*(np.concatenate([getattr(p, f) for p in parts])
                          for f in ("means", "cells", "area_share")))
