"""Weather normalisation: the wind model and the low-wind variant on constructed daily tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from s5p_lockdown.weather import weather_statistics


def _days(rng, n, level, speed=None, wind=True):
    """Daily country table rows whose mean follows level x wind^-0.5 (a plume-dominated
    country) with 3 % day-to-day noise; A (area weight) varies with coverage."""
    speed = rng.uniform(2, 10, n) if speed is None else speed
    mean = level * speed ** -0.5 * np.exp(rng.normal(0, 0.03, n))
    area = rng.uniform(50, 100, n)
    return pd.DataFrame({"sum_weighted_no2": mean * area, "sum_weight": area,
                         "wind_speed": speed if wind else np.nan})


def _groups(seed=0, wind_scale=1.0, reduction=0.3, wind=True):
    """Baseline and analysis windows; the analysis post window has the baseline post window's
    winds times ``wind_scale`` (1: identical weather)."""
    rng = np.random.default_rng(seed)
    post_baseline = _days(rng, 30, 0.9, wind=wind)
    return {
        ("pre", "baseline"): _days(rng, 14, 1.0, wind=wind),
        ("post", "baseline"): post_baseline,
        ("pre", "analysis"): _days(rng, 14, 1.0, wind=wind),
        ("post", "analysis"): _days(rng, 30, 0.9 * (1 - reduction),
                                    speed=post_baseline["wind_speed"].to_numpy() * wind_scale, wind=wind),
    }


def _raw(groups):
    a, b = groups[("post", "analysis")], groups[("post", "baseline")]
    return (a.sum_weighted_no2.sum() / a.sum_weight.sum()) / (b.sum_weighted_no2.sum() / b.sum_weight.sum()) - 1


def _stats(groups, seed=1):
    return weather_statistics(groups, min_days=3, replicates=300, tail=0.025, rng=np.random.default_rng(seed))


def test_windier_lockdown_year_biases_raw_change_and_model_recovers_it():
    groups = _groups(wind_scale=1.6)
    raw = _raw(groups)
    row = _stats(groups)
    assert raw < -0.3 - 0.08  # windier: looks like a bigger drop
    assert row["change_weather_adjusted"] == pytest.approx(-0.3, abs=0.03)
    assert row["change_weather_adjusted_low"] < -0.3 < row["change_weather_adjusted_high"]
    assert row["significant_weather_adjusted"]
    assert row["wind_post_analysis"] > 1.4 * row["wind_post_baseline"]


def test_calmer_lockdown_year_biases_raw_change_the_other_way():
    groups = _groups(wind_scale=0.7)
    assert _raw(groups) > -0.3 + 0.05
    assert _stats(groups)["change_weather_adjusted"] == pytest.approx(-0.3, abs=0.03)


def test_identical_weather_raw_and_adjusted_agree():
    groups = _groups(wind_scale=1.0)
    assert _stats(groups)["change_weather_adjusted"] == pytest.approx(_raw(groups), abs=0.03)


def test_low_wind_variant_compares_calm_days_only():
    groups = _groups(wind_scale=1.0)
    row = _stats(groups)
    assert row["low_wind_threshold"] == pytest.approx(
        np.median(np.concatenate([groups[("post", "analysis")].wind_speed, groups[("post", "baseline")].wind_speed])))
    assert row["change_low_wind"] == pytest.approx(-0.3, abs=0.06)


def test_no_wind_falls_back_to_raw_with_a_flag():
    row = _stats(_groups(wind=False))
    assert np.isnan(row["change_weather_adjusted"]) and np.isnan(row["change_low_wind"])
    assert row["weather_adjustment"].startswith("unavailable: no wind")
    assert not row["significant_weather_adjusted"]


def test_too_few_baseline_days_is_flagged():
    groups = _groups()
    groups[("pre", "baseline")] = groups[("pre", "baseline")].iloc[:1]
    groups[("post", "baseline")] = groups[("post", "baseline")].iloc[:2]
    row = _stats(groups)
    assert np.isnan(row["change_weather_adjusted"])
    assert "3 baseline days with wind" in row["weather_adjustment"]


def test_extrapolation_is_reported():
    row = _stats(_groups(wind_scale=2.5))
    assert "extrapolated" in row["weather_adjustment"]


def test_batched_fit_equals_weighted_least_squares_per_sample():
    """The bootstrap refits the model for all replicates at once: each replicate's coefficients
    must equal a weighted least-squares fit of that replicate alone; a rank-deficient sample
    (constant wind) gives NaN, not an error."""
    from s5p_lockdown.weather import _fit

    rng = np.random.default_rng(3)
    y = rng.normal(0, 1, (5, 20))
    log_wind = rng.normal(1.5, 0.4, (5, 20))
    log_wind[4] = 1.0  # constant wind: a and b cannot be told apart
    is_post = np.tile(np.repeat([0.0, 1.0], 10), (5, 1))
    weight = rng.uniform(50, 100, (5, 20))
    coef, smearing = _fit(y, log_wind, is_post, weight)
    for r in range(4):
        design = np.column_stack([np.ones(20), log_wind[r], is_post[r]])
        root = np.sqrt(weight[r])
        expected, *_ = np.linalg.lstsq(design * root[:, None], y[r] * root, rcond=None)
        np.testing.assert_allclose(coef[r], expected, rtol=1e-10, atol=1e-12)
        residual = y[r] - design @ expected
        assert smearing[r] == pytest.approx(np.average(np.exp(residual), weights=weight[r]), rel=1e-10)
    assert np.isnan(coef[4]).all() and np.isnan(smearing[4])


def test_bootstrap_replicates_equal_single_estimates_on_resampled_days():
    from s5p_lockdown.weather import DayTable, adjusted_changes, low_wind_changes

    groups = {k: DayTable.of(v) for k, v in _groups(seed=4).items()}
    pre_b, post_b, post_a = (groups[k] for k in (("pre", "baseline"), ("post", "baseline"),
                                                  ("post", "analysis")))
    rng = np.random.default_rng(0)
    index = [rng.integers(0, len(t), (6, len(t))) for t in (pre_b, post_b, post_a)]
    batched = adjusted_changes(pre_b, post_b, post_a, tuple(index))
    calm = low_wind_changes(post_a, post_b, 5.0, 1, (index[2], index[1]))
    for r in range(6):
        one = [DayTable(t.s[i[r]], t.a[i[r]], t.wind[i[r]])
               for t, i in zip((pre_b, post_b, post_a), index)]
        assert batched[r] == pytest.approx(adjusted_changes(*one)[0], rel=1e-10)
        assert calm[r] == pytest.approx(low_wind_changes(one[2], one[1], 5.0, 1)[0], rel=1e-12)
