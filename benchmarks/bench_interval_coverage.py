"""Coverage of the confidence intervals for countries without any injected change.

Runs the workflow on small synthetic archives with different seeds (each year its own random
weather) and counts, for the no-lockdown countries (Sweden, Belarus) and for a country whose
injected reduction is removed by the scenario (Poland), how often the 95 % interval of each
change contains zero. A well-calibrated interval covers zero in about 95 % of seeds; day-to-day
weather differences between the two years are part of what the interval must cover.

Usage: ``python benchmarks/bench_interval_coverage.py [--seeds 8] [--workdir DIR]``
Each seed takes about 1.5 minutes on 2 cores (12 seeds: 36 cases per change, ~20 minutes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from workflow_helpers import run_workflow, write_config  # noqa: E402

CHANGES = ("post_vs_baseline", "adjusted", "weather_adjusted")
SCENARIO = "iso3,reduction,start,end,hotspot\nPOL,0.0,,,\nSWE,0.0,,,\nBLR,0.0,,,\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        scenario = Path(tmp) / "no_change.csv"
        scenario.write_text(SCENARIO)
        for seed in range(args.seeds):
            folder = Path(tmp) / f"seed{seed}"
            folder.mkdir()
            started = time.perf_counter()
            run_workflow(write_config(folder, {
                "synthetic": {"seed": 100 + seed, "same_weather_every_year": False,
                              "scenario": str(scenario)},
                "countries": ["POL", "SWE", "BLR"],
            }))
            stats = pd.read_csv(folder / "results" / "stats" / "country_stats.csv")
            for row in stats.itertuples():
                for change in CHANGES:
                    low, high = getattr(row, f"change_{change}_low"), getattr(row, f"change_{change}_high")
                    if pd.notna(low):
                        rows.append({"seed": seed, "iso3": row.iso3, "change": change,
                                     "covers_zero": low <= 0 <= high,
                                     "width": high - low})
            print(f"seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby("change").agg(cases=("covers_zero", "size"),
                                          coverage=("covers_zero", "mean"),
                                          median_width=("width", "median"))
    print("\nCoverage of zero by the 95 % intervals (no injected change):")
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
