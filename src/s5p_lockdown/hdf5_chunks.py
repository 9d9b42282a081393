"""Fast reading of scanline rows of chunked, deflate-compressed HDF5 variables.

Why this is written by hand: HDF5 inflates chunks with the system zlib, which is the largest
single cost of gridding an orbit. Measured on one 356,400-pixel Europe segment (the seven
variables binning reads, 9.4 MB of compressed chunks): zlib inflate 44 ms, libdeflate 16 ms;
h5py's complete read (inflate, un-shuffle, copies) 69 ms, this module's 29 ms. No library runs
HDF5's filter pipeline with libdeflate, so :func:`read_rows` takes the raw chunks through
h5py's direct chunk API (HDF5 still parses the file and finds the chunks) and undoes the
filters itself: ``fletcher32`` (checksum of the stored bytes verified, as HDF5 does),
``deflate`` (libdeflate, via the ``deflate`` package) and ``shuffle`` (numba:
:mod:`s5p_lockdown.hdf5_kernels`). Any other layout is read by h5py, and so is a chunk the fast
path cannot decode, so the result never depends on which path ran (``tests/test_hdf5_chunks.py``
compares both).

The fast path applies to ``(time=1, scanline, ...)`` variables chunked along scanlines only
(chunks of length 1 on the first dimension and spanning all but the first two), as in S5P L2
products, with a numeric type and every chunk stored, on a little-endian machine, and filters
among shuffle, deflate, Fletcher-32 applied in that order (the pipeline of real S5P products
and of h5py; netCDF-C 4.7 and later checksum first, which h5py then reads).
"""

from __future__ import annotations

import deflate
import h5py
import numpy as np

from s5p_lockdown import aot

#: HDF5 filter identifiers (H5Zpublic.h).
FILTER_DEFLATE = 1
FILTER_SHUFFLE = 2
FILTER_FLETCHER32 = 3
#: The filters the fast path undoes, in the order they must have been applied when writing
#: (any subset, each at most once).
_WRITE_ORDER = (FILTER_SHUFFLE, FILTER_DEFLATE, FILTER_FLETCHER32)


class ChunkError(ValueError):
    """A stored chunk cannot be decoded (corrupt data, wrong size or checksum)."""


def read_rows(var: h5py.Dataset, rows: slice) -> np.ndarray:
    """``var[0, rows, ...]`` for a ``(1, scanline, ...)`` variable (in the file's byte order,
    as h5py returns it).

    ``rows`` is a slice (start/stop may be None). Raises what ``var[0, rows, ...]`` raises for
    a damaged file (OSError, RuntimeError, ...): a chunk the fast path cannot decode is read
    again by h5py, so a file h5py reads is never rejected here (e.g. one written with HDF5's
    option to leave partial edge chunks unfiltered, which h5py cannot tell from a corrupt one).
    """
    pipeline = _fast_pipeline(var)
    if pipeline is None or rows.step not in (None, 1):
        return var[0, rows, ...]
    try:
        return _read_fast(var, rows, pipeline)
    except ChunkError:
        return var[0, rows, ...]


def _read_fast(var: h5py.Dataset, rows: slice, pipeline: list[int]) -> np.ndarray:
    """:func:`read_rows` through the direct chunk API; raises :class:`ChunkError`."""
    start, stop, _ = rows.indices(var.shape[1])
    stop = max(start, stop)
    if start == stop:
        return var[0, start:stop, ...]
    itemsize = var.dtype.itemsize
    out = np.empty((stop - start,) + var.shape[2:], var.dtype)
    out_bytes = out.reshape(-1).view(np.uint8)
    chunk_rows = var.chunks[1]
    row_items = int(np.prod(var.shape[2:], dtype=np.int64))
    chunk_offset_tail = (0,) * (var.ndim - 2)
    for first in range(start - start % chunk_rows, stop, chunk_rows):
        filter_mask, raw = var.id.read_direct_chunk((0, first) + chunk_offset_tail)
        data = _decode(raw, pipeline, filter_mask, chunk_rows * row_items * itemsize)
        lo, hi = max(start, first), min(stop, first + chunk_rows)  # rows taken from this chunk
        first_item = (lo - first) * row_items
        target = out_bytes[(lo - start) * row_items * itemsize:(hi - start) * row_items * itemsize]
        shuffled = any(code == FILTER_SHUFFLE and not filter_mask & (1 << index)
                       for index, code in enumerate(pipeline))
        if shuffled and itemsize > 1:
            _unshuffle(data, itemsize, first_item, target)
        else:
            target[:] = data[first_item * itemsize:first_item * itemsize + target.size]
    return out


def _fast_pipeline(var: h5py.Dataset) -> list[int] | None:
    """The filter codes of ``var`` in write order when the fast path applies to it; None when
    h5py must read it."""
    chunks = var.chunks
    if (
        chunks is None
        or var.ndim < 2
        or var.shape[0] != 1
        or chunks[0] != 1
        or tuple(chunks[2:]) != tuple(var.shape[2:])
        or var.dtype.kind not in "iuf"
        or not np.little_endian  # bytes are joined into words in little-endian order
    ):
        return None
    dsid = var.id
    n_chunks = -(-var.shape[1] // chunks[1])
    if dsid.get_num_chunks() != n_chunks:
        return None  # some chunks were never written: HDF5 supplies the fill value
    plist = dsid.get_create_plist()
    pipeline = []
    for i in range(plist.get_nfilters()):
        code, _flags, values, _name = plist.get_filter(i)
        if code not in _WRITE_ORDER:
            return None
        if code == FILTER_SHUFFLE and tuple(values[:1]) != (var.dtype.itemsize,):
            return None  # shuffled with another element size than the type's
        pipeline.append(code)
    order = [_WRITE_ORDER.index(code) for code in pipeline]
    if order != sorted(set(order)):
        return None  # another order (e.g. netCDF-C >= 4.7 checksums first) or a repeated filter
    return pipeline


def _decode(raw: bytes, pipeline: list[int], filter_mask: int, size: int) -> np.ndarray:
    """Undo the checksum and compression filters of one chunk (not shuffle); returns the
    ``size`` bytes as a uint8 array, still shuffled if the pipeline shuffles."""
    data = raw
    for index in range(len(pipeline) - 1, -1, -1):  # filters are undone in reverse order
        code = pipeline[index]
        if filter_mask & (1 << index):
            continue  # HDF5 skipped this (optional) filter when writing the chunk
        if code == FILTER_FLETCHER32:
            data = _check_fletcher32(data)
        elif code == FILTER_DEFLATE:
            try:
                data = deflate.zlib_decompress(data, size)
            except deflate.DeflateError:
                raise ChunkError("deflate stream is corrupt") from None
    if len(data) != size:
        raise ChunkError(f"chunk holds {len(data)} bytes, expected {size}")
    return np.frombuffer(data, np.uint8)


def _check_fletcher32(data: bytes) -> bytes:
    """``data`` without its trailing Fletcher-32 checksum, which must match. Like HDF5, the
    checksum is also accepted with the bytes of each 16-bit half swapped (as old HDF5 versions
    wrote it)."""
    if len(data) < 4:
        raise ChunkError("chunk is shorter than its checksum")
    body = np.frombuffer(data, np.uint8, len(data) - 4)
    computed = int(aot.function("fletcher32")(body))
    swapped = ((computed & 0x00FF00FF) << 8) | ((computed >> 8) & 0x00FF00FF)
    stored = int.from_bytes(data[-4:], "little")
    if stored not in (computed, swapped):
        raise ChunkError("Fletcher-32 checksum mismatch")
    return data[:-4]


def _unshuffle(src: np.ndarray, itemsize: int, first_item: int, dst: np.ndarray) -> None:
    """Undo HDF5's shuffle: byte ``b`` of item ``i`` is stored at ``b * n_items + i`` of the
    chunk ``src``. Writes items ``first_item ...`` (as many as fit) to the bytes ``dst``."""
    n_items = src.size // itemsize
    if itemsize == 4:  # float32 and int32, most of an S5P file: a loop LLVM vectorises
        aot.function("join_4_byte_items")(src, n_items, first_item, dst.view(np.uint32))
    else:
        aot.function("join_items")(src, itemsize, n_items, first_item, dst)
