"""The workflow with a region file: region_stats.csv, a regional lockdown recovered in its
region and not in its neighbours, region-dated windows (slow: runs Snakemake end to end)."""

from __future__ import annotations

import pandas as pd
import pytest
import shapely

from s5p_lockdown.regions import load_countries
from s5p_lockdown.synth.regions import voronoi_regions
from workflow_helpers import run_workflow, write_config

# the session's one browser (Playwright's sync API allows one at a time in a process)
pytest_plugins = ("dashboard_fixtures",)

pytestmark = pytest.mark.slow

REDUCTION = 0.4
"""Injected in the one locked-down region, from its own date; nothing anywhere else."""


@pytest.fixture(scope="module")
def regions_run(tmp_path_factory):
    """Italy cut into 12 demo regions; the region with the most neighbours gets a regional
    lockdown (its own row of the regional table, 2020-03-08, two days before Italy's date) and
    the only injected reduction. Same weather every year: the expected change is the injected
    reduction inside the region and zero in its neighbours."""
    folder = tmp_path_factory.mktemp("regions_workflow")
    frame = voronoi_regions(load_countries(), n_regions=12, seed=2, iso3_list=["ITA"])
    frame.to_crs("EPSG:3035").to_file(folder / "regions.gpkg", driver="GPKG")
    geometries = dict(zip(frame["region_id"], frame.geometry))
    neighbours = {r: [o for o in geometries if o != r and shapely.intersects(g, geometries[o])]
                  for r, g in geometries.items()}
    locked = max(neighbours, key=lambda r: (len(neighbours[r]), geometries[r].area))
    (folder / "regional.csv").write_text(
        "region,iso3,name,lockdown_start,lockdown_end,measure,note\n"
        f"{locked},ITA,demo,2020-03-08,,regional,test region\n")
    (folder / "scenario.csv").write_text(
        "iso3,reduction,start,end,hotspot,region\n"
        "ITA,0,,,,\n"
        f"ITA,{REDUCTION},2020-03-08,,,{locked}\n")
    config = write_config(folder, {
        "synthetic": {"scenario": str(folder / "scenario.csv")},
        "grid": {"south": 36.0, "north": 48.0, "west": 6.0, "east": 19.0, "resolution": 0.2},
        "countries": ["ITA"],
        "regions": {"file": str(folder / "regions.gpkg"), "id": "region_id", "name": "name",
                    "lockdown_dates": str(folder / "regional.csv")},
    })
    run_workflow(config)
    return folder, locked, neighbours[locked]


def test_region_stats_have_every_region_with_its_dates(regions_run):
    folder, locked, _ = regions_run
    stats = pd.read_csv(folder / "results" / "stats" / "region_stats.csv").set_index("region")
    assert len(stats) == 12 and set(stats["iso3"]) == {"ITA"}
    assert list(stats.columns[:3]) == ["name", "iso3", "dates_from"]
    assert stats.loc[locked, "dates_from"] == "region" and stats.loc[locked, "post_start"] == "2020-03-08"
    others = stats.drop(index=locked)
    assert set(others["dates_from"]) == {"country"} and set(others["post_start"]) == {"2020-03-10"}
    assert (folder / "results" / "attribution" / "regions").is_dir()
    assert "Demo region" in (folder / "results" / "stats" / "regions.geojson").read_text()


def test_regional_reduction_is_recovered_in_its_region_not_its_neighbours(regions_run):
    folder, locked, neighbours = regions_run
    stats = pd.read_csv(folder / "results" / "stats" / "region_stats.csv").set_index("region")
    truth = pd.read_csv(folder / "archive" / "truth_daily.csv")
    assert set(truth.loc[truth["kind"] == "region", "iso3"]) == {locked}
    row = stats.loc[locked]
    # the changes against the baseline year are computed (a pre window may lack clear days)
    assert pd.isna(row["reason_post_vs_baseline"]) and pd.isna(row["reason_weather_adjusted"]), row["reason"]
    # ~17 km pixels on 0.2 degree cells; same weather in both years, so the wind-adjusted
    # change is close to the injected one and the raw interval holds it
    assert row["change_weather_adjusted"] == pytest.approx(-REDUCTION, abs=0.05)
    assert row["change_post_vs_baseline_low"] < -REDUCTION < row["change_post_vs_baseline_high"]
    assert row["significant_post_vs_baseline"] and row["significant_weather_adjusted"]
    assert neighbours
    for region in neighbours:
        other = stats.loc[region]
        if not pd.isna(other["reason_weather_adjusted"]):  # too cloudy to measure: says why
            assert other["reason_weather_adjusted"]
            continue
        assert abs(other["change_weather_adjusted"]) < 0.05, region
        assert other["change_post_vs_baseline_low"] < 0 < other["change_post_vs_baseline_high"], region


# --- the dashboard's Regions view ---------------------------------------------------------------
def test_dashboard_data_and_widgets_have_the_regions_view(regions_run):
    from s5p_lockdown.dashboard import figures
    from s5p_lockdown.dashboard.app import REGIONS, Dashboard
    from s5p_lockdown.dashboard.data import load_results

    folder, locked, _ = regions_run
    data = load_results(folder / "results")
    regions = data.regions
    assert regions is not None and len(regions.stats) == 12
    assert regions.stats.loc[locked, "country"].endswith(f"({locked})")
    assert regions.stats.loc[locked, "country_iso3"] == "ITA"
    assert set(regions.daily["iso3"]) == set(regions.stats.index)
    dashboard = Dashboard(data)
    assert list(dashboard.view.options) == ["Countries", "Hotspots", "Regions"]
    dashboard.show_view(REGIONS)
    assert dashboard.current is regions and dashboard.selector.description == "Region"
    assert dict(dashboard.selector.options)[regions.stats.loc[locked, "country"]] == locked
    change_map = figures.region_map_figure(regions, data.region_outlines, dashboard.shapes)
    shown = {r for trace in change_map.data[1:] for r in trace.locations}
    assert shown == set(regions.stats.index)
    assert change_map.data[1].featureidkey == "properties.region"


def test_static_export_has_the_regions(regions_run, tmp_path):
    from s5p_lockdown.dashboard.export import export_site

    folder, locked, _ = regions_run
    site = export_site(folder / "results", tmp_path / "site")
    assert len(list((site / "regions").glob("*.html"))) == 12
    assert f"({locked})" in (site / "regions" / f"{locked}.html").read_text()
    index = (site / "index.html").read_text()
    assert "Change per region" in index and "Regions: change after the lockdown" in index
    assert (site / "data" / "region_stats.csv").read_bytes() == (
        folder / "results" / "stats" / "region_stats.csv").read_bytes()


def test_regions_view_in_the_browser(regions_run, browser, tmp_path):
    """The Regions toggle of the served dashboard swaps map, ranking and selector to regions;
    choosing the locked-down region shows its series and numbers."""
    from dashboard_support import REPO, PageWatch, VoilaServer, wait_rendered

    folder, locked, _ = regions_run
    visible_js = """() => Array.from(document.querySelectorAll('.s5p-plot .js-plotly-plot'))
        .filter(p => p.offsetParent !== null)
        .map(p => ({title: (p.layout.title && p.layout.title.text) || '',
                    types: p.data.map(t => t.type || 'scatter')}))"""
    with VoilaServer(folder / "results", tmp_path / "voila.log") as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.watch = PageWatch().attach(page)
        page.goto(server.url, wait_until="commit", timeout=120_000)
        wait_rendered(page, 6)
        page.locator(".widget-toggle-button", has_text="Regions").click()
        page.wait_for_function(f"""() => {{
            const plots = ({visible_js})();
            return plots.length === 6 && plots[3].title.startsWith('Regions')
                && document.querySelectorAll('.widget-dropdown label')[2].textContent.includes('Region');
        }}""", timeout=60_000)
        visible = page.evaluate(visible_js)
        assert "choroplethmap" in visible[3]["types"] and visible[4]["types"] == ["bar", "bar"]
        labels = page.evaluate("""() => Array.from(document.querySelectorAll('select')[2].options)
            .map(o => o.text.replace(/\\u00a0/g, ' '))""")
        assert len(labels) == 12 and all(label.startswith("Demo region") for label in labels)
        label = next(label for label in labels if label.endswith(f"({locked})"))
        page.select_option("select >> nth=2", label=label.replace(" ", "\xa0"))
        page.wait_for_function("""(name) => Array.from(document.querySelectorAll('.js-plotly-plot'))
            .some(p => p.offsetParent !== null && p.layout.title.text.startsWith(name))""",
                               arg=label, timeout=30_000)
        numbers = page.inner_text(".s5p-country-numbers")
        assert label in numbers and "8 Mar 2020" in numbers
        artifacts = REPO / "test-artifacts" / "dashboard"
        artifacts.mkdir(parents=True, exist_ok=True)
        page.locator(".js-plotly-plot:visible").nth(3).screenshot(path=artifacts / "region_map.png")
        assert page.watch.problems() == []
        page.close()
