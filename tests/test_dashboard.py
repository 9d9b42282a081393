"""Dashboard logic without a browser: loading and validating results, figures, HTML, widgets,
the publishing configuration."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from dashboard_support import REPO, SERVE
from s5p_lockdown.dashboard import app, figures, tables
from s5p_lockdown.dashboard.data import (
    NO2_VARIABLE, REPO_ROOT, ResultsError, country_bounds, country_series, country_shapes, crop_maps,
    grids_netcdf, load_europe_maps, load_results, map_windows, plain_reason,
    resolve_results_dir,
)
from s5p_lockdown.dashboard.text import interval, percent

pytest_plugins = ("dashboard_fixtures",)  # one workflow run shared with the browser tests

DASHBOARDS = REPO / "dashboards"


@pytest.fixture(scope="module")
def data(tiny_results):
    return load_results(tiny_results)


@pytest.fixture(scope="module")
def shapes():
    return country_shapes()


def _broken_copy(src, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(src, root)
    return root


WEATHER = {  # iso3: adjusted change, its interval, note (Italy: no adjustment possible)
    "FRA": (-0.25, -0.32, -0.18, "wind model fitted on 12 baseline days"),
    "ITA": (np.nan, np.nan, np.nan, "unavailable: 4 baseline days with wind (need 10)"),
    "SWE": (0.01, -0.04, 0.06, "wind model fitted on 12 baseline days; extrapolated: 60 %"),
    "ISL": (np.nan, np.nan, np.nan, "unavailable: no wind in the input files"),
}
HOTSPOTS = {"Paris": ("FRA", -0.35, "ok"), "Milan": ("ITA", -0.45, "ok"),
            "Lyon": ("FRA", np.nan, "insufficient data")}


def _add_weather_and_hotspots(root):
    """Add the weather columns to the tiny results and write hotspot tables in the workflow's
    schema (Paris -35 %, Milan -45 %, Lyon too little data)."""
    path = root / "stats" / "country_stats.csv"
    stats = pd.read_csv(path)
    for i, iso3 in enumerate(stats["iso3"]):
        change, low, high, note = WEATHER[iso3]
        stats.loc[i, ["wind_post_analysis", "wind_post_baseline", "low_wind_threshold"]] = \
            [3.2, 4.1, 3.6] if np.isfinite(change) else [np.nan] * 3
        for name, shift in (("weather_adjusted", 0.0), ("low_wind", -0.02)):
            stats.loc[i, [f"change_{name}", f"change_{name}_low", f"change_{name}_high"]] = \
                [change + shift, low + shift, high + shift]
            stats.loc[i, f"significant_{name}"] = bool(high + shift < 0)
        stats.loc[i, "weather_adjustment"] = note
    stats.to_csv(path, index=False)
    rows, daily = [], []
    country_daily = pd.read_csv(root / "stats" / "country_daily.csv")
    for name, (iso3, change, status) in HOTSPOTS.items():
        row = stats.set_index("iso3").loc[iso3].to_dict()
        row.update({"hotspot": name, "iso3": iso3, "status": status,
                    "reason": "" if status == "ok" else "pre_analysis: 0 usable days < 3"})
        for key in ("post_vs_baseline", "post_vs_pre", "adjusted", "weather_adjusted"):
            row.update({f"change_{key}": change, f"change_{key}_low": change - 0.05,
                        f"change_{key}_high": change + 0.05,
                        f"significant_{key}": status == "ok"})
        row.pop("country")
        rows.append(row)
        daily.append(country_daily[country_daily["iso3"] == iso3].assign(iso3=name))
    columns = ["hotspot"] + [c for c in stats.columns if c != "country"]
    pd.DataFrame(rows)[columns].to_csv(root / "stats" / "hotspot_stats.csv", index=False)
    pd.concat(daily).to_csv(root / "stats" / "hotspot_daily.csv", index=False)
    return root


@pytest.fixture(scope="module")
def rich(tiny_results, tmp_path_factory):
    """Tiny results with weather-adjusted changes and hotspot statistics."""
    root = tmp_path_factory.mktemp("rich") / "results"
    shutil.copytree(tiny_results, root)
    return load_results(_add_weather_and_hotspots(root))


@pytest.fixture(autouse=True, scope="module")
def maps_cache(tmp_path_factory):
    """The gridded maps' cache of these tests in a folder of their own (not the user's)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("S5P_DASHBOARD_CACHE", str(tmp_path_factory.mktemp("maps-cache")))
        yield


# --- data -----------------------------------------------------------------------------------
def test_results_dir_from_environment(tmp_path):
    assert resolve_results_dir({}) == REPO_ROOT / "results"
    assert resolve_results_dir({"S5P_RESULTS": str(tmp_path)}) == tmp_path
    assert resolve_results_dir({"S5P_RESULTS": "other/results"}) == REPO_ROOT / "other/results"


def test_load_results(data):
    stats = data.stats
    assert list(stats.index) == ["FRA", "ISL", "ITA", "SWE"]  # by country name
    assert stats.at["FRA", "change_post_vs_baseline"] == pytest.approx(-0.30)
    assert stats.at["SWE", "reference_window"] and not stats.at["FRA", "reference_window"]
    assert stats["significant_post_vs_baseline"].dtype == bool
    assert stats.at["FRA", "post_start"] == pd.Timestamp("2020-03-17")
    assert data.baseline_years == [2019]
    assert data.min_day_coverage == pytest.approx(0.1)
    assert data.countries[0] == ("France", "FRA")
    assert data.problems == []  # too little data is per change, not a page-wide problem
    assert list(data.has_change()) == [True, False, True, True]
    assert data.provenance.synthetic and data.provenance.software == "s5p-lockdown 0.1.0"
    assert data.lockdown_ends["FRA"] == pd.Timestamp("2020-05-11")  # shipped lockdown table
    assert "SWE" not in data.lockdown_ends


@pytest.mark.parametrize("damage, message", [
    (lambda root: shutil.rmtree(root), "No results directory"),
    (lambda root: (root / "stats" / "country_daily.csv").unlink(), "country_daily.csv is missing"),
    (lambda root: pd.read_csv(root / "stats" / "country_stats.csv").drop(columns="status")
     .to_csv(root / "stats" / "country_stats.csv", index=False), "lacks column(s) status"),
    (lambda root: (root / "stats" / "windows.csv").write_text(""), "cannot be read"),
    (lambda root: pd.read_csv(root / "stats" / "country_stats.csv")
     .assign(mean_pre_analysis="lots").to_csv(root / "stats" / "country_stats.csv", index=False),
     "malformed values"),
])
def test_unusable_results_raise_a_clear_error(tiny_results, tmp_path, damage, message):
    root = _broken_copy(tiny_results, tmp_path)
    damage(root)
    with pytest.raises(ResultsError, match=re.escape(message)):
        load_results(root)


def test_europe_maps(data):
    maps = load_europe_maps(data)
    assert set(maps.fields) == {"pre_analysis", "post_analysis", "pre_baseline", "post_baseline",
                                "change"}
    change = maps.fields["change"]
    assert np.isnan(change[0, 0])  # no data in the corner
    assert np.nanmin(change) == pytest.approx(-25.0) and np.nanmax(change) == pytest.approx(-25.0)
    assert maps.windows["post_analysis"] == ("2020-03-15", "2020-03-28")
    assert maps.years == {"pre_analysis": 2020, "post_analysis": 2020, "pre_baseline": 2019,
                          "post_baseline": 2019}


def test_large_europe_maps_are_block_averaged_by_weight(data):
    full = load_europe_maps(data)
    coarse = load_europe_maps(data, max_cells=full.fields["change"].size // 4)
    assert coarse.fields["change"].shape == (full.latitude.size // 2, full.longitude.size // 2)
    assert coarse.latitude[0] == pytest.approx(full.latitude[:2].mean())
    # the corner block has one cell of data out of four: its value, not a NaN-diluted mean
    assert coarse.fields["post_analysis"][1, 1] == pytest.approx(1.5e-5)
    assert np.isnan(coarse.fields["post_analysis"][0, 0])


def test_missing_europe_composite_is_reported(data, tmp_path):
    root = _broken_copy(data.root, tmp_path)
    (root / "composites" / "2020-03-15_2020-03-28.nc").unlink()
    with pytest.raises(ResultsError, match="2020-03-15_2020-03-28.nc is missing"):
        load_europe_maps(load_results(root))


def test_country_series_aligns_baseline_on_calendar_day(data):
    series = country_series(data, "FRA")
    assert set(series["year"]) == {2019, 2020}
    assert (series["date"].dt.year == 2020).all()
    baseline = series[series["year"] == 2019].set_index("date")
    assert baseline.at[pd.Timestamp("2020-03-20"), "mean_no2"] == pytest.approx(2e-5)
    analysis = series[series["year"] == 2020].set_index("date")
    assert analysis.at[pd.Timestamp("2020-03-20"), "mean_no2"] == pytest.approx(1.4e-5)


# --- figures --------------------------------------------------------------------------------
def _no_remote_urls(fig) -> bool:
    return "http" not in json.dumps(figures.plot_spec(fig))


def test_grid_maps_side_by_side_on_one_robust_scale(data, shapes):
    maps = crop_maps(load_europe_maps(data), None)
    figs = figures.grid_map_figures(maps, shapes)
    assert list(figs) == ["post_baseline", "post_analysis", "change"]
    baseline, analysis, change = (figs[k].data[0] for k in figs)
    assert (baseline.zmin, baseline.zmax) == (analysis.zmin, analysis.zmax)  # one NO2 scale
    assert baseline.zmin == pytest.approx(15.0) and baseline.zmax == pytest.approx(20.0)
    assert change.zmid == 0 and change.zmin == -change.zmax
    assert change.colorscale[0][1] != baseline.colorscale[0][1]
    for fig in figs.values():
        heat, borders, cities = fig.data
        assert (heat.type, borders.type, cities.type) == ("heatmap", "scatter", "scatter")
        assert len(borders.x) > 100 and "Paris" in list(cities.text)  # borders, city names
        assert heat.colorbar.orientation == "h"  # under its map at any width
        assert heat.z.dtype == np.float32  # sent as a compact typed array
        assert fig.layout.width is None and _no_remote_urls(fig)
    assert "Baseline 15 Mar – 28 Mar 2019" in figs["post_baseline"].layout.title.text
    assert "Change 2020 vs 2019" in figs["change"].layout.title.text


def test_robust_scale_is_not_saturated_by_plumes(data):
    maps = load_europe_maps(data)
    maps.fields["post_baseline"][20, 20] = 1.0  # one enormous plume
    low, high = figures.no2_range(maps)
    assert high == pytest.approx(20.0)


def test_maps_crop_to_data_and_to_a_country(data, shapes):
    maps = load_europe_maps(data)
    cropped = crop_maps(maps, None)  # the corner without data stays (other rows have data)
    assert cropped.fields["change"].shape == maps.fields["change"].shape
    italy = crop_maps(maps, country_bounds(shapes, "ITA"))
    assert italy.longitude.min() >= 5.5 and italy.latitude.max() <= 48.2
    assert italy.fields["change"].shape[1] < maps.fields["change"].shape[1]
    assert country_bounds(shapes, "XXX") is None
    cities = figures.map_cities(country_bounds(shapes, "ITA"), every=True)
    assert {"Rome", "Milan", "Naples"} <= set(cities["name"])
    largest = figures.map_cities((-25, 34, 45, 72), every=False)
    assert largest["iso3"].is_unique and "Paris" in set(largest["name"])


def test_map_windows_and_grid_download(data, tmp_path):
    windows = map_windows(data)
    assert windows[0].label == "15 Mar – 28 Mar 2020 vs 2019 (common reference window)"
    assert windows[0].windows["post_analysis"] == "2020-03-15_2020-03-28"
    # the countries' own windows have no composite in the tiny results: not offered
    assert len(windows) == 1
    payload = grids_netcdf(crop_maps(load_europe_maps(data), None))
    (tmp_path / "grids.nc").write_bytes(payload)
    with xr.open_dataset(tmp_path / "grids.nc") as ds:
        assert set(ds.data_vars) == {"no2_baseline", "no2_analysis", "change"}
        assert float(ds["change"].max()) == pytest.approx(-25.0)
        assert ds["no2_baseline"].attrs["units"] == "mol m-2"


def test_gridded_maps_are_cached_on_disk(data, tmp_path, monkeypatch):
    """The grids read from the composites are kept in the cache folder; the next read (another
    visitor's kernel) takes them from there without opening a composite; a rewritten composite
    is read again; without a writable cache folder the maps are still read."""
    results = shutil.copytree(data.root, tmp_path / "results")
    loaded = load_results(results)
    monkeypatch.setenv("S5P_DASHBOARD_CACHE", str(tmp_path / "cache"))
    first = load_europe_maps(loaded)
    assert len(list((tmp_path / "cache").glob("maps-*.npz"))) == 1
    assert first.fields["post_analysis"].dtype == np.float32

    def no_netcdf(*args, **kwargs):
        raise AssertionError("a composite was opened")

    with monkeypatch.context() as patch:
        patch.setattr(xr, "open_dataset", no_netcdf)
        second = load_europe_maps(loaded)
    for key, values in first.fields.items():
        np.testing.assert_array_equal(second.fields[key], values)
    np.testing.assert_array_equal(second.latitude, first.latitude)
    assert (second.windows, second.years) == (first.windows, first.years)

    # a rewritten composite (the 2020 post window) is read again
    path = results / "composites" / "2020-03-15_2020-03-28.nc"
    with xr.open_dataset(path) as ds:
        doubled = ds.load()
    doubled[NO2_VARIABLE] = doubled[NO2_VARIABLE] * 2
    path.unlink()
    doubled.to_netcdf(path)
    third = load_europe_maps(loaded)
    np.testing.assert_allclose(third.fields["post_analysis"], 2 * first.fields["post_analysis"],
                               rtol=1e-6)
    assert len(list((tmp_path / "cache").glob("maps-*.npz"))) == 2

    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("S5P_DASHBOARD_CACHE", str(tmp_path / "not-a-folder"))
    np.testing.assert_allclose(load_europe_maps(loaded).fields["post_analysis"],
                               third.fields["post_analysis"])


def test_change_limit():
    assert figures.change_limit([-31.0, 5.0, np.nan]) == 40.0
    assert figures.change_limit([1.0]) == 10.0
    assert figures.change_limit([-500.0]) == figures.MAX_CHANGE_PERCENT
    assert figures.change_limit([np.nan]) == figures.MAX_CHANGE_PERCENT


def test_choropleth_figure_works_offline(data, shapes):
    """Countries as filled outlines on longitude/latitude axes (no WebGL map, no geo
    projection fetching topojson), one trace per country, coloured on the change scale."""
    fig = figures.choropleth_figure(data, shapes)
    assert {t.type for t in fig.data} == {"scatter"}
    assert fig.layout.geo.to_plotly_json() == {} and fig.layout.map.to_plotly_json() == {}
    by_name = _countries_by_group(fig)
    assert by_name == {"lockdown": ["FRA", "ITA"], "no lockdown (reference window)": ["SWE"],
                       "no data": ["ISL"]}
    france = next(t for t in fig.data if t.meta and t.meta["iso3"] == "FRA")
    assert france.meta["label"] == "France"  # as in the selectors: a click chooses it
    assert france.fill == "toself" and france.hoveron == "fills"
    assert "−30.0 % (95 % CI −35.0 to −25.0 %)" in france.text
    # France (−30 %) blue, Sweden (+5 % on a ±40 % scale) nearly white, Iceland grey
    red, _, blue = _rgb(france.fillcolor)
    assert blue > red
    by_iso3 = {t.meta["iso3"]: t for t in fig.data if t.meta}
    assert min(_rgb(by_iso3["SWE"].fillcolor)) > 200
    assert by_iso3["ISL"].fillcolor == figures.NO_DATA_COLOR
    assert [t.name for t in fig.data if t.showlegend is not False and t.name != "colour scale"
            ] == ["lockdown", "no data", "no lockdown (reference window)"]
    assert fig.layout.coloraxis.cmid == 0 and fig.layout.coloraxis.cmax == 40
    assert fig.layout.yaxis.scaleanchor == "x"
    assert _no_remote_urls(fig)


def _countries_by_group(fig) -> dict[str, list[str]]:
    """Legend group → iso3 of the countries drawn in it (the traces' ``meta``)."""
    groups: dict[str, list[str]] = {}
    for trace in fig.data:
        if trace.meta is not None:
            groups.setdefault(trace.legendgroup, []).append(trace.meta["iso3"])
    return groups


def _rgb(color: str) -> tuple[int, ...]:
    return tuple(int(float(v)) for v in color[color.index("(") + 1:-1].split(","))


def test_ranking_figure(data):
    """Older results (no weather columns): the adjusted bars are all absent, and say why;
    Iceland (no change) is not an empty row but listed apart; axis and legend at the top."""
    fig = figures.ranking_figure(data)
    assert list(fig.layout.yaxis.categoryarray) == ["Italy", "France", "Sweden"]
    assert fig.layout.xaxis.side == "top" and fig.layout.legend.y > 0.5  # legend at the top
    assert fig.layout.width is None and fig.layout.height < 400
    raw, adjusted = fig.data
    assert (raw.name, adjusted.name) == ("raw", "weather-adjusted")
    assert list(raw.y) == ["Italy", "France", "Sweden"]
    np.testing.assert_allclose(raw.x, [-40.0, -30.0, 2.0])
    np.testing.assert_allclose(raw.error_x.array, [5.0, 5.0, 5.0])
    np.testing.assert_allclose(raw.error_x.arrayminus, [5.0, 5.0, 5.0])
    assert list(raw.marker.pattern.shape) == ["", "", "/"]  # no lockdown: hatched
    assert np.isnan(np.asarray(adjusted.x, dtype=float)).all()
    assert "weather-adjusted: n/a (not available" in raw.text[0] and "older workflow" in raw.text[0]
    line = tables.unranked_html(data)
    assert "Not ranked" in line and "change: Iceland." in line


def test_ranking_figure_shows_raw_and_weather_adjusted_side_by_side(rich):
    fig = figures.ranking_figure(rich)
    assert fig.layout.barmode == "group"
    raw, adjusted = fig.data[0], fig.data[1]
    assert (raw.type, adjusted.type) == ("bar", "bar")
    assert list(adjusted.y) == list(raw.y) == ["Italy", "France", "Sweden"]
    values = np.asarray(adjusted.x, dtype=float)
    assert np.isnan(values[0])  # Italy: no adjusted bar ...
    assert "n/a (not available: 4 baseline days with wind" in raw.text[0]  # ... and why
    np.testing.assert_allclose(values[1:], [-25.0, 1.0])
    np.testing.assert_allclose(np.asarray(adjusted.error_x.array, dtype=float)[1:], [7.0, 5.0])
    np.testing.assert_allclose(np.asarray(adjusted.error_x.arrayminus, dtype=float)[1:],
                               [7.0, 5.0])
    assert "weather-adjusted −25.0 % (95 % CI −32.0 to −18.0 %)" in raw.text[1]
    assert "wind model fitted on 12 baseline days" in adjusted.text[1]
    assert raw.marker.color != adjusted.marker.color
    assert _no_remote_urls(fig)


def test_hotspot_results(rich, data):
    assert data.hotspots is None and "no hotspot statistics" in data.hotspot_note
    hotspots = rich.hotspots
    assert rich.hotspot_note == "" and list(hotspots.stats.index) == ["Lyon", "Milan", "Paris"]
    paris = hotspots.stats.loc["Paris"]
    assert paris["country"] == "Paris (FRA)" and paris["country_iso3"] == "FRA"
    assert (paris["lat"], paris["lon"], paris["radius_km"]) == (48.86, 2.35, 30)
    assert hotspots.lockdown_ends["Paris"] == pd.Timestamp("2020-05-11")
    assert len(country_series(hotspots, "Paris")) > 50
    # the weather columns of the country table are read too
    assert rich.stats.at["FRA", "change_weather_adjusted"] == pytest.approx(-0.25)
    assert rich.stats.at["FRA", "significant_weather_adjusted"]


def test_unusable_hotspot_table_is_a_note_not_an_error(rich, tmp_path):
    root = _broken_copy(rich.root, tmp_path)
    (root / "stats" / "hotspot_daily.csv").unlink()
    data = load_results(root)
    assert data.hotspots is None and "hotspot_daily.csv is missing" in data.hotspot_note


def test_hotspot_ranking_and_map(rich, shapes):
    ranking = figures.ranking_figure(rich.hotspots)
    assert list(ranking.layout.yaxis.categoryarray) == ["Milan (ITA)", "Paris (FRA)"]
    assert len(ranking.data) == 2 and "Lyon" in tables.unranked_html(rich.hotspots)
    fig = figures.hotspot_map_figure(rich.hotspots, shapes)
    assert [t.type for t in fig.data] == ["scatter", "scatter", "scatter"]
    markers, missing = fig.data[1], fig.data[2]
    assert markers.mode == "markers"
    np.testing.assert_allclose(markers.y, [45.46, 48.86])
    np.testing.assert_allclose(markers.x, [9.19, 2.35], atol=0.01)
    np.testing.assert_allclose(markers.marker.color, [-45.0, -35.0])
    assert markers.marker.coloraxis == "coloraxis" and fig.layout.coloraxis.cmid == 0
    assert markers.marker.size[1] > 0
    assert "Paris (FRA)" in markers.text[1] and "95 % CI −40.0 to −30.0 %" in markers.text[1]
    assert list(missing.y) == [45.76]  # Lyon in grey
    assert fig.layout.map.to_plotly_json() == {}  # no WebGL map
    assert _no_remote_urls(fig)


def test_region_map_figure(rich, shapes):
    """The region map (a WebGL map: region files may hold thousands of regions) from the
    hotspot statistics standing for regions, with square outlines: each region trace holds
    only its own outlines; regions without the change in grey; no remote resource."""
    hotspots = rich.hotspots
    placed = hotspots.stats.dropna(subset=["lat", "lon"])
    outlines = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"region": name},
         "geometry": {"type": "Polygon", "coordinates": [[
             [lon - 0.5, lat - 0.5], [lon + 0.5, lat - 0.5], [lon + 0.5, lat + 0.5],
             [lon - 0.5, lat + 0.5], [lon - 0.5, lat - 0.5]]]}}
        for name, lat, lon in zip(placed.index, placed["lat"], placed["lon"])]}
    fig = figures.region_map_figure(hotspots, outlines, shapes)
    background, regions, missing = fig.data
    assert {t.type for t in fig.data} == {"choroplethmap"} and fig.layout.map.style == "white-bg"
    assert sorted(regions.locations) == ["Milan", "Paris"] and list(missing.locations) == ["Lyon"]
    assert sorted(f["properties"]["region"] for f in regions.geojson["features"]) == [
        "Milan", "Paris"]
    assert len(background.geojson["features"]) == len(shapes["features"])
    assert regions.coloraxis == "coloraxis" and fig.layout.coloraxis.cmid == 0
    assert _no_remote_urls(fig)


def test_timeseries_figure(data):
    fig = figures.timeseries_figure(data, "FRA")
    assert [t.name for t in fig.data] == ["2020", "2020 coverage", "2019", "2019 coverage"]
    assert pd.Timestamp(fig.data[2].x[0]).year == 2020  # baseline on analysis-year days
    np.testing.assert_allclose(np.nanmax(fig.data[1].y), 60.0)  # coverage in percent
    labels = [a.text for a in fig.layout.annotations]
    assert "lockdown start" in labels and "lockdown end" not in labels  # 11 May is off the plot
    assert "France" in fig.layout.title.text
    sweden = figures.timeseries_figure(data, "SWE")
    labels = [a.text for a in sweden.layout.annotations]
    assert "lockdown start" not in labels and any("no lockdown" in t for t in labels)
    assert _no_remote_urls(fig)


# --- HTML and widgets -----------------------------------------------------------------------
def test_country_summary(data):
    html = tables.country_summary_html(data, "FRA")
    assert "France" in html and "national lockdown from 17 Mar 2020 to 11 May 2020" in html
    assert "−30.0 %" in html and "−35.0 to −25.0 %" in html and "20.00" in html
    assert "-3" not in html and "–" not in html.split("</div>", 2)[2]  # one minus, no dashes
    iceland = tables.country_summary_html(data, "ISL")
    assert "No change after vs baseline year" in iceland and "n/a" in iceland
    assert "no day with enough clear sky in the 2020 window before the reference period " \
        "(3 needed)" in iceland and "usable days &lt;" not in iceland
    # older results: the weather rows are there, empty, with the reason
    assert "weather-adjusted" in html and "older workflow" in html


def test_country_summary_with_weather_and_hotspots(rich):
    html = tables.country_summary_html(rich, "FRA")
    assert "weather-adjusted (wind model)" in html and "−25.0 %" in html
    assert "−32.0 to −18.0 %" in html  # its interval
    assert "low-wind days only" in html and "−27.0 %" in html
    assert "wind model fitted on 12 baseline days" in html and "3.6 m s⁻¹" in html
    assert "not available: 4 baseline days" in tables.country_summary_html(rich, "ITA")
    paris = tables.country_summary_html(rich.hotspots, "Paris")
    assert "Paris (FRA)" in paris and "−35.0 %" in paris and "to 11 May 2020" in paris


def test_values_from_results_are_escaped(data):
    stats = data.stats.copy()
    stats.loc["FRA", "country"] = "<script>alert(1)</script>"
    stats.loc["FRA", "reason"] = "<img src=x onerror=alert(1)>"
    hostile = type(data)(**{**data.__dict__, "stats": stats})
    html = tables.country_summary_html(hostile, "FRA")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in tables.message_html("x", stats.at["FRA", "reason"])


def test_download_links_carry_the_tables(data, rich):
    link = tables.statistics_links_html(data)
    payload = re.search(r"href='data:text/csv;base64,([^']+)'", link).group(1)
    assert base64.b64decode(payload) == (data.root / "stats" / "country_stats.csv").read_bytes()
    assert "download='country_stats.csv'" in link and "hotspot" not in link
    links = re.findall(r"download='([^']+)' href='data:text/csv;base64,([^']+)'",
                       tables.statistics_links_html(rich))
    assert [name for name, _ in links] == ["country_stats.csv", "hotspot_stats.csv"]
    assert base64.b64decode(links[1][1]) == \
        (rich.root / "stats" / "hotspot_stats.csv").read_bytes()


# --- honest content -------------------------------------------------------------------------
def test_synthetic_results_carry_a_demonstration_banner(data):
    html = tables.header_html(data)
    assert "s5p-demo-banner" in html
    assert "Demonstration data (synthetic orbits): not real measurements." in html
    assert "Copernicus" not in html and "TROPOMI" not in html
    assert "results/" not in html and "S5P_RESULTS" not in html and "s5p_lockdown" not in html


def test_real_results_carry_the_copernicus_attribution(data, tmp_path):
    root = _broken_copy(data.root, tmp_path)
    (root / "stats" / "provenance.json").write_text(json.dumps({
        "software": "s5p-lockdown 1.2.0", "date_created": "2026-11-30T10:00:00Z",
        "processor_versions": "1.3.0,2.4.0",
        "config": json.dumps({"source": {"kind": "cdse"}})}))
    html = tables.header_html(load_results(root))
    assert "s5p-demo-banner" not in html
    assert ("Contains modified Copernicus Sentinel data 2019, 2020 processed by s5p-lockdown "
            "1.2.0; TROPOMI L2 NO₂ processor versions 1.3.0, 2.4.0; processed on 30 Nov 2026."
            in html)
    (root / "stats" / "provenance.json").unlink()
    assert "Source not recorded" in tables.header_html(load_results(root))


def test_each_change_has_its_own_status_and_plain_reason(data, tmp_path):
    """A country with too few days before the lockdown keeps its change after vs baseline
    (coloured, ranked); only the changes needing the 'before' window are n/a, with a reason in
    plain words. A reason column of the statistics wins over the derived one."""
    root = _broken_copy(data.root, tmp_path)
    path = root / "stats" / "country_stats.csv"
    stats = pd.read_csv(path)
    fra = stats["iso3"] == "FRA"
    stats.loc[fra, ["change_post_vs_pre", "change_adjusted"]] = np.nan
    stats.loc[fra, "status"] = "insufficient data"
    stats.loc[fra, "reason"] = "pre_baseline: 1 usable days < 3"
    stats["reason_adjusted"] = ""
    stats.loc[fra, "reason_adjusted"] = "the 2019 window before the lockdown was cloudy"
    stats.to_csv(path, index=False)
    loaded = load_results(root)
    assert loaded.has_change()["FRA"] and not loaded.has_change("post_vs_pre")["FRA"]
    row = loaded.stats.loc["FRA"]
    assert row["reason_post_vs_baseline"] == ""
    assert row["reason_post_vs_pre"] == "not computed by the workflow" or \
        "clear sky" in row["reason_post_vs_pre"]
    assert row["reason_adjusted"] == "the 2019 window before the lockdown was cloudy"
    shapes = country_shapes()
    by_name = _countries_by_group(figures.choropleth_figure(loaded, shapes))
    assert "FRA" in by_name["lockdown"] and "FRA" not in by_name.get("no data", [])
    assert "France" in list(figures.ranking_figure(loaded).data[0].y)
    html = tables.country_summary_html(loaded, "FRA")
    assert "No change after vs baseline" not in html and "was cloudy" in html


def test_plain_reason():
    row = {"analysis_year": 2020, "baseline_years": "2019", "reference_window": False,
           "weather_adjustment": "unavailable: 4 baseline days with wind (need 10)"}
    reason = "pre_baseline: 1 usable days < 3; post_analysis: 0 usable days < 3"
    assert plain_reason(reason, row, "adjusted") == (
        "only 1 day with enough clear sky in the 2019 window before the lockdown (3 needed); "
        "no day with enough clear sky in the 2020 window after the lockdown start (3 needed)")
    assert plain_reason("pre_baseline: 2 usable days < 3", row, "post_vs_pre") == \
        "only 2 days with enough clear sky in the 2019 window before the lockdown (3 needed)"
    assert plain_reason("", row, "weather_adjusted") == \
        "not available: 4 baseline days with wind (need 10)"
    assert plain_reason("", row, "post_vs_baseline") == "not computed by the workflow"


def test_number_typography():
    assert percent(-19.44) == "\u221219.4 %" and percent(2.0) == "+2.0 %"
    assert percent(float("nan")) == "n/a" and percent(None) == "n/a"
    assert interval(-35.0, -25.0) == "\u221235.0 to \u221225.0 %"
    assert interval(np.nan, 3.0) == "n/a"


def test_dashboard_widgets_follow_the_selector(data):
    board = app.Dashboard(data)
    assert board.selector.value == "FRA"  # first country with data
    before_numbers = board.numbers.value
    before_series = board.timeseries.value
    board.selector.value = "ITA"
    assert "Italy" in board.numbers.value and board.numbers.value != before_numbers
    assert board.timeseries.spec["layout"]["title"]["text"].startswith("Italy")
    assert board.timeseries.value != before_series
    assert json.loads(re.search(r"<script type='application/json' class='plot'>(.*)</script>",
                                board.timeseries.value).group(1)) == board.timeseries.spec


def test_choosing_a_country_zooms_the_gridded_maps(data):
    board = app.Dashboard(data)
    grids = board.grids
    assert grids.area.value == "Europe" and len(grids.window.options) == 1

    def x_range(key):
        return grids.outputs[key].spec["layout"]["xaxis"]["range"]

    europe = x_range("change")
    board.selector.value = "ITA"
    assert grids.area.value == "ITA"
    italy = x_range("change")
    assert europe[0] < italy[0] < italy[1] < europe[1]
    assert x_range("post_baseline") == x_range("post_analysis") == italy
    grids.offer_download()
    assert "no2_grids_ITA_2020-03-15_2020-03-28.nc" in grids.link.value
    grids.area.value = "Europe"
    assert x_range("change") == europe and grids.link.value == ""


def test_dashboard_toggle_switches_to_hotspots(rich):
    board = app.Dashboard(rich)
    assert list(board.view.options) == ["Countries", "Hotspots"]

    def ranking_labels():
        return board.ranking.spec["layout"]["yaxis"]["categoryarray"]

    def map_types():
        return {t["type"] for t in board.change_map.spec["data"]}

    def map_title():
        return board.change_map.spec["layout"]["title"]["text"]

    assert "France" in ranking_labels() and map_types() == {"scatter"}
    assert map_title().startswith("Change after the lockdown")
    board.view.value = "Hotspots"
    assert "Paris (FRA)" in ranking_labels() and map_title().startswith("Hotspots")
    assert board.selector.value == "Milan" and "Milan (ITA)" in board.numbers.value
    assert board.timeseries.spec["layout"]["title"]["text"].startswith("Milan")
    board.selector.value = "Paris"
    assert "Paris (FRA)" in board.numbers.value
    assert "Change per hotspot" in board.change_title.value
    board.view.value = "Countries"
    assert "France" in ranking_labels() and board.selector.value == "FRA"
    assert "France" in board.numbers.value


def test_dashboard_without_hotspots_says_so(data):
    board = app.Dashboard(data)
    assert "no hotspot statistics" in board.view.value and "s5p-warning" in board.view.value


def test_dashboard_shows_a_message_when_results_are_missing(tmp_path):
    widget = app.dashboard(tmp_path / "nowhere")
    assert "The results cannot be shown." in widget.value and "workflow" in widget.value
    assert str(tmp_path) not in widget.value  # no server path on the page


def test_dashboard_without_europe_composites_still_shows_countries(data, tmp_path):
    root = _broken_copy(data.root, tmp_path)
    shutil.rmtree(root / "composites")
    board = app.Dashboard(load_results(root))
    texts = [w.value for w in board.widget.children if hasattr(w, "value")]
    assert any("Gridded maps unavailable" in t for t in texts)


# --- static export --------------------------------------------------------------------------
def test_static_export(rich, tmp_path):
    from click.testing import CliRunner

    from s5p_lockdown.cli import cli

    site = tmp_path / "site"
    result = CliRunner().invoke(cli, ["dashboard", "export", str(site), "--results",
                                      str(rich.root)])
    assert result.exit_code == 0, result.output
    assert (site / "plotly.min.js").stat().st_size > 1_000_000  # plotly.js itself, local
    assert {p.name for p in (site / "countries").iterdir()} == {
        "FRA.html", "ITA.html", "SWE.html", "ISL.html"}
    assert {p.name for p in (site / "hotspots").iterdir()} == {
        "Paris.html", "Milan.html", "Lyon.html"}
    assert (site / "data" / "country_stats.csv").read_bytes() == rich.stats_csv
    assert (site / "data" / "hotspot_stats.csv").read_bytes() == rich.hotspots.stats_csv
    index = (site / "index.html").read_text()
    assert index.count("class='plot'") == 7  # 3 gridded maps, 2 change maps, 2 rankings
    assert "Demonstration data (synthetic orbits)" in index
    assert "no2_grids_europe_2020-03-15_2020-03-28.nc" in index
    assert "href='countries/FRA.html'" in index and "href='hotspots/Paris.html'" in index
    for page in [index, (site / "countries" / "FRA.html").read_text()]:
        assert "http://" not in page and "https://" not in page  # nothing fetched
        # no inline script: only the two local files and JSON blocks
        allowed = re.compile(r"<script (src='(\.\./)?(plotly\.min|plots)\.js'|"
                             r"type='application/json' class='plot')>")
        tags = re.findall(r"<script[^>]*>", page)
        assert len(tags) >= 3 and all(allowed.fullmatch(tag) for tag in tags), tags
    france = (site / "countries" / "FRA.html").read_text()
    assert "France" in france and "\u221230.0 %" in france and "../plotly.min.js" in france


def _with_country_composites(results: Path, iso3: str) -> Path:
    """``results`` with composites for ``iso3``'s own windows (copies of the Europe ones), so
    that the results hold a second window set."""
    windows = pd.read_csv(results / "stats" / "windows.csv")
    europe = windows[windows["iso3"] == "EUROPE"].set_index(["period", "role"])["window"]
    for _, row in windows[windows["iso3"] == iso3].iterrows():
        source = results / "composites" / f"{europe[(row['period'], row['role'])]}.nc"
        shutil.copy(source, results / "composites" / f"{row['window']}.nc")
    return results


def test_static_export_window_selector(rich, tmp_path):
    """The export's window selector offers every window set of the results; the first one's
    maps are in the page, each later one's in data/maps_<n>.js (loaded when chosen), each
    with its grids as netCDF."""
    from s5p_lockdown.dashboard.export import export_site

    results = _with_country_composites(shutil.copytree(rich.root, tmp_path / "results"), "FRA")
    windows = map_windows(load_results(results))
    assert len(windows) == 2 and "France" in windows[1].label
    site = export_site(results, tmp_path / "site")
    index = (site / "index.html").read_text()
    options = re.findall(r"<option value='(\d+)' data-script='([^']+)' data-download='([^']+)'>"
                         r"([^<]+)</option>", index)
    assert [(o[0], o[3]) for o in options] == [("0", html.escape(windows[0].label)),
                                               ("1", html.escape(windows[1].label))]
    assert [o[2] for o in options] == ["data/no2_grids_europe_2020-03-15_2020-03-28.nc",
                                       "data/no2_grids_window1_2020-03-17_2020-03-30.nc"]
    assert all((site / o[2]).is_file() for o in options)
    assert not (site / options[0][1]).exists()  # the first window's maps are in the page
    later = (site / options[1][1]).read_text()
    assert later.startswith("S5P_MAPS[1] = [") and later.endswith("];\n")
    specs = json.loads(later[len("S5P_MAPS[1] = "):-2])
    assert [spec["data"][0]["type"] for spec in specs] == ["heatmap"] * 3
    assert specs[1]["layout"]["title"]["text"] == "Lockdown 17 Mar – 30 Mar 2020"
    assert index.count("class='plot'") == 7  # still one set of gridded maps in the page


def test_static_export_replaces_only_an_export(data, tmp_path):
    from s5p_lockdown.dashboard.export import export_site

    site = export_site(data.root, tmp_path / "site")
    (site / "stale.html").write_text("old")
    export_site(data.root, site)  # a previous export is replaced
    assert not (site / "stale.html").exists() and (site / "index.html").is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ResultsError, match="is not a dashboard export"):
        export_site(data.root, other)
    assert (other / "keep.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


# --- publishing configuration ---------------------------------------------------------------
def test_production_configuration():
    config = json.loads((DASHBOARDS / "voila.json").read_text())
    voila = config["VoilaConfiguration"]
    assert voila["show_tracebacks"] is False and voila["strip_sources"] is True
    assert voila["file_allowlist"] == [] and voila["template"] == "s5p"
    assert config["MappingKernelManager"]["cull_idle_timeout"] > 0
    template = DASHBOARDS / "share/jupyter/voila/templates/s5p/index.html.j2"
    assert "extends 'voila/templates/lab/index.html.j2'" in template.read_text()


def test_launcher_binds_the_requested_address(tmp_path):
    out = subprocess.run([sys.executable, str(SERVE), "--host", "0.0.0.0", "--port", "9123",
                          "--results", str(tmp_path), "--dry-run"],
                         capture_output=True, text=True, check=True).stdout
    assert f"S5P_RESULTS={tmp_path}" in out
    assert "--Voila.ip=0.0.0.0" in out and "--Voila.port=9123" in out
    assert f"cd {DASHBOARDS}" in out  # voila.json is read from there


def test_notebook_is_thin():
    notebook = json.loads((DASHBOARDS / "lockdown.ipynb").read_text())
    code = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code == ["from s5p_lockdown.dashboard.app import show\n\nshow()"]
    assert all(not c.get("outputs") for c in notebook["cells"])


@pytest.mark.slow
def test_workflow_results_feed_the_dashboard(workflow_results):
    data = load_results(workflow_results)
    assert set(data.stats.index) == {"FRA", "ITA", "ESP", "DEU", "SWE"}
    maps = load_europe_maps(data)
    assert np.isfinite(maps.fields["change"]).mean() > 0.3
    assert "change_weather_adjusted" in data.stats and data.hotspots is not None
    assert "Paris (FRA)" in set(data.hotspots.stats["country"])
    assert data.hotspots.stats["lat"].notna().all()
    board = app.Dashboard(data)
    board.selector.value = "SWE"
    assert "Sweden" in board.numbers.value
    board.view.value = "Hotspots"
    assert "Paris (FRA)" in json.dumps(board.ranking.spec["data"])


def test_plot_html_holds_the_spec_in_a_block_it_cannot_end():
    """A figure's HTML: the element drawn into, then its spec as JSON that no text of the
    figure can turn into markup (a title with '</script>' stays text)."""
    fig = figures.go.Figure(layout={"title": {"text": "a </script><b>b</b> & <!-- c"},
                                    "height": 321})
    spec = figures.plot_spec(fig)
    markup = figures.plot_html(spec, fig.layout.height)
    assert markup.startswith("<div style='height:321px'></div>")
    body = re.fullmatch(r"<div[^>]*></div><script type='application/json' class='plot'>"
                        r"(.*)</script>", markup).group(1)
    assert "<" not in body and json.loads(body) == spec
    assert spec["config"] == figures.PLOT_CONFIG


def test_the_server_serves_the_plot_scripts_of_the_installed_packages():
    from s5p_lockdown.serving import plot_script_urls, plot_scripts

    scripts = plot_scripts()
    assert set(scripts) == {"plotly.min.js", "plots.js"}
    assert scripts["plots.js"] == figures.PLOTS_JS
    assert "window.Plotly" in scripts["plotly.min.js"].read_text()
    urls = plot_script_urls("/no2/")
    assert re.fullmatch(r"/no2/s5p/static/plots\.js\?v=[0-9a-f]{16}", urls["plots"])
    assert re.fullmatch(r"/no2/s5p/static/plotly\.min\.js\?v=[0-9a-f]{16}", urls["plotly"])


def test_maps_cache_keeps_the_recently_used_entries(data, tmp_path, monkeypatch):
    """The cache keeps the most recently used entries (a read counts as a use) and drops those
    beyond the newest ``keep`` and those unused for too long; loading new maps prunes it."""
    from s5p_lockdown.dashboard.data import prune_maps_cache

    folder = tmp_path / "cache"
    folder.mkdir()
    now = 1_800_000_000.0
    ages_days = {"a": 0.5, "b": 1, "c": 2, "d": 3, "old": 40}
    for name, days in ages_days.items():
        path = folder / f"maps-{name}.npz"
        path.write_bytes(b"x")
        os.utime(path, (now - days * 86400, now - days * 86400))
    (folder / "notes.txt").write_text("not an entry")
    removed = prune_maps_cache(folder, keep=3, max_age_s=30 * 86400, now=now)
    assert sorted(p.name for p in removed) == ["maps-d.npz", "maps-old.npz"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "maps-a.npz", "maps-b.npz", "maps-c.npz", "notes.txt"]
    assert prune_maps_cache(folder, keep=3, max_age_s=30 * 86400, now=now) == []

    # in use: writing a new entry prunes the folder; a read marks the entry used
    monkeypatch.setenv("S5P_DASHBOARD_CACHE", str(folder))
    stale = time.time() - 40 * 86400
    for name in "abc":
        os.utime(folder / f"maps-{name}.npz", (stale, stale))
    load_europe_maps(data)
    (entry,) = folder.glob("maps-*.npz")  # the new one; the stale ones are gone
    yesterday = time.time() - 86400
    os.utime(entry, (yesterday, yesterday))
    load_europe_maps(data)
    assert entry.stat().st_mtime > yesterday + 3600
