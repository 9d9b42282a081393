"""Write L3 grids (:class:`~s5p_lockdown.gridding.schema.L3Variable` lists) as netCDF-4 with
the netCDF4 library directly, without xarray: the files ``xarray.open_dataset`` and
:func:`~s5p_lockdown.gridding.harp_l3.read_l3` read back into the schema's Dataset.

Layout: gridded variables (time=1, latitude, longitude) in chunks of (1, :data:`CHUNK`,
:data:`CHUNK`) cells, deflated at :data:`COMPRESSION_LEVEL` (no byte shuffle); other variables
contiguous. Floats have a NaN ``_FillValue`` (none on coordinates, bounds, ``count`` and
``weight``, whose empty cells hold 0); datetime64 variables are stored as float64 seconds since
2010-01-01 (NaT as NaN), as xarray encodes them. A gridded variable given as a function of
latitude rows is computed and written one band of :data:`CHUNK` rows at a time, with a chunk
cache of one band, so writing a 0.01° grid over Europe needs no grid-sized temporary; chunks
that would hold only NaN (= ``_FillValue``) are not written at all (HDF5 leaves them unallocated
and readers get the fill value): one orbit covers a small part of a Europe grid.

Compression settings, measured on a full-size Europe orbit segment binned at 0.01° (26.6 M cells
per variable, 145k pixels; ``benchmarks/bench_grid_process.py`` prints the figures): with empty
chunks skipped, zlib level 1 without shuffle wrote 65.6 MB in 2.3 CPU-s, level 1 with shuffle
76 MB in 2.9 s, level 2 63.8 MB in 2.4 s, level 4 with shuffle (the xarray writer's former
setting, all chunks) 70.8 MB in 6.0 s; uncompressed 519 MB in 0.6 s (too large to keep).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from s5p_lockdown.gridding.schema import GRID_DIMS, L3Variable

#: Chunk edge (cells) of gridded variables: 256×256 float64 = 512 KiB uncompressed.
CHUNK = 256
#: zlib level of gridded variables.
COMPRESSION_LEVEL = 1
#: Byte shuffle before deflating (makes these mostly-NaN float64 grids larger, not smaller).
SHUFFLE = False
#: Units of datetime variables in the file.
TIME_UNITS = "seconds since 2010-01-01"
_EPOCH = np.datetime64("2010-01-01T00:00:00", "ns")
#: Variables written without a _FillValue (all their values are valid).
_NO_FILL = ("latitude", "longitude", "latitude_bounds", "longitude_bounds", "count", "weight")


def _encoded(var: L3Variable) -> tuple[np.dtype, np.ndarray | None, dict]:
    """(file dtype, values to write or None for gridded variables, extra attributes)."""
    if var.dtype.kind == "M":
        values = var.values().astype("datetime64[ns]")
        seconds = (values - _EPOCH) / np.timedelta64(1, "s")
        return np.dtype(np.float64), seconds, {"units": TIME_UNITS, "calendar": "proleptic_gregorian"}
    return var.dtype, None if var.dims == GRID_DIMS else var.values(), {}


def write_l3(path: str | Path, variables: list[L3Variable], attrs: dict) -> Path:
    """Write ``variables`` and global ``attrs`` to the netCDF-4 file ``path`` (not atomically:
    callers wrap it in :func:`s5p_lockdown.outputs.write_atomically`)."""
    import netCDF4

    path = Path(path)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.set_auto_maskandscale(False)
        for var in variables:
            for dim, size in zip(var.dims, var.shape):
                if dim not in nc.dimensions:
                    nc.createDimension(dim, size)
        for var in variables:
            dtype, values, extra = _encoded(var)
            fill = np.nan if dtype.kind == "f" and var.name not in _NO_FILL else None
            options = {}
            if var.dims == GRID_DIMS:
                chunks = (1, min(CHUNK, var.shape[1]), min(CHUNK, var.shape[2]))
                options = dict(compression="zlib", complevel=COMPRESSION_LEVEL, shuffle=SHUFFLE,
                               chunksizes=chunks)
            out = nc.createVariable(var.name, dtype, var.dims, fill_value=fill, **options)
            out.setncatts({**var.attrs, **extra})
            if values is not None:
                out[...] = values
                continue
            band_bytes = CHUNK * var.shape[2] * dtype.itemsize
            out.set_var_chunk_cache(size=band_bytes, nelems=max(1, var.shape[2] // CHUNK) * 2 + 1)
            for start in range(0, var.shape[1], CHUNK):
                rows = slice(start, min(start + CHUNK, var.shape[1]))
                _write_band(out, rows, var.rows(rows), skip_nan=fill is not None)
        nc.setncatts(attrs)
    return path


def _write_band(out, rows: slice, band: np.ndarray, skip_nan: bool) -> None:
    """Write latitude rows ``rows`` of a gridded variable; with ``skip_nan``, only the runs of
    chunk columns that hold a non-NaN value (the others stay unallocated: fill value)."""
    if not skip_nan:
        out[0, rows, :] = band
        return
    n_lon = band.shape[1]
    starts = np.arange(0, n_lon, CHUNK)
    filled = np.logical_or.reduceat(~np.isnan(band).all(axis=0), starts)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], filled.astype(np.int8), [0]])))
    for first, stop in zip(edges[::2], edges[1::2]):  # runs of chunks with data
        columns = slice(int(starts[first]), min(int(stop) * CHUNK, n_lon))
        out[0, rows, columns] = band[:, columns]
