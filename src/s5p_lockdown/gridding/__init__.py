"""Regular latitude/longitude grids and HARP ``bin_spatial``-compatible binning.

- :class:`GridSpec` – the grid (HARP ``bin_spatial`` arguments).
- :class:`GridAccumulator` – streaming, mergeable area-weighted (or point) binning with numba.
- :func:`composite` – merge accumulators by weight or with each input equal.
- :func:`read_l3` – read HARP (or our own) L3 grids into the same Dataset schema.
- :func:`grid_l2_files` – bin L2 files with the ``numba`` or the optional ``harp`` engine.
"""

from importlib import import_module

# Names are imported from their modules on first use (PEP 562), so that code needing only the
# grid (the workflow's plan, every Snakemake job at start-up) does not pay for numba and xarray.
_MODULE_OF = {
    "ENGINES": "files",
    "GridAccumulator": "accumulator",
    "GridSpec": "grid",
    "composite": "accumulator",
    "grid_from_dataset": "harp_l3",
    "grid_l2_files": "files",
    "read_l3": "harp_l3",
    "write_netcdf": "accumulator",
}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
