"""Benchmark: the published dashboard's memory and first render (dashboards/serve, with the
kernel cap of s5p_lockdown.serving), each figure next to its target.

On a results directory:

- ``first render, preheated (s)``: page request -> every figure drawn, in headless chromium,
  once the preheated kernel has run the notebook;
- ``kernel RSS (MB)``: resident memory of each kernel once the visitor's page is drawn
  (the visitor's and the refilled preheated one);
- ``server RSS (MB)``: the server process alone;
- ``30 visitors: peak tree RSS (MB)``: the server and all its kernels while 30 anonymous
  visitors ask for the page at once with ``--max-kernels CAP``, against the target
  ``CAP x kernel + 300 MB``; how many were served (the others get the busy page) and the
  most kernels seen at once, against the cap.

Targets (issue #15): first render on a warm server <= 3 s; memory with the cap reached
<= CAP x kernel + 300 MB. (Kernel environment variables were tried too: MALLOC_ARENA_MAX=2
and one thread per numerical library changed a kernel's RSS by less than the run-to-run
spread, 179 vs 180 MB, and were not kept.)

Usage: ``python benchmarks/bench_publish.py [--results DIR] [--cap 4] [--visitors 30]``
(default results: ``$S5P_RESULTS`` or ``results/``). Needs /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import os
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
        watch = PageWatch(block=False).attach(page)  # the browser cache as a visitor's
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
        report["visitors served"] = sum(r.status == 200 for r in responses)
        report["peak kernels"] = max(sampler.kernels)
        report["peak tree RSS (MB)"] = max(sampler.rss)
    return report


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path,
                        default=Path(os.environ.get("S5P_RESULTS") or REPO / "results"))
    parser.add_argument("--cap", type=int, default=4)
    parser.add_argument("--visitors", type=int, default=30)
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = launch_browser(playwright)
        report = measure(browser, args.results, args.cap, args.visitors, Path(tmp) / "voila.log")
        browser.close()

    kernel = max(report["kernel RSS (MB)"])
    rows = [
        ("first render, preheated (s)", report["first render, preheated (s)"], 3.0),
        ("kernel RSS, largest (MB)", kernel, None),
        ("server RSS (MB)", report["server RSS (MB)"], None),
        (f"{args.visitors} visitors: served", report["visitors served"], None),
        (f"{args.visitors} visitors: peak kernels", report["peak kernels"], args.cap),
        (f"{args.visitors} visitors: peak tree RSS (MB)", report["peak tree RSS (MB)"],
         args.cap * kernel + 300),
    ]
    print(f"results: {args.results}; cap {args.cap}, {args.visitors} visitors, {CPUS} CPUs")
    print(f"{'':38s}{'measured':>10s}{'target':>10s}{'ratio':>8s}")
    for name, value, target in rows:
        line = f"{name:38s}{value:10.1f}"
        if target is not None:
            line += f"{target:10.1f}{value / target:8.2f}"
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
