"""Regular latitude/longitude grids and HARP ``bin_spatial``-compatible binning.

- :class:`GridSpec` – the grid (HARP ``bin_spatial`` arguments).
- :class:`GridAccumulator` – streaming, mergeable area-weighted (or point) binning with numba.
- :func:`composite` – merge accumulators by weight or with each input equal.
- :func:`read_l3` – read HARP (or our own) L3 grids into the same Dataset schema.
- :func:`grid_l2_files` – bin L2 files with the ``numba`` or the optional ``harp`` engine.
"""

from s5p_lockdown.gridding.accumulator import GridAccumulator, composite, write_netcdf
from s5p_lockdown.gridding.files import ENGINES, grid_l2_files
from s5p_lockdown.gridding.grid import GridSpec
from s5p_lockdown.gridding.harp_l3 import grid_from_dataset, read_l3

__all__ = [
    "ENGINES",
    "GridAccumulator",
    "GridSpec",
    "composite",
    "grid_from_dataset",
    "grid_l2_files",
    "read_l3",
    "write_netcdf",
]
