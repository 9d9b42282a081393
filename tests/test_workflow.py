"""The Snakemake workflow end to end: outputs, recovered reductions, reruns, bad config."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from s5p_lockdown.gridding import GridSpec
from s5p_lockdown.lockdowns import load_lockdown_dates
from s5p_lockdown.plan import week_of
from s5p_lockdown.regions import hotspot_countries, load_or_build_masks
from s5p_lockdown.stats import StatsSettings
from workflow_helpers import ROOT, SNAKEMAKE, run_workflow, write_config

pytestmark = pytest.mark.slow

TOLERANCE = 0.03
"""Wind-adjusted minus expected change, in fraction (3 percentage points). Retrieval noise
averages out (tens of thousands of pixels per window: < 0.1 pp). What remains is sampling: wind
moves a country's daily mean by 10-20 % and clouds decide which days and areas are seen, so the
raw change's 95 % interval spans about +-10-15 pp here even with the same weather in both
years; the wind model removes most of that day-to-day variance (intervals +-3-5 pp). Footprints
of ~17 km pixels straddling coasts and borders add a bias of about 1 pp for these large
countries. So: the raw change must contain the truth in its interval, the wind-adjusted change
must be within 3 pp."""


def _expected_changes(folder: Path, kind: str = "country") -> pd.Series:
    """post_analysis / post_baseline - 1 from the generator's noise-free daily truth, over the
    same windows the workflow used (hotspots take their country's windows)."""
    truth = pd.read_csv(folder / "archive" / "truth_daily.csv", parse_dates=["date"])
    truth = truth[truth["kind"] == kind]
    windows = pd.read_csv(folder / "results" / "stats" / "windows.csv", parse_dates=["start", "end"])
    post = windows[(windows["period"] == "post") & (windows["iso3"] != "EUROPE")]
    regions = {c: c for c in post["iso3"].unique()}
    if kind == "hotspot":
        regions = hotspot_countries()
    expected = {}
    for region, iso3 in regions.items():
        means = {}
        for role, rows in post[post["iso3"] == iso3].groupby("role"):
            days = set()
            for start, end in rows[["start", "end"]].itertuples(index=False):
                days |= set(pd.date_range(start, end))
            means[role] = truth[(truth["iso3"] == region) & truth["date"].isin(days)]["no2_truth"].mean()
        if means:
            expected[region] = means["analysis"] / means["baseline"] - 1
    return pd.Series(expected)


def test_outputs_exist_with_provenance(workflow_run):
    results = workflow_run / "results"
    stats = pd.read_csv(results / "stats" / "country_stats.csv")
    assert set(stats["iso3"]) == {"ITA", "ESP", "FRA", "DEU", "POL", "ROU", "SWE"}
    daily = pd.read_csv(results / "stats" / "country_daily.csv")
    assert {"date", "iso3", "mean_no2", "coverage", "pixels"} <= set(daily.columns)
    weeks = {p.name for p in (results / "daily").iterdir()}
    windows = pd.read_csv(results / "stats" / "windows.csv", parse_dates=["start", "end"])
    needed = {week_of(d.date()) for s, e in windows[["start", "end"]].itertuples(index=False)
              for d in pd.date_range(s, e)}
    assert weeks == needed  # whole ISO weeks are the unit of work
    assert all(len(list((results / "daily" / w).glob("*.nc"))) == 7 for w in weeks)
    day = xr.open_dataset(results / "daily" / "2020-W12" / "2020-03-18.nc")
    assert day.attrs["harp_operation"] == "bin_spatial(121,35,0.25,161,-10,0.25)"
    assert day.attrs["processor_versions"] == "2.4.0"
    assert len(day.attrs["input_digest"]) == 64 and day.attrs["source_product"].count("S5P_") >= 3
    assert json.loads(day.attrs["config"])["qa_threshold"] == 0.75
    composites = sorted(p.name for p in (results / "composites").glob("*.nc"))
    assert "2020-03-15_2020-03-28.nc" in composites  # Europe/Sweden reference window
    with xr.open_dataset(results / "composites" / "2020-03-15_2020-03-28.nc") as composite:
        assert json.loads(composite.attrs["config"])["composite_weighting"] == "weight"
        assert composite.attrs["days_used"] == 14 and composite.attrs["input_count"] >= 14 * 3
    provenance = json.loads((results / "stats" / "provenance.json").read_text())
    assert provenance["software"].startswith("s5p-lockdown")
    assert json.loads(provenance["config"])["countries"][0] == "ITA"
    assert not list(results.rglob("*.tmp"))


def test_recovers_injected_reductions(workflow_run):
    stats = pd.read_csv(workflow_run / "results" / "stats" / "country_stats.csv").set_index("iso3")
    scenario = pd.read_csv(workflow_run / "archive" / "scenario.csv")
    injected = scenario[scenario["hotspot"].isna()].set_index("iso3")["reduction"]
    expected = _expected_changes(workflow_run)
    for iso3 in ("ITA", "ESP", "DEU", "POL", "ROU"):
        row = stats.loc[iso3]
        assert row["status"] == "ok", row["reason"]
        # identical weather: the noise-free expectation is the injected reduction
        assert expected[iso3] == pytest.approx(-injected[iso3], abs=0.005)
        assert row["change_post_vs_baseline_low"] < expected[iso3] < row["change_post_vs_baseline_high"], iso3
        assert abs(row["change_weather_adjusted"] - expected[iso3]) <= TOLERANCE, iso3
        assert row["significant_post_vs_baseline"] and row["significant_weather_adjusted"]
        # identical weather: raw and wind-adjusted changes agree within the adjusted interval
        # (the wind model adds the noise of a fit on ~20 baseline days)
        assert row["change_weather_adjusted_low"] <= row["change_post_vs_baseline"] <= row["change_weather_adjusted_high"], iso3
    sweden = stats.loc["SWE"]
    assert sweden["reference_window"] and sweden["measure"] == "none"
    assert abs(sweden["change_weather_adjusted"]) <= TOLERANCE
    assert sweden["change_post_vs_baseline_low"] < 0 < sweden["change_post_vs_baseline_high"]


def test_hotspot_recovers_a_city_only_reduction(workflow_run):
    """Only the Paris plume was halved: the Paris hotspot shows it, the France mean barely."""
    countries = pd.read_csv(workflow_run / "results" / "stats" / "country_stats.csv").set_index("iso3")
    hotspots = pd.read_csv(workflow_run / "results" / "stats" / "hotspot_stats.csv").set_index("hotspot")
    expected = _expected_changes(workflow_run, kind="hotspot")
    paris = hotspots.loc["Paris"]
    assert paris["iso3"] == "FRA"
    assert expected["Paris"] < -0.3  # noise-free, on points within the 30 km radius
    # ~17 km pixels and 0.25 degree cells blur the plume with its surroundings, which diluted
    # the change seen from space; the city-only cut is still clear and significant...
    assert expected["Paris"] - 0.05 < paris["change_post_vs_baseline"] < -0.15
    assert paris["significant_post_vs_baseline"]
    # ...while the France mean moves by what the plume is worth of it (-5 % in truth)
    france = countries.loc["FRA"]
    truth = _expected_changes(workflow_run)["FRA"]
    assert -0.08 < truth < -0.02
    assert abs(france["change_weather_adjusted"] - truth) <= TOLERANCE
    assert france["change_weather_adjusted_low"] <= truth <= france["change_weather_adjusted_high"]
    milan = hotspots.loc["Milan"]  # inside Italy's national 30 %
    assert milan["change_post_vs_baseline"] == pytest.approx(expected["Milan"], abs=0.08)
    assert set(hotspots["iso3"]) <= {"ITA", "ESP", "FRA", "DEU", "POL", "ROU", "SWE"}


def test_country_means_are_the_attributed_pixels_means(workflow_run):
    """A window's country mean in the statistics is, over the country's cells with data on the
    window's usable days (pixel footprints over at least ``min_day_coverage`` of the country's
    area that day, the daily table's coverage), the
    cos(lat) x fraction weighted mean of each cell's mean of the pixels attributed to it,
    recomputed here from the attribution files by plain loops. The daily table's Σ S / Σ A
    (days pooled by weight) is the window's composite file weighted by its weight, an identity
    the dashboard's time series rely on."""
    results = workflow_run / "results"
    stats = pd.read_csv(results / "stats" / "country_stats.csv").set_index("iso3")
    row = stats.loc[stats["days_post_analysis"].idxmax()]
    iso3 = row.name
    assert row["days_post_analysis"] >= 10
    masks = load_or_build_masks(GridSpec.from_harp("121,35,0.25,161,-10,0.25"), results / "masks",
                                list(load_lockdown_dates().index))
    region = list(masks["country"].values).index(iso3)
    fraction = masks.values[region].ravel().astype(np.float64)
    cos_lat = np.repeat(np.cos(np.radians(masks["latitude"].values)), masks.sizes["longitude"])
    area = {cell: cos_lat[cell] * fraction[cell] for cell in np.flatnonzero(fraction > 0)}
    window = {d.isoformat() for d in pd.date_range(row["post_start"], row["post_end"]).date}
    by_day = {}  # day -> cell -> [pixel count, Σ column]
    for path in sorted((results / "attribution" / "countries").glob("*.nc")):
        with xr.open_dataset(path) as ds:
            days = ds["day"].values.astype(str)
            for d, r, cell, n, s in zip(ds["day_index"].values, ds["region_index"].values, ds["cell_index"].values,
                                        ds["pixel_count"].values, ds["no2_sum"].values):
                if r == region and days[d] in window and cell in area:
                    entry = by_day.setdefault(days[d], {}).setdefault(cell, [0, 0.0])
                    entry[0] += n
                    entry[1] += s
    daily = pd.read_csv(results / "stats" / "country_daily.csv")
    observed = dict(zip(daily.loc[daily["iso3"] == iso3, "date"], daily.loc[daily["iso3"] == iso3, "coverage"]))
    usable = [d for d in by_day if observed[d] >= StatsSettings().min_day_coverage]
    assert len(usable) == row["days_post_analysis"]
    counts, sums = {}, {}
    for day in usable:
        for cell, (n, s) in by_day[day].items():
            counts[cell] = counts.get(cell, 0) + n
            sums[cell] = sums.get(cell, 0.0) + s
    expected = sum(area[c] * sums[c] / counts[c] for c in counts) / sum(area[c] for c in counts)
    assert row["mean_post_analysis"] == pytest.approx(expected, rel=1e-9)

    with xr.open_dataset(results / "composites" / f"{row['post_start']}_{row['post_end']}.nc") as ds:
        value = ds["tropospheric_NO2_column_number_density"].values[0]
        weight = np.nan_to_num(ds["weight"].values[0])
        latitude = ds["latitude"].values
    cell_area = np.cos(np.radians(latitude))[:, None] * masks.values[region]
    ok = np.isfinite(value) & (weight > 0)
    days = daily[(daily["iso3"] == iso3) & daily["date"].between(row["post_start"], row["post_end"])]
    assert len(days) == row["calendar_days_post_analysis"] == 14
    pooled = cell_area * weight
    assert (pooled[ok] * value[ok]).sum() / pooled[ok].sum() == pytest.approx(
        days["sum_weighted_no2"].sum() / days["sum_weight"].sum(), rel=1e-9)


def test_rerun_with_new_dates_regrids_nothing_already_gridded(workflow_run, tmp_path):
    longer = tmp_path / "longer.yaml"
    longer.write_text((ROOT / "config" / "long_windows.yaml").read_text())
    result = run_workflow(workflow_run / "config.yaml", longer, args=["-n"])
    text = result.stdout + result.stderr
    done = {p.name for p in (workflow_run / "results" / "daily").iterdir()}
    scheduled = set(re.findall(r"Gridding the orbits of (\d{4}-W\d{2})", text))
    assert scheduled, text[-3000:]  # the longer windows need more weeks...
    assert not scheduled & done, f"regridding already gridded weeks {scheduled & done}"
    assert "period_composites" in text and "country_stats" in text  # ...and new aggregates


def test_rerun_with_same_config_does_nothing(workflow_run):
    result = run_workflow(workflow_run / "config.yaml", args=["-n"])
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"colour": "red"}, r"colour"),
        ({"grid": {"resolution": 0.25, "south": 35.0, "north": 65.0, "west": -10.0, "east": 30.0, "step": 1}}, r"step"),
        ({"windows": {"pre_days": 7, "post_days": 14, "reference_start": "2020-04-15",
                      "reference_end": "2020-03-15"}}, r"reference_window end .* before its start"),
        ({"countries": ["FRA", "XYZ"]}, r"countries: unknown country code\(s\) \['XYZ'\]"),
        ({"lockdown_overrides": {"FRA": {"lockdown_start": "2020-03-17", "lockdown_end": "2020-03-01"}}},
         r"lockdown_overrides.FRA: lockdown_end 2020-03-01 is before lockdown_start"),
        ({"qa_threshold": 1.5}, r"qa_threshold"),
        ({"grid": {"resolution": 0.3, "south": 35.0, "north": 65.0, "west": -10.0, "east": 30.0}},
         r"not a whole number"),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, overrides, message):
    config = write_config(tmp_path, overrides)
    result = run_workflow(config, args=["-n"], check=False)
    assert result.returncode != 0
    assert re.search(message, result.stdout + result.stderr), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()


def test_local_source_window_without_data_is_a_clear_error(tmp_path, small_archive):
    config = write_config(tmp_path, {"source": {"kind": "local", "archive": str(small_archive)}})
    result = run_workflow(config, args=["-n"], check=False)
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "no data for these windows" in text and "ITA pre 2020" in text
    assert "on_missing_data" in text


def test_killed_run_resumes_without_redoing_finished_outputs(tmp_path):
    config = write_config(tmp_path, {"countries": ["FRA", "SWE"]})
    command = SNAKEMAKE + ["--cores", "2", "--configfile", str(config)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    daily = tmp_path / "results" / "daily"
    deadline = time.time() + 300
    while time.time() < deadline and not (daily.exists() and any(daily.iterdir())):
        time.sleep(0.5)
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGKILL)  # a crash: no clean-up by Snakemake
    process.wait()
    finished = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("manifests/*.txt")}
    assert finished, "the run was killed before finishing any week"
    run_workflow(config, args=["--unlock"])
    result = run_workflow(config, args=["--rerun-incomplete"])
    assert (tmp_path / "results" / "stats" / "country_stats.csv").exists()
    for path, mtime in finished.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was redone"
    assert "synthesize_week" in result.stdout + result.stderr or len(finished) == 12
