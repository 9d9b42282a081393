"""Reader tests: synthetic and crafted files, the real stripped file, every bad-input case."""

from __future__ import annotations

import logging
import shutil

import netCDF4
import numpy as np
import pytest

from conftest import STRIPPED_REAL_FILE
from l2_files import NAME, write_minimal_l2
from s5p_lockdown.errors import InvalidProductError
from s5p_lockdown.io import (
    BOX_MARGIN_DEG,
    inspect_product,
    read_l2,
    read_l2_arrays,
    scanlines_overlapping,
    unwrap_longitude_bounds,
)

# --- good files ---------------------------------------------------------------------------------
def test_reads_synthetic_orbit(orbit_file):
    ds = read_l2(orbit_file)
    assert ds.sizes["corner"] == 4
    n_scan, n_pix = ds.sizes["scanline"], ds.sizes["ground_pixel"]
    assert ds["latitude_bounds"].shape == (n_scan, n_pix, 4)
    column = ds["nitrogendioxide_tropospheric_column"]
    assert column.dtype == np.float32 and column.attrs["units"] == "mol m-2"
    finite = np.isfinite(column.values)
    assert 0.99 < finite.mean() < 1.0  # a few failed retrievals are fill values -> NaN
    assert np.nanmax(np.abs(column.values)) < 1e-2  # no fill value leaked through
    qa = ds["qa_value"].values
    assert np.nanmin(qa) >= 0 and np.nanmax(qa) <= 1
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    assert str(ds["time"].values[0])[:10] == "2020-03-25"
    assert np.all(np.diff(ds["time"].values).astype(int) > 0)
    for name in ("eastward_wind", "northward_wind", "cloud_fraction", "surface_pressure"):
        assert name in ds
    assert ds.attrs["orbit"] > 12000 and ds.attrs["processor_version"] == "2.4.0"
    assert ds.attrs["stream"] == "RPRO" and ds.attrs["processing_mode"] == "Reprocessing"


@pytest.mark.parametrize("options", [
    {}, {"bbox": (45.0, 50.0, 5.0, 15.0), "qa_threshold": 0.75, "optional": False},
    {"optional": ("eastward_wind",), "bounds": False},
])
def test_arrays_are_the_datasets_variables(orbit_file, options):
    """read_l2_arrays (no xarray: the gridding jobs) gives read_l2's variables, times and
    attributes exactly."""
    ds = read_l2(orbit_file, **options)
    orbit = read_l2_arrays(orbit_file, **options)
    assert sorted(orbit.variables) == sorted(ds.data_vars)
    for name, values in orbit.variables.items():
        assert values.dtype == ds[name].dtype
        np.testing.assert_array_equal(values, ds[name].values)
        np.testing.assert_array_equal(orbit[name], ds[name].values)
    np.testing.assert_array_equal(orbit["time"], ds["time"].values)
    assert "time" in orbit and "qa_value" in orbit and "no_such_variable" not in orbit
    assert orbit.attrs == ds.attrs


def test_box_subset_reads_only_overlapping_scanlines(orbit_file):
    full = read_l2(orbit_file)
    box = (45.0, 50.0, 0.0, 15.0)
    part = read_l2(orbit_file, bbox=box)
    offset = part.attrs["scanline_offset"]
    n = part.sizes["scanline"]
    assert 0 < n < full.sizes["scanline"] / 3
    sub = full.isel(scanline=slice(offset, offset + n))
    for name in ("latitude", "nitrogendioxide_tropospheric_column", "longitude_bounds"):
        np.testing.assert_array_equal(part[name].values, sub[name].values)
    # every pixel centre inside the box is in the subset
    lat, lon = full["latitude"].values, full["longitude"].values
    inside = (lat >= 45) & (lat <= 50) & (lon >= 0) & (lon <= 15)
    rows = np.flatnonzero(inside.any(axis=1))
    assert rows.min() >= offset and rows.max() < offset + n


@pytest.mark.parametrize("box", [(40.0, 50.0, -10.0, 10.0), (40.0, 50.0, 170.0, 190.0),
                                 (40.0, 50.0, -190.0, -170.0), (-10.0, 10.0, 100.0, 460.0)])
def test_scanline_selection_matches_exact_modulo(box):
    """The fast float32 modulo selects the rows an exact float64 modulo selects."""
    rng = np.random.default_rng(7)
    lat = rng.uniform(-60, 60, (400, 30)).astype(np.float32)
    lon = rng.uniform(-180, 180, (400, 30)).astype(np.float32)
    lon[rng.random((400, 30)) < 0.8] = np.nan  # rows differ in what they hold
    south, north, west, east = box
    m = BOX_MARGIN_DEG
    with np.errstate(invalid="ignore"):
        inside = (lat >= south - m) & (lat <= north + m)
        if east - west + 2 * m < 360:
            inside &= np.mod(lon.astype(np.float64) - (west - m), 360.0) <= east - west + 2 * m
    rows = np.flatnonzero(inside.any(axis=1))
    expected = slice(int(rows[0]), int(rows[-1]) + 1) if rows.size else slice(0, 0)
    assert scanlines_overlapping(lat, lon, box) == expected


def test_optional_variables_by_name(orbit_file):
    wind = read_l2(orbit_file, optional=("eastward_wind", "northward_wind"))
    assert "eastward_wind" in wind and "northward_wind" in wind
    assert "cloud_fraction" not in wind and "surface_pressure" not in wind
    assert "eastward_wind" not in read_l2(orbit_file, optional=False)
    with pytest.raises(ValueError, match="unknown optional variable"):
        read_l2(orbit_file, optional=("wind",))
    with pytest.raises(ValueError, match="collection of names"):
        read_l2(orbit_file, optional="eastward_wind")


def test_box_without_overlap_gives_empty_result(orbit_file, caplog):
    with caplog.at_level(logging.INFO):
        ds = read_l2(orbit_file, bbox=(-40.0, -30.0, 0.0, 10.0))
    assert ds.sizes["scanline"] == 0
    assert "no scanline overlaps" in caplog.text


def test_qa_threshold_masks_columns(orbit_file):
    ds = read_l2(orbit_file, qa_threshold=0.75)
    qa = ds["qa_value"].values
    column = ds["nitrogendioxide_tropospheric_column"].values
    assert np.all(np.isnan(column[~(qa > 0.75)]))
    assert np.isfinite(column[qa > 0.75]).mean() > 0.99


def test_fill_values_become_nan(tmp_path):
    column = np.full((6, 4), 3e-5, np.float32)
    column[2, 1] = np.nan  # written as 9.96921e36
    ds = read_l2(write_minimal_l2(tmp_path / NAME, column=column))
    assert np.isnan(ds["nitrogendioxide_tropospheric_column"].values[2, 1])
    assert np.isfinite(ds["nitrogendioxide_tropospheric_column"].values).sum() == 23


def test_negative_columns_are_kept(tmp_path):
    column = np.full((6, 4), -1e-5, np.float32)
    ds = read_l2(write_minimal_l2(tmp_path / NAME, column=column))
    assert np.allclose(ds["nitrogendioxide_tropospheric_column"].values, -1e-5)


def test_time_decoding(tmp_path):
    ds = read_l2(write_minimal_l2(tmp_path / NAME))
    assert str(ds["time"].values[0]) == "2020-03-03T01:57:22.000000000"
    assert (ds["time"].values[1] - ds["time"].values[0]) == np.timedelta64(840, "ms")


def test_antimeridian_box_and_unwrap(tmp_path):
    path = write_minimal_l2(tmp_path / NAME, lon0=179.9, n_pix=4)
    ds = read_l2(path, bbox=(40.0, 50.0, 170.0, 190.0))
    assert ds.sizes["scanline"] == 6
    lon_b = ds["longitude_bounds"].values
    assert lon_b.max() > 179 and lon_b.min() < -179  # straddles as stored
    unwrapped = unwrap_longitude_bounds(lon_b, ds["longitude"].values)
    width = unwrapped.max(axis=-1) - unwrapped.min(axis=-1)
    assert np.allclose(width, 0.05, atol=1e-4)
    # the same pixels are outside a box on the other side of the globe
    assert read_l2(path, bbox=(40.0, 50.0, -10.0, 10.0)).sizes["scanline"] == 0


def test_orbit_without_valid_pixel_is_empty_not_error(tmp_path, caplog):
    column = np.full((6, 4), np.nan, np.float32)
    with caplog.at_level(logging.INFO):
        ds = read_l2(write_minimal_l2(tmp_path / NAME, column=column))
    assert not np.isfinite(ds["nitrogendioxide_tropospheric_column"].values).any()
    assert "no valid tropospheric NO2 pixel" in caplog.text


def test_real_stripped_file_metadata_and_clear_error():
    with pytest.raises(InvalidProductError) as info:
        read_l2(STRIPPED_REAL_FILE)
    message = str(info.value)
    assert STRIPPED_REAL_FILE.name in message
    assert "missing variable PRODUCT/latitude" in message


def test_real_stripped_file_metadata_parses():
    from s5p_lockdown.io import open_product, product_metadata

    with open_product(STRIPPED_REAL_FILE) as nc:
        meta = product_metadata(nc, STRIPPED_REAL_FILE)
    assert meta["orbit"] == 12367
    assert meta["processor_version"] == "1.3.2"
    assert meta["stream"] == "OFFL" and meta["processing_mode"] == "Offline"
    assert meta["time_coverage_start"] == "2020-03-03T01:57:22Z"
    assert meta["product_id"] == STRIPPED_REAL_FILE.stem


# --- bad input ----------------------------------------------------------------------------------
def _expect(path, pattern):
    with pytest.raises(InvalidProductError, match=pattern) as info:
        read_l2(path)
    assert str(path.name) in str(info.value)


def test_missing_file(tmp_path):
    _expect(tmp_path / NAME, "does not exist")


def test_not_netcdf(tmp_path):
    path = tmp_path / NAME
    path.write_text("<html>503 Service Unavailable</html>")
    _expect(path, "not a netCDF-4/HDF5 file")


def test_empty_file(tmp_path):
    path = tmp_path / NAME
    path.write_bytes(b"")
    _expect(path, "empty file")


def test_netcdf3_file(tmp_path):
    path = tmp_path / NAME
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as nc:
        nc.createDimension("x", 1)
    _expect(path, "netCDF-3")


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_truncated_file(orbit_file, tmp_path, fraction):
    path = tmp_path / orbit_file.name
    data = orbit_file.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    _expect(path, "truncated or corrupt")


def test_corrupt_data_chunk(orbit_file, tmp_path):
    """Damage inside a compressed chunk (the file opens fine) is reported with the variable."""
    import h5py

    path = tmp_path / orbit_file.name
    data = bytearray(orbit_file.read_bytes())
    with h5py.File(orbit_file) as nc:
        chunk = nc["PRODUCT/nitrogendioxide_tropospheric_column"].id.get_chunk_info(0)
    data[chunk.byte_offset: chunk.byte_offset + chunk.size] = bytes(chunk.size)
    path.write_bytes(bytes(data))
    _expect(path, "cannot read variable 'PRODUCT/nitrogendioxide_tropospheric_column' "
                  r"\(truncated or corrupt file\?\)")


def test_random_damage_never_escapes_as_a_low_level_error(orbit_file, tmp_path):
    """Random bytes overwritten anywhere: the file reads (damage in parts not read) or raises
    InvalidProductError, never an h5py/HDF5 exception."""
    data = orbit_file.read_bytes()
    rng = np.random.default_rng(0)
    outcomes = {"read": 0, "rejected": 0}
    path = tmp_path / orbit_file.name
    for _ in range(60):
        damaged = bytearray(data)
        offset, size = int(rng.integers(0, len(data) - 64)), int(rng.integers(1, 64))
        damaged[offset:offset + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(damaged))
        try:
            read_l2(path)
            outcomes["read"] += 1
        except InvalidProductError as error:
            assert orbit_file.name in str(error)
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > 0 and outcomes["read"] > 0, outcomes


def test_wrong_product_in_name(orbit_file, tmp_path):
    path = tmp_path / orbit_file.name.replace("L2__NO2___", "L2__O3____")
    shutil.copy(orbit_file, path)
    _expect(path, "wrong product type 'L2__O3____' in file name")


def test_wrong_product_in_metadata(tmp_path):
    path = write_minimal_l2(tmp_path / NAME, product="L2__CO____")
    _expect(path, "wrong product type 'L2__CO____' in metadata")


def test_renamed_file_disagrees_with_metadata(tmp_path):
    path = write_minimal_l2(tmp_path / NAME, orbit=12999, processor="2.4.0")
    with pytest.raises(InvalidProductError, match="disagree.*processor_version.*orbit 12999"):
        read_l2(path)


@pytest.mark.parametrize(
    "skip, message",
    [
        (("qa_value",), "missing variable PRODUCT/qa_value"),
        (("latitude_bounds",), "missing variable PRODUCT/SUPPORT_DATA/GEOLOCATIONS/latitude_bounds"),
        (("nitrogendioxide_tropospheric_column",), "missing variable PRODUCT/nitrogendioxide_tropospheric_column"),
    ],
)
def test_missing_variable(tmp_path, skip, message):
    _expect(write_minimal_l2(tmp_path / NAME, skip=skip), message)


def test_missing_group(tmp_path):
    path = write_minimal_l2(tmp_path / NAME)
    with netCDF4.Dataset(path, "a") as nc:
        nc.renameGroup("PRODUCT", "PRODUCTX")
    _expect(path, "missing group 'PRODUCT'")


def test_inconsistent_shapes(tmp_path):
    path = write_minimal_l2(tmp_path / NAME, bad_shape="nitrogendioxide_tropospheric_column_precision")
    _expect(path, "inconsistent shapes.*nitrogendioxide_tropospheric_column_precision")


def test_inspect_summary(orbit_file):
    summary = inspect_product(orbit_file)
    assert summary["pixels"] == summary["scanlines"] * summary["ground_pixels"]
    assert 0 < summary["pixels_passing_qa"] <= summary["valid_pixels"] <= summary["pixels"]
    assert 0.0 < summary["fraction_passing_qa"] < 1.0
    assert 20 < summary["latitude_min"] < summary["latitude_max"] < 80
    assert summary["has_wind"]


def test_cli_inspect_and_clean_error(orbit_file, tmp_path):
    from click.testing import CliRunner

    from s5p_lockdown.cli import cli

    result = CliRunner().invoke(cli, ["inspect", str(orbit_file)])
    assert result.exit_code == 0, result.output
    assert f"orbit {read_l2(orbit_file).attrs['orbit']}" in result.output
    assert "qa > 0.75" in result.output
    bad = tmp_path / NAME
    bad.write_text("garbage")
    result = CliRunner().invoke(cli, ["inspect", str(bad)])
    assert result.exit_code != 0
    assert isinstance(result.exception, InvalidProductError)
