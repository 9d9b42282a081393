"""Mutation check: do the fast tests catch small deliberate bugs in the numbers we publish?

Each mutation in :data:`MUTATIONS` replaces an exact piece of text of one file by another. It is
applied in a scratch copy of the repository (the working tree's tracked and untracked,
not-ignored files, copied to a temporary folder: the repository itself is never modified), the
tests are run there with this interpreter and ``PYTHONPATH`` pointing at the copy's ``src`` (so
the mutated source is what gets imported, including in the Snakemake subprocesses; checked
before any test runs), and the mutation is

* ``caught`` when pytest fails (exit code 1, or 2 for an error while collecting),
* ``SURVIVED`` when every selected test passes,
* ``STALE`` when its old text is not found exactly once (the code changed: update the entry),
* ``ERROR`` for any other pytest exit code (e.g. no test selected),
* ``TIMEOUT`` when pytest has not finished within ``--timeout`` seconds.

First the unmutated copy is tested: if that fails, nothing is reported. The exit code is 0 only
when every mutation is caught.

Usage (from the repository root)::

    .venv/bin/python benchmarks/mutation_check.py                  # every mutation, fast tests
    .venv/bin/python benchmarks/mutation_check.py --tests tests/test_qa_boundary.py tests/test_io.py
    .venv/bin/python benchmarks/mutation_check.py --only qa sigma  # names containing qa or sigma
    .venv/bin/python benchmarks/mutation_check.py --list

Tests run with ``pytest -m "not slow" -x`` (stop at the first failure), over the whole suite
unless ``--tests`` names files or node ids. To add a mutation, append a :class:`Mutation` to
:data:`MUTATIONS`; its ``old`` text must occur exactly once in ``path``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    """Replace ``old`` (exactly once in ``path``, relative to the repository root) by ``new``."""

    name: str
    path: str
    old: str
    new: str
    description: str


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "daily-without-qa-filter", "src/s5p_lockdown/daily.py",
        "accumulator.add_dataset(dataset, qa_threshold, companions=",
        "accumulator.add_dataset(dataset, None, companions=",
        "daily gridding without the qa filter",
    ),
    Mutation(
        "reader-qa-greater-or-equal", "src/s5p_lockdown/io.py",
        'bad = ~(dataset["qa_value"] > qa_threshold)',
        'bad = ~(dataset["qa_value"] >= qa_threshold)',
        "read_l2 keeps qa_value >= threshold (a stored 0.75 kept)",
    ),
    Mutation(
        "accumulator-default-qa-0.5", "src/s5p_lockdown/gridding/accumulator.py",
        "qa_threshold: float | None = 0.75,",
        "qa_threshold: float | None = 0.5,",
        "GridAccumulator.add_dataset's default qa threshold 0.5",
    ),
    Mutation(
        "accumulator-qa-greater-or-equal", "src/s5p_lockdown/gridding/accumulator.py",
        'ds["qa_value"].values > qa_threshold',
        'ds["qa_value"].values >= qa_threshold',
        "GridAccumulator.add_dataset keeps qa_value >= threshold",
    ),
    Mutation(
        "grid-command-ignores-qa", "src/s5p_lockdown/cli/grid_cmd.py",
        "l2files, grid, qa_threshold=qa_threshold, engine=engine,",
        "l2files, grid, engine=engine,",
        "s5p-lockdown grid ignores --qa (the default 0.75 is used)",
    ),
    Mutation(
        "workflow-ignores-qa-threshold", "workflow/rules/grid.smk",
        'qa_threshold=config["qa_threshold"],\n        skip_invalid=config["source"]["skip_invalid_files"],\n    threads:',
        'qa_threshold=0.75,\n        skip_invalid=config["source"]["skip_invalid_files"],\n    threads:',
        "the grid_week rule ignores the config's qa_threshold",
    ),
    Mutation(
        "attribution-ignores-qa-threshold", "workflow/rules/grid.smk",
        'qa_threshold=config["qa_threshold"],\n        skip_invalid=config["source"]["skip_invalid_files"],\n        countries=',
        'qa_threshold=0.75,\n        skip_invalid=config["source"]["skip_invalid_files"],\n        countries=',
        "the attribute_week rule ignores the config's qa_threshold",
    ),
    Mutation(
        "attribution-without-qa-filter", "src/s5p_lockdown/attribution.py",
        "usable_pixels(ds, qa_threshold)",
        "usable_pixels(ds, None)",
        "pixels attributed to regions without the qa filter",
    ),
    Mutation(
        "attribution-partial-cell-as-whole", "src/s5p_lockdown/attribution.py",
        "whole = fraction[first] >= _WHOLE_CELL",
        "whole = fraction[first] > 0",
        "a cell partly in one region (e.g. on a coast) gives it every pixel, even those at sea",
    ),
    Mutation(
        "cell-area-without-fraction", "src/s5p_lockdown/cells.py",
        "area = cos_lat[cells] * fractions[k, cells]",
        "area = cos_lat[cells]",
        "a cell weighs cos(lat) in a region mean, whatever part of it lies in the region",
    ),
    Mutation(
        "point-binning-sigma-not-squared", "src/s5p_lockdown/gridding/kernel.py",
        "sums[r, c, 2] += sigmas[p] * sigmas[p]",
        "sums[r, c, 2] += sigmas[p]",
        "point binning accumulates sigma instead of sigma squared",
    ),
    Mutation(
        "harp-uncertainty-propagated", "src/s5p_lockdown/gridding/accumulator.py",
        "uncertainty = _per_weight(self.sums[..., 3], weight, np.nan)",
        "uncertainty = _per_weight(np.sqrt(self.sums[..., 2]), weight, np.nan)",
        "…_uncertainty propagated as uncorrelated instead of HARP's linear average",
    ),
    Mutation(
        "point-binning-linear-sigma-squared", "src/s5p_lockdown/gridding/kernel.py",
        "sums[r, c, 3] += sigmas[p]\n",
        "sums[r, c, 3] += sigmas[p] * sigmas[p]\n",
        "point binning's linear uncertainty accumulates sigma squared",
    ),
    Mutation(
        "merged-grid-uncertainty-from-random", "src/s5p_lockdown/gridding/accumulator.py",
        "acc.sums[..., 3] = np.where(has_data, weight * uncertainty, 0.0)",
        "acc.sums[..., 3] = np.where(has_data, weight * uncertainty_random, 0.0)",
        "grids read back for merging rebuild Σ w·σ from the random uncertainty",
    ),
    Mutation(
        "equal-composite-uncertainty-scaled-twice", "src/s5p_lockdown/gridding/accumulator.py",
        "self.sums[..., 3] / safe,",
        "self.sums[..., 3] / (safe * safe),",
        "an equal-weight composite divides Σ w·σ by Σ w twice",
    ),
    Mutation(
        "stats-90-percent-intervals", "src/s5p_lockdown/stats.py",
        "    confidence: float = 0.95\n",
        "    confidence: float = 0.90\n",
        "statistics default to 90 % intervals",
    ),
    Mutation(
        "intervals-90-percent", "src/s5p_lockdown/intervals.py",
        "np.nanquantile(replicates, [tail, 1 - tail])",
        "np.nanquantile(replicates, [2 * tail, 1 - 2 * tail])",
        "change_columns takes the 5th and 95th percentiles for a 95 % interval",
    ),
    Mutation(
        "intervals-not-widened", "src/s5p_lockdown/intervals.py",
        "factor = np.sqrt(days / (days - 1))",
        "factor = 1.0",
        "the percentile interval is not widened for the windows' few days",
    ),
    Mutation(
        "stats-intervals-not-widened", "src/s5p_lockdown/stats.py",
        "values = _ratio(name, widened_window_means(means[name], [len(usable[k].dates) for k in keys]))",
        "values = _ratio(name, means[name])",
        "the raw changes' intervals are not widened for their windows' few days",
    ),
    Mutation(
        "adjusted-replicates-on-four-resampled-windows", "src/s5p_lockdown/stats.py",
        "means[name][rows] = np.hstack([year.means for year in years])",
        "means[name][rows] = support_means([sums[k] for k in keys], first.area).means",
        "the four-window change's replicates compare the years on the support of all four "
        "resampled windows (99.3 % coverage)",
    ),
    Mutation(
        "low-wind-widened-for-all-days", "src/s5p_lockdown/weather.py",
        "int(min(calm_a.sum(), calm_b.sum()))))",
        "min(len(post_a.dates), len(post_b.dates))))",
        "the low-wind interval is widened for all the lockdown days, not the calm ones",
    ),
    Mutation(
        "bootstrap-unpaired", "src/s5p_lockdown/estimator.py",
        "return WindowSums(counts @ table.weighted_value, counts @ table.weight)",
        "return WindowSums(counts @ table.weighted_value, counts[::-1] @ table.weight)",
        "a bootstrap replicate takes W x and W from different resamples of the days",
    ),
    Mutation(
        "significance-decreases-only", "src/s5p_lockdown/intervals.py",
        "(low > 0 or high < 0)",
        "(high < 0)",
        "a change is significant only when it is a decrease",
    ),
    Mutation(
        "low-wind-threshold-x1.2", "src/s5p_lockdown/weather.py",
        "threshold = float(np.median(np.concatenate([post_a.wind, post_b.wind])))",
        "threshold = 1.2 * float(np.median(np.concatenate([post_a.wind, post_b.wind])))",
        "the low-wind threshold 1.2 x the median post-window wind",
    ),
    Mutation(
        "support-not-common", "src/s5p_lockdown/estimator.py",
        "support = np.logical_and.reduce([w.weight > 0 for w in windows])",
        "support = np.logical_or.reduce([w.weight > 0 for w in windows])",
        "each window averaged over its own cells instead of the common support",
    ),
    Mutation(
        "statistics-on-grid-cells", "src/s5p_lockdown/stats.py",
        "set(required_days(windows)), settings.cell_size)",
        "set(required_days(windows)), None)",
        "the statistics ignore stats.cell_size (the grid's own cells)",
    ),
    Mutation(
        "statistics-blocks-misaligned", "src/s5p_lockdown/cells.py",
        "key = (rows // shape[0]) * (n_lon // shape[1] + 1) + columns // shape[1]",
        "key = (rows // shape[0]) * (n_lon // shape[1] + 1) + (columns + 1) // shape[1]",
        "statistics cells not aligned on the grid's south-west corner",
    ),
    Mutation(
        "wind-model-no-window-intercepts", "src/s5p_lockdown/weather.py",
        "dummies = (window[:, None] == np.unique(window)[None, :]).astype(np.float64)",
        "dummies = np.ones((window.size, 1))",
        "the wind fit without one intercept per window (season and lockdown leak into b)",
    ),
    Mutation(
        "wind-factor-without-curvature", "src/s5p_lockdown/weather.py",
        "factor = np.exp(b[:, :1] * log_wind + b[:, 1:] * log_wind**2)",
        "factor = np.exp(b[:, :1] * log_wind)",
        "the wind factors drop the fitted response's curvature (b2)",
    ),
    Mutation(
        "region-windows-ignore-own-dates", "src/s5p_lockdown/windows.py",
        "        if region in own.index:",
        "        if False:",
        "every region takes its country's dates, never its own row of the regional table",
    ),
    Mutation(
        "scenario-region-weaker-measure", "src/s5p_lockdown/synth/scenario.py",
        "out[inside] = np.maximum(out[inside], reduction)",
        "out[inside] = reduction",
        "a region's reduction replaces its country's even when the country's is stronger",
    ),
    Mutation(
        "region-ids-not-checked-unique", "src/s5p_lockdown/region_files.py",
        "    if ids.duplicated().any():",
        "    if False:",
        "a region file whose ids repeat is read without an error",
    ),
)


def copy_repository(destination: Path) -> None:
    """Copy the working tree's tracked and untracked, not-ignored files to ``destination``."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode()
    for name in filter(None, listing.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is left out
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def environment(copy: Path) -> dict[str, str]:
    """This process's environment with the copy's ``src`` first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(copy / "src"), env.get("PYTHONPATH")]))
    return env


def check_imports_from(copy: Path, env: dict[str, str]) -> None:
    """Fail unless ``import s5p_lockdown`` in the test environment loads the copy's source."""
    found = subprocess.run(
        [sys.executable, "-c", "import s5p_lockdown; print(s5p_lockdown.__file__)"],
        cwd=copy, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(copy.resolve()):
        raise SystemExit(f"the tests would import s5p_lockdown from {found}, not from the copy")


def apply(mutation: Mutation, copy: Path) -> str | None:
    """Write the mutated file into ``copy``; returns the original text, or None if stale."""
    path = copy / mutation.path
    original = path.read_text()
    if original.count(mutation.old) != 1:
        return None
    path.write_text(original.replace(mutation.old, mutation.new))
    return original


def run_tests(copy: Path, env: dict[str, str], tests: list[str], timeout: float):
    """pytest in ``copy``; returns (exit code, first failing test or error line, seconds)."""
    command = [sys.executable, "-m", "pytest", "-m", "not slow", "-x", "-q",
               "-p", "no:cacheprovider", *tests]
    start = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True,
                                timeout=timeout)
    except subprocess.TimeoutExpired:  # e.g. a mutant that loops: a verdict, not a crash
        return TIMED_OUT, f"no result within {timeout:.0f} s", time.perf_counter() - start
    seconds = time.perf_counter() - start
    output = result.stdout + result.stderr
    failure = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    detail = failure.group(1) if failure else output.strip().splitlines()[-1] if output.strip() else ""
    return result.returncode, detail, seconds


TIMED_OUT = -1


def verdict(code: int) -> str:
    return {0: "SURVIVED", 1: "caught", 2: "caught", TIMED_OUT: "TIMEOUT"}.get(code, "ERROR")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", nargs="+", default=[],
                        help="test files or node ids (default: the whole suite's fast tests)")
    parser.add_argument("--only", nargs="+", default=[""],
                        help="run the mutations whose name contains any of these")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per pytest run")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    mutations = [m for m in MUTATIONS if any(part in m.name for part in args.only)]
    if args.list or not mutations:
        for m in mutations:
            print(f"{m.name:36} {m.path}: {m.description}")
        return 0 if mutations else 1

    selection = " ".join(args.tests) or "all fast tests"
    print(f"mutation check: {len(mutations)} mutation(s); pytest -m 'not slow' -x on {selection}")
    with tempfile.TemporaryDirectory(prefix="s5p-mutation-") as folder:
        copy = Path(folder) / "repo"
        copy_repository(copy)
        env = environment(copy)
        check_imports_from(copy, env)
        code, detail, seconds = run_tests(copy, env, args.tests, args.timeout)
        print(f"{'(unmutated)':36} {'pass' if code == 0 else 'FAIL':9} {seconds:7.1f} s  {detail}",
              flush=True)
        if code != 0:
            print("the unmutated copy fails its tests: fix them before checking mutations")
            return 2
        results = []
        for mutation in mutations:
            original = apply(mutation, copy)
            if original is None:
                results.append("STALE")
                print(f"{mutation.name:36} {'STALE':9} {0.0:7.1f} s  old text not found once "
                      f"in {mutation.path}", flush=True)
                continue
            try:
                code, detail, seconds = run_tests(copy, env, args.tests, args.timeout)
            finally:
                (copy / mutation.path).write_text(original)
            results.append(verdict(code))
            print(f"{mutation.name:36} {verdict(code):9} {seconds:7.1f} s  {detail}", flush=True)
    caught = results.count("caught")
    print(f"{caught} of {len(results)} mutations caught"
          + "".join(f", {results.count(k)} {k.lower()}" for k in ("SURVIVED", "STALE", "ERROR", "TIMEOUT")
                    if k in results))
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
