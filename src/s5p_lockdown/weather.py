"""Weather normalisation of lockdown changes with the wind every S5P file carries.

Wind disperses NO2: a windy month looks like a lockdown. Two corrections of the lockdown-window
change against the baseline (``post_vs_baseline``), both per region from its cells × days
tables (:mod:`s5p_lockdown.cells`) with the common-support estimator of
:mod:`s5p_lockdown.estimator`, so that neither depends on where the sky was clear.

**Wind model** (``change_weather_adjusted``). Each day ``d`` of the four windows gets a
cloud-independent *day index*: the day's NO2 relative to a fixed reference map at the cells it
saw, ``y_d = Σ_i w_i W_di x_di / Σ_i w_i W_di μ_i``, with ``w_i`` the estimator's cell weight,
``W_di`` the number of the region's pixels centred in the cell that day, ``x_di`` their mean, and
``μ_i`` the cell's level in the multiplicative decomposition ``x_di ≈ μ_i y_d`` of all days
(:func:`reference_and_day_index`; a plain composite of each cell would carry the levels of the
days it happened to be seen on). Then, by least squares weighted
by the day's reference weight ``A_d = Σ_i w_i W_di μ_i``, with ``L_d = log(wind_d)``::

    log y_d = α_window(d) + b1 L_d + b2 L_d²

one intercept per window (pre/post × analysis/baseline: they absorb the season, the year and the
lockdown) and one wind response ``g(L) = b1 L + b2 L²`` fitted on the day-to-day wind variation
inside all four windows (so the analysis year's own winds are inside the fitted range). The
response's slope, the wind elasticity ``b1 + 2 b2 L``, may change with the wind: where plumes
are ventilated and the background is not, a plume's share of the column, and with it the
elasticity, shrinks on windy days, and one constant elasticity fitted on both years' winds
over-corrects a windier lockdown year (benchmarks/bench_accuracy.py, 10 seeds × 14 countries,
mean error of the weather-adjusted change against the injected reduction: 1.61 -> 1.52 pp when
the truth's dispersion is a power law, 1.91 -> 1.53 pp when only the plumes are ventilated, as
1/wind, the intervals' coverage 94-98 %). Under this model a cell's window composite is
``X_ig = λ_g μ_i F_ig`` with ``F_ig = Σ_d W_di exp(g(L_d)) / Σ_d W_di`` the cell's mean wind
factor over the window's days, so on the common support ``C`` of the two post windows::

    change_weather_adjusted = (M_post,analysis / M_post,baseline) / K - 1,
    K = Σ_{i∈C} w_i μ_i F_i,post,analysis / Σ_{i∈C} w_i μ_i F_i,post,baseline

the raw common-support ratio divided by the ratio the winds alone would have produced. Wind
direction is not used: over country-sized areas the speed explains most of the dispersion.

**Low-wind days** (``change_low_wind``), the transparent variant: the common-support
``post_vs_baseline`` change using only days whose region wind is at or below the median wind of
all post-window days of both years.

Intervals: percentile bootstrap over days (each window's days resampled with replacement, the
per-cell composites and the wind fit recomputed for every replicate), widened for the few days
of a window (:mod:`s5p_lockdown.intervals`; ``n`` = the fewer days of the two lockdown windows,
of their calm days for the low-wind change). Without wind (processor
< 1.3) or with too few days, both are NaN and ``weather_adjustment`` and ``reason_*`` say why;
the raw change stands.
"""

from __future__ import annotations

import numpy as np

from s5p_lockdown.cells import CellTable
from s5p_lockdown.estimator import WindowSums, chunks, day_counts, every_day, support_means, window_sums
from s5p_lockdown.intervals import change_columns

WINDOWS = (("pre", "baseline"), ("post", "baseline"), ("pre", "analysis"), ("post", "analysis"))
POST_A, POST_B = ("post", "analysis"), ("post", "baseline")
MIN_FIT_DAYS = 8
"""Days with wind needed in the fit, over all windows (one intercept per window plus b1, b2)."""
NAMES = ("weather_adjusted", "low_wind")


def reference_and_day_index(tables: list[CellTable], iterations: int = 50,
                            tolerance: float = 1e-12) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """The multiplicative decomposition ``x_di ≈ μ_i y_d`` of all days of ``tables``: the
    cells' reference map μ (NaN where a cell has no data) and, per table, each day's index y_d
    and reference weight A_d = Σ_i w_i W_di μ_i (see the module docstring).

    Alternating ratio estimates (``y_d = Σ_i w_i W_di x_di / A_d``, then ``μ_i = Σ_d W_di x_di /
    Σ_d W_di y_d``) until μ changes by less than ``tolerance`` (relative): starting from the
    plain cell composites, this removes from μ which days each cell happened to be seen on."""
    weighted_value = np.concatenate([t.weighted_value for t in tables])
    weight = np.concatenate([t.weight for t in tables])
    cell_weight = tables[0].area
    seen = weight.sum(axis=0) > 0
    y = np.ones(weight.shape[0])
    mu = np.zeros(weight.shape[1])
    for _ in range(iterations):
        expected = weight.T @ y
        new_mu = np.divide(weighted_value.sum(axis=0), expected, out=np.zeros_like(expected),
                           where=seen & (expected > 0))
        a = weight @ (cell_weight * new_mu)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(a > 0, (weighted_value @ cell_weight) / a, 0.0)
        change = np.abs(new_mu - mu).max() / max(np.abs(new_mu).max(), 1e-300)
        mu = new_mu
        if change < tolerance:
            break
    a = weight @ (cell_weight * mu)
    y = np.where(a > 0, y, np.nan)
    bounds = np.cumsum([0] + [len(t.dates) for t in tables])
    return (np.where(seen, mu, np.nan), [y[i:j] for i, j in zip(bounds[:-1], bounds[1:])],
            [a[i:j] for i, j in zip(bounds[:-1], bounds[1:])])


def fit_wind_response(log_y: np.ndarray, log_wind: np.ndarray, window: np.ndarray,
                      weight: np.ndarray) -> np.ndarray:
    """(b1, b2) of ``log y = α_window + b1 log wind + b2 log² wind`` by least squares for ``R``
    weightings at once.

    ``log_y``, ``log_wind``, ``window`` (integer window of each day): (n,); ``weight`` (R, n),
    the day weights of each replicate (A_d times the day's bootstrap count). Returns (R, 2), NaN
    where the design is rank-deficient (e.g. a constant wind within every window). Solved with
    the small normal equations of every replicate in one batch: a bootstrap refits a thousand
    times per region."""
    dummies = (window[:, None] == np.unique(window)[None, :]).astype(np.float64)
    design = np.column_stack([dummies, log_wind, log_wind**2])  # (n, p)
    normal = np.einsum("rn,ni,nj->rij", weight, design, design)
    rhs = np.einsum("rn,ni,n->ri", weight, design, log_y)
    b = np.full((weight.shape[0], 2), np.nan)
    ok = np.linalg.matrix_rank(normal, hermitian=True) == design.shape[1]
    if ok.any():
        b[ok] = np.linalg.solve(normal[ok], rhs[ok][..., None])[:, -2:, 0]
    return b


def _wind_factor_ratio(post_a: CellTable, post_b: CellTable, sums_a: WindowSums, sums_b: WindowSums,
                       counts_a: np.ndarray, counts_b: np.ndarray, b: np.ndarray,
                       reference: np.ndarray) -> np.ndarray:
    """K (R,): for each row's wind response ``b`` (R, 2: b1, b2), the ratio of the post
    windows' region means that the winds alone give, on the
    common support of each row of counts (see the module docstring)."""
    support = (sums_a.weight > 0) & (sums_b.weight > 0)
    mu_weight = np.where(support, np.nan_to_num(reference) * post_a.area, 0.0)
    responses = []
    for table in (post_a, post_b):
        log_wind = np.log(table.wind)[None, :]
        responses.append(b[:, :1] * log_wind + b[:, 1:] * log_wind**2)  # (R, n_days)
    # K is a ratio: one constant per row taken off both windows' responses changes nothing, and
    # keeps exp() finite when nearly constant winds let b1 and b2 grow large and cancel (a row
    # whose b is NaN stays NaN)
    offset = np.hstack(responses).max(axis=1, keepdims=True)
    means = []
    for table, sums, counts, response in ((post_a, sums_a, counts_a, responses[0]),
                                          (post_b, sums_b, counts_b, responses[1])):
        factor = np.exp(response - offset)
        f = np.divide((counts * factor) @ table.weight, sums.weight, out=np.zeros_like(sums.weight),
                      where=support)
        means.append((mu_weight * f).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return means[0] / means[1]


def weather_statistics(
    windows: dict[tuple[str, str], CellTable],
    min_days: int,
    replicates: int,
    tail: float,
    rng: np.random.Generator,
) -> dict:
    """Wind-adjusted and low-wind changes with bootstrap intervals for one region.

    ``windows`` maps (period, role) to the region's table restricted to that window's usable
    days (see :func:`s5p_lockdown.stats.country_statistics`); windows with too few usable days
    are left out.
    """
    has_wind = any(np.isfinite(t.wind).any() for t in windows.values())
    tables = {k: t.days(np.isfinite(t.wind) & (t.wind > 0)) for k, t in windows.items()}
    post_a, post_b = tables.get(POST_A), tables.get(POST_B)
    row = {"wind_post_analysis": _mean_wind(post_a), "wind_post_baseline": _mean_wind(post_b)}
    fit_keys = [k for k in WINDOWS if k in tables and len(tables[k].dates) >= 2]
    fit_days = sum(len(tables[k].dates) for k in fit_keys)
    if not has_wind:
        reason = "unavailable: no wind in the input files (processor < 1.3?); use the raw change"
    elif post_a is None or post_b is None or min(len(post_a.dates), len(post_b.dates)) < min_days:
        reason = f"unavailable: fewer than {min_days} days with wind in a lockdown window"
    elif fit_days < MIN_FIT_DAYS:
        reason = f"unavailable: {fit_days} days with wind in the four windows (need {MIN_FIT_DAYS})"
    else:
        reason = f"wind model fitted on {fit_days} days of {len(fit_keys)} windows"
        fitted = np.concatenate([tables[k].wind for k in fit_keys if k != POST_A])
        outside = np.mean((post_a.wind < fitted.min()) | (post_a.wind > fitted.max()))
        if outside > 0.5:
            reason += (f"; extrapolated: {100 * outside:.0f} % of the lockdown days are windier or "
                       "calmer than any other day")
    row["weather_adjustment"] = reason
    if not reason.startswith("wind model"):
        for name in NAMES:
            row.update(change_columns(name, np.nan, [], tail))
            row.update({f"support_cells_{name}": 0, f"support_area_{name}": 0.0,
                        f"reason_{name}": "weather adjustment " + reason})
        return row

    fit_tables = [tables[k] for k in fit_keys]
    reference, indices, weights = reference_and_day_index(fit_tables)
    y = np.concatenate(indices)
    good = np.isfinite(y) & (y > 0)
    day_weight = np.where(good, np.concatenate(weights), 0.0)
    log_y = np.log(np.where(good, y, 1.0))
    log_wind = np.log(np.concatenate([t.wind for t in fit_tables]))
    window = np.concatenate([np.full(len(t.dates), g) for g, t in enumerate(fit_tables)])

    # row 0: the estimate (every day once); rows 1..: bootstrap replicates
    counts = {k: np.vstack([every_day(t), day_counts(len(t.dates), replicates, rng)])
              for k, t in tables.items()}
    b = fit_wind_response(log_y, log_wind, window,
                          np.concatenate([counts[k] for k in fit_keys], axis=1) * day_weight)
    threshold = float(np.median(np.concatenate([post_a.wind, post_b.wind])))
    row["low_wind_threshold"] = threshold
    calm_a, calm_b = (post_a.wind <= threshold), (post_b.wind <= threshold)
    enough_calm = min(calm_a.sum(), calm_b.sum()) >= min_days
    adjusted = np.full(replicates + 1, np.nan)
    low_wind = np.full(replicates + 1, np.nan)
    for rows in chunks(replicates + 1, post_a.area.size):
        c_a, c_b = counts[POST_A][rows], counts[POST_B][rows]
        sums_a, sums_b = window_sums(post_a, c_a), window_sums(post_b, c_b)
        means = support_means([sums_a, sums_b], post_a.area)
        if rows.start == 0:
            support = means
        k = _wind_factor_ratio(post_a, post_b, sums_a, sums_b, c_a, c_b, b[rows], reference)
        with np.errstate(invalid="ignore", divide="ignore"):
            adjusted[rows] = means.means[:, 0] / means.means[:, 1] / k - 1
        if enough_calm:
            calm = support_means([window_sums(post_a, c_a * calm_a), window_sums(post_b, c_b * calm_b)],
                                 post_a.area)
            if rows.start == 0:
                calm_support = calm
            with np.errstate(invalid="ignore", divide="ignore"):
                low_wind[rows] = calm.means[:, 0] / calm.means[:, 1] - 1
    row.update(_columns("weather_adjusted", adjusted[0], adjusted[1:], support, tail, replicates,
                        "the wind model could not be fitted", min(len(post_a.dates), len(post_b.dates))))
    if not enough_calm:
        row.update(change_columns("low_wind", np.nan, [], tail))
        row.update({"support_cells_low_wind": 0, "support_area_low_wind": 0.0,
                    "reason_low_wind": f"fewer than {min_days} calm days in a lockdown window"})
        return row
    row.update(_columns("low_wind", low_wind[0], low_wind[1:], calm_support, tail, replicates,
                        "no grid cell has data on calm days of both lockdown windows",
                        int(min(calm_a.sum(), calm_b.sum()))))
    return row


def _columns(name: str, estimate: float, replicates: np.ndarray, support, tail: float,
             n_replicates: int, reason_if_missing: str, fewest_days: int) -> dict:
    # an interval needs the change computable in most replicates
    columns = change_columns(name, estimate, replicates, tail, min_finite=n_replicates // 2,
                             days=fewest_days)
    columns[f"support_cells_{name}"] = int(support.cells[0])
    columns[f"support_area_{name}"] = float(support.area_share[0])
    columns[f"reason_{name}"] = "" if np.isfinite(estimate) else reason_if_missing
    return columns


def _mean_wind(table: CellTable | None) -> float:
    """The window's mean region wind (m s-1), days weighted by the area they saw."""
    if table is None or not len(table.dates):
        return np.nan
    seen = (table.weight > 0).astype(np.float64) @ table.area
    wind = table.wind
    ok = np.isfinite(wind) & (seen > 0)
    return float((seen[ok] * wind[ok]).sum() / seen[ok].sum()) if ok.any() else np.nan
