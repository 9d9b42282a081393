"""Optional engine that delegates binning to HARP's own Python API (``import harp``).

HARP is not a dependency: it is imported only when this engine is used (install it with
``conda install -c conda-forge harp``). Each L2 file is imported with the operations a HARP user
would write (see :func:`harp_operations`), exported to a temporary netCDF file and read back with
:func:`~s5p_lockdown.gridding.harp_l3.read_l3`, so the output schema is the same as the numba
engine's; HARP does not record per-cell pixel counts, so ``pixel_count`` is -1 (unknown).
HARP averages the precision linearly into ``…_uncertainty`` (Σ w·σ / Σ w, as the numba engine
does); it writes no ``…_uncertainty_random``, which is therefore NaN (unknown) with this engine.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import ModuleType

from s5p_lockdown.errors import S5PLockdownError
from s5p_lockdown.gridding.accumulator import GridAccumulator
from s5p_lockdown.gridding.grid import GridSpec
from s5p_lockdown.gridding.harp_l3 import read_l3
from s5p_lockdown.gridding.schema import UNCERTAINTY, VALUE


def import_harp() -> ModuleType:
    """HARP's Python module, or an error telling how to get it."""
    try:
        import harp
    except ImportError:
        raise S5PLockdownError(
            "the 'harp' gridding engine needs HARP's Python package, which is not installed "
            "(conda install -c conda-forge harp); use the default 'numba' engine instead"
        ) from None
    return harp


def harp_operations(grid: GridSpec, qa_threshold: float | None = 0.75, point: bool = False) -> str:
    """The HARP operations string equivalent to the numba engine's settings.

    ``qa_threshold`` 0.75 becomes ``tropospheric_NO2_column_number_density_validity>75`` (HARP's
    validity is the raw qa_value byte, 0–100).
    """
    geometry = "latitude,longitude" if point else "latitude_bounds,longitude_bounds"
    operations = []
    if qa_threshold is not None:
        operations.append(f"{VALUE}_validity>{qa_threshold * 100:g}")
    operations += [
        "derive(datetime_stop {time})",
        f"keep(datetime_start,datetime_stop,{geometry},{VALUE},{UNCERTAINTY})",
        grid.harp_operation(),
    ]
    return ";".join(operations)


def bin_file_with_harp(
    path: str | Path, grid: GridSpec, *, qa_threshold: float | None = 0.75, point: bool = False
) -> GridAccumulator:
    """Grid one L2 file with HARP; an accumulator in ``weight`` weighting (empty if HARP finds
    no pixel left after filtering)."""
    harp = import_harp()
    path = Path(path)
    try:
        operations = harp_operations(grid, qa_threshold, point)
        product = harp.import_product(str(path), operations=operations)
    except harp.NoDataError:
        empty = GridAccumulator(grid)
        empty.sources.append(path.name)
        return empty
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{path.stem}_L3.nc"
        harp.export_product(product, str(out), file_format="netcdf")
        return GridAccumulator.from_dataset(read_l3(out))
