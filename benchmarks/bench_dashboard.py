"""Benchmark: the lockdown dashboard served by Voilà, measured in headless chromium.

Starts ``dashboards/serve`` (production settings) on a results directory and measures:

- ``first render, cold``: page request → every figure drawn and the country numbers shown,
  when the visitor's kernel is started on request (``--no-preheat``);
- ``first render, preheated``: the same with the production default (one kernel preheated);
- ``first screen, cold`` and ``first screen, preheated``: page request → every figure on the
  first screen (the browser's window, 1300 x 900 px) drawn;
- ``page main thread, preheated``: seconds the page's main thread was busy (chromium's
  ``TaskDuration``) until the page was fully drawn: the browser's work, which the load of a
  shared machine changes much less than the times above;
- ``country change``: choosing another country in the selector → time series and numbers of
  that country drawn (median over the countries tried), and ``country change with map zoom``
  → also the three gridded maps zoomed to it (where the dashboard has that link);
- ``hotspot toggle``: Countries → Hotspots → Countries, each switch until the map, the
  ranking and the series of the other view are drawn (median of the switches);
- ``kernel RSS``: resident memory of the visitor's kernel once the page is rendered (MB), and
  ``after use`` (after the country changes and toggles), and of the Voilà server process.

Targets (issue #15): first render on a warm (preheated) server <= 3 s, country change
<= 0.5 s, hotspot toggle <= 1 s.

"Preheated" means the pooled kernel has run the notebook: Voilà logs "is filled" as soon as
the kernel has started, so the benchmark waits until that kernel has used CPU and then been
idle for a second.

Usage: ``python benchmarks/bench_dashboard.py [--results DIR] [--repeat 3] [--changes 5]
[--before REF]`` (default results: ``$S5P_RESULTS`` or ``results/``). With ``--before REF``
(a git commit, e.g. ``main``) the same measurements are made first on that commit's
``src/`` and ``dashboards/`` (exported with ``git archive`` to a temporary folder; its
``src/`` put first on the server's and the kernels' PYTHONPATH, its ``dashboards/serve``
run with its own settings and template), and both are printed side by side with their
ratio. Needs /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from dashboard_support import (  # noqa: E402
    SERVE, PageWatch, VoilaServer, launch_browser, wait_rendered,
)

COUNTRY_SELECT = ".widget-dropdown:has-text('Country') select"
ZOOMED_JS = """(name) => {
    const area = document.querySelectorAll('select')[1];
    return !area || !area.closest('.widget-dropdown').textContent.includes('Area')
        || (area.value === name && document.querySelector('.js-plotly-plot')._fullLayout
            .xaxis.range[1] - document.querySelector('.js-plotly-plot')._fullLayout.xaxis
            .range[0] < 40);
}"""
"""True when the gridded maps show the country ``name`` (or the dashboard has no area
selector)."""
VIEW_JS = """(view) => {
    const titles = Array.from(document.querySelectorAll('.s5p-plot .js-plotly-plot'))
        .filter(p => p.offsetParent !== null).map(p => p.layout.title.text);
    const hotspots = titles.some(t => t.startsWith('Hotspots'))
        && titles.some(t => /\\([A-Z]{3}\\): daily mean/.test(t));
    const countries = !titles.some(t => t.startsWith('Hotspots'))
        && !titles.some(t => /\\([A-Z]{3}\\): daily mean/.test(t));
    return view === 'Hotspots' ? hotspots : countries;
}"""
"""True when the visible map and series are those of ``view``."""
TITLE_STARTS_JS = """(name) => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .some(p => p.layout.title.text.startsWith(name))
    && document.querySelector('.s5p-country-numbers h3').textContent.includes(name)"""


def _rss_mb(pid: int) -> float:
    """Resident memory of a process (MB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _kernel_pids(server_pid: int) -> list[int]:
    """ipykernel processes started by the Voilà server."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == server_pid and b"ipykernel" in cmdline:
                pids.append(int(entry.name))
    return pids


FIGURES = 6
"""Figures of a fully drawn page (``--figures``: 4 for the dashboard before issue #15)."""


FIRST_SCREEN_JS = """() => {
    const shown = Array.from(document.querySelectorAll('.s5p-plot')).filter(v => {
        const box = v.getBoundingClientRect();
        return box.width > 0 && box.bottom > 0 && box.top < window.innerHeight; });
    return shown.length > 0 && shown.every(v => {
        const plot = v.querySelector('.js-plotly-plot');
        return plot && plot.data && plot._fullLayout; });
}"""
"""True when every figure in the browser's window is drawn."""


def _render(browser, url: str) -> tuple[float, float, float, object, object]:
    """Seconds from request to the figures of the first screen drawn, and to a fully drawn
    page, and seconds of the page's main thread busy until then; the page and its context
    stay open."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    watch = PageWatch(block=False).attach(page)  # the browser's cache as a visitor's
    devtools = context.new_cdp_session(page)
    devtools.send("Performance.enable")
    started = time.perf_counter()
    page.goto(url, wait_until="commit", timeout=120_000)
    page.wait_for_function(FIRST_SCREEN_JS, timeout=90_000, polling=20)
    first_screen = time.perf_counter() - started
    wait_rendered(page, FIGURES)
    elapsed = time.perf_counter() - started
    metrics = {m["name"]: m["value"] for m in devtools.send("Performance.getMetrics")["metrics"]}
    if watch.problems():
        raise RuntimeError(f"page problems: {watch.problems()}")
    return first_screen, elapsed, metrics["TaskDuration"], page, context


def _cpu_ticks(pid: int) -> int:
    """User + system CPU time of a process (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _wait_preheated(server: VoilaServer, kernels: int, timeout: float = 180.0) -> None:
    """Wait until the pool holds a kernel that has run the notebook: Voilà has logged the
    pool filled ``kernels`` times and the newest kernel has used CPU, then been idle for 1 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.log.read_text().count("is filled with") >= kernels:
            break
        time.sleep(0.5)
    pid = max(_kernel_pids(server.process.pid), default=None)
    last = _cpu_ticks(pid) if pid else 0
    while pid and time.monotonic() < deadline:
        time.sleep(1.0)
        now = _cpu_ticks(pid)
        if now - last <= 2 and now > 50:  # <= 20 ms in the last second, after > 0.5 s of work
            return
        last = now
    raise RuntimeError("the preheated kernel did not become ready")


def measure(browser, results: Path, countries: list, repeat: int, changes: int,
            tmp: Path, serve: Path = SERVE) -> dict[str, list[float]]:
    """Every measurement of the module docstring on ``results`` with the server ``serve`` and
    the package that it and its kernels import (see ``--before``)."""
    report = {}
    with VoilaServer(results, tmp / "cold.log", ["--no-preheat"], serve=serve) as server:
        cold, cold_screen = [], []
        for _ in range(repeat):
            screen, seconds, _, page, context = _render(browser, server.url)
            cold.append(seconds)
            cold_screen.append(screen)
            context.close()
        report["first render, cold (s)"] = cold
        report["first screen, cold (s)"] = cold_screen

        _, _, _, page, context = _render(browser, server.url)
        kernel = max(_kernel_pids(server.process.pid))  # the newest: this page's
        report["kernel RSS (MB)"] = [_rss_mb(kernel)]
        report["voila server RSS (MB)"] = [_rss_mb(server.process.pid)]
        change_times, zooms = [], []
        for name, _ in countries[1:][:changes]:
            started = time.perf_counter()
            page.select_option(COUNTRY_SELECT, label=name)
            page.wait_for_function(TITLE_STARTS_JS, arg=name, timeout=30_000)
            change_times.append(time.perf_counter() - started)
            page.wait_for_function(ZOOMED_JS, arg=name, timeout=30_000)
            zooms.append(time.perf_counter() - started)
        report["country change (s)"] = change_times
        report["country change with map zoom (s)"] = zooms
        toggles = []
        for _ in range(repeat):
            for view in ("Hotspots", "Countries"):
                started = time.perf_counter()
                page.locator(".widget-toggle-button", has_text=view).click()
                page.wait_for_function(VIEW_JS, arg=view, timeout=30_000)
                toggles.append(time.perf_counter() - started)
        report["hotspot toggle (s)"] = toggles
        report["kernel RSS after use (MB)"] = [_rss_mb(kernel)]
        context.close()

    with VoilaServer(results, tmp / "warm.log", serve=serve) as server:
        warm, warm_screen, busy = [], [], []
        for i in range(repeat):
            _wait_preheated(server, i + 1)
            screen, seconds, task_seconds, page, context = _render(browser, server.url)
            warm.append(seconds)
            warm_screen.append(screen)
            busy.append(task_seconds)
            context.close()
        report["first render, preheated (s)"] = warm
        report["first screen, preheated (s)"] = warm_screen
        report["page main thread, preheated (s)"] = busy
    return report


def export_tree(ref: str, target: Path) -> Path:
    """``src/`` and ``dashboards/`` of the git commit ``ref`` of this repository, exported
    into ``target``; returns ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "src", "dashboards"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main(argv: list[str]) -> None:
    global FIGURES
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path,
                        default=Path(os.environ.get("S5P_RESULTS") or REPO / "results"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--before", metavar="REF",
                        help="also measure the package of this git commit, printed side by side")
    parser.add_argument("--figures", type=int, default=FIGURES,
                        help="figures of a drawn page (4 for the dashboard before issue #15)")
    args = parser.parse_args(argv)
    FIGURES = args.figures

    from playwright.sync_api import sync_playwright

    from s5p_lockdown.dashboard.data import load_results

    countries = load_results(args.results).countries
    reports = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        tmp = Path(tmp)
        browser = launch_browser(playwright)
        if args.before:
            before = export_tree(args.before, tmp / "before")
            saved = os.environ.get("PYTHONPATH")
            os.environ["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(before / "src"), saved) if p)
            try:
                reports[args.before] = measure(browser, args.results, countries, args.repeat,
                                               args.changes, tmp, before / "dashboards" / "serve")
            finally:
                os.environ.pop("PYTHONPATH")
                if saved is not None:
                    os.environ["PYTHONPATH"] = saved
        reports["this tree"] = measure(browser, args.results, countries, args.repeat,
                                       args.changes, tmp)
        browser.close()

    print(f"results: {args.results} ({len(countries)} countries); medians, all values in ()")
    names = list(reports)
    print(f"{'':34s}" + "".join(f"{n[:24]:>26s}" for n in names)
          + ("      ratio" if len(names) == 2 else ""))
    for key in reports[names[-1]]:
        medians = [statistics.median(reports[n][key]) for n in names]
        cells = [f"{m:8.2f} ({' '.join(f'{v:.2f}' for v in reports[n][key])})"
                 for m, n in zip(medians, names)]
        line = f"{key:34s}" + "".join(f"{c[:25]:>26s}" for c in cells)
        if len(names) == 2 and medians[0]:
            line += f"   {medians[1] / medians[0]:8.2f}"
        print(line)
    print(json.dumps(reports))


if __name__ == "__main__":
    main(sys.argv[1:])
