"""The fast chunk reader returns exactly what h5py returns, and rejects damaged chunks."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s5p_lockdown import hdf5_chunks
from s5p_lockdown.hdf5_chunks import ChunkError, _decode, _fast_pipeline, read_rows
from s5p_lockdown.hdf5_kernels import fletcher32

FILTERS = {
    "none": {},
    "shuffle": {"shuffle": True},
    "deflate": {"compression": "gzip", "compression_opts": 3},
    "shuffle+deflate": {"compression": "gzip", "compression_opts": 3, "shuffle": True},
    "shuffle+deflate+fletcher32": {
        "compression": "gzip", "compression_opts": 3, "shuffle": True, "fletcher32": True,
    },
    "fletcher32": {"fletcher32": True},
}


def _values(shape, dtype, rng):
    """Smooth-ish values (compressible, like geophysical fields) with some extremes."""
    base = np.cumsum(rng.normal(size=shape), axis=1)
    if np.dtype(dtype).kind == "f":
        values = base.astype(dtype)
        values.flat[::97] = np.float32(9.96921e36)
        return values
    info = np.iinfo(dtype)
    return np.clip(base * 10, info.min, info.max).astype(dtype)


def _write(path, shape, chunks, dtype, filters, seed=0):
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f.create_dataset("v", shape=shape, chunks=chunks, dtype=dtype, **filters)
        f["v"][...] = _values(shape, dtype, rng)
    return path


@pytest.mark.parametrize("filters", sorted(FILTERS))
@pytest.mark.parametrize(
    "dtype, shape, chunks",
    [
        ("<f4", (1, 37, 9), (1, 8, 9)),  # 37 rows: a partial edge chunk
        ("<f4", (1, 37, 9, 4), (1, 16, 9, 4)),  # corner bounds
        ("<f8", (1, 20, 5), (1, 7, 5)),
        ("<i2", (1, 20, 5), (1, 7, 5)),
        ("|u1", (1, 20, 5), (1, 20, 5)),  # qa_value bytes, a single chunk
        ("<i4", (1, 30), (1, 8)),  # delta_time: one value per scanline
        (">f4", (1, 20, 5), (1, 6, 5)),  # big-endian, kept as h5py returns it
    ],
)
def test_fast_path_equals_h5py(tmp_path, filters, dtype, shape, chunks):
    path = _write(tmp_path / "a.h5", shape, chunks, dtype, FILTERS[filters])
    with h5py.File(path) as f:
        var = f["v"]
        assert _fast_pipeline(var) is not None  # the fast path is what is tested here
        for rows in (slice(None), slice(0, shape[1]), slice(3, 19), slice(7, 8), slice(5, 5),
                     slice(shape[1] - 1, shape[1] + 10)):
            expected = var[0, rows, ...]
            got = read_rows(var, rows)
            assert got.dtype == expected.dtype and got.shape == expected.shape, rows
            np.testing.assert_array_equal(got, expected)


@settings(max_examples=40, deadline=None)
@given(start=st.integers(0, 60), length=st.integers(0, 60), chunk_rows=st.integers(1, 25))
def test_any_row_range(tmp_path_factory, start, length, chunk_rows):
    path = tmp_path_factory.mktemp("rows") / "a.h5"
    _write(path, (1, 50, 6, 4), (1, chunk_rows, 6, 4), "<f4", FILTERS["shuffle+deflate+fletcher32"])
    with h5py.File(path) as f:
        rows = slice(start, start + length)
        np.testing.assert_array_equal(read_rows(f["v"], rows), f["v"][0, rows, ...])


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda f: f.create_dataset("v", data=np.ones((1, 9, 3), "f4"), chunks=(1, 4, 3),
                                                compression="lzf"), id="lzf-filter"),
        pytest.param(lambda f: f.create_dataset("v", data=np.ones((1, 9, 3), "f4")), id="contiguous"),
        pytest.param(lambda f: f.create_dataset("v", data=np.ones((1, 9, 4), "f4"), chunks=(1, 4, 2),
                                                compression="gzip"), id="chunked-across-pixels"),
    ],
)
def test_other_layouts_fall_back_to_h5py(tmp_path, make):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        make(f)
    with h5py.File(tmp_path / "a.h5") as f:
        assert _fast_pipeline(f["v"]) is None
        np.testing.assert_array_equal(read_rows(f["v"], slice(2, 8)), f["v"][0, 2:8])


def test_netcdf_checksum_first_falls_back_to_h5py(tmp_path):
    """netCDF-C puts Fletcher-32 first (a checksum of the unfiltered chunk): h5py reads it."""
    import netCDF4

    with netCDF4.Dataset(tmp_path / "a.nc", "w") as nc:
        for name, size in (("time", 1), ("scanline", 9), ("ground_pixel", 4)):
            nc.createDimension(name, size)
        var = nc.createVariable("v", "f4", ("time", "scanline", "ground_pixel"), zlib=True,
                                shuffle=True, fletcher32=True, chunksizes=(1, 4, 4))
        var[...] = np.arange(36, dtype="f4").reshape(1, 9, 4)
    with h5py.File(tmp_path / "a.nc") as f:
        plist = f["v"].id.get_create_plist()
        assert plist.get_filter(0)[0] == 3  # fletcher32 first
        assert _fast_pipeline(f["v"]) is None
        np.testing.assert_array_equal(read_rows(f["v"], slice(1, 7)), f["v"][0, 1:7])


def test_unwritten_chunks_read_as_fill_value(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        var = f.create_dataset("v", shape=(1, 12, 3), chunks=(1, 4, 3), dtype="f4",
                               compression="gzip", fillvalue=-1.0)
        var[0, :4] = 5.0  # chunks 2 and 3 are never stored
    with h5py.File(tmp_path / "a.h5") as f:
        got = read_rows(f["v"], slice(2, 10))
    np.testing.assert_array_equal(got, [[5.0] * 3] * 2 + [[-1.0] * 3] * 6)


def test_chunks_the_deflate_filter_skipped(tmp_path):
    """A chunk stored with the optional deflate filter skipped (its filter-mask bit set) is
    only un-shuffled."""
    values = np.arange(40, dtype="<f4").reshape(1, 4, 10)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        var = f.create_dataset("v", shape=(1, 8, 10), chunks=(1, 4, 10), dtype="<f4",
                               compression="gzip", shuffle=True)
        var[0, 4:] = 7.0
        shuffled = values.view(np.uint8).reshape(-1, 4).T.tobytes()
        var.id.write_direct_chunk((0, 0, 0), shuffled, filter_mask=0b10)
    with h5py.File(tmp_path / "a.h5") as f:
        assert f["v"].id.get_chunk_info(0).filter_mask == 0b10
        expected = f["v"][0]
        np.testing.assert_array_equal(expected[:4], values[0])
        np.testing.assert_array_equal(read_rows(f["v"], slice(None)), expected)


def _corrupt_first_chunk(path, offset_in_chunk):
    with h5py.File(path) as f:
        info = f["v"].id.get_chunk_info(0)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + offset_in_chunk)
        byte = fh.read(1)
        fh.seek(info.byte_offset + offset_in_chunk)
        fh.write(bytes([byte[0] ^ 0x5A]))


@pytest.mark.parametrize("filters", ["shuffle+deflate", "shuffle+deflate+fletcher32", "fletcher32"])
def test_damaged_chunk(tmp_path, filters):
    """The fast path cannot decode a damaged chunk; h5py then reports the damage."""
    path = _write(tmp_path / "a.h5", (1, 64, 30), (1, 32, 30), "<f4", FILTERS[filters])
    _corrupt_first_chunk(path, 40)
    with h5py.File(path) as f:
        var = f["v"]
        filter_mask, raw = var.id.read_direct_chunk((0, 0, 0))
        with pytest.raises(ChunkError):
            _decode(raw, _fast_pipeline(var), filter_mask, 32 * 30 * 4)
        with pytest.raises(OSError):
            read_rows(var, slice(0, 10))
        # the undamaged chunk still reads
        np.testing.assert_array_equal(read_rows(var, slice(32, 64)), var[0, 32:64])


def test_undecodable_chunk_is_read_by_h5py(tmp_path, monkeypatch):
    """A chunk the fast path cannot decode but h5py can (e.g. a partial edge chunk HDF5 left
    unfiltered) is read by h5py: a readable file is never rejected."""
    path = _write(tmp_path / "a.h5", (1, 20, 5), (1, 8, 5), "<f4", FILTERS["shuffle+deflate"])

    def refuse(*args):
        raise ChunkError("cannot decode")

    monkeypatch.setattr(hdf5_chunks, "_decode", refuse)
    with h5py.File(path) as f:
        np.testing.assert_array_equal(read_rows(f["v"], slice(3, 17)), f["v"][0, 3:17])


def test_other_filter_orders_fall_back_to_h5py(tmp_path):
    """Deflate before shuffle, or a filter twice: h5py reads them, the fast path does not try."""
    values = np.arange(60, dtype="<f4").reshape(1, 12, 5)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        for name, steps in (("deflate_then_shuffle", ("deflate", "shuffle")),
                            ("deflate_twice", ("deflate", "deflate"))):
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_chunk((1, 4, 5))
            for step in steps:
                dcpl.set_deflate(4) if step == "deflate" else dcpl.set_shuffle()
            space = h5py.h5s.create_simple(values.shape)
            dsid = h5py.h5d.create(f.id, name.encode(), h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
            h5py.Dataset(dsid)[...] = values
    with h5py.File(tmp_path / "a.h5") as f:
        for name in ("deflate_then_shuffle", "deflate_twice"):
            assert _fast_pipeline(f[name]) is None
            np.testing.assert_array_equal(read_rows(f[name], slice(2, 11)), values[0, 2:11])


def test_fletcher32_matches_hdf5_in_both_stored_forms(tmp_path):
    """Our checksum equals the one HDF5 stores; the form with the bytes of each 16-bit half
    swapped (old HDF5 versions) is accepted too, as HDF5 accepts it."""
    values = np.arange(99, dtype="<f4").reshape(1, 33, 3)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        var = f.create_dataset("v", data=values, chunks=(1, 11, 3), fletcher32=True)
        _, raw = var.id.read_direct_chunk((0, 0, 0))
        assert int.from_bytes(raw[-4:], "little") == int(fletcher32(np.frombuffer(raw[:-4], np.uint8)))
        body = (values[0, 11:22] * -1).tobytes()  # rewrite the second chunk, old-style checksum
        computed = int(fletcher32(np.frombuffer(body, np.uint8)))
        swapped = ((computed & 0x00FF00FF) << 8) | ((computed >> 8) & 0x00FF00FF)
        assert swapped != computed
        var.id.write_direct_chunk((0, 11, 0), body + swapped.to_bytes(4, "little"))
    with h5py.File(tmp_path / "a.h5") as f:
        expected = f["v"][0]  # HDF5 accepts the swapped form
        np.testing.assert_array_equal(expected[11:22], -values[0, 11:22])
        filter_mask, raw = f["v"].id.read_direct_chunk((0, 11, 0))
        _decode(raw, _fast_pipeline(f["v"]), filter_mask, 11 * 3 * 4)  # no ChunkError
        np.testing.assert_array_equal(read_rows(f["v"], slice(None)), expected)
