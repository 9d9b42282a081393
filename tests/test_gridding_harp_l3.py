"""Reading real HARP L3 files (netCDF-3, only cell-centre coordinates) into the L3 schema."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest

from s5p_lockdown.errors import InvalidProductError
from s5p_lockdown.gridding import GridAccumulator, GridSpec, composite, read_l3
from s5p_lockdown.gridding.schema import (
    COUNT, PIXEL_COUNT, UNCERTAINTY, UNCERTAINTY_RANDOM, VALUE, WEIGHT,
)

FILES = sorted((Path(__file__).parent / "data" / "harp_l3").glob("S5P_NRTI_L3__NO2____*.nc"))
VALID_CELLS = [779, 1427, 1453]


def raw_values(path: Path) -> np.ndarray:
    with netCDF4.Dataset(path) as nc:
        return np.ma.filled(nc[VALUE][:].astype(np.float64), np.nan)


def test_files_are_present():
    assert len(FILES) == 3


@pytest.mark.parametrize("path, valid", list(zip(FILES, VALID_CELLS)))
def test_read_harp_l3_with_centres_only(path, valid):
    ds = read_l3(path)
    grid = GridSpec.from_harp(ds.attrs["harp_operation"])
    assert grid.shape == (38, 54)
    assert grid.lat_edge_step == 0.1 and grid.lon_edge_step == 0.1
    assert grid.lat_edge_offset == pytest.approx(50.275298611425185, abs=1e-9)
    assert grid.lon_edge_offset == pytest.approx(2.39501953125, abs=1e-9)
    with netCDF4.Dataset(path) as nc:
        np.testing.assert_allclose(ds["latitude"], nc["latitude"][:], atol=1e-9)
        np.testing.assert_allclose(ds["longitude"], nc["longitude"][:], atol=1e-9)
    np.testing.assert_array_equal(ds[VALUE].values, raw_values(path))
    assert ds[VALUE].dtype == np.float64 and int(np.isfinite(ds[VALUE]).sum()) == valid
    # no weight in the file: each cell with data counts once, marked as equal weighting
    np.testing.assert_array_equal(ds[WEIGHT].values, np.isfinite(ds[VALUE].values).astype(float))
    assert ds.attrs["weighting"] == "equal"
    assert np.isnan(ds[UNCERTAINTY]).all() and np.isnan(ds[UNCERTAINTY_RANDOM]).all()
    assert (ds[PIXEL_COUNT] == -1).all() and int(ds[COUNT][0]) == -1
    assert ds.attrs["source_product"].startswith("S5P_NRTI_L2__NO2____2021121")
    assert str(ds["datetime_start"].values[0]).startswith(path.name[20:24] + "-12-1")
    assert "bin_spatial(39,50.275298611425185,0.1,55,2.39501953125,0.1)" in ds.attrs["history"]


def test_daily_harp_grids_merge_into_a_composite():
    days = [GridAccumulator.from_dataset(read_l3(p)) for p in FILES]
    assert all(d.grid == days[0].grid for d in days)
    result = composite(days, weighting="equal").finalize()
    stack = np.stack([raw_values(p)[0] for p in FILES])
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmean(stack, axis=0)
    np.testing.assert_allclose(result[VALUE].values[0], expected, rtol=1e-12)
    np.testing.assert_array_equal(result[WEIGHT].values[0], np.isfinite(stack).sum(0))
    assert result.attrs["source_product"].count("S5P_NRTI_L2") == 3
    assert result["datetime_start"].values[0] == np.datetime64("2021-12-17T11:47:45", "ns")
    assert result["datetime_stop"].values[0] == np.datetime64("2021-12-18T13:12:45", "ns")


def test_not_an_l3_file(tmp_path):
    bad = tmp_path / "bad.nc"
    with netCDF4.Dataset(bad, "w") as nc:
        nc.createDimension("x", 2)
        nc.createVariable("something", "f4", ("x",))
    with pytest.raises(InvalidProductError, match="bad.nc.*tropospheric_NO2"):
        read_l3(bad)
    with pytest.raises(InvalidProductError, match="missing.nc"):
        read_l3(tmp_path / "missing.nc")
