"""Write L3 grids (:class:`~s5p_lockdown.gridding.schema.L3Variable` lists) as netCDF-4 with
the netCDF4 library directly, without xarray: the files ``xarray.open_dataset`` and
:func:`~s5p_lockdown.gridding.harp_l3.read_l3` read back into the schema's Dataset.

Layout: gridded variables (time=1, latitude, longitude) in chunks of (1, :data:`CHUNK`,
:data:`CHUNK`) cells, deflated at :data:`COMPRESSION_LEVEL` (no byte shuffle); other variables
contiguous. Floats have a NaN ``_FillValue`` (none on coordinates, bounds, ``count`` and
``weight``, whose empty cells hold 0); datetime64 variables are stored as float64 seconds since
2010-01-01 (NaT as NaN), as xarray encodes them.

How: netCDF4 defines the file and writes the small variables; the gridded ones are then computed
one band of :data:`CHUNK` latitude rows at a time (no grid-sized temporary: a 0.01° Europe grid
is 213 MB per variable) and their chunks deflated with libdeflate on a thread per core and
written with HDF5 direct chunk writes (h5py), the standard deflate filter any netCDF-4 reader
inflates. Chunks that would hold only NaN (= ``_FillValue``) are not written at all (HDF5 leaves
them unallocated and readers get the fill value: one orbit covers a small part of a Europe
grid), and an all-zero chunk is deflated once. Given the cells with data (``occupied``, the
accumulator's weights), chunks without any are not even computed (0.01°, one Europe orbit:
218 of 420 chunks hold data; the writer's CPU time went from 2.05 to 1.87 s).

Compression settings, measured on a full-size Europe orbit segment binned at 0.01° (26.6 M cells
per variable, 145k pixels, all chunks written through netCDF4 with zlib): level 1 without
shuffle wrote 65.6 MB in 2.3 CPU-s, level 1 with shuffle 76 MB in 2.9 s, level 2 63.8 MB in
2.4 s, level 4 with shuffle (the former xarray writer's setting) 70.8 MB in 6.0 s, uncompressed
519 MB in 0.6 s (too large to keep). libdeflate at level 1 deflates a 512 KiB chunk in 4.4 ms
where zlib takes 10.5 ms, to a 3 % smaller stream. ``benchmarks/bench_grid_process.py`` prints
the whole command's figures.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from s5p_lockdown.gridding.schema import GRID_DIMS, L3Variable

#: ``occupied(rows, columns)``: boolean (latitude, longitude) block, True in cells with data.
Occupancy = Callable[[slice, slice], np.ndarray]

#: Chunk edge (cells) of gridded variables: 256×256 float64 = 512 KiB uncompressed.
CHUNK = 256
#: zlib level of gridded variables.
COMPRESSION_LEVEL = 1
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


def write_l3(path: str | Path, variables: list[L3Variable], attrs: dict,
             occupied: Occupancy | None = None) -> Path:
    """Write ``variables`` and global ``attrs`` to the netCDF-4 file ``path`` (not atomically:
    callers wrap it in :func:`s5p_lockdown.outputs.write_atomically`).

    ``occupied(rows, columns)``, when given, is True in the cells that hold data: outside them
    every gridded variable must be NaN (with a NaN fill value) or 0 (without one). Chunks with no
    such cell are then not computed at all (one orbit covers about half the chunks of a 0.01°
    Europe grid); without it every chunk is computed and checked."""
    import netCDF4

    path = Path(path)
    gridded = []
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
                options = dict(compression="zlib", complevel=COMPRESSION_LEVEL, shuffle=False,
                               chunksizes=chunks)
            out = nc.createVariable(var.name, dtype, var.dims, fill_value=fill, **options)
            out.setncatts({**var.attrs, **extra})
            if values is None:
                gridded.append((var, fill is not None))
            else:
                out[...] = values
        nc.setncatts(attrs)
    _write_chunks(path, gridded, occupied)
    return path


def _chunks_with_data(occupied: Occupancy | None, rows: slice, n_lon: int, columns_per_chunk: int) -> np.ndarray:
    """Boolean per chunk of the band ``rows``: does it hold a cell with data (all True without
    ``occupied``)."""
    n_chunks = -(-n_lon // columns_per_chunk)
    if occupied is None:
        return np.ones(n_chunks, bool)
    cells = np.asarray(occupied(rows, slice(None)), bool)
    padded = np.zeros((cells.shape[0], n_chunks * columns_per_chunk), bool)
    padded[:, :n_lon] = cells
    return padded.reshape(cells.shape[0], n_chunks, columns_per_chunk).any(axis=(0, 2))


def _write_chunks(path: Path, gridded: list[tuple[L3Variable, bool]], occupied: Occupancy | None) -> None:
    """Write the gridded variables' chunks, deflated with libdeflate (2-3x faster than zlib at
    the same level) on a thread per core this process may use, straight into the file (HDF5
    direct chunk writes: the deflate filter's format, readable by any netCDF-4 reader). Chunks that are all NaN
    where NaN is the fill value (``skip_nan``) are not written; all-zero chunks are deflated
    once. Only the columns between the band's first and last chunk with data are computed."""
    import deflate
    import h5py

    zero_chunks: dict[np.dtype, bytes] = {}

    def zero_chunk(dtype: np.dtype, shape: tuple[int, int]) -> bytes:
        if dtype not in zero_chunks:
            zero_chunks[dtype] = deflate.zlib_compress(np.zeros(shape, dtype), COMPRESSION_LEVEL)
        return zero_chunks[dtype]

    def compressed(block: np.ndarray, skip_nan: bool) -> bytes | None:
        if skip_nan and np.isnan(block).all():
            return None
        if not block.any():
            return zero_chunk(block.dtype, block.shape)
        return deflate.zlib_compress(block, COMPRESSION_LEVEL)

    with h5py.File(path, "r+") as h5, ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        # chunks are written in a fixed order (the file's bytes do not depend on thread timing);
        # the next band is computed while the threads deflate the previous ones' chunks
        pending: deque = deque()  # (dataset, chunk offset, Future of the deflated bytes or None)
        bands = {}
        for var, skip_nan in gridded:
            out = h5[var.name]
            _, n_lat, n_lon = var.shape
            rows_per_chunk, cols_per_chunk = out.chunks[1:]
            shape = (rows_per_chunk, cols_per_chunk)
            for start in range(0, n_lat, rows_per_chunk):
                rows = slice(start, min(start + rows_per_chunk, n_lat))
                if (start, shape) not in bands:
                    bands[start, shape] = _chunks_with_data(occupied, rows, n_lon, cols_per_chunk)
                with_data = bands[start, shape]
                for k, block in _blocks_with_data(var, rows, with_data, shape, skip_nan):
                    pending.append((out, (0, start, k * cols_per_chunk), pool.submit(compressed, block, skip_nan)))
                if not skip_nan:  # chunks without data hold zeros
                    for k in np.flatnonzero(~with_data):
                        pending.append((out, (0, start, k * cols_per_chunk), zero_chunk(var.dtype, shape)))
                # write what is ready; wait only when more than about two bands are in flight
                while pending and (len(pending) > 2 * len(with_data) or _ready(pending[0][2])):
                    _write_first(pending)
        while pending:
            _write_first(pending)


def _ready(data: Future | bytes | None) -> bool:
    return not isinstance(data, Future) or data.done()


def _write_first(pending: deque) -> None:
    """Write the first pending chunk (waiting for its deflated bytes; None: not written)."""
    out, offset, data = pending.popleft()
    data = data.result() if isinstance(data, Future) else data
    if data is not None:
        out.id.write_direct_chunk(offset, data)


def _blocks_with_data(var: L3Variable, rows: slice, with_data: np.ndarray, shape: tuple[int, int],
                      skip_nan: bool):
    """(chunk column index, C-contiguous block of one chunk's shape) for each chunk of the band
    ``rows`` that holds data; only the columns from the first to the last of them are computed,
    and edge chunks are padded (NaN where NaN is the fill value, else 0)."""
    if not with_data.any():
        return
    n_lon = var.shape[2]
    cols_per_chunk = shape[1]
    first_chunk, last_chunk = np.flatnonzero(with_data)[[0, -1]]
    part = var.block(rows, slice(first_chunk * cols_per_chunk, min((last_chunk + 1) * cols_per_chunk, n_lon)))
    for k in range(first_chunk, last_chunk + 1):
        if not with_data[k]:
            continue
        block = part[:, (k - first_chunk) * cols_per_chunk:(k - first_chunk + 1) * cols_per_chunk]
        if block.shape != shape:
            padded = np.full(shape, np.nan if skip_nan else 0, var.dtype)
            padded[:block.shape[0], :block.shape[1]] = block
            block = padded
        yield k, np.ascontiguousarray(block)
