"""Benchmark: the published dashboard's memory and first render (dashboards/serve, with the
kernel cap of s5p_lockdown.serving), kernels started with Voilà's default environment vs the
environment ``serve`` sets (``KERNEL_ENVIRONMENT``: two malloc arenas, one thread per
numerical library).

For each environment, on a results directory:

- ``first render, preheated (s)``: page request -> every figure drawn, in headless chromium,
  once the preheated kernel has run the notebook;
- ``kernel RSS (MB)``: resident memory of each kernel once the visitor's page is drawn
  (the visitor's and the refilled preheated one);
- ``server RSS (MB)``: the server process alone;
- ``30 visitors: peak tree RSS (MB)``: the server and all its kernels while 30 anonymous
  visitors ask for the page at once with ``--max-kernels CAP``, next to the target
  ``CAP x kernel + 300 MB``; and how many were served (the others get the busy page).

Usage: ``python benchmarks/bench_publish.py [--results DIR] [--cap 4] [--visitors 30]``
(default results: ``$S5P_RESULTS`` or ``results/``). Needs /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from dashboard_support import PageWatch, VoilaServer, launch_browser, wait_rendered  # noqa: E402
from publish_support import (  # noqa: E402
    TreeSampler,
    kernel_pids,
    rss_mb,
    visit_concurrently,
    wait_for,
)

CPUS = os.cpu_count() or 1
ENVIRONMENTS = {
    # what the kernels get without serve's settings: glibc's 8 arenas per core, a thread pool
    # per core in each numerical library
    "Voilà defaults": {"MALLOC_ARENA_MAX": str(8 * CPUS), "OMP_NUM_THREADS": str(CPUS),
                       "OPENBLAS_NUM_THREADS": str(CPUS), "NUMBA_NUM_THREADS": str(CPUS)},
    "serve": {},  # serve's KERNEL_ENVIRONMENT
}


def _preheated_ready(server: VoilaServer) -> None:
    """Wait until the preheated kernel has run the notebook (its RSS stops growing)."""
    wait_for(lambda: "is filled with" in server.log.read_text(), 180, "preheated kernel")
    last = -1.0
    for _ in range(120):
        kernels = kernel_pids(server.process.pid)
        now = sum(rss_mb(k) for k in kernels)
        if kernels and abs(now - last) < 1.0:
            return
        last = now
        time.sleep(1.0)


def measure(browser, results: Path, cap: int, visitors: int, log: Path) -> dict:
    report = {}
    with VoilaServer(results, log, ["--max-kernels", str(cap),
                                    "--DashboardKernelManager.unconnected_timeout=10",
                                    "--MappingKernelManager.cull_interval=2"]) as server:
        pid = server.process.pid
        _preheated_ready(server)
        context = browser.new_context(viewport={"width": 1300, "height": 900})
        page = context.new_page()
        watch = PageWatch().attach(page)
        started = time.perf_counter()
        page.goto(server.url, wait_until="commit", timeout=120_000)
        wait_rendered(page)
        report["first render, preheated (s)"] = time.perf_counter() - started
        if watch.problems():
            raise RuntimeError(f"page problems: {watch.problems()}")
        _preheated_ready(server)  # the refilled pool kernel has run the notebook too
        report["kernel RSS (MB)"] = [rss_mb(k) for k in kernel_pids(pid)]
        report["server RSS (MB)"] = rss_mb(pid)
        context.close()
        wait_for(lambda: len(kernel_pids(pid)) <= 2, 60, "kernels settled")
        with TreeSampler(pid) as sampler:
            responses = visit_concurrently(server.url, visitors)
        report["30 visitors: served"] = sum(r.status == 200 for r in responses)
        report["30 visitors: peak kernels"] = max(sampler.kernels)
        report["30 visitors: peak tree RSS (MB)"] = max(sampler.rss)
        report["target cap x kernel + 300 (MB)"] = (
            cap * max(report["kernel RSS (MB)"]) + 300)
    return report


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path,
                        default=Path(os.environ.get("S5P_RESULTS") or REPO / "results"))
    parser.add_argument("--cap", type=int, default=4)
    parser.add_argument("--visitors", type=int, default=30)
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    reports = {}
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = launch_browser(playwright)
        for name, env in ENVIRONMENTS.items():
            os.environ.update(env)
            try:
                reports[name] = measure(browser, args.results, args.cap, args.visitors,
                                        Path(tmp) / f"{len(reports)}.log")
            finally:
                os.environ.clear()
                os.environ.update(saved)
        browser.close()

    names = list(reports)
    print(f"results: {args.results}; cap {args.cap}, {args.visitors} visitors, {CPUS} CPUs")
    print(f"{'':34s}" + "".join(f"{n:>18s}" for n in names))
    for key in reports[names[0]]:
        cells = []
        for name in names:
            value = reports[name][key]
            if isinstance(value, list):
                cells.append(f"{statistics.median(value):8.1f} (max {max(value):5.1f})")
            else:
                cells.append(f"{value:18.1f}" if isinstance(value, float) else f"{value:18d}")
        print(f"{key:34s}" + "".join(f"{c:>18s}" for c in cells))


if __name__ == "__main__":
    main(sys.argv[1:])
