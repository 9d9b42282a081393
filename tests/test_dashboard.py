"""Dashboard logic without a browser: loading and validating results, figures, HTML, widgets,
the publishing configuration."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dashboard_support import REPO, SERVE
from s5p_lockdown.dashboard import app, figures, tables
from s5p_lockdown.dashboard.data import (
    REPO_ROOT, ResultsError, country_series, country_shapes, load_europe_maps, load_results,
    resolve_results_dir,
)

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
    assert any("ISL" in p for p in data.problems)  # too little data is reported, not fatal
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
    return "http" not in json.dumps(app.plotly_bundle(fig))


def test_europe_map_figure(data, shapes):
    fig = figures.europe_map_figure(load_europe_maps(data), shapes)
    types = [t.type for t in fig.data]
    assert types == ["heatmap"] * 5 + ["scatter", "scatter"]
    change = fig.data[4]
    assert change.zmid == 0 and change.zmin == -change.zmax and change.colorscale[0][1] != \
        fig.data[0].colorscale[0][1]
    assert [t.visible for t in fig.data] == [False, True, False, False, False, None, False]
    buttons = fig.layout.updatemenus[0].buttons
    assert len(buttons) == 5
    assert buttons[4].args[0]["visible"] == [False] * 4 + [True, False, True]  # dark borders
    assert len(fig.data[5].x) > 100  # country borders inside the grid
    assert fig.data[0].z.dtype == np.float32  # sent as a compact typed array
    assert _no_remote_urls(fig)


def test_change_limit():
    assert figures.change_limit([-31.0, 5.0, np.nan]) == 40.0
    assert figures.change_limit([1.0]) == 10.0
    assert figures.change_limit([-500.0]) == figures.MAX_CHANGE_PERCENT
    assert figures.change_limit([np.nan]) == figures.MAX_CHANGE_PERCENT


def test_choropleth_figure_works_offline(data, shapes):
    fig = figures.choropleth_figure(data, shapes)
    assert {t.type for t in fig.data} == {"choroplethmap"}
    assert fig.layout.map.style == "white-bg" and fig.layout.geo.to_plotly_json() == {}
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["lockdown"].locations) == ["FRA", "ITA"]
    assert list(by_name["no lockdown (reference window)"].locations) == ["SWE"]
    assert list(by_name["too little data"].locations) == ["ISL"]
    assert "-30.0 % (95 % CI -35.0 to -25.0 %)" in by_name["lockdown"].text[0]
    assert fig.layout.coloraxis.cmid == 0
    assert _no_remote_urls(fig)


def test_ranking_figure(data):
    fig = figures.ranking_figure(data)
    assert list(fig.layout.yaxis.categoryarray) == ["Italy", "France", "Sweden", "Iceland"]
    lockdown = fig.data[0]
    assert list(lockdown.y) == ["France", "Italy"]
    np.testing.assert_allclose(lockdown.x, [-30.0, -40.0])
    np.testing.assert_allclose(lockdown.error_x.array, [5.0, 5.0])
    np.testing.assert_allclose(lockdown.error_x.arrayminus, [5.0, 5.0])
    assert fig.data[1].marker.pattern.shape == "/"  # no lockdown: hatched
    assert list(fig.data[2].y) == ["Iceland"] and fig.data[2].text[0] == "too little data"


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
    assert "-30.0 %" in html and "-35.0 to -25.0 %" in html and "20.00" in html
    assert "Too little data" in tables.country_summary_html(data, "ISL")


def test_values_from_results_are_escaped(data):
    stats = data.stats.copy()
    stats.loc["FRA", "country"] = "<script>alert(1)</script>"
    stats.loc["FRA", "reason"] = "<img src=x onerror=alert(1)>"
    hostile = type(data)(**{**data.__dict__, "stats": stats})
    html = tables.country_summary_html(hostile, "FRA")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in tables.message_html("x", stats.at["FRA", "reason"])


def test_download_link_carries_the_table(data):
    link = tables.download_link_html(data)
    payload = re.search(r"href='data:text/csv;base64,([^']+)'", link).group(1)
    assert base64.b64decode(payload) == (data.root / "stats" / "country_stats.csv").read_bytes()
    assert "download='country_stats.csv'" in link


def test_dashboard_widgets_follow_the_selector(data):
    board = app.Dashboard(data)
    assert board.selector.value == "FRA"  # first country with data
    before_numbers = board.numbers.value
    before_series = board.timeseries.outputs
    board.selector.value = "ITA"
    assert "Italy" in board.numbers.value and board.numbers.value != before_numbers
    (output,) = board.timeseries.outputs
    assert output["data"][app.PLOTLY_MIME]["layout"]["title"]["text"].startswith("Italy")
    assert board.timeseries.outputs != before_series


def test_dashboard_shows_a_message_when_results_are_missing(tmp_path):
    widget = app.dashboard(tmp_path / "nowhere")
    assert "The results cannot be shown." in widget.value and "run the workflow" in widget.value


def test_dashboard_without_europe_composites_still_shows_countries(data, tmp_path):
    root = _broken_copy(data.root, tmp_path)
    shutil.rmtree(root / "composites")
    board = app.Dashboard(load_results(root))
    texts = [w.value for w in board.widget.children if hasattr(w, "value")]
    assert any("Europe map unavailable" in t for t in texts)


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
    board = app.Dashboard(data)
    board.selector.value = "SWE"
    assert "Sweden" in board.numbers.value
