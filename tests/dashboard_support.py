"""Helpers of the dashboard tests: results directories, a Voilà server, a headless browser.

- :func:`write_tiny_results` writes a small results directory in the workflow's schema
  (three countries, one of them without lockdown, one with too little data) for fast tests;
- :func:`run_workflow` produces a real one with the workflow on a synthetic archive;
- :class:`VoilaServer` runs ``dashboards/serve`` (the production configuration) on a free
  local port;
- :class:`StaticServer` serves a directory (the static export) on a free local port;
- :func:`launch_browser` starts Debian's chromium headless through Playwright, and
  :class:`PageWatch` blocks and records every request that does not go to the local server;
  :func:`wait_widths_follow` waits until every figure is as wide as its place in the page,
  :func:`screenshot_pages` saves the whole page screen by screen.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
SERVE = REPO / "dashboards" / "serve"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WORKFLOW_COUNTRIES = ["FRA", "ITA", "ESP", "DEU", "SWE"]
WORKFLOW_CONFIG = """\
results: {results}
source: {{kind: synthetic, archive: {archive}}}
countries: [{countries}]
grid: {{south: 36.0, north: 56.0, west: -10.0, east: 20.0, resolution: 0.5}}
"""


# --- results directories --------------------------------------------------------------------
def run_workflow(workdir: Path) -> Path:
    """Run the workflow on a synthetic archive for five countries on a coarse grid; returns
    ``workdir/results``. Output goes to ``workdir/snakemake.log``."""
    config = workdir / "config.yaml"
    config.write_text(WORKFLOW_CONFIG.format(results=workdir / "results",
                                             archive=workdir / "archive",
                                             countries=", ".join(WORKFLOW_COUNTRIES)))
    log = workdir / "snakemake.log"
    with open(log, "w") as stream:
        completed = subprocess.run(
            [str(Path(sys.executable).with_name("snakemake")), "--cores", "2", "--nolock",
             "--configfile", str(config)],
            cwd=REPO, stdout=stream, stderr=subprocess.STDOUT, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"the workflow failed, see {log}:\n" + log.read_text()[-3000:])
    return workdir / "results"


TINY_COUNTRIES = [  # iso3, name, measure, reference window, status
    ("FRA", "France", "national", False, "ok"),
    ("ITA", "Italy", "national", False, "ok"),
    ("SWE", "Sweden", "none", True, "ok"),
    ("ISL", "Iceland", "none", True, "insufficient data"),
]
TINY_GRID = {"latitude": np.arange(36.25, 56.0, 0.5), "longitude": np.arange(-9.75, 20.0, 0.5)}


def _tiny_windows(iso3: str, measure: str, reference: bool, start: str) -> list[dict]:
    post = pd.Timestamp(start)
    spans = {"pre": (post - pd.Timedelta(days=7), post - pd.Timedelta(days=1)),
             "post": (post, post + pd.Timedelta(days=13))}
    rows = []
    for period, (first, last) in spans.items():
        for year, role in ((2020, "analysis"), (2019, "baseline")):
            a, b = first.replace(year=year), last.replace(year=year)
            rows.append({"iso3": iso3, "country": iso3.title(), "measure": measure,
                         "period": period, "year": year, "role": role,
                         "start": a.date().isoformat(), "end": b.date().isoformat(),
                         "window": f"{a.date()}_{b.date()}", "reference_window": reference})
    return rows


def write_tiny_results(root: Path) -> Path:
    """A small results directory in the workflow's schema, values chosen so the expected
    numbers are easy to check: France -30 %, Italy -40 %, Sweden +2 % (no lockdown),
    Iceland too little data. Returns ``root``."""
    stats_dir, composites = root / "stats", root / "composites"
    stats_dir.mkdir(parents=True)
    composites.mkdir()
    starts = {"FRA": "2020-03-17", "ITA": "2020-03-10", "SWE": "2020-03-15", "ISL": "2020-03-15"}
    changes = {"FRA": -0.30, "ITA": -0.40, "SWE": 0.02, "ISL": np.nan}
    stats_rows, windows, daily = [], [], []
    for iso3, name, measure, reference, status in TINY_COUNTRIES:
        post = pd.Timestamp(starts[iso3])
        row = {"iso3": iso3, "country": name, "measure": measure, "reference_window": reference,
               "pre_start": (post - pd.Timedelta(days=7)).date(),
               "pre_end": (post - pd.Timedelta(days=1)).date(), "post_start": post.date(),
               "post_end": (post + pd.Timedelta(days=13)).date(), "analysis_year": 2020,
               "baseline_years": "2019", "status": status,
               "reason": "" if status == "ok" else "pre_analysis: 0 usable days < 3"}
        for key in ("pre_analysis", "post_analysis", "pre_baseline", "post_baseline"):
            mean = 2e-5 * (1 + changes[iso3]) if key == "post_analysis" else 2e-5
            row.update({f"mean_{key}": mean if status == "ok" else np.nan,
                        f"days_{key}": 6 if status == "ok" else 0,
                        f"calendar_days_{key}": 14 if key.startswith("post") else 7,
                        f"pixels_{key}": 1000, f"coverage_{key}": 0.5})
        for change in ("post_vs_baseline", "post_vs_pre", "adjusted"):
            c = changes[iso3]
            row.update({f"change_{change}": c, f"change_{change}_low": c - 0.05,
                        f"change_{change}_high": c + 0.05,
                        f"significant_{change}": bool(status == "ok" and c + 0.05 < 0)})
        stats_rows.append(row)
        windows += _tiny_windows(iso3, measure, reference, starts[iso3])
        for day in pd.date_range("2019-02-25", "2019-04-20").append(
                pd.date_range("2020-02-25", "2020-04-20")):
            after = day.year == 2020 and day >= post
            value = 2e-5 * (1 + changes[iso3] if after and status == "ok" else 1)
            daily.append({"date": day.date(), "iso3": iso3,
                          "mean_no2": value if status == "ok" else np.nan,
                          "sum_weighted_no2": value * 10, "sum_weight": 10.0,
                          "coverage": 0.6 if status == "ok" else 0.0, "pixels": 100,
                          "orbits": 2})
    windows += _tiny_windows("EUROPE", "none", True, "2020-03-15")
    pd.DataFrame(stats_rows).to_csv(stats_dir / "country_stats.csv", index=False)
    pd.DataFrame(daily).to_csv(stats_dir / "country_daily.csv", index=False)
    pd.DataFrame(windows).to_csv(stats_dir / "windows.csv", index=False)
    (stats_dir / "provenance.json").write_text(json.dumps({
        "software": "s5p-lockdown 0.1.0", "date_created": "2026-11-30T10:00:00Z",
        "processor_versions": "",
        "config": json.dumps({"stats": {"min_day_coverage": 0.1},
                              "source": {"kind": "synthetic"}})}))
    shape = (TINY_GRID["latitude"].size, TINY_GRID["longitude"].size)
    for row in windows:
        if row["iso3"] != "EUROPE":
            continue
        value = 1.5e-5 if (row["period"], row["role"]) == ("post", "analysis") else 2e-5
        grid = np.full((1, *shape), value)
        grid[0, :3, :3] = np.nan  # a corner without data
        ds = xr.Dataset(
            {"tropospheric_NO2_column_number_density": (("time", "latitude", "longitude"), grid),
             "tropospheric_NO2_column_number_density_uncertainty":
                 (("time", "latitude", "longitude"), grid * 0.3),
             "weight": (("time", "latitude", "longitude"), np.where(np.isnan(grid), 0.0, 3.0)),
             "pixel_count": (("time", "latitude", "longitude"), np.full((1, *shape), 3, "i4"))},
            coords={"time": [np.datetime64(row["start"], "ns")], **TINY_GRID})
        ds.to_netcdf(composites / f"{row['window']}.nc")
    return root


# --- Voilà ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_group(process: subprocess.Popen | None, timeout: float) -> None:
    """SIGTERM to the process group of ``process`` (started with ``start_new_session``), then
    SIGKILL if it has not ended within ``timeout`` seconds."""
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class VoilaServer:
    """``dashboards/serve`` (or another ``serve``, e.g. of an older commit) on 127.0.0.1 and a
    free port, logging to ``log``."""

    results: Path
    log: Path
    extra_args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    serve: Path = SERVE

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 60.0) -> VoilaServer:
        """Start the server and wait until it answers HTTP."""
        self.process = subprocess.Popen(
            [sys.executable, str(self.serve), "--host", "127.0.0.1", "--port", str(self.port),
             "--results", str(self.results), *self.extra_args],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"voila exited:\n{self.log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(self.url + "voila/static/voila.js", timeout=2).close()
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"voila did not answer within {timeout} s:\n{self.log.read_text()}")

    def status(self, path: str, method: str = "GET") -> int:
        """Final HTTP status of ``path``, redirects followed (in single-notebook mode Voilà
        redirects unknown paths to ``/voila/files/...``, where the allowlist applies)."""
        request = urllib.request.Request(self.url + path.lstrip("/"), method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def stop(self) -> None:
        """Stop the server (SIGTERM to its process group, the kernels included)."""
        stop_process_group(self.process, timeout=20)

    def __enter__(self) -> VoilaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- browser --------------------------------------------------------------------------------
def launch_browser(playwright):
    """Headless Debian chromium (never Playwright's own download)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@dataclass
class PageWatch:
    """Blocks every request that does not go to 127.0.0.1/localhost and records it, plus
    failed requests, HTTP errors (>= 400) and page errors. With ``block=False`` such requests
    are only recorded: Playwright turns the browser's HTTP cache off for a page whose requests
    it routes, so a benchmark of what a visitor sees records them instead."""

    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    http_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    block: bool = True

    def attach(self, page) -> PageWatch:
        if self.block:
            page.route("**/*", self._route)
        else:
            page.on("request", lambda r: self._local(r.url) or self.blocked.append(r.url))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.http_errors.append(
            f"{r.status} {r.url}"))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        return self

    @staticmethod
    def _local(url: str) -> bool:
        """A request to the local server, or for data the page made itself (data:, blob:)."""
        if url.startswith("data:"):
            return True
        return urlparse(url.removeprefix("blob:")).hostname in ("127.0.0.1", "localhost")

    def _route(self, route) -> None:
        if self._local(route.request.url):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def problems(self) -> list[str]:
        return ([f"external {u}" for u in self.blocked] + [f"failed {u}" for u in self.failed]
                + [f"HTTP {u}" for u in self.http_errors]
                + [f"page error {e}" for e in self.page_errors])


RENDERED_JS = """(n) => {
    const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
    return plots.length >= n && plots.every(p => p.data && p.data.length > 0 && p._fullLayout)
        && document.querySelector('.s5p-country-numbers') !== null;
}"""
"""True when ``n`` plotly figures have traces and the country numbers are shown."""


def wait_rendered(page, figures: int = 4, timeout_ms: float = 90_000) -> None:
    page.wait_for_function(RENDERED_JS, arg=figures, timeout=timeout_ms)


def plot_summaries(page) -> list[dict]:
    """For each plotly figure on the page: its title and trace types."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .map(p => ({title: (p.layout.title && p.layout.title.text) || '',
                    types: p.data.map(t => t.type || 'scatter')}))""")


SCROLLER_JS = """() => {
    const all = [document.scrollingElement, ...document.querySelectorAll('*')];
    const scrollers = all.filter(e => e && e.scrollHeight > e.clientHeight + 10
        && (e === document.scrollingElement || /auto|scroll/.test(getComputedStyle(e).overflowY)));
    scrollers.sort((a, b) => b.scrollHeight - a.scrollHeight);
    window.__s5pScroller = scrollers[0] || document.scrollingElement;
    return [window.__s5pScroller.scrollHeight, window.__s5pScroller.clientHeight];
}"""


def screenshot_pages(page, prefix: Path, max_shots: int = 8) -> list[Path]:
    """Screenshots of the whole page, one viewport at a time from the top (the dashboard
    scrolls inside an element, so a 'full page' screenshot would show only the first screen):
    ``<prefix>_0.png``, ``<prefix>_1.png``, ..."""
    height, visible = page.evaluate(SCROLLER_JS)
    paths = []
    for i in range(min(max_shots, -(-height // visible))):
        page.evaluate("(y) => { window.__s5pScroller.scrollTop = y; }", i * visible)
        page.wait_for_timeout(300)
        paths.append(prefix.with_name(f"{prefix.name}_{i}.png"))
        page.screenshot(path=paths[-1])
    page.evaluate("() => { window.__s5pScroller.scrollTop = 0; }")
    return paths


WIDTHS_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .filter(p => p.offsetParent !== null)
    .map(p => [p._fullLayout.width, p.getBoundingClientRect().width])"""
"""(plotly's width, width of the plot's element) of every visible figure."""


def wait_widths_follow(page, previous: list | None = None, timeout_ms: float = 15_000) -> list:
    """Wait until every visible figure is as wide as its element (within 2 px), and, when
    ``previous`` widths are given (after a resize), until they differ from those; returns the
    widths."""
    page.wait_for_function(f"""(previous) => {{
        const widths = ({WIDTHS_JS})();
        return widths.every(([w, c]) => Math.abs(w - c) <= 2)
            && (previous === null || widths.some((w, i) => !previous[i]
                || Math.abs(w[0] - previous[i][0]) > 2));
    }}""", arg=previous, timeout=timeout_ms)
    return page.evaluate(WIDTHS_JS)


class StaticServer:
    """A directory served over HTTP on 127.0.0.1 and a free port (the static export)."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StaticServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request log in the test output
        pass
