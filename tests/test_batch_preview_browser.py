"""The preview notebook (dashboards/preview_example.ipynb) served by Voilà, driven in headless
chromium with every non-local request blocked: the map's preview follows a zoom and a pan, a
parameter change recomputes it, the value under the cursor is read out, and the button
submits the batch: on the real local HTCondor pool (Voilà then runs inside the pool, where
its kernel reaches the schedd) the outputs appear on the map and replace the preview; without
a pool the button says why nothing was submitted.

Screenshots go to test-artifacts/preview/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

import nbformat
import pytest
import xarray as xr
from condor_fixtures import CONDOR_POOL, condor_pool, condor_workdir  # noqa: F401
from dashboard_support import (
    REPO,
    PageWatch,
    free_port,
    stop_process_group,
)

from s5p_lockdown.synth.archive import ArchiveGenerator, SynthSettings

# the session's one browser (Playwright's sync API allows one at a time in a process)
pytest_plugins = ("dashboard_fixtures",)

pytestmark = pytest.mark.slow

NOTEBOOK = REPO / "dashboards" / "preview_example.ipynb"
TEMPLATES = REPO / "dashboards" / "share" / "jupyter"
ARTIFACTS = REPO / "test-artifacts" / "preview"
VIEWPORT = {"width": 1400, "height": 1000}
STATUS = ".s5p-preview-status"
READOUT = ".s5p-preview-readout"
STATUS_RE = re.compile(r"(\d+)×(\d+) cells of ([\d.]+)° .*over ([-\d.]+)\.\.([-\d.]+) N, "
                       r"([-\d.]+)\.\.([-\d.]+) E in ([\d.]+) s; qa_threshold=([\d.]+)")


def demo_archive(folder: Path) -> list[Path]:
    """Four demo-size synthetic orbits of one day over 35-62 N."""
    settings = SynthSettings(seed=2, across_track_step=5, along_track_step=3,
                             lat_band=(35.0, 62.0))
    return sorted(ArchiveGenerator(settings).generate(folder, [date(2020, 3, 25)]))


def start_voila(command: list[str], workdir: Path, port: int, log: Path,
                env: dict[str, str] | None = None, timeout: float = 120.0) -> subprocess.Popen:
    """Start Voilà (``command``, with ``env`` added to the environment) in ``workdir`` and
    wait until it answers on ``port``."""
    process = subprocess.Popen(command, cwd=workdir, env={**os.environ, **(env or {})},
                               stdout=open(log, "w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"voila exited:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/static/voila.js",
                                   timeout=2).close()
            return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    stop_process_group(process, timeout=20)
    raise RuntimeError(f"voila did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def voila_args(port: int) -> list[str]:
    return ["preview_example.ipynb", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
            "--template=s5p", "--show_tracebacks=True"]


def status(page, text: str | None = None) -> dict:
    """The preview's status line (``text``, or read from the page now) and the map's image."""
    text = page.inner_text(STATUS) if text is None else text
    match = STATUS_RE.search(text)
    assert match, text
    rows, columns, cell, south, north, west, east, seconds, qa = match.groups()
    return {"text": text, "shape": (int(rows), int(columns)), "cell": float(cell),
            "south": float(south), "north": float(north), "west": float(west),
            "east": float(east), "seconds": float(seconds), "qa": float(qa),
            "image": page.get_attribute("img.leaflet-image-layer", "src")}


def wait_new_preview(page, previous: str, timeout_ms: float = 60_000) -> dict:
    """Wait until the status shows a preview other than ``previous``; returns it."""
    # the text seen when the wait ends: a later move of the map may already be computing
    seen = page.wait_for_function("""([selector, previous]) => {
        const text = document.querySelector(selector).innerText;
        return text.startsWith('preview of') && text !== previous ? text : null;
    }""", arg=[STATUS, previous], timeout=timeout_ms)
    return status(page, seen.json_value())


def open_preview(browser, url: str, log: Path):
    """A page of the notebook with its preview drawn (the server's ``log`` and the page's
    text in the error otherwise)."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.watch = PageWatch().attach(page)
    page.goto(url, wait_until="commit", timeout=120_000)
    try:
        page.wait_for_selector("img.leaflet-image-layer", timeout=180_000)
    except Exception as error:
        context.close()
        raise AssertionError(f"no preview drawn: {error}\n--- page ---\n"
                             f"{page.inner_text('body')[-3000:]}\n--- voila log ---\n"
                             f"{log.read_text()[-5000:]}") from None
    page.locator(".leaflet-container").scroll_into_view_if_needed()
    return context, page


def drive_preview(page) -> dict:
    """Zoom in, pan, change qa_threshold and read a value; check each preview. Returns the last
    status."""
    # the first preview follows the browser's map (zoom 4: ~0.088 degrees per 2 pixels,
    # twice the function's 0.05 degree cells), not the view the notebook previewed from code
    first = wait_new_preview(page, "")
    if first["south"] == 47.0 and first["cell"] == 0.05:
        first = wait_new_preview(page, first["text"])
    assert first["cell"] == pytest.approx(0.1) and first["qa"] == 0.75
    assert first["image"].startswith("data:image/png;base64,")

    page.click(".leaflet-control-zoom-in")  # zoom 5: 0.044 per 2 pixels -> the 0.05 cells
    zoomed = wait_new_preview(page, first["text"])
    assert zoomed["cell"] == pytest.approx(0.05)
    centre = (first["south"] + first["north"]) / 2
    assert (zoomed["north"] - zoomed["south"]) == pytest.approx(
        (first["north"] - first["south"]) / 2, abs=0.3)
    assert (zoomed["south"] + zoomed["north"]) / 2 == pytest.approx(centre, abs=0.3)

    box = page.locator(".leaflet-container").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 11):  # drag 200 px to the left: the view moves east
        page.mouse.move(x - 20 * step, y)
    page.wait_for_timeout(300)  # held still before release: no inertia after it
    page.mouse.up()
    panned = wait_new_preview(page, zoomed["text"])
    shift = 200 * 180 / (256 * 2**5)  # degrees per pixel at zoom 5 in EPSG:4326
    assert panned["west"] - zoomed["west"] == pytest.approx(shift, abs=0.2)
    assert panned["shape"][0] == zoomed["shape"][0] and panned["image"] != zoomed["image"]

    readout = page.locator(".widget-slider:has-text('qa_threshold') .widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("0.3")
    page.keyboard.press("Enter")
    tuned = wait_new_preview(page, panned["text"])
    assert tuned["qa"] == 0.3 and tuned["west"] == panned["west"]
    assert tuned["image"] != panned["image"]  # more pixels pass: another image

    image = page.locator("img.leaflet-image-layer").bounding_box()
    page.mouse.move(image["x"] + image["width"] * 0.4, image["y"] + image["height"] * 0.5)
    page.wait_for_function("""(s) => /° N, .*° E: /.test(document.querySelector(s).innerText)""",
                           arg=READOUT, timeout=10_000)
    text = page.inner_text(READOUT)
    assert re.search(r"[\d.]+° N, [-\d.]+° E: (\S+ molecules cm-2|no data) \(preview\)",
                     text), text
    return tuned


def test_preview_follows_the_map_and_the_parameters(browser, tmp_path):
    """Voilà on the host (no HTCondor pool here): preview, zoom, pan, parameter, read-out;
    the button tells that nothing can be submitted from here."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(NOTEBOOK, tmp_path)
    demo_archive(tmp_path / "archive")
    port = free_port()
    env = {"JUPYTER_PATH": str(TEMPLATES), "S5P_PREVIEW_ARCHIVE": str(tmp_path / "archive"),
           "S5P_PREVIEW_OUTPUT": str(tmp_path / "out"), "CONDOR_CONFIG": "/dev/null"}
    process = start_voila([sys.executable, "-m", "voila", *voila_args(port)], tmp_path, port,
                          tmp_path / "voila.log", env)
    try:
        context, page = open_preview(browser, f"http://127.0.0.1:{port}/", tmp_path / "voila.log")
        try:
            tuned = drive_preview(page)
            page.locator(".leaflet-container").screenshot(path=ARTIFACTS / "host_preview.png")
            page.click("button:has-text('Run on all 4 files')")
            page.wait_for_function(
                "(s) => document.querySelector(s).innerText.includes('No HTCondor pool')",
                arg=STATUS, timeout=30_000)
            # nothing was submitted: the preview stays, and still follows the parameters
            assert page.locator("img.leaflet-image-layer").count() == 1
            page.locator(".widget-slider:has-text('qa_threshold') .widget-readout").click()
            page.keyboard.press("Control+A")
            page.keyboard.type("0.5")
            page.keyboard.press("Enter")
            assert wait_new_preview(page, tuned["text"])["qa"] == 0.5
            assert page.watch.problems() == []
        finally:
            context.close()
    finally:
        stop_process_group(process, timeout=20)


def test_submit_from_the_map_on_the_pool(browser, condor_pool, condor_workdir):
    """Voilà inside the real local pool: after tuning, the button submits every file; the
    monitor appears, each output is drawn and the preview is removed; the outputs were computed
    with the tuned parameter at full resolution."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(NOTEBOOK, condor_workdir)
    files = demo_archive(condor_workdir / "archive")
    port = free_port()
    command = [str(CONDOR_POOL), "run", "--env", f"JUPYTER_PATH={TEMPLATES}",
               "--env", f"S5P_PREVIEW_ARCHIVE={condor_workdir / 'archive'}",
               "--env", f"S5P_PREVIEW_OUTPUT={condor_workdir / 'out'}",
               "--", "voila", *voila_args(port)]
    process = start_voila(command, condor_workdir, port, condor_workdir / "voila.log")
    try:
        context, page = open_preview(browser, f"http://127.0.0.1:{port}/",
                                     condor_workdir / "voila.log")
        try:
            tuned = drive_preview(page)
            page.click(f"button:has-text('Run on all {len(files)} files')")
            page.wait_for_function(
                "(s) => document.querySelector(s).innerText.startsWith('submitted')",
                arg=STATUS, timeout=60_000)
            assert page.locator("text=no2-preview-demo").count() >= 1  # the monitor's title
            # every output drawn by the monitor on the same map, the preview gone
            page.wait_for_function(f"""() => {{
                const images = Array.from(document.querySelectorAll('img.leaflet-image-layer'));
                return images.length === {len(files)};
            }}""", timeout=300_000)
            page.wait_for_function(
                f"() => document.body.innerText.includes('{len(files)} / {len(files)}')",
                timeout=60_000)
            page.locator(".leaflet-container").screenshot(path=ARTIFACTS / "pool_outputs.png")
            # the read-out now gives the outputs' values, naming the file
            box = page.locator(".leaflet-container").bounding_box()
            for fx in (0.3, 0.4, 0.5, 0.6, 0.7):  # somewhere with data
                page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * 0.5)
                page.wait_for_timeout(300)
                if "molecules cm-2 (S5P_" in page.inner_text(READOUT):
                    break
            assert re.search(r": \S+ molecules cm-2 \(S5P_\S+\.nc\)", page.inner_text(READOUT))
            assert page.watch.problems() == []
        finally:
            context.close()
    finally:
        stop_process_group(process, timeout=30)
    outputs = sorted((condor_workdir / "out").glob("*.nc"))
    assert [p.stem for p in outputs] == [p.stem for p in files]
    with xr.open_dataset(outputs[0]) as ds:
        assert ds.attrs["batch_function"] == "__main__.no2_grid"
        assert '"qa_threshold": 0.3' in ds.attrs["batch_parameters"]
        assert float(ds["latitude"][1] - ds["latitude"][0]) == pytest.approx(0.05)
        assert ds.sizes["latitude"] == round((62.0 - 35.0) / 0.05)  # full grid, not the view
    assert tuned["qa"] == 0.3


def test_preview_notebook_runs_unattended_on_the_pool(condor_pool, condor_workdir):
    """``S5P_PREVIEW_SUBMIT=now``: the notebook executed inside the pool previews a view from
    code, submits, waits for the batch and draws every output in place of the preview."""
    shutil.copy(NOTEBOOK, condor_workdir)
    files = demo_archive(condor_workdir / "archive")
    condor_pool.run(
        "jupyter-execute", "--output=executed.ipynb", NOTEBOOK.name, cwd=condor_workdir,
        env={"S5P_PREVIEW_ARCHIVE": str(condor_workdir / "archive"),
             "S5P_PREVIEW_OUTPUT": str(condor_workdir / "out"), "S5P_PREVIEW_SUBMIT": "now",
             "S5P_PREVIEW_TIMEOUT": "300"}, timeout=600)
    executed = nbformat.read(condor_workdir / "executed.ipynb", as_version=4)
    summary = json.loads(executed.cells[-1].outputs[-1]["text"].strip().splitlines()[-1])
    rows, columns = summary["preview_cells"]
    assert rows * columns > 0 and summary["preview_seconds"] < 30
    assert summary["counts"]["done"] == len(files)
    assert sorted(Path(p).stem for p in summary["outputs"]) == sorted(p.stem for p in files)
    assert summary["parameters"] == {"qa_threshold": 0.75, "min_pixels": 1}
    assert summary["map_layers"] == len(files) and summary["preview_removed"]
