"""Weather normalisation: the wind model and the low-wind variant on hand-made cells × days
tables."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from s5p_lockdown.estimator import common_support_means, every_day
from s5p_lockdown.weather import fit_wind_response, weather_statistics
from stats_support import record_interval_days, table, window_dates

KEYS = {("pre", "baseline"): "pre_baseline", ("post", "baseline"): "post_baseline",
        ("pre", "analysis"): "pre_analysis", ("post", "analysis"): "post_analysis"}
ELASTICITY = -0.5  # plume-dominated region: NO2 ∝ wind^-0.5


def _windows(seed=0, wind_scale=1.0, reduction=0.3, noise=0.03, wind=True, n_cells=20, clear=0.7,
             response=lambda w: w ** ELASTICITY):
    """The four windows' usable days of one region; each cell is level x pattern x
    response(wind) (default wind^-0.5) x noise; the analysis post window has the baseline post
    window's winds times ``wind_scale`` (1: identical weather) and the lockdown ``reduction``;
    clouds differ."""
    rng = np.random.default_rng(seed)
    pattern = rng.uniform(0.5, 3, n_cells)
    winds = {k: rng.uniform(2, 10, len(window_dates(v))) for k, v in KEYS.items()}
    winds[("post", "analysis")] = winds[("post", "baseline")] * wind_scale
    level = {("pre", "baseline"): 1.0, ("post", "baseline"): 0.9, ("pre", "analysis"): 1.0,
             ("post", "analysis"): 0.9 * (1 - reduction)}
    out = {}
    for key, name in KEYS.items():
        dates = window_dates(name)
        w = winds[key]
        values = level[key] * pattern * response(w)[:, None] * np.exp(rng.normal(0, noise, (len(dates), n_cells)))
        weights = np.where(rng.random((len(dates), n_cells)) < clear, rng.uniform(0.5, 2, (len(dates), n_cells)), 0.0)
        out[key] = table(values, weights, dates, wind=w if wind else None)
    return out


def _raw(windows):
    post = [windows[("post", "analysis")], windows[("post", "baseline")]]
    means = common_support_means(post, [every_day(t) for t in post]).means[0]
    return means[0] / means[1] - 1


def _stats(windows, seed=1):
    return weather_statistics(windows, min_days=3, replicates=300, tail=0.025, rng=np.random.default_rng(seed))


def test_windier_lockdown_year_biases_raw_change_and_model_recovers_it():
    windows = _windows(wind_scale=1.6)
    row = _stats(windows)
    assert _raw(windows) < -0.3 - 0.08  # windier: looks like a bigger drop
    assert row["change_weather_adjusted"] == pytest.approx(-0.3, abs=0.015)
    assert row["change_weather_adjusted_low"] < -0.3 < row["change_weather_adjusted_high"]
    assert row["significant_weather_adjusted"]
    assert row["wind_post_analysis"] > 1.4 * row["wind_post_baseline"]
    assert row["reason_weather_adjusted"] == "" and row["support_cells_weather_adjusted"] == 20


def test_calmer_lockdown_year_biases_raw_change_the_other_way():
    windows = _windows(wind_scale=0.7)
    assert _raw(windows) > -0.3 + 0.05
    assert _stats(windows)["change_weather_adjusted"] == pytest.approx(-0.3, abs=0.015)


def test_exact_model_is_recovered_exactly_whatever_the_clouds():
    """Without noise the model holds exactly: the adjusted change is the injected reduction to
    rounding, although each window saw other cells on other days."""
    row = _stats(_windows(seed=3, wind_scale=1.4, noise=0.0, clear=0.4))
    assert row["change_weather_adjusted"] == pytest.approx(-0.3, abs=1e-9)


def test_curved_wind_response_is_recovered_exactly():
    """The elasticity may change with the wind (a plume's share of the column shrinks on windy
    days): a response exp(-0.9 L + 0.15 L²), L = log wind, holds the model exactly, so without
    noise the adjusted change is the injected reduction to rounding; one constant elasticity
    could not follow it."""
    curved = lambda w: np.exp(-0.9 * np.log(w) + 0.15 * np.log(w) ** 2)  # noqa: E731
    row = _stats(_windows(seed=4, wind_scale=1.45, noise=0.0, clear=0.5, response=curved))
    assert row["change_weather_adjusted"] == pytest.approx(-0.3, abs=1e-9)


def test_batched_fit_equals_weighted_least_squares_per_replicate():
    """The bootstrap refits the model for all replicates at once: each replicate's (b1, b2)
    equal a weighted least-squares fit of that replicate alone; a replicate whose wind is
    constant within every window gives NaN, not an error."""
    rng = np.random.default_rng(3)
    n = 24
    window = np.repeat([0, 1, 2], 8)
    log_wind = rng.normal(1.5, 0.4, n)
    log_y = 0.3 * window - 0.5 * log_wind + 0.1 * log_wind**2 + rng.normal(0, 0.1, n)
    weight = rng.uniform(0, 3, (5, n))
    b = fit_wind_response(log_y, log_wind, window, weight)
    assert b.shape == (5, 2)
    design = np.column_stack([(window[:, None] == np.arange(3)).astype(float), log_wind, log_wind**2])
    for r in range(5):
        root = np.sqrt(weight[r])
        expected, *_ = np.linalg.lstsq(design * root[:, None], log_y * root, rcond=None)
        np.testing.assert_allclose(b[r], expected[-2:], rtol=1e-8)
    constant = np.repeat([1.0, 1.2, 1.4], 8)  # wind constant inside each window
    assert np.isnan(fit_wind_response(log_y, constant, window, weight)).all()


def test_low_wind_change_uses_the_days_at_or_below_the_median_post_wind():
    windows = _windows(seed=5, wind_scale=1.3)
    row = _stats(windows)
    post_a, post_b = windows[("post", "analysis")], windows[("post", "baseline")]
    threshold = np.median(np.concatenate([post_a.wind, post_b.wind]))
    assert row["low_wind_threshold"] == threshold
    calm = [t.days(t.wind <= threshold) for t in (post_a, post_b)]
    means = common_support_means(calm, [every_day(t) for t in calm]).means[0]
    assert row["change_low_wind"] == pytest.approx(means[0] / means[1] - 1, rel=1e-12)
    assert row["change_low_wind_low"] < row["change_low_wind"] < row["change_low_wind_high"]


def test_no_wind_gives_a_reason_and_no_number():
    row = _stats(_windows(wind=False))
    assert np.isnan(row["change_weather_adjusted"]) and np.isnan(row["change_low_wind"])
    assert "no wind" in row["weather_adjustment"]
    assert "no wind" in row["reason_weather_adjusted"]


def test_intervals_are_widened_for_the_fewest_days_each_change_uses(monkeypatch):
    """The weather-adjusted change is widened for the fewer days of the two lockdown windows,
    the low-wind one for the fewer calm days (the subset its means are over)."""
    from s5p_lockdown import weather

    seen = record_interval_days(monkeypatch, weather)
    windows = _windows(seed=5, wind_scale=1.3)
    post_a, post_b = windows[("post", "analysis")], windows[("post", "baseline")]
    windows[("post", "analysis")] = post_a.days(np.arange(len(post_a.dates)) < 9)  # the fewer days
    _stats(windows)
    post_a = windows[("post", "analysis")]
    threshold = np.median(np.concatenate([post_a.wind, post_b.wind]))
    assert seen["weather_adjusted"] == 9
    assert seen["low_wind"] == min((post_a.wind <= threshold).sum(), (post_b.wind <= threshold).sum())


def test_nearly_constant_winds_keep_the_interval_finite():
    """Winds that hardly vary let the fitted b1 and b2 grow large and cancel: the wind factors
    must not overflow into a NaN interval (K is a ratio, computed with the responses shifted by
    a constant)."""
    rng = np.random.default_rng(5)
    windows = {key: replace(t, wind=5.0 * np.exp(0.001 * rng.normal(size=len(t.dates))))
               for key, t in _windows(seed=5).items()}
    row = _stats(windows)
    values = [row[f"change_weather_adjusted{suffix}"] for suffix in ("", "_low", "_high")]
    assert np.isfinite(values).all(), values
