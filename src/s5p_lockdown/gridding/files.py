"""Grid whole L2 files into one accumulator with a chosen engine (used by ``s5p-lockdown grid``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from s5p_lockdown.errors import ConfigError
from s5p_lockdown.gridding.accumulator import GridAccumulator
from s5p_lockdown.gridding.grid import GridSpec

#: ``numba``: this package's kernel; ``harp``: HARP's Python API (optional, imported lazily).
ENGINES = ("numba", "harp")

#: Called after each file with (index from 1, number of files, path, pixels counted, seconds).
Progress = Callable[[int, int, Path, int, float], None]


def grid_l2_files(
    paths: Sequence[str | Path],
    grid: GridSpec,
    *,
    qa_threshold: float | None = 0.75,
    engine: str = "numba",
    threads: int | None = 1,
    point: bool = False,
    progress: Progress | None = None,
) -> GridAccumulator:
    """Bin S5P L2 NO2 files into one ``weight``-weighted accumulator (like ``harpconvert`` with
    ``bin_spatial`` over the merged files): pixels with ``qa_value > qa_threshold``, area binning
    unless ``point``. Files are read one at a time, so memory does not grow with their number."""
    if engine not in ENGINES:
        raise ConfigError(f"gridding engine must be one of {ENGINES}, got {engine!r}")
    total = GridAccumulator(grid, threads=threads)
    for index, path in enumerate(map(Path, paths), start=1):
        start = time.perf_counter()
        if engine == "harp":
            from s5p_lockdown.gridding.harp_engine import bin_file_with_harp

            part = bin_file_with_harp(path, grid, qa_threshold=qa_threshold, point=point)
            total.merge(part)
            counted = part.count
        else:
            from s5p_lockdown.io import read_l2_arrays

            # only what binning NO2 needs (no wind, cloud or pressure), as plain arrays
            dataset = read_l2_arrays(path, bbox=grid.bounds, optional=False)
            counted = total.add_dataset(dataset, qa_threshold, point=point)
        if progress is not None:
            progress(index, len(paths), path, counted, time.perf_counter() - start)
    return total
