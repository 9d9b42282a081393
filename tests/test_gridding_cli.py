"""The ``grid`` command and the engine plumbing (HARP itself is faked: it is not installed)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from click.testing import CliRunner

from s5p_lockdown.cli.grid_cmd import grid
from s5p_lockdown.errors import S5PLockdownError
from s5p_lockdown.gridding import GridAccumulator, GridSpec, grid_l2_files, read_l3, write_netcdf
from s5p_lockdown.gridding.harp_engine import harp_operations
from s5p_lockdown.gridding.schema import COUNT, UNCERTAINTY, UNCERTAINTY_RANDOM, VALUE, WEIGHT

EUROPE_1DEG = "39,34,1,71,-25,1"


def test_help():
    result = CliRunner().invoke(grid, ["--help"])
    assert result.exit_code == 0
    assert "--bin-spatial" in result.output and "--engine" in result.output


def test_bad_grid_is_a_usage_error(tmp_path):
    l2 = tmp_path / "x.nc"
    l2.write_bytes(b"")
    result = CliRunner().invoke(grid, [str(l2), "--bin-spatial", "1,2,3", "-o", str(tmp_path / "o.nc")])
    assert result.exit_code == 2 and "bin_spatial needs 6" in result.output


def test_grid_command_matches_the_accumulator(orbit_file, tmp_path):
    from s5p_lockdown.io import read_l2

    out = tmp_path / "l3.nc"
    result = CliRunner().invoke(
        grid, [str(orbit_file), "--bin-spatial", EUROPE_1DEG, "--qa", "0.75", "-o", str(out), "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "[1/1]" in result.output and "pixels in the grid" in result.output
    ds = read_l3(out)
    expected = GridAccumulator(GridSpec.from_harp(EUROPE_1DEG))
    expected.add_dataset(read_l2(orbit_file), qa_threshold=0.75)
    np.testing.assert_array_equal(ds[WEIGHT].values, expected.finalize()[WEIGHT].values)
    assert int(ds[COUNT][0]) == expected.count > 0
    assert ds.attrs["source_product"] == orbit_file.name
    assert f"s5p-lockdown grid --bin-spatial {EUROPE_1DEG} --qa 0.75" in ds.attrs["history"]


def test_harp_engine_reports_missing_harp(monkeypatch, orbit_file):
    monkeypatch.setitem(sys.modules, "harp", None)
    with pytest.raises(S5PLockdownError, match="conda install"):
        grid_l2_files([orbit_file], GridSpec.from_harp(EUROPE_1DEG), engine="harp")


def test_harp_operations():
    ops = harp_operations(GridSpec.from_harp("381,34,0.1,701,-25,0.1"), 0.75)
    assert ops.startswith("tropospheric_NO2_column_number_density_validity>75;")
    assert ops.endswith(";bin_spatial(381,34,0.1,701,-25,0.1)")
    assert "keep(datetime_start,datetime_stop,latitude_bounds,longitude_bounds," in ops
    # the precision keeps HARP's name, so HARP averages it linearly as the numba engine does
    assert "rename" not in ops and ops.count(UNCERTAINTY) == 1


def test_harp_engine_gives_the_same_schema(monkeypatch, tmp_path):
    """A fake ``harp`` module that 'bins' by writing a HARP-style L3 file."""
    grid_spec = GridSpec.from_bbox(10, 12, 20, 23, 0.5)
    calls = []

    def import_product(path, operations):
        calls.append(operations)
        if "empty" in path:
            raise fake.NoDataError("no data")
        return path

    def export_product(product, path, file_format):
        acc = GridAccumulator(grid_spec)
        acc.add_pixels([1e-4], [1e-5], [[10.6, 10.6, 10.9, 10.9]], [[21.1, 21.4, 21.4, 21.1]])
        ds = acc.finalize().drop_vars(["pixel_count", UNCERTAINTY_RANDOM])
        ds.attrs = {"Conventions": "HARP-1.0", "source_product": "S5P_L2_input.nc"}
        write_netcdf(ds, path)

    fake = types.ModuleType("harp")
    fake.NoDataError = type("NoDataError", (Exception,), {})
    fake.import_product, fake.export_product = import_product, export_product
    monkeypatch.setitem(sys.modules, "harp", fake)
    acc = grid_l2_files([tmp_path / "a.nc", tmp_path / "empty.nc"], grid_spec, engine="harp")
    ds = acc.finalize()
    reference = GridAccumulator(grid_spec)
    reference.add_pixels([1e-4], [1e-5], [[10.6, 10.6, 10.9, 10.9]], [[21.1, 21.4, 21.4, 21.1]])
    expected = reference.finalize()
    assert set(ds.variables) == set(expected.variables)
    np.testing.assert_allclose(ds[VALUE].values, expected[VALUE].values, rtol=1e-12)
    np.testing.assert_allclose(ds[UNCERTAINTY].values, expected[UNCERTAINTY].values, rtol=1e-12)
    # HARP records neither per-cell counts nor (from _uncertainty) a random uncertainty
    assert (ds["pixel_count"] == -1).all() and np.isnan(ds[UNCERTAINTY_RANDOM]).all()
    assert ds.attrs["source_product"] == "S5P_L2_input.nc, empty.nc"
    assert len(calls) == 2 and "bin_spatial(5,10,0.5,7,20,0.5)" in calls[0]
