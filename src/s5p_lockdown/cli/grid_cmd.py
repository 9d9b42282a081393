"""``s5p-lockdown grid``: bin L2 files onto a lat/lon grid, like ``harpconvert`` with
``bin_spatial``."""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path

import click

from s5p_lockdown.errors import ConfigError


def _grid_spec(ctx, param, value):
    from s5p_lockdown.gridding import GridSpec

    try:
        return GridSpec.from_harp(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _progress(index: int, total: int, path: Path, counted: int, seconds: float) -> None:
    pixels = "pixel count unknown" if counted < 0 else f"{counted:,} pixels in the grid"
    click.echo(f"[{index}/{total}] {path.name}: {pixels} ({seconds:.2f} s)", err=True)


@click.command("grid")
@click.argument("l2files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bin-spatial", "grid", required=True, callback=_grid_spec,
              metavar="LAT_EDGES,LAT0,DLAT,LON_EDGES,LON0,DLON",
              help="Grid as HARP's bin_spatial arguments (edge counts, first edges, steps in "
                   "degrees), e.g. 381,34,0.1,701,-25,0.1 for 0.1° over 34–72°N, 25°W–45°E.")
@click.option("--qa", "qa_threshold", type=click.FloatRange(0, 1), default=0.75,
              show_default=True, help="Keep pixels with qa_value above this (HARP validity>75).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="L3 netCDF file to write.")
@click.option("--engine", type=click.Choice(["numba", "harp"]), default="numba",
              show_default=True, help="Binning implementation; 'harp' needs HARP's Python package.")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="Threads for area binning: 1 runs the serial kernel (compiled ahead of time "
                   "by `s5p-lockdown compile`, so no numba start-up); more run numba's parallel "
                   "kernel, which pays only on many cores and very fine grids.")
@click.option("--point", is_flag=True,
              help="Point binning of pixel centres instead of area-weighted binning of bounds.")
def grid(l2files, grid, qa_threshold, output, engine, threads, point):
    """Grid one or more S5P L2 NO2 files (L2FILE...) into one L3 netCDF file.

    Each pixel (qa_value > QA, valid column) adds weight = overlap area / cell area to every cell
    it overlaps (planar degrees, exact clipping, as HARP's bin_spatial); a cell's value is the
    weighted mean of the tropospheric column (mol m-2), its uncertainty Σw·σ/Σw (as HARP's
    _uncertainty) and its random uncertainty sqrt(Σ(w·σ)²)/Σw (HARP's _uncertainty_random), σ
    being the pixel precision. All files are merged into one grid, as harpconvert does with
    several inputs.
    """
    from s5p_lockdown.gridding import grid_l2_files

    click.echo(f"gridding {len(l2files)} file(s) on {grid} with the {engine} engine", err=True)
    accumulator = grid_l2_files(
        l2files, grid, qa_threshold=qa_threshold, engine=engine, threads=threads, point=point,
        progress=_progress,
    )
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    options = ["--qa", f"{qa_threshold:g}", "--engine", engine] + (["--point"] if point else [])
    history = (
        f"{now} s5p-lockdown grid --bin-spatial {grid.harp_operation()[len('bin_spatial('):-1]} "
        f"{shlex.join(options + [p.name for p in l2files])}"
    )
    accumulator.to_netcdf(output, history=history)
    click.echo(f"wrote {output} ({accumulator.count:,} pixels)", err=True)


@click.command("compile")
@click.option("--check", is_flag=True,
              help="Only say whether it is built for the current sources and versions "
                   "(exit status 1 if not).")
def compile_kernels(check):
    """Compile the gridding and reading kernels ahead of time (~10 s, once per installation).

    Processes that grid or read S5P files (this package's commands and every Snakemake job
    that grids) then start without numba, ~0.3 s sooner each; without it they use numba's JIT,
    with bit-identical results. Rebuilt only when the sources or the Python, numba or numpy
    versions change; `make venv` runs it. Needs C and C++ compilers and the Python
    headers.
    """
    import time

    from s5p_lockdown import aot
    from s5p_lockdown.errors import S5PLockdownError

    path = aot.module_path()
    if path.exists():
        click.echo(f"compiled kernels are up to date: {path.name}", err=True)
        return
    if check:
        click.echo("the compiled kernels are not built for these sources and versions "
                   "(run `s5p-lockdown compile`); numba's JIT is used", err=True)
        raise SystemExit(1)
    click.echo(f"compiling {len(aot.EXPORTS)} kernel functions ahead of time ...", err=True)
    start = time.perf_counter()
    try:
        aot.build()
    except OSError as exc:  # the folder: e.g. a read-only site-packages
        raise S5PLockdownError(
            f"cannot write the compiled kernels into {path.parent} ({exc.strerror or exc}); set "
            f"{aot.DIR_VARIABLE} to a writable folder (the processes that grid must see it "
            "too). Meanwhile numba's JIT is used: same results, ~0.3 s slower start per "
            "process") from None
    except Exception as exc:  # compiler, headers or linker missing: say so in one line
        raise S5PLockdownError(
            f"could not compile the kernels ahead of time ({type(exc).__name__}: {exc}); this "
            "needs C and C++ compilers (Debian: gcc, g++) and the Python headers. Meanwhile numba's "
            "JIT is used: same results, ~0.3 s slower start per process") from None
    click.echo(f"compiled into {path} ({time.perf_counter() - start:.0f} s)", err=True)
