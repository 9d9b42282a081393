"""Benchmark: the whole workflow on a full-resolution synthetic season over Europe.

Data: synthetic orbits at full resolution (450 ground pixels, 5.5 km scanlines in 2020 and 7 km
before 6 August 2019, every variable and group of a real file, compressed as real files are;
``s5p_lockdown.synth``), every orbit crossing Europe (34-72 N, 25 W-45 E: 5-6 a day) of
``--days`` days around 16 March in 2020 and the same calendar days of 2019 (default 14 + 14).
They are generated once into ``--cache`` (under /tmp by default; never in the repository) and
read by the workflow as a ``local`` archive, as real files on shared storage would be.

Run: ``snakemake --profile profiles/default`` with a config in a temporary folder: every
country of the lockdown table (7 days before and 7 from each lockdown, windows without data
flagged), the default hotspots, at each ``--resolution`` (default 0.1 and 0.05 degrees). Every
gridding, attribution, composite and statistics job records its wall time, CPU time and peak
memory (Snakemake ``benchmark:`` files in ``results/benchmarks/``); the daily-grid jobs log
their read, binning and writing CPU times per orbit and day. The whole run's CPU time (the
snakemake process and every job, start-ups included) divided by the number of orbits gives the
core-seconds per orbit end to end (target <= 0.5 at 0.1 degree); peak memory of a gridding job
(target <= 1 GB at 0.05 degree); bytes written per day; and, with ``--days`` smaller than the
full run, how the figures grow with days (run both and compare).

The physical limit printed beside: the CPU time to inflate (zlib/libdeflate) the compressed
chunks of the variables a gridding job and an attribution job read with box subsetting,
measured on the archive's files; and the bytes they read, for the I/O rate per job.

The machine is shared (2 cores, other jobs running): wall times vary, CPU time is the robust
figure under contention; the output says so.

Usage: ``python benchmarks/bench_season.py [--days 14] [--resolution 0.1 0.05] [--cache DIR]``
(``--days 2`` for a quick run).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
CENTRE = date(2020, 3, 16)  # AUT, CZE, LTU lock down that day; FRA, CHE, LUX on the 17th
STAGE_OF_RULE = {
    "grid_week": "read + bin + write daily grids",
    "attribute_week": "attribute pixels (statistics input)",
    "period_composites": "composites",
    "daily_means": "country and hotspot daily means",
    "country_stats": "country statistics",
    "hotspot_stats": "hotspot statistics",
}
_ORBIT_LOG = re.compile(r"pixels in the grid \(read ([\d.]+) CPU s, binned ([\d.]+) CPU s\)")
_WRITE_LOG = re.compile(r": wrote \S+ \((\d+) bytes, ([\d.]+) CPU s\)")


def season_days(n_days: int) -> list[date]:
    """``n_days`` days of 2020 starting ``n_days // 2`` before :data:`CENTRE`, and the same
    calendar days of 2019."""
    first = CENTRE - timedelta(days=n_days // 2)
    days_2020 = [first + timedelta(days=i) for i in range(n_days)]
    return [d.replace(year=2019) for d in days_2020] + days_2020


def generate(archive: Path, days: list[date]) -> list[Path]:
    """Full-resolution orbits of ``days`` under ``archive`` (days already written are kept:
    a day's folder is complete once its marker file exists)."""
    from s5p_lockdown.synth.archive import ArchiveGenerator, SynthSettings

    generator = ArchiveGenerator(SynthSettings(seed=0, across_track_step=1, along_track_step=1))
    files = []
    for day in days:
        marker = archive / f"{day:%Y/%m/%d}" / ".complete"
        if not marker.exists():
            start = time.process_time()
            written = generator.write_day(archive, day)
            marker.write_text("".join(f"{p.name}\n" for p in written))
            print(f"  generated {day}: {len(written)} orbits ({time.process_time() - start:.0f} CPU s)",
                  flush=True)
        files += [marker.parent / name for name in marker.read_text().split()]
    return files


def inflate_limit(files: list[Path], bounds: bool) -> tuple[float, int]:
    """CPU seconds to inflate (libdeflate, the reader's own decoder) and bytes to read of the
    compressed chunks of what a job reads with box subsetting: the grid job's variables
    (``bounds``) or the attribution's (no corners), summed over ``files``."""
    import deflate
    import h5py
    import numpy as np

    from s5p_lockdown.gridding import GridSpec
    from s5p_lockdown.io import PIXEL_VARIABLES, read_l2_arrays

    box = GridSpec.from_bbox(34.0, 72.0, -25.0, 45.0, 0.1).bounds
    seconds, nbytes = 0.0, 0
    for path in files:
        orbit = read_l2_arrays(path, bbox=box, optional=False, bounds=False)
        first_row = orbit.attrs["scanline_offset"]
        rows = range(first_row, first_row + orbit["time"].size)
        with h5py.File(path, "r") as nc:
            for spec in PIXEL_VARIABLES:
                if spec.output in ("surface_pressure", "cloud_fraction") or (
                        not bounds and spec.output.endswith("_bounds")):
                    continue
                var = nc[f"{spec.group}/{spec.name}"]
                step = var.chunks[1]
                chunk_bytes = int(np.prod(var.chunks)) * var.dtype.itemsize
                for first in range(rows.start - rows.start % step, rows.stop, step):
                    _, raw = var.id.read_direct_chunk((0, first) + (0,) * (var.ndim - 2))
                    nbytes += len(raw)
                    start = time.process_time()
                    deflate.zlib_decompress(raw[:-4] if var.fletcher32 else raw, chunk_bytes)
                    seconds += time.process_time() - start
    return seconds, nbytes


def archive_view(folder: Path, files: list[Path]) -> Path:
    """A folder of links to ``files`` only (the cache may hold more days than this run uses:
    the workflow indexes every file of its archive that its windows need)."""
    view = folder / "archive"
    for path in files:
        link = view / path.relative_to(path.parents[3])  # YYYY/MM/DD/name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
    return view


def write_config(folder: Path, archive: Path, resolution: float) -> Path:
    """The run's configuration (over config/config.yaml's defaults)."""
    config = {
        "results": str(folder / "results"),
        "source": {"kind": "local", "archive": str(archive), "on_missing_data": "flag"},
        "grid": {"south": 34.0, "north": 72.0, "west": -25.0, "east": 45.0,
                 "resolution": resolution},
        "windows": {"pre_days": 7, "post_days": 7, "reference_start": "2020-03-16",
                    "reference_end": "2020-03-22"},
        "countries": "all",
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_workflow(config: Path) -> dict:
    """snakemake --profile profiles/default on ``config``: wall and CPU seconds (the snakemake
    process and all its jobs) and its output."""
    args = [str(Path(sys.executable).with_name("snakemake")), "--profile", "profiles/default",
            "--configfile", str(config)]
    start = time.perf_counter()
    process = subprocess.Popen(args, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"snakemake failed:\n{output[-5000:]}")
    return {"wall": time.perf_counter() - start, "cpu": usage.ru_utime + usage.ru_stime,
            "output": output}


def job_benchmarks(results: Path) -> dict[str, list[dict]]:
    """Snakemake's benchmark files per rule: s (wall), cpu_time, max_rss (MB) of each job."""
    jobs = defaultdict(list)
    for path in sorted((results / "benchmarks").rglob("*.tsv")):
        rule = path.parent.name if path.parent.name != "benchmarks" else path.stem
        with open(path) as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        jobs[rule].append({"wall": float(row["s"]), "cpu": float(row["cpu_time"]),
                           "rss": float(row["max_rss"])})
    return jobs


def grid_log_times(results: Path) -> dict[str, float]:
    """Read, bin and write CPU seconds and bytes written, summed over the daily-grid jobs'
    logs."""
    totals = defaultdict(float)
    for path in (results / "logs" / "grid_week").glob("*.log"):
        text = path.read_text()
        for read, binned in _ORBIT_LOG.findall(text):
            totals["read"] += float(read)
            totals["bin"] += float(binned)
            totals["orbits"] += 1
        for nbytes, seconds in _WRITE_LOG.findall(text):
            totals["write"] += float(seconds)
            totals["bytes"] += int(nbytes)
            totals["days"] += 1
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14, help="days per year (2019 and 2020)")
    parser.add_argument("--resolution", type=float, nargs="+", default=[0.1, 0.05])
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "s5p-bench-cache" / "season")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep each run's results under this folder (default: temporary)")
    args = parser.parse_args()
    days = season_days(args.days)
    print(f"{len(days)} days ({days[0]}..{days[args.days - 1]}, {days[args.days]}..{days[-1]}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    files = generate(args.cache / "archive", days)
    input_bytes = sum(p.stat().st_size for p in files)
    print(f"{len(files)} orbits, {input_bytes / 1e9:.2f} GB ({input_bytes / len(files) / 1e6:.1f} MB each)")

    inflate_grid, read_grid = inflate_limit(files, bounds=True)
    inflate_attr, read_attr = inflate_limit(files, bounds=False)
    summary = {}
    for resolution in args.resolution:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) if args.keep is None else args.keep / f"{resolution:g}"
            folder.mkdir(parents=True, exist_ok=True)
            run = run_workflow(write_config(folder, archive_view(folder, files), resolution))
            results = folder / "results"
            jobs = job_benchmarks(results)
            logs = grid_log_times(results)
            outputs = sum(p.stat().st_size for p in results.rglob("*") if p.is_file())
            daily = sum(p.stat().st_size for p in (results / "daily").rglob("*.nc"))
            summary[resolution] = {"run": {k: v for k, v in run.items() if k != "output"},
                                   "jobs": jobs, "logs": dict(logs), "outputs": outputs,
                                   "daily_bytes": daily}
        print_run(resolution, run, jobs, logs, len(files), len(days), outputs, daily)
    print_limits(len(files), inflate_grid, read_grid, inflate_attr, read_attr, summary)
    print("\nThe machine is shared (2 cores, other engineers' jobs running): wall times vary with "
          "the load, CPU time is the robust figure under contention.")
    print(json.dumps({f"{r:g}": {"cpu": s["run"]["cpu"], "wall": s["run"]["wall"],
                                 "orbits": len(files), "days": len(days)}
                      for r, s in summary.items()}))


def print_run(resolution, run, jobs, logs, n_orbits, n_days, outputs, daily) -> None:
    if logs.get("orbits") != n_orbits:
        raise RuntimeError(f"the gridding jobs read {logs.get('orbits')} orbits, not {n_orbits}")
    print(f"\n== {resolution:g} degree: whole workflow {run['wall']:.0f} s wall, "
          f"{run['cpu']:.0f} CPU s = {run['cpu'] / n_orbits:.2f} core-s per orbit end to end "
          f"(target <= 0.5 at 0.1 degree)")
    print(f"{'stage':<38} {'jobs':>4} {'wall s':>8} {'CPU s':>8} {'CPU s/orbit':>11} "
          f"{'max RSS MB':>10}")
    in_jobs = 0.0
    for rule, stage in STAGE_OF_RULE.items():
        if rule not in jobs:
            continue
        rows = jobs[rule]
        cpu = sum(r["cpu"] for r in rows)
        in_jobs += cpu
        print(f"{stage:<38} {len(rows):>4} {sum(r['wall'] for r in rows):>8.1f} {cpu:>8.1f} "
              f"{cpu / n_orbits:>11.3f} {max(r['rss'] for r in rows):>10.0f}")
        if rule == "grid_week" and logs.get("orbits"):
            for part in ("read", "bin", "write"):
                print(f"  {part + ' (from the job logs)':<36} {'':>4} {'':>8} {logs[part]:>8.1f} "
                      f"{logs[part] / n_orbits:>11.3f}")
    print(f"{'job start-ups, scheduling (the rest)':<38} {'':>4} {'':>8} "
          f"{run['cpu'] - in_jobs:>8.1f} {(run['cpu'] - in_jobs) / n_orbits:>11.3f}")
    print(f"outputs {outputs / 1e6:.0f} MB; daily grids {daily / 1e6:.1f} MB = "
          f"{daily / max(1, n_days) / 1e6:.2f} MB per day")


def print_limits(n_orbits, inflate_grid, read_grid, inflate_attr, read_attr, summary) -> None:
    print("\nphysical limit: inflating the compressed chunks each pass must read (box subsetting)")
    print(f"  gridding pass:    {read_grid / n_orbits / 1e6:6.1f} MB read per orbit, "
          f"{inflate_grid / n_orbits:.3f} CPU s per orbit to inflate (libdeflate)")
    print(f"  attribution pass: {read_attr / n_orbits / 1e6:6.1f} MB read per orbit, "
          f"{inflate_attr / n_orbits:.3f} CPU s per orbit to inflate")
    for resolution, s in summary.items():
        jobs = s["jobs"]
        for rule, inflate, nbytes in (("grid_week", inflate_grid, read_grid),
                                      ("attribute_week", inflate_attr, read_attr)):
            if rule in jobs:
                cpu = sum(r["cpu"] for r in jobs[rule])
                print(f"  {resolution:g} degree {rule}: {cpu / n_orbits:.3f} CPU s per orbit = "
                      f"{cpu / inflate:.1f}x the inflate limit; "
                      f"{nbytes / 1e6 / cpu:.0f} MB/s of compressed input per busy core")


if __name__ == "__main__":
    main()
