"""Daily products: synthesise a day of orbits (demo source) and grid a day's orbits.

A daily grid is the ``weight``-weighted composite of every qa-filtered pixel of the day's
orbits (the same as binning all of them at once), in the L3 schema of
:mod:`s5p_lockdown.gridding.schema`, plus provenance attributes and, when the orbits carry
near-surface wind (processor >= 1.3), ``wind_speed`` (m s-1): the area-weighted mean of
``hypot(eastward_wind, northward_wind)`` over the pixels binned for NO2 (binned in the same
pass, see the accumulator's companion variables), for weather normalisation. Without wind in
any orbit, ``wind_speed`` is all NaN.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np

from s5p_lockdown.errors import InvalidProductError
from s5p_lockdown.gridding import GridSpec
from s5p_lockdown.gridding.accumulator import GridAccumulator
from s5p_lockdown.io import read_l2_arrays
from s5p_lockdown.outputs import provenance, write_atomically, write_csv

log = logging.getLogger(__name__)

#: The optional L2 variables a daily grid uses (cloud fraction and pressure are not read).
WIND_VARIABLES = ("eastward_wind", "northward_wind")


def grid_day(
    files: list[str | Path],
    day: date,
    grid: GridSpec,
    out_path: str | Path,
    qa_threshold: float = 0.75,
    skip_invalid: bool = False,
    config: dict | None = None,
    threads: int = 1,
) -> Path:
    """Bin ``files`` (one day's orbits) into ``out_path`` (netCDF-4, written atomically).

    A file that is not a valid L2 NO2 product raises :class:`InvalidProductError` naming it, or,
    with ``skip_invalid``, is logged, left out and listed in the ``skipped_files`` attribute.
    """
    accumulator = GridAccumulator(grid, threads=threads, companions=("wind_speed",))
    used, skipped = [], []
    for index, path in enumerate(map(Path, files), 1):
        start = time.process_time()
        try:
            dataset = read_l2_arrays(path, bbox=grid.bounds, optional=WIND_VARIABLES)
        except InvalidProductError as exc:
            if not skip_invalid:
                raise
            log.warning("skipping invalid file: %s", exc)
            skipped.append(f"{path.name}: {exc.reason}")
            continue
        read = time.process_time()
        counted = accumulator.add_dataset(dataset, qa_threshold, companions=_wind_speed(dataset))
        used.append(path.name)
        log.info("%s [%d/%d] %s: %d pixels in the grid (read %.3f CPU s, binned %.3f CPU s)", day,
                 index, len(files), path.name, counted, read - start, time.process_time() - read)
    wind_attrs = {
        "units": "m s-1", "long_name": "near-surface wind speed, mean over the NO2 pixels",
        "description": "area-weighted mean of hypot(eastward_wind, northward_wind) over the "
                       "pixels binned for NO2 (qa-filtered, valid column and precision; ECMWF "
                       "wind in the L2 files); NaN without wind data",
    }
    attrs = provenance(config, used)
    attrs.update(
        day=day.isoformat(),
        qa_threshold=qa_threshold,
        source_product=",".join(used),
        skipped_files="; ".join(skipped),
    )
    start = time.process_time()
    written = accumulator.to_netcdf(
        out_path, history=f"s5p-lockdown grid_day qa_value>{qa_threshold}; {grid.harp_operation()}",
        attrs=attrs, variable_attrs={"wind_speed": wind_attrs},
    )
    log.info("%s: wrote %s (%d bytes, %.3f CPU s)", day, written.name, written.stat().st_size,
             time.process_time() - start)
    return written


def _wind_speed(dataset) -> dict[str, np.ndarray] | None:
    """``{"wind_speed": hypot(eastward, northward)}`` (m s-1) per pixel, binned alongside the
    NO2 column over the same qa-filtered pixels; None for an orbit without wind."""
    if "eastward_wind" not in dataset or "northward_wind" not in dataset:
        return None
    return {"wind_speed": np.hypot(np.asarray(dataset["eastward_wind"]),
                                   np.asarray(dataset["northward_wind"]))}


def grid_days(
    files_by_day: dict[date, list[str | Path]],
    grid: GridSpec,
    out_dir: str | Path,
    **options,
) -> list[Path]:
    """:func:`grid_day` for several days, into ``out_dir/YYYY-MM-DD.nc``. ``out_dir`` is
    created even when no day has data (e.g. a week the catalogue has no orbit for)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        grid_day(files, day, grid, out_dir / f"{day:%Y-%m-%d}.nc", **options)
        for day, files in sorted(files_by_day.items())
    ]


def synthesize_days(
    archive: str | Path,
    days: list[date],
    settings: dict,
    manifest_path: str | Path,
    truth_path: str | Path,
    scenario_path: str | Path | None = None,
    regions: dict | None = None,
) -> dict[date, list[Path]]:
    """Write the synthetic orbits of ``days`` under ``archive``, a manifest listing them (one
    ``YYYY-MM-DD path`` line per orbit) and the days' noise-free country truth (CSV).

    ``regions``: the workflow's ``regions`` config section (or None): the region file the
    scenario's region rows name, and the regional lockdown table the default scenario
    (``scenario_path`` None) takes region rows from."""
    import pandas as pd

    generator = _generator(json.dumps(settings, sort_keys=True, default=list), scenario_path,
                           json.dumps(regions, sort_keys=True))
    files = {day: generator.write_day(Path(archive), day) for day in days}
    truth = pd.concat([generator.daily_truth(day) for day in days], ignore_index=True)
    write_csv(truth, truth_path, index=False)
    lines = "".join(f"{day:%Y-%m-%d} {path}\n" for day, paths in files.items() for path in paths)
    write_atomically(manifest_path, lambda tmp: tmp.write_text(lines))
    return files


def fetch_days(
    archive: str | Path,
    days: list[date],
    bbox: tuple[float, float, float, float],
    settings: dict,
    manifest_path: str | Path,
) -> dict[date, list[Path]]:
    """Download from the Copernicus Data Space what ``archive`` lacks for ``days`` over
    ``bbox`` and write a manifest of the days' files (same format as :func:`synthesize_days`)."""
    from s5p_lockdown.acquire import fetch_for_days
    from s5p_lockdown.archive import overpass_day
    from s5p_lockdown.filenames import ProductName

    files: dict[date, list[Path]] = {}
    for path in fetch_for_days(days, bbox, Path(archive), settings):
        files.setdefault(overpass_day(ProductName.parse(path)), []).append(path)
    lines = "".join(f"{day:%Y-%m-%d} {path}\n" for day, paths in sorted(files.items()) for path in paths)
    write_atomically(manifest_path, lambda tmp: tmp.write_text(lines))
    return files


def read_manifest(path: str | Path) -> dict[date, list[str]]:
    """Files per day of a manifest written by :func:`synthesize_days` or :func:`fetch_days`."""
    files: dict[date, list[str]] = {}
    for line in Path(path).read_text().splitlines():
        day, file = line.split(maxsplit=1)
        files.setdefault(date.fromisoformat(day), []).append(file)
    return files


@lru_cache(maxsize=4)
def _generator(settings_json: str, scenario_path: str | Path | None, regions_json: str = "null"):
    """One generator per settings in a process (boundaries and truth lattice loaded once, when
    the workflow runs many days in one process)."""
    from s5p_lockdown.region_files import RegionFileSpec, read_region_file
    from s5p_lockdown.synth.archive import ArchiveGenerator, SynthSettings
    from s5p_lockdown.synth.scenario import Scenario

    section = json.loads(regions_json)
    scenario = Scenario.load(scenario_path, section.get("lockdown_dates") if section else None)
    regions = read_region_file(RegionFileSpec.from_config(section)) if section and len(scenario.regions) else None

    settings = json.loads(settings_json)
    settings["lat_band"] = tuple(settings["lat_band"])
    settings["box"] = tuple(settings["box"])
    # JSON keys are strings: the per-year settings are keyed by the year as an integer
    for per_year in ("wind_scale", "cloud_shift"):
        settings[per_year] = {int(k): v for k, v in settings[per_year].items()}
    return ArchiveGenerator(SynthSettings(**settings), scenario, regions)
