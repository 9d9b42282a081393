"""Benchmark: the whole ``s5p-lockdown grid`` process on one full-size Europe orbit segment,
beside HARP's whole process.

A user meets the whole process: interpreter start, imports, loading the kernels, reading,
binning and writing the L3 file. This runs the installed command in a fresh process (warm
caches: one untimed run of each configuration first fills numba's cache and the page cache),
alternating the configurations round after round (``--rounds``, default 3), and prints per
configuration the median wall time (and range), the CPU time (user + system: the robust figure
when the machine is shared) and the peak resident memory of that process (``os.wait4``), beside
HARP's figures with the speed-up. Configurations, at 0.1° and 0.01°: the default (one thread,
the kernels compiled ahead of time by ``s5p-lockdown compile``, no numba in the process:
:mod:`s5p_lockdown.aot`); the same on numba's JIT (no compiled module, what every process paid
before); numba's parallel kernel on all cores. Then one in-process run per grid shows where the
CPU time of a default process goes (interpreter start, imports, first read, binning, writing).

The segment is the synthetic orbit of 25 March 2020 with the most pixels over the grid (orbit 7
of the day: 822 scanlines × 450 ground pixels, ~340,000 pixel centres in 34-72 N, 25 W-45 E),
in the structure and compression of a real file; it is generated once into ``--cache``.

HARP cannot be installed on this machine. Its figures (docs/references.md) were measured on this
machine kind on a real-size orbit (227,000 pixels in the grid at 0.1°; 360,000 pixels, 800
scanlines at 0.01°), alternating with ``s5p-lockdown grid``: HARP's whole process in Python
(``import harp``, ``import_product`` with ``bin_spatial``, ``export_product``) took 0.72-0.83 s
at 0.1° and 10.98-11.89 s with a 1.17 GB peak at 0.01°. Targets: >= 1.5x faster at 0.1°, >= 5x
at 0.01°, peak memory <= HARP's.

Usage: ``python benchmarks/bench_grid_process.py [--rounds 3] [--cache DIR]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

#: HARP's whole process (seconds, and peak GB where measured): docs/references.md.
HARP = {0.1: {"seconds": (0.72, 0.83), "peak_gb": None},
        0.01: {"seconds": (10.98, 11.89), "peak_gb": 1.17}}
TARGET_SPEEDUP = {0.1: 1.5, 0.01: 5.0}
GRIDS = {0.1: "381,34,0.1,701,-25,0.1", 0.01: "3801,34,0.01,7001,-25,0.01"}
DAY = date(2020, 3, 25)
ORBIT_OF_DAY = 7

STAGES = """
import resource, sys, time
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
marks = [("interpreter start", cpu())]
import numpy, click
import s5p_lockdown.cli
marks.append(("imports: numpy, click, CLI", cpu()))
from s5p_lockdown.gridding import GridSpec
from s5p_lockdown.gridding.accumulator import GridAccumulator
from s5p_lockdown.io import read_l2_arrays
import netCDF4
marks.append(("imports: h5py, netCDF4, package", cpu()))
grid = GridSpec.from_harp(sys.argv[2])
orbit = read_l2_arrays(sys.argv[1], bbox=grid.bounds, optional=False)
marks.append(("first read (incl. loading the kernels)", cpu()))
acc = GridAccumulator(grid)
acc.add_dataset(orbit, 0.75)
marks.append(("binning", cpu()))
acc.to_netcdf(sys.argv[3])
marks.append(("writing the L3 file", cpu()))
print(f"interpreter start\t{marks[0][1]:.3f}")
for (_, before), (name, after) in zip(marks, marks[1:]):
    print(f"{name}\\t{after - before:.3f}")
print(f"total\\t{marks[-1][1]:.3f}")
print(f"numba imported\\t{int('numba' in sys.modules)}")
"""


def write_segment(cache: Path) -> Path:
    """The benchmark orbit segment in ``cache`` (generated once)."""
    from s5p_lockdown.synth.archive import ArchiveGenerator, SynthSettings
    from s5p_lockdown.synth.orbit import orbits_crossing_day, swath
    from s5p_lockdown.synth.writer import product_name

    orbit = orbits_crossing_day(DAY)[ORBIT_OF_DAY]
    geometry = swath(orbit, DAY, lat_band=(33.5, 72.5))
    name = product_name(geometry, orbit)
    path = cache / name.filename
    if not path.exists():  # write_orbit writes atomically: a file in the cache is complete
        from s5p_lockdown.synth.writer import write_orbit

        generator = ArchiveGenerator(SynthSettings(seed=0))
        fields = generator.orbit_fields(geometry, DAY, orbit, generator.model.weather(DAY))
        path = write_orbit(cache, geometry, fields, name)
    return path


def run_command(args: list[str], env: dict | None = None) -> dict:
    """Run ``args`` in a new process: wall seconds, CPU seconds and peak RSS (MB) of it."""
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode()
    process.stderr.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({process.returncode}):\n{stderr}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per configuration")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "s5p-bench-cache",
                        help="folder of the generated orbit segment (kept between runs)")
    args = parser.parse_args()
    command = str(Path(sys.executable).with_name("s5p-lockdown"))
    segment = write_segment(args.cache)
    print(f"segment {segment.name}: {segment.stat().st_size / 1e6:.0f} MB; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    from s5p_lockdown import aot

    if not aot.module_path().exists():
        sys.exit("the compiled kernels are not built: run `s5p-lockdown compile` (make venv does)")
    cores = os.cpu_count() or 1
    # (grid, threads, kernels): the default (one thread, compiled ahead of time), the same on
    # numba's JIT (no compiled module: what every process paid before), numba's parallel kernel
    configs = [(res, threads, kernels) for res in GRIDS
               for threads, kernels in ((1, "compiled"), (1, "jit"), (cores, "jit"))]
    results: dict = {config: [] for config in configs}
    with tempfile.TemporaryDirectory() as tmp:
        no_module = {**os.environ, aot.DIR_VARIABLE: f"{tmp}/no-compiled-module"}

        def args_of(res, threads, kernels):
            return [command, "grid", str(segment), "--bin-spatial", GRIDS[res],
                    "--threads", str(threads), "-o", f"{tmp}/l3_{res}_{threads}_{kernels}.nc"]

        def run(config):
            return run_command(args_of(*config), env=None if config[2] == "compiled" else no_module)

        for config in configs:  # warm-up: numba cache, page cache
            run(config)
        for _ in range(args.rounds):
            for config in configs:
                results[config].append(run(config))
        sizes = {config: Path(args_of(*config)[-1]).stat().st_size / 1e6 for config in configs}
        stages = {}
        for res in GRIDS:
            out = subprocess.run([sys.executable, "-c", STAGES, str(segment), GRIDS[res],
                                  f"{tmp}/stages_{res}.nc"], check=True, capture_output=True,
                                 text=True).stdout
            stages[res] = dict(line.split("\t") for line in out.splitlines())

    print(f"\nwhole process, {args.rounds} alternating runs each after a warm-up "
          "(HARP: docs/references.md, measured on this machine kind, not here)")
    print(f"{'grid':>5} {'threads':>7} {'kernels':>8} {'wall s (median, range)':>24} {'CPU s':>6} {'peak MB':>8} "
          f"{'file MB':>8} {'HARP wall s':>12} {'speed-up':>10} {'by CPU':>10} {'target':>7} "
          f"{'HARP peak':>10}")
    for (res, threads, kernels), runs in results.items():
        wall = [r["wall"] for r in runs]
        median = statistics.median(wall)
        harp = HARP[res]["seconds"]
        cpu = statistics.median(r["cpu"] for r in runs)
        peak = max(r["peak_mb"] for r in runs)
        harp_peak = HARP[res]["peak_gb"]
        print(f"{res:>5} {threads:>7} {kernels:>8} {median:>8.2f} ({min(wall):.2f}-{max(wall):.2f})"
              f"{'':>5} {cpu:>6.2f} {peak:>8.0f} "
              f"{sizes[(res, threads, kernels)]:>8.1f} {harp[0]:>5.2f}-{harp[1]:<6.2f} "
              f"{harp[0] / median:>4.2f}-{harp[1] / median:<5.2f} "
              f"{harp[0] / cpu:>4.2f}-{harp[1] / cpu:<5.2f} {TARGET_SPEEDUP[res]:>6}x "
              f"{'-' if harp_peak is None else f'{harp_peak * 1024:.0f} MB':>10}")
    print("\nwhere one process's CPU time goes (in-process, seconds):")
    imported = {res: stages[res].pop("numba imported") == "1" for res in GRIDS}
    names = list(stages[0.1])
    print(f"{'stage':<42}" + "".join(f"{res:>8}" for res in GRIDS))
    for name in names:
        print(f"{name:<42}" + "".join(f"{float(stages[res][name]):>8.3f}" for res in GRIDS))
    print("numba imported by that process: " + ", ".join(
        f"{res}°: {'yes' if imported[res] else 'no'}" for res in GRIDS))
    print("\nWall times vary with the other jobs on this shared machine; CPU time is the robust "
          "figure under contention. 'by CPU' divides HARP's wall time (single-threaded, quiet "
          "machine: about its CPU time) by this command's CPU time (user + system, all threads), "
          "the speed-up to expect on a quiet machine with one thread.")


if __name__ == "__main__":
    main()
