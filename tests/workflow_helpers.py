"""Run the Snakemake workflow from tests: in a subprocess, from the project root, with a
config file of the test's own (results and archive in a temporary folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

#: Injected reductions of the small analysis: 30 % in ITA, ESP, DEU, POL, ROU from their
#: lockdown dates, nothing in Sweden, and in France only the Paris plume, halved (a city-only
#: change that the country mean barely shows).
CITY_ONLY_SCENARIO = ROOT / "tests" / "data" / "scenario_city_only.csv"

#: A small synthetic analysis: seven countries (lockdown starts 10-25 March, Sweden without a
#: lockdown), one week before / two weeks after, ~17 km pixels on a 0.25 degree grid, the same
#: weather in both years so that the expected change equals the injected reduction.
SMALL_CONFIG = {
    "synthetic": {"seed": 3, "same_weather_every_year": True, "scenario": str(CITY_ONLY_SCENARIO),
                  "across_track_step": 5, "along_track_step": 3},
    "grid": {"south": 35.0, "north": 65.0, "west": -10.0, "east": 30.0, "resolution": 0.25},
    "countries": ["ITA", "ESP", "FRA", "DEU", "POL", "ROU", "SWE"],
    "windows": {"pre_days": 7, "post_days": 14, "reference_start": "2020-03-15",
                "reference_end": "2020-03-28"},
    "stats": {"bootstrap": 500},
}


def write_config(folder: Path, overrides: dict | None = None, name: str = "config.yaml") -> Path:
    """A config file with results and archive under ``folder`` (merged one level deep)."""
    config = {key: dict(value) if isinstance(value, dict) else value
              for key, value in SMALL_CONFIG.items()}
    config["results"] = str(folder / "results")
    config["source"] = {"kind": "synthetic", "archive": str(folder / "archive")}
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    path = folder / name
    path.write_text(yaml.safe_dump(config))
    return path


def run_workflow(*configs: Path, args=(), check=True, timeout=900, env=None) -> subprocess.CompletedProcess:
    """``snakemake --cores 2 --configfile CONFIGS... ARGS`` from the project root."""
    command = SNAKEMAKE + ["--cores", "2", "--configfile", *map(str, configs), *args]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
        )
    return result
