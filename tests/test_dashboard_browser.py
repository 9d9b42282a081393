"""The dashboard served by Voilà (production settings) in headless chromium, with no internet:
rendering, layout from 800 to 2560 px, interaction, downloads, what a visitor must not be able
to do; and the static export served by a plain local HTTP server.

Screenshots go to test-artifacts/dashboard/ (``page_<width>_<n>.png``: the whole page, screen
by screen, at each width).
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import websocket

from dashboard_support import (
    PageWatch, StaticServer, VoilaServer, plot_summaries, screenshot_pages, wait_rendered,
    wait_widths_follow,
)

pytestmark = pytest.mark.slow
pytest_plugins = ("dashboard_fixtures",)  # one workflow run shared with test_dashboard.py

VIEWPORT = {"width": 1400, "height": 1000}
FIGURES = 6  # three gridded maps, change map, ranking, time series
LEAKS = ("Traceback", "Error", "from s5p_lockdown", "show()", "There was an error",
         "results/", "S5P_RESULTS", "s5p_lockdown", "/tmp/")
WIDTHS = (800, 1400, 2560)


@pytest.fixture
def page(browser, voila_server):
    """A fresh page of the dashboard, rendered, with its network watch."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.watch = PageWatch().attach(page)
    page.goto(voila_server.url, wait_until="commit", timeout=120_000)
    wait_rendered(page, FIGURES)
    yield page
    context.close()


def _timeseries_title(page) -> str:
    return page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .find(p => p.layout.title.text.includes('daily mean')).layout.title.text""")


def test_page_renders_all_figures_offline(page, artifacts):
    summaries = plot_summaries(page)
    types = [set(s["types"]) for s in summaries]
    assert types == [{"heatmap", "scatter"}] * 3 + [{"scatter"}, {"bar"},
                                                    {"scatter", "bar"}]
    assert page.locator(".js-plotly-plot .heatmaplayer image").count() >= 3  # drawn grids
    # the change map: countries as filled SVG outlines, no WebGL map
    assert page.locator(".js-plotly-plot").nth(3).locator(".scatterlayer .trace").count() >= 5
    assert page.locator(".js-plotly-plot canvas.maplibregl-canvas").count() == 0
    assert page.locator(".js-plotly-plot .barlayer .point").count() >= 4  # ranked bars
    assert page.locator(".s5p-country-numbers table").count() == 2
    # the results are synthetic: the page says so, visibly, at the top
    banner = page.locator(".s5p-demo-banner")
    assert banner.is_visible() and "not real measurements" in banner.inner_text()
    assert banner.bounding_box()["y"] < 200
    text = page.inner_text("body")
    assert not [leak for leak in LEAKS if leak in text]
    assert "Copernicus" not in text  # no attribution of data that are not Copernicus data
    assert page.locator(".jp-OutputArea-output[data-mime-type*='stderr']").count() == 0
    page.wait_for_timeout(500)  # late requests (fonts, map resources) would show up here
    assert page.watch.problems() == []
    # drawn by plots.js with the plotly.js the server serves, each figure once: no
    # JupyterLab plotly renderer (it would also draw an off-screen copy of each for a PNG)
    loaded = page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)")
    assert [u for u in loaded if "/s5p/static/plotly.min.js?v=" in u]
    assert not [u for u in loaded if "jupyterlab-plotly" in u]
    assert page.locator(".js-plotly-plot").count() == FIGURES
    page.screenshot(path=artifacts / "viewport.png")
    for name, index in (("grid_baseline", 0), ("grid_lockdown", 1), ("grid_change", 2),
                        ("country_map", 3), ("ranking", 4), ("timeseries", 5)):
        page.locator(".js-plotly-plot").nth(index).screenshot(path=artifacts / f"{name}.png")


@pytest.mark.parametrize("width", WIDTHS)
def test_layout_follows_the_window(browser, voila_server, artifacts, width):
    """At 800, 1400 and 2560 px every figure takes the width of its place, colour bars sit
    with their maps, the ranking's axis is at the top, table values stay on one line; after a
    window resize the figures follow."""
    context = browser.new_context(viewport={"width": width, "height": 1000})
    try:
        page = context.new_page()
        watch = PageWatch().attach(page)
        page.goto(voila_server.url, wait_until="commit", timeout=120_000)
        wait_rendered(page, FIGURES)
        widths = wait_widths_follow(page)
        assert len(widths) == FIGURES and min(w for w, _ in widths) > 300
        screenshot_pages(page, artifacts / f"page_{width}")
        layout = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
            .filter(p => p.offsetParent !== null).map(p => ({
                width: p._fullLayout.width, xside: p._fullLayout.xaxis && p._fullLayout.xaxis.side,
                bars: p._fullData.filter(t => t.colorbar && t.showscale !== false)
                       .map(t => t.colorbar.orientation)}))""")
        assert [f["bars"] for f in layout[:3]] == [["h"]] * 3  # under each gridded map
        assert layout[4]["xside"] == "top"  # ranking: axis where the eye starts
        # values and intervals of the numbers table on one line each
        heights = page.evaluate("""() => Array.from(document.querySelectorAll(
            '.s5p-country-numbers td:nth-child(2), .s5p-country-numbers td:nth-child(3)'))
            .filter(td => !td.querySelector('.s5p-reason')).map(td => {
                const text = document.createRange();
                text.selectNodeContents(td);
                return text.getBoundingClientRect().height; })""")
        assert heights and max(heights) < 24, heights  # one line of text each
        page.set_viewport_size({"width": 1100, "height": 1000})
        after = wait_widths_follow(page, previous=widths)
        assert [round(w) for w, _ in after] != [round(w) for w, _ in widths]
        assert watch.problems() == []
    finally:
        context.close()


def test_choosing_a_country_zooms_the_gridded_maps(page, artifacts):
    def ranges():
        return page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
            .slice(0, 3).map(p => p._fullLayout.xaxis.range)""")

    europe = ranges()
    page.select_option(".widget-dropdown:has-text('Country') select", label="Italy")
    page.wait_for_function("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .slice(0, 3).every(p => p._fullLayout.xaxis.range[0] > 4)""", timeout=15_000)
    italy = ranges()
    assert italy[0] == italy[1] == italy[2] and europe[0][0] < italy[0][0] < 7.0 < italy[0][1]
    assert page.locator(".widget-dropdown:has-text('Area') select").input_value() == "Italy"
    assert page.evaluate("""() => document.querySelector('.js-plotly-plot').data
        .some(t => t.name === 'cities' && t.text.includes('Rome'))""")
    page.locator(".s5p-plot").nth(2).screenshot(path=artifacts / "grid_change_italy.png")
    page.select_option(".widget-dropdown:has-text('Area') select", label="Europe")
    page.wait_for_function("""() => document.querySelector('.js-plotly-plot')
        ._fullLayout.xaxis.range[0] < 0""", timeout=15_000)
    assert page.watch.problems() == []


MAP_POINT_JS = """(lonlat) => {
    const plot = Array.from(document.querySelectorAll('.js-plotly-plot'))
        .find(p => p.offsetParent !== null && p.layout.title.text.startsWith('Change after'));
    plot.scrollIntoView();
    const box = plot.getBoundingClientRect();
    const xa = plot._fullLayout.xaxis, ya = plot._fullLayout.yaxis;
    return [box.left + xa._offset + xa.l2p(lonlat[0]), box.top + ya._offset + ya.l2p(lonlat[1])];
}"""
"""Page coordinates of (longitude, latitude) on the country change map."""


def test_clicking_a_country_on_the_map_chooses_it(page, artifacts):
    """A click on Italy in the change map shows Italy's numbers and series and zooms the
    gridded maps to it (the Area selector follows), as choosing it in the selector does."""
    assert page.locator(".widget-dropdown:has-text('Area') select").input_value() == "Europe"
    x, y = page.evaluate(MAP_POINT_JS, [12.5, 42.8])  # central Italy
    page.mouse.move(x, y)
    page.wait_for_selector(".hoverlayer .hovertext", timeout=5_000)
    hover = page.evaluate("""() => Array.from(document.querySelectorAll('.hoverlayer .hovertext'))
        .map(e => e.textContent).join(' ')""")
    assert "Italy" in hover and "change" in hover
    page.mouse.click(x, y)
    page.wait_for_function("""() => document.querySelector('.s5p-country-numbers h3')
        .textContent.includes('Italy')""", timeout=15_000)
    page.wait_for_function("""() => document.querySelector('.js-plotly-plot')
        ._fullLayout.xaxis.range[0] > 4""", timeout=15_000)
    assert page.locator(".widget-dropdown:has-text('Area') select").input_value() == "Italy"
    assert page.locator(".widget-dropdown:has-text('Country') select").input_value() == "Italy"
    assert _timeseries_title(page).startswith("Italy")
    page.screenshot(path=artifacts / "clicked_italy.png")
    assert page.watch.problems() == []


def test_choosing_a_country_updates_series_and_numbers(page, artifacts):
    first_title = _timeseries_title(page)
    first_numbers = page.inner_text(".s5p-country-numbers")
    assert first_title.startswith("France")
    started = time.monotonic()
    page.select_option(".widget-dropdown:has-text('Country') select", label="Italy")
    page.wait_for_function("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .some(p => p.layout.title.text.startsWith('Italy'))""", timeout=10_000)
    page.wait_for_function("""() => document.querySelector('.s5p-country-numbers h3')
        .textContent.includes('Italy')""", timeout=10_000)
    elapsed = time.monotonic() - started
    numbers = page.inner_text(".s5p-country-numbers")
    assert numbers != first_numbers and "Italy" in numbers
    assert elapsed < 5.0, f"country change took {elapsed:.1f} s"
    assert page.watch.problems() == []
    page.locator(".js-plotly-plot").nth(5).screenshot(path=artifacts / "timeseries_italy.png")


VISIBLE_PLOTS_JS = """() => Array.from(document.querySelectorAll('.s5p-plot .js-plotly-plot'))
    .filter(p => p.offsetParent !== null)
    .map(p => ({title: (p.layout.title && p.layout.title.text) || '',
                types: p.data.map(t => t.type || 'scatter')}))"""


def _visible_titles(page) -> list[str]:
    return [p["title"] for p in page.evaluate(VISIBLE_PLOTS_JS)]


def test_countries_hotspots_toggle(page, artifacts):
    """The toggle swaps the change map, the ranking and the selector (with its numbers and
    series) to hotspots and back, without errors."""
    def toggle(view):
        page.locator(".widget-toggle-button", has_text=view).click()

    titles = _visible_titles(page)
    assert len(titles) == FIGURES and not any(t.startswith("Hotspots") for t in titles)
    toggle("Hotspots")
    # the hotspot map shown, the selector relabelled, the series of a hotspot ('Name (ISO):')
    page.wait_for_function(f"""() => {{
        const plots = ({VISIBLE_PLOTS_JS})();
        return plots.length === 6 && plots[3].title.startsWith('Hotspots')
            && /^[^:]+ \\([A-Z]{{3}}\\): daily mean/.test(plots[5].title)
            && document.querySelectorAll('.widget-dropdown label')[2].textContent
                .includes('Hotspot');
    }}""", timeout=30_000)
    visible = page.evaluate(VISIBLE_PLOTS_JS)
    assert len(visible) == FIGURES, visible  # grids, hotspot map, hotspot ranking, series
    assert set(visible[3]["types"]) == {"scatter"}  # outlines and hotspot markers
    # option labels as shown ('Paris (FRA)'; the dropdown renders spaces as no-break spaces)
    labels = page.evaluate("""() => Array.from(document.querySelectorAll('select')[2].options)
        .map(o => o.text)""")
    hotspot_names = [label.replace("\xa0", " ") for label in labels]
    assert len(hotspot_names) >= 5 and "Paris" in " ".join(hotspot_names)
    assert any(name in visible[5]["title"] for name in hotspot_names), (hotspot_names, visible)
    page.locator(".js-plotly-plot:visible").nth(3).screenshot(path=artifacts / "hotspot_map.png")
    page.locator(".js-plotly-plot:visible").nth(4).screenshot(
        path=artifacts / "hotspot_ranking.png")

    other_label = next(label for label, name in zip(labels, hotspot_names)
                       if name not in visible[5]["title"])
    other = other_label.replace("\xa0", " ")
    page.select_option("select >> nth=2", label=other_label)
    page.wait_for_function("""(name) => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .some(p => p.offsetParent !== null && p.layout.title.text.startsWith(name))""",
                           arg=other.split(" (")[0], timeout=10_000)
    assert other.split(" (")[0] in page.inner_text(".s5p-country-numbers")

    toggle("Countries")
    page.wait_for_function(f"""() => {{
        const plots = ({VISIBLE_PLOTS_JS})();
        return plots.length === 6 && plots[5].title.startsWith('France')
            && document.querySelectorAll('.widget-dropdown label')[2].textContent
                .includes('Country');
    }}""", timeout=30_000)
    titles = _visible_titles(page)
    assert len(titles) == FIGURES and not any(t.startswith("Hotspots") for t in titles), titles
    assert titles[5].startswith("France")
    assert page.watch.problems() == []


def test_downloads(page, workflow_results, tmp_path):
    """The statistics tables as written, and the grids shown (netCDF), all from data URLs."""
    for index, name in ((0, "country_stats.csv"), (1, "hotspot_stats.csv")):
        with page.expect_download() as download:
            page.click(f"a.s5p-download >> nth={index}")
        assert download.value.suggested_filename == name
        expected = (workflow_results / "stats" / name).read_bytes()
        assert open(download.value.path(), "rb").read() == expected
    page.get_by_text("Prepare the grids shown (netCDF)").click()
    link = page.locator("a.s5p-download", has_text="The grids shown")
    link.wait_for(timeout=15_000)
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename.startswith("no2_grids_europe_")
    path = tmp_path / "grids.nc"
    download.value.save_as(path)
    import xarray as xr
    with xr.open_dataset(path) as ds:
        assert {"no2_baseline", "no2_analysis", "change"} <= set(ds.data_vars)
        assert ds["change"].notnull().mean() > 0.3
    assert page.watch.problems() == []


# --- what a visitor must not be able to do ---------------------------------------------------
def _kernel_id(page) -> str:
    config = page.evaluate("() => document.getElementById('jupyter-config-data').textContent")
    return json.loads(config)["kernelId"]


def test_code_sent_to_the_kernel_is_not_executed(page, voila_server, tmp_path):
    marker = tmp_path / "executed"
    ws = websocket.create_connection(
        voila_server.url.replace("http", "ws") + f"api/kernels/{_kernel_id(page)}/channels"
        f"?session_id={uuid.uuid4().hex}", timeout=10)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "visitor",
                       "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": f"open({str(marker)!r}, 'w').write('x')", "silent": False,
                        "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        time.sleep(3)
    finally:
        ws.close()
    assert not marker.exists()
    # the kernel is alive and still serves the page: the refusal is not a crash
    page.select_option(".widget-dropdown:has-text('Country') select", label="Spain")
    page.wait_for_function("""() => document.querySelector('.s5p-country-numbers h3')
        .textContent.includes('Spain')""", timeout=10_000)


@pytest.mark.parametrize("path, method", [
    ("api/kernels", "GET"), ("api/kernels", "POST"), ("api/contents", "GET"),
    ("api/contents/lockdown.ipynb", "GET"), ("api/sessions", "GET"), ("api/terminals", "POST"),
    ("tree", "GET"), ("lab", "GET"),
])
def test_jupyter_endpoints_are_refused(voila_server, path, method):
    assert voila_server.status(path, method) in (403, 404)


@pytest.mark.parametrize("path", [
    "voila/files/lockdown.ipynb", "voila/files/voila.json", "voila/files/serve",
    "voila/files/../README.md", "voila/files/%2e%2e/pyproject.toml", "files/lockdown.ipynb",
])
def test_files_are_not_served(voila_server, path):
    assert voila_server.status(path) in (403, 404)


def test_page_has_no_source_code(page):
    html = page.content()
    assert "from s5p_lockdown" not in html and "show()" not in html


def test_broken_results_show_a_message_not_a_traceback(browser, tiny_results, tmp_path, artifacts):
    import shutil

    results = tmp_path / "results"
    shutil.copytree(tiny_results, results)
    (results / "stats" / "country_stats.csv").write_text("iso3,country\nFRA,France\n")
    context = browser.new_context(viewport=VIEWPORT)
    try:
        with VoilaServer(results, tmp_path / "voila.log", ["--no-preheat"]) as server:
            page = context.new_page()
            watch = PageWatch().attach(page)
            page.goto(server.url, wait_until="commit", timeout=120_000)
            page.wait_for_selector(".s5p-message", timeout=90_000)
            text = page.inner_text("body")
            page.screenshot(path=artifacts / "broken_results.png")
    finally:
        context.close()
    assert "The results cannot be shown." in text and "lacks column(s)" in text
    assert not [leak for leak in LEAKS if leak in text]
    assert watch.problems() == []


# --- static export ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def static_site(workflow_results, tmp_path_factory):
    from s5p_lockdown.dashboard.export import export_site

    return export_site(workflow_results, tmp_path_factory.mktemp("static") / "site")


@pytest.mark.parametrize("width", WIDTHS)
def test_static_export_renders_offline(browser, static_site, artifacts, width):
    """The exported site, served by a plain HTTP server: every figure drawn at the width of its
    place, no request outside the site, no page error; a country page too."""
    context = browser.new_context(viewport={"width": width, "height": 1000})
    try:
        with StaticServer(static_site) as server:
            page = context.new_page()
            watch = PageWatch().attach(page)
            page.goto(server.url + "index.html")
            count = page.locator("script.plot").count()
            assert count == 7  # gridded maps, country and hotspot change maps and rankings
            page.wait_for_function("""(n) => {
                const plots = document.querySelectorAll('.js-plotly-plot');
                return plots.length === n && Array.from(plots).every(p => p._fullLayout);
            }""", arg=count, timeout=30_000)
            wait_widths_follow(page)
            assert page.locator(".s5p-demo-banner").is_visible()
            page.wait_for_timeout(500)
            page.screenshot(path=artifacts / f"static_{width}.png", full_page=True)
            # the window selector: another window's maps drawn from its data/maps_<n>.js
            options = page.locator("#s5p-window option").all_inner_texts()
            assert len(options) > 1 and "common reference window" in options[0]
            titles_js = """() => Array.from(document.querySelectorAll(
                '#s5p-grid-maps .js-plotly-plot')).map(p => p.layout.title.text).join(' | ')"""
            first = page.evaluate(titles_js)
            page.select_option("#s5p-window", index=1)
            page.wait_for_function(f"(first) => ({titles_js})() !== first", arg=first,
                                   timeout=30_000)
            wait_widths_follow(page)
            second = page.evaluate(titles_js)
            assert second.startswith("Baseline") and second.count(" | ") == 2, second
            href = page.get_attribute("#s5p-grids-download", "href")
            assert href.startswith("data/no2_grids_window1_")
            assert page.request.get(server.url + href).status == 200
            page.locator("#s5p-grid-maps").screenshot(path=artifacts / f"static_window_{width}.png")
            page.click("a[href='countries/FRA.html']")
            page.wait_for_function("""() => document.querySelector('.js-plotly-plot')
                && document.querySelector('.js-plotly-plot')._fullLayout""", timeout=30_000)
            assert "France" in page.inner_text(".s5p-country-numbers")
            page.screenshot(path=artifacts / f"static_france_{width}.png", full_page=True)
            assert watch.problems() == []
    finally:
        context.close()
