"""The dashboard served by Voilà (production settings) in headless chromium, with no internet:
rendering, interaction, download, and what a visitor must not be able to do.

Screenshots go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import websocket

from dashboard_support import PageWatch, VoilaServer, plot_summaries, wait_rendered

pytestmark = pytest.mark.slow
pytest_plugins = ("dashboard_fixtures",)  # one workflow run shared with test_dashboard.py

VIEWPORT = {"width": 1300, "height": 900}
LEAKS = ("Traceback", "Error", "from s5p_lockdown", "show()", "There was an error")


@pytest.fixture
def page(browser, voila_server):
    """A fresh page of the dashboard, rendered, with its network watch."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.watch = PageWatch().attach(page)
    page.goto(voila_server.url, wait_until="commit", timeout=120_000)
    wait_rendered(page)
    yield page
    context.close()


def _timeseries_title(page) -> str:
    return page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .find(p => p.layout.title.text.includes('daily mean')).layout.title.text""")


def test_page_renders_all_figures_offline(page, artifacts):
    summaries = plot_summaries(page)
    types = [set(s["types"]) for s in summaries]
    assert types == [{"heatmap", "scatter"}, {"choroplethmap"}, {"bar", "scatter"},
                     {"scatter", "bar"}]
    assert page.locator(".js-plotly-plot .heatmaplayer image").count() >= 1  # drawn grid
    assert page.locator(".js-plotly-plot canvas.maplibregl-canvas").count() == 1  # WebGL map
    assert page.locator(".js-plotly-plot .barlayer .point").count() >= 4  # ranked bars
    assert page.locator(".s5p-country-numbers table").count() == 2
    text = page.inner_text("body")
    assert not [leak for leak in LEAKS if leak in text]
    assert page.locator(".jp-OutputArea-output[data-mime-type*='stderr']").count() == 0
    page.wait_for_timeout(500)  # late requests (fonts, map resources) would show up here
    assert page.watch.problems() == []
    page.screenshot(path=artifacts / "viewport.png")
    for name, index in (("europe_map", 0), ("country_map", 1), ("ranking", 2),
                        ("timeseries", 3)):
        page.locator(".js-plotly-plot").nth(index).screenshot(path=artifacts / f"{name}.png")


def test_map_buttons_switch_to_the_change_layer(page, artifacts):
    europe = page.locator(".js-plotly-plot").first
    europe.locator(".updatemenu-button", has_text="Change").click()
    page.wait_for_function("""() => document.querySelector('.js-plotly-plot')
        .layout.title.text.includes('change')""")
    visible = page.evaluate("""() => document.querySelector('.js-plotly-plot').data
        .map(t => t.visible)""")
    assert visible == [False, False, False, False, True, False, True]
    europe.screenshot(path=artifacts / "europe_change.png")


def test_choosing_a_country_updates_series_and_numbers(page, artifacts):
    first_title = _timeseries_title(page)
    first_numbers = page.inner_text(".s5p-country-numbers")
    assert first_title.startswith("France")
    started = time.monotonic()
    page.select_option("select", label="Italy")
    page.wait_for_function("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .some(p => p.layout.title.text.startsWith('Italy'))""", timeout=10_000)
    page.wait_for_function("""() => document.querySelector('.s5p-country-numbers h3')
        .textContent.includes('Italy')""", timeout=10_000)
    elapsed = time.monotonic() - started
    numbers = page.inner_text(".s5p-country-numbers")
    assert numbers != first_numbers and "Italy" in numbers
    assert elapsed < 5.0, f"country change took {elapsed:.1f} s"
    assert page.watch.problems() == []
    page.locator(".js-plotly-plot").nth(3).screenshot(path=artifacts / "timeseries_italy.png")


VISIBLE_PLOTS_JS = """() => Array.from(document.querySelectorAll('.widget-output .js-plotly-plot'))
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
    assert len(titles) == 4 and not any(t.startswith("Hotspots") for t in titles)
    toggle("Hotspots")
    # the hotspot map shown, the selector relabelled, the series of a hotspot ('Name (ISO):')
    page.wait_for_function(f"""() => {{
        const plots = ({VISIBLE_PLOTS_JS})();
        return plots.length === 4 && plots[1].title.startsWith('Hotspots')
            && /^[^:]+ \\([A-Z]{{3}}\\): daily mean/.test(plots[3].title)
            && document.querySelector('.widget-dropdown label').textContent.includes('Hotspot');
    }}""", timeout=30_000)
    visible = page.evaluate(VISIBLE_PLOTS_JS)
    assert len(visible) == 4, visible  # Europe map, hotspot map, hotspot ranking, series
    assert {"choroplethmap", "scattermap"} <= set(visible[1]["types"])
    # option labels as shown ('Paris (FRA)'; the dropdown renders spaces as no-break spaces)
    labels = page.evaluate("""() => Array.from(document.querySelector('select').options)
        .map(o => o.text)""")
    hotspot_names = [label.replace("\xa0", " ") for label in labels]
    assert len(hotspot_names) >= 5 and "Paris" in " ".join(hotspot_names)
    assert any(name in visible[3]["title"] for name in hotspot_names), (hotspot_names, visible)
    page.locator(".js-plotly-plot:visible").nth(1).screenshot(path=artifacts / "hotspot_map.png")

    other_label = next(label for label, name in zip(labels, hotspot_names)
                       if name not in visible[3]["title"])
    other = other_label.replace("\xa0", " ")
    page.select_option("select", label=other_label)
    page.wait_for_function("""(name) => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .some(p => p.offsetParent !== null && p.layout.title.text.startsWith(name))""",
                           arg=other.split(" (")[0], timeout=10_000)
    assert other.split(" (")[0] in page.inner_text(".s5p-country-numbers")

    toggle("Countries")
    page.wait_for_function(f"""() => {{
        const plots = ({VISIBLE_PLOTS_JS})();
        return plots.length === 4 && plots[3].title.startsWith('France')
            && document.querySelector('.widget-dropdown label').textContent.includes('Country');
    }}""", timeout=30_000)
    titles = _visible_titles(page)
    assert len(titles) == 4 and not any(t.startswith("Hotspots") for t in titles), titles
    assert titles[3].startswith("France")
    assert page.watch.problems() == []


def test_statistics_table_downloads(page, workflow_results):
    with page.expect_download() as download:
        page.click("a.s5p-download")
    path = download.value.path()
    assert download.value.suggested_filename == "country_stats.csv"
    expected = (workflow_results / "stats" / "country_stats.csv").read_bytes()
    assert open(path, "rb").read() == expected


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
    page.select_option("select", label="Spain")
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
