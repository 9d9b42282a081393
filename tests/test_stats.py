"""The common-support estimator, its bootstrap and the country statistics, against brute-force
and closed-form references (fast tests on hand-made cells × days tables)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from s5p_lockdown.estimator import common_support_means, day_counts, every_day
from s5p_lockdown.intervals import change_columns, widened, widened_window_means
from s5p_lockdown.stats import StatsSettings, country_statistics
from stats_support import (START, brute_force_change, concat, table, window_dates,
                           windows_frame)


def _random_window(rng, n_days, n_cells, level, clear=0.6):
    values = level * rng.lognormal(0, 0.3, (n_days, n_cells))
    weights = np.where(rng.random((n_days, n_cells)) < clear, rng.uniform(0.2, 3, (n_days, n_cells)), 0.0)
    return values, weights


def test_common_support_means_equal_brute_force_for_estimate_and_each_replicate():
    rng = np.random.default_rng(0)
    n_cells = 25
    area = rng.uniform(0.5, 1, n_cells)
    raw = [_random_window(rng, n, n_cells, level, clear) for n, level, clear in
           ((6, 1.0, 0.5), (9, 0.7, 0.3))]
    raw[1][1][:, :3] = 0.0  # three cells never seen in the second window: out of the support
    tables = [table(v, w, window_dates("post_analysis", len(v)), area=area)
              for v, w in raw]
    estimate = common_support_means(tables, [every_day(t) for t in tables])
    means, cells, share = brute_force_change(raw, area)
    np.testing.assert_allclose(estimate.means[0], means, rtol=1e-12)
    assert estimate.cells[0] == cells <= n_cells - 3
    assert estimate.area_share[0] == pytest.approx(share, rel=1e-12)

    # each bootstrap replicate is the estimate on that replicate's resampled days, with each
    # day's values and weights kept together (paired)
    counts = [day_counts(len(t.dates), 5, rng) for t in tables]
    replicates = common_support_means(tables, counts)
    for r in range(5):
        resampled = [(v[np.repeat(np.arange(len(v)), c[r].astype(int))],
                      w[np.repeat(np.arange(len(v)), c[r].astype(int))]) for (v, w), c in zip(raw, counts)]
        means, cells, share = brute_force_change(resampled, area)
        np.testing.assert_allclose(replicates.means[r], means, rtol=1e-12)
        assert replicates.cells[r] == cells


def test_day_counts_are_resamples_with_replacement():
    counts = day_counts(7, 2000, np.random.default_rng(1))
    assert counts.shape == (2000, 7)
    assert (counts.sum(axis=1) == 7).all()
    # multinomial(7, 1/7): each day's count has mean 1 and variance 6/7
    assert counts.mean() == pytest.approx(1.0, abs=0.03)
    assert counts.var() == pytest.approx(6 / 7, rel=0.08)


def test_same_field_under_different_cloud_masks_gives_no_change():
    """A field constant in time with a bright city, seen under clouds that clear the city far
    more often in one window than the other: the common-support change is 0 within noise,
    while pooling every cell-day by its weight (the old estimator) reads a large change."""
    rng = np.random.default_rng(2)
    n_cells = 40
    truth = np.full(n_cells, 1.0)
    truth[:5] = 6.0  # the city
    cloudy_city = np.where(np.arange(n_cells) < 5, 0.15, 0.8)
    clear_city = np.where(np.arange(n_cells) < 5, 0.9, 0.4)
    raw = []
    for clear in (cloudy_city, clear_city):
        n_days = 30
        values = truth * (1 + rng.normal(0, 0.05, (n_days, n_cells)))
        weights = np.where(rng.random((n_days, n_cells)) < clear, 1.0, 0.0)
        raw.append((values, weights))
    tables = [table(v, w, window_dates("post_analysis", 30)) for v, w in raw]
    means = common_support_means(tables, [every_day(t) for t in tables]).means[0]
    assert means[1] / means[0] - 1 == pytest.approx(0.0, abs=0.01)
    pooled = [(w * v).sum() / w.sum() for v, w in raw]
    assert pooled[1] / pooled[0] - 1 > 0.5  # the bias the estimator removes


def _country(rng, levels, n_cells=30, noise=0.1, clear=0.7, wind=None):
    """Cells x days tables of the four windows with each cell's value = level x cell pattern
    x noise; ``levels`` per window key."""
    pattern = rng.uniform(0.5, 2, n_cells)
    tables = []
    for key, level in levels.items():
        dates = window_dates(key)
        values = level * pattern * (1 + rng.normal(0, noise, (len(dates), n_cells)))
        weights = np.where(rng.random((len(dates), n_cells)) < clear, 1.0, 0.0)
        tables.append(table(values, weights, dates, wind=None if wind is None else wind[key]))
    return concat(tables), pattern


LEVELS = {"pre_baseline": 1.0, "post_baseline": 1.0, "pre_analysis": 1.0, "post_analysis": 0.7}


def test_country_statistics_recovers_known_changes_with_two_sided_intervals():
    rng = np.random.default_rng(3)
    levels = dict(LEVELS, post_analysis=1.25)  # an increase must be found significant too
    cells, _ = _country(rng, levels, noise=0.05)
    row = country_statistics({"AAA": cells}, windows_frame(), StatsSettings(bootstrap=400)).iloc[0]
    assert row["status"] == "ok" and row["reason"] == ""
    for name in ("post_vs_baseline", "post_vs_pre", "adjusted"):
        assert row[f"change_{name}"] == pytest.approx(0.25, abs=0.02)
        assert row[f"change_{name}_low"] < 0.25 < row[f"change_{name}_high"]
        assert row[f"significant_{name}"]
        assert row[f"support_cells_{name}"] == 30 and row[f"support_area_{name}"] == pytest.approx(1.0)
        assert row[f"reason_{name}"] == ""


def test_usable_days_follow_the_observed_coverage_when_given():
    """With the daily table's coverage (pixel footprints), a day is usable when that coverage
    reaches min_day_coverage, whatever share of cells holds a pixel centre; a day missing from
    the table counts as not seen."""
    rng = np.random.default_rng(5)
    cells, _ = _country(rng, LEVELS, noise=0.05)
    post = [d for d in cells.dates if d >= START["post_analysis"]]
    observed = pd.DataFrame({"date": [d.isoformat() for d in cells.dates], "iso3": "AAA",
                             "coverage": [0.05 if d in post[:10] else 0.8 for d in cells.dates]})
    observed = observed[observed["date"] != post[-1].isoformat()]
    settings = StatsSettings(bootstrap=200, min_day_coverage=0.1)
    row = country_statistics({"AAA": cells}, windows_frame(), settings, observed).iloc[0]
    assert row["days_post_analysis"] == len(post) - 11
    assert row["coverage_post_analysis"] == pytest.approx((10 * 0.05 + (len(post) - 11) * 0.8) / 30)
    assert row["days_pre_analysis"] == 14
    alone = country_statistics({"AAA": cells}, windows_frame(), settings).iloc[0]
    assert alone["days_post_analysis"] == len(post)  # ~70 % of the cells hold a pixel centre each day


def test_interval_width_matches_the_closed_form_standard_error():
    """One cell seen every day with iid normal noise: the ratio of two window means has
    standard error ≈ r sqrt(cv_a² / n_a + cv_b² / n_b) (delta method, with the samples' own
    standard deviations, ddof 1), so a 95 % interval is about 2 x 1.96 of it wide (a 90 % one
    would be 16 % narrower; the bare percentile bootstrap, without the small-sample widening,
    is sqrt((n-1)/n) of it)."""
    rng = np.random.default_rng(4)
    sd = 0.1
    tables, samples = [], {}
    for key, level in LEVELS.items():
        dates = window_dates(key)
        values = level * (1 + rng.normal(0, sd, (len(dates), 1)))
        samples[key] = values[:, 0]
        tables.append(table(values, np.ones((len(dates), 1)), dates))
    row = country_statistics({"AAA": concat(tables)}, windows_frame(),
                             StatsSettings(bootstrap=4000)).iloc[0]
    post, base = samples["post_analysis"], samples["post_baseline"]
    ratio = post.mean() / base.mean()
    cv2 = [(x.std(ddof=1) / x.mean()) ** 2 / x.size for x in (post, base)]
    se = ratio * np.sqrt(sum(cv2))
    width = row["change_post_vs_baseline_high"] - row["change_post_vs_baseline_low"]
    assert width == pytest.approx(2 * 1.96 * se, rel=0.05)


def test_widening_scales_log_ratio_deviations_by_the_small_sample_factor():
    replicates = np.array([-0.5, -0.2, 0.0, 0.3])
    widened_ = widened(-0.2, replicates, days=5)
    expected = np.expm1(np.log(0.8) + np.sqrt(5 / 4) * (np.log1p(replicates) - np.log(0.8)))
    np.testing.assert_allclose(widened_, expected, rtol=1e-12)
    assert (widened_ > -1).all()
    np.testing.assert_array_equal(widened(-0.2, replicates, days=None), replicates)
    np.testing.assert_array_equal(widened(-0.2, replicates, days=1), replicates)
    # a 95 % interval of 5 days is sqrt(5/4) = 1.118 times wider on the log scale
    plain = change_columns("x", -0.2, np.linspace(-0.4, 0.0, 401), 0.025)
    wide = change_columns("x", -0.2, np.linspace(-0.4, 0.0, 401), 0.025, days=5)
    assert np.log1p(wide["change_x_high"]) - np.log1p(wide["change_x_low"]) == pytest.approx(
        np.sqrt(5 / 4) * (np.log1p(plain["change_x_high"]) - np.log1p(plain["change_x_low"])), rel=1e-9)


def test_interval_coverage_on_repeated_draws():
    """95 % intervals hold the true change in ~95 % of independent draws (binomial 200 draws:
    88-100 % is the acceptance band for a true 95 %)."""
    hits = {"post_vs_baseline": 0, "post_vs_pre": 0, "adjusted": 0}
    draws = 200
    for seed in range(draws):
        rng = np.random.default_rng(100 + seed)
        cells, _ = _country(rng, LEVELS, n_cells=8, noise=0.25, clear=0.6)
        row = country_statistics({"AAA": cells}, windows_frame(), StatsSettings(bootstrap=300, seed=seed)).iloc[0]
        for name in hits:
            hits[name] += row[f"change_{name}_low"] <= -0.3 <= row[f"change_{name}_high"]
    for name, hit in hits.items():
        assert 0.88 <= hit / draws <= 1.0, (name, hit)


def test_each_change_has_its_own_validity_and_plain_reason():
    rng = np.random.default_rng(5)
    cells, _ = _country(rng, LEVELS)
    pre_2020 = np.array([d.year == 2020 and d.month == 3 and d.day < 15 for d in cells.dates])
    only_one_pre_day = pre_2020 & (np.cumsum(pre_2020) > 1)
    sparse = cells.days(~only_one_pre_day)
    row = country_statistics({"AAA": sparse}, windows_frame(), StatsSettings(bootstrap=200)).iloc[0]
    assert np.isfinite(row["change_post_vs_baseline"]) and row["reason_post_vs_baseline"] == ""
    assert np.isnan(row["change_post_vs_pre"]) and np.isnan(row["change_adjusted"])
    expected = "1 day with enough clear sky in the pre-lockdown window of 2020 (3 needed)"
    assert row["reason_post_vs_pre"] == expected == row["reason_adjusted"] == row["reason"]
    assert row["status"] == "partial"


def test_region_seen_without_a_pixel_centred_in_it_is_explained():
    """Footprints covered the region (observed coverage) but no pixel centre fell inside it in
    the 2020 windows, e.g. a small island under large pixels: that is the reason given."""
    rng = np.random.default_rng(6)
    cells, _ = _country(rng, LEVELS)
    in_2020 = np.array([d.year == 2020 for d in cells.dates])
    empty = type(cells)(cells.code, cells.dates, cells.area, np.where(in_2020[:, None], 0.0, cells.weighted_value),
                        np.where(in_2020[:, None], 0.0, cells.weight), cells.wind)
    observed = pd.DataFrame({"date": [d.isoformat() for d in cells.dates], "iso3": "AAA", "coverage": 0.9})
    row = country_statistics({"AAA": empty}, windows_frame(), StatsSettings(bootstrap=100), observed).iloc[0]
    assert row["status"] == "insufficient data" and row["days_post_analysis"] == 0
    assert row["reason_post_vs_baseline"] == ("no pixel centred in the region in the lockdown window of 2020 "
                                              "(the region is small for the pixels)")


def test_region_without_cells_is_explained():
    row = country_statistics({}, windows_frame(), StatsSettings(bootstrap=100)).iloc[0]
    assert row["status"] == "insufficient data"
    assert row["reason_post_vs_baseline"] == "no grid cell lies in the region"


def test_change_columns_take_the_requested_percentiles_two_sided():
    replicates = np.linspace(-1, 1, 2001)  # quantile q is exactly 2q - 1
    low = change_columns("x", 0.5, replicates, 0.025)
    assert low["change_x_low"] == pytest.approx(-0.95) and low["change_x_high"] == pytest.approx(0.95)
    assert not low["significant_x"]
    assert change_columns("x", 0.5, replicates + 0.96, 0.025)["significant_x"]  # all > 0
    assert change_columns("x", -0.5, replicates - 0.96, 0.025)["significant_x"]  # all < 0


def test_orbit_count_counts_nrti_slices_of_one_orbit_once():
    from s5p_lockdown.stats import _orbit_count

    slices = ",".join(f"S5P_NRTI_L2__NO2____20200315T1{m}0000_20200315T1{m}5000_12650_01_010302_20200315T130000.nc"
                      for m in (1, 2, 3))
    other = "S5P_OFFL_L2__NO2____20200315T101000_20200315T115000_12649_01_010302_20200317T000000.nc"
    assert _orbit_count(f"{slices},{other}") == 2
    assert _orbit_count("") == 0


def test_each_window_mean_is_widened_for_its_own_usable_days(monkeypatch):
    """The raw changes widen each window's means by that window's own day count (exact for
    every window), not the change by the fewest days of its windows (over-wide for the others)."""
    from s5p_lockdown import stats

    seen = {}
    real = stats.widened_window_means

    def recording(means, days):
        seen.setdefault(means.shape[1], []).append(list(days))
        return real(means, days)

    monkeypatch.setattr(stats, "widened_window_means", recording)
    rng = np.random.default_rng(7)
    cells, _ = _country(rng, LEVELS)
    pre_2019 = np.array([d.year == 2019 and d < START["post_baseline"] for d in cells.dates])
    sparse = cells.days(~pre_2019 | (np.cumsum(pre_2019) <= 5))  # 5 pre-lockdown days in 2019
    row = country_statistics({"AAA": sparse}, windows_frame(), StatsSettings(bootstrap=50)).iloc[0]
    assert row["days_pre_baseline"] == 5
    days = {key: row[f"days_{key}"] for key in ("post_analysis", "pre_analysis", "post_baseline", "pre_baseline")}
    assert seen[4] == [[days["post_analysis"], days["pre_analysis"], days["post_baseline"], 5]]
    assert sorted(seen[2]) == sorted([[days["post_analysis"], days["post_baseline"]],
                                      [days["post_analysis"], days["pre_analysis"]]])


def test_window_means_are_widened_about_their_estimates_on_the_log_scale():
    means = np.array([[2.0, 4.0, -1.0],     # estimates (the third not positive: left alone)
                      [1.0, 5.0, -2.0],
                      [3.0, 4.0, 0.5]])
    out = widened_window_means(means, [5, 10, 5])
    np.testing.assert_array_equal(out[0], means[0])
    expected = means[0, :2] * np.exp(np.sqrt(np.array([5 / 4, 10 / 9])) * np.log(means[1:, :2] / means[0, :2]))
    np.testing.assert_allclose(out[1:, :2], expected, rtol=1e-12)
    np.testing.assert_array_equal(out[:, 2], means[:, 2])
    np.testing.assert_array_equal(widened_window_means(means, [1, None, 5])[:, :2], means[:, :2])
    # the log-variance of a ratio of two windows grows by each window's own factor
    rng = np.random.default_rng(3)
    replicates = np.vstack([[1.0, 1.0], np.exp(rng.normal(0, [0.1, 0.2], (20000, 2)))])
    ratio = np.log(widened_window_means(replicates, [4, 20]))[1:]
    spread = np.var(ratio[:, 0] - ratio[:, 1])
    assert spread == pytest.approx(0.01 * 4 / 3 + 0.04 * 20 / 19, rel=0.03)


def test_adjusted_replicate_resamples_each_years_ratio_on_the_estimates_support(monkeypatch):
    """A bootstrap replicate of the four-window change is (post/pre of 2020) / (post/pre of
    2019), each year's two resampled windows compared on the cells of the estimate's support
    that both of them saw: a cell lost by a resample of 2019 leaves the 2020 ratio alone
    (written out by hand here for one replicate, widening left out)."""
    from s5p_lockdown import stats

    rng = np.random.default_rng(11)
    cells, _ = _country(rng, LEVELS, n_cells=40, clear=0.1)  # cells seen on few days
    drawn = []
    real_counts = stats.day_counts

    def recording(n_days, replicates, generator):
        drawn.append(real_counts(n_days, replicates, generator))
        return drawn[-1]

    monkeypatch.setattr(stats, "day_counts", recording)
    monkeypatch.setattr(stats, "widened_window_means", lambda means, days: means)
    row = country_statistics({"AAA": cells}, windows_frame(),
                             StatsSettings(bootstrap=1, min_day_coverage=0.0)).iloc[0]
    windows = {}
    for (period, role), counts in zip(stats.GROUPS, drawn[:4]):  # the raw changes' draws
        key = f"{period}_{role}"
        in_window = np.isin(cells.dates, window_dates(key))
        part = cells.days(in_window & (cells.weight.sum(axis=1) > 0))
        assert row[f"days_{key}"] == len(part.dates) == counts.shape[1]
        windows[key] = (part, counts[0])
    support = np.logical_and.reduce([t.weight.sum(axis=0) > 0 for t, _ in windows.values()])

    def ratio(year):
        sums = {p: (c @ windows[f"{p}_{year}"][0].weighted_value, c @ windows[f"{p}_{year}"][0].weight)
                for p in ("post", "pre") for c in [windows[f"{p}_{year}"][1]]}
        kept = support & (sums["post"][1] > 0) & (sums["pre"][1] > 0)
        means = {p: np.mean(s[kept] / n[kept]) for p, (s, n) in sums.items()}  # equal areas
        return means["post"] / means["pre"], kept

    (analysis, kept_a), (baseline, kept_b) = ratio("analysis"), ratio("baseline")
    assert (kept_a != kept_b).any()  # the two years kept different cells in this replicate
    assert row["change_adjusted_low"] == pytest.approx(analysis / baseline - 1, rel=1e-12)
    assert row["change_adjusted_high"] == row["change_adjusted_low"]


def test_the_config_schemas_stats_defaults_are_the_settings_defaults():
    """The workflow passes the config's ``stats`` section (filled in by the schema) to
    StatsSettings: a default changed in one place only would make the library and the workflow
    publish different numbers."""
    schema = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    defaults = {k: v["default"] for k, v in schema["properties"]["stats"]["properties"].items()}
    assert defaults == asdict(StatsSettings())
