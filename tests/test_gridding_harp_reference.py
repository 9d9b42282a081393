"""``s5p-lockdown grid`` against real HARP 1.30 output, variable by variable.

``tests/data/harp_reference/`` holds two L2 files and what HARP 1.30 made of them (area binning at
0.1°, 0.02° and 0.2° with qa 50, point binning, a grid across the antimeridian); each L3 file
records its input and operations (``harp_input``, ``harp_operations``). Every case runs our
``grid`` command on the same input with the same operations and compares every variable HARP
wrote; every variable we write that HARP did not is one of the documented differences (kernel
module docstring) and is checked against what it is documented to be.

Tolerances: HARP accumulates weights in float32 (harp-binning rule 5), our float64 result differs
by its rounding, measured at ≤ 1.5e-7 relative at 0.1° and 0.02° and ≤ 2.4e-7 at 0.2°. Point
binning adds whole points (exact in float32) in the same order: equal to 1e-12.
"""

from __future__ import annotations

import re
from pathlib import Path

import netCDF4
import numpy as np
import pytest
from click.testing import CliRunner

from s5p_lockdown.cli.grid_cmd import grid
from s5p_lockdown.gridding import GridAccumulator, GridSpec, composite, read_l3, write_netcdf
from s5p_lockdown.gridding.schema import (
    COUNT, PIXEL_COUNT, UNCERTAINTY, UNCERTAINTY_RANDOM, VALUE, WEIGHT,
)
from s5p_lockdown.io import read_l2

DATA = Path(__file__).parent / "data" / "harp_reference"
#: Relative tolerance per reference file (see the module docstring).
RTOL = {
    "antimeridian_0p1.nc": 1.5e-7,
    "area_0p02_alps.nc": 1.5e-7,
    "area_0p1.nc": 1.5e-7,
    "area_qa50_0p2.nc": 2.4e-7,
    "point_0p1.nc": 1e-12,
}
#: Variables HARP wrote (its ``keep()`` dropped the datetimes and HARP derives no centres unless
#: asked) and the documented additions of ours.
HARP_VARIABLES = {VALUE, UNCERTAINTY, WEIGHT, COUNT, "latitude_bounds", "longitude_bounds"}
OUR_ADDITIONS = {UNCERTAINTY_RANDOM, PIXEL_COUNT, "datetime_start", "datetime_stop", "time",
                 "latitude", "longitude"}


def read_raw(path: Path) -> dict[str, np.ndarray]:
    """Every variable of a netCDF file as written (fill values as NaN; times decoded to
    datetime64 from their units), plus the global attributes under ``attrs``."""
    variables = {}
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_mask(False)
        for name, var in nc.variables.items():
            data = var[:]
            if "since" in getattr(var, "units", ""):
                data = np.array(netCDF4.num2date(data, var.units, only_use_cftime_datetimes=False),
                                "datetime64[ns]")
            variables[name] = data
        variables["attrs"] = {name: nc.getncattr(name) for name in nc.ncattrs()}
    return variables


class Case:
    """One reference L3 file, its input and its operations as our command's options."""

    def __init__(self, l3: Path):
        self.l3 = l3
        self.harp = read_raw(l3)
        attrs = self.harp["attrs"]
        operations = attrs["harp_operations"]
        self.l2 = DATA / "l2" / attrs["harp_input"]
        self.qa = int(re.search(r"_validity>(\d+);", operations).group(1)) / 100
        self.grid_args = re.search(r"bin_spatial\(([^)]*)\)", operations).group(1)
        self.grid = GridSpec.from_harp(self.grid_args)
        self.point = "keep(latitude,longitude," in operations
        self.rtol = RTOL[l3.name]

    def __repr__(self) -> str:
        return self.l3.name


CASES = [Case(path) for path in sorted((DATA / "l3").glob("*.nc"))]


def test_reference_files_are_all_there():
    assert [c.l3.name for c in CASES] == sorted(RTOL)
    assert {c.l2.name for c in CASES} == {p.name for p in (DATA / "l2").glob("*.nc")}
    assert sum(c.point for c in CASES) == 1 and {c.qa for c in CASES} == {0.5, 0.75}


@pytest.fixture(scope="module", params=CASES, ids=repr)
def gridded(request, tmp_path_factory):
    """(case, our output as written by ``s5p-lockdown grid``, read back raw)."""
    case = request.param
    out = tmp_path_factory.mktemp("harp_reference") / f"ours_{case.l3.name}"
    args = [str(case.l2), "--bin-spatial", case.grid_args, "--qa", str(case.qa), "-o", str(out),
            "--threads", "1"] + (["--point"] if case.point else [])
    result = CliRunner().invoke(grid, args)
    assert result.exit_code == 0, result.output
    return case, read_raw(out)


def assert_close_same_cells(ours: np.ndarray, harp: np.ndarray, rtol: float) -> None:
    """Same cells with data (NaN elsewhere in both) and values within ``rtol``."""
    ours = np.asarray(ours, np.float64)
    harp = np.asarray(harp, np.float64)
    assert ours.shape == harp.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(harp))
    np.testing.assert_allclose(ours, harp, rtol=rtol, atol=0, equal_nan=True)


def test_the_same_variables_as_harp_plus_the_documented_ones(gridded):
    case, ours = gridded
    harp_names = set(case.harp) - {"attrs"}
    assert harp_names == HARP_VARIABLES
    assert set(ours) - {"attrs"} == HARP_VARIABLES | OUR_ADDITIONS


def test_value_uncertainty_and_weight_equal_harps(gridded):
    case, ours = gridded
    value = case.harp[VALUE]
    assert np.isfinite(value).sum() > 200  # a real comparison, not of empty grids
    assert_close_same_cells(ours[VALUE], value, case.rtol)
    # HARP's _uncertainty is the linear average Σ w·σ / Σ w, and so is ours
    assert_close_same_cells(ours[UNCERTAINTY], case.harp[UNCERTAINTY], case.rtol)
    # weight: 0 (not NaN) where no pixel, in both
    np.testing.assert_array_equal(ours[WEIGHT] > 0, case.harp[WEIGHT] > 0)
    np.testing.assert_array_equal(ours[WEIGHT] > 0, np.isfinite(value))
    np.testing.assert_allclose(ours[WEIGHT], case.harp[WEIGHT].astype(np.float64),
                               rtol=case.rtol, atol=0)
    assert ours[WEIGHT].dtype == np.float64  # HARP: float32 (documented difference)


def test_count_and_grid_bounds_equal_harps(gridded):
    case, ours = gridded
    assert ours[COUNT].tolist() == case.harp[COUNT].tolist() and ours[COUNT][0] > 1000
    for name in ("latitude_bounds", "longitude_bounds"):
        np.testing.assert_allclose(ours[name], case.harp[name], rtol=0, atol=1e-12)


def test_documented_additions(gridded):
    """What HARP does not write here, checked against what the kernel docstring says it is."""
    case, ours = gridded
    has_data = np.isfinite(case.harp[VALUE][0])
    pixels = ours[PIXEL_COUNT][0]
    # pixel_count: pixels overlapping each cell; each adds a weight ≤ 1 (exactly 1 per point)
    np.testing.assert_array_equal(pixels > 0, has_data)
    harp_weight = case.harp[WEIGHT][0].astype(np.float64)
    if case.point:
        np.testing.assert_array_equal(pixels, harp_weight)
    else:
        assert np.all(harp_weight <= pixels * (1 + 1e-6))
        assert np.any(harp_weight[has_data] < pixels[has_data] - 0.5)
    # …_uncertainty_random = sqrt(Σ (w·σ)²) / Σ w: between HARP's linear Σ w·σ / Σ w divided by
    # sqrt(pixels) (Cauchy–Schwarz) and HARP's value itself, equal to it for one pixel
    random, linear = ours[UNCERTAINTY_RANDOM][0], case.harp[UNCERTAINTY][0]
    np.testing.assert_array_equal(np.isnan(random), ~has_data)
    r, lin, n = random[has_data], linear[has_data], pixels[has_data]
    assert np.all(r <= lin * (1 + 2 * case.rtol))
    assert np.all(r >= lin / np.sqrt(n) * (1 - 2 * case.rtol))
    np.testing.assert_allclose(r[n == 1], lin[n == 1], rtol=2 * case.rtol)
    assert np.sum(n > 1) > 100 and np.all(r[n > 1] < lin[n > 1])
    # cell centres: the middle of HARP's cell bounds
    for axis in ("latitude", "longitude"):
        np.testing.assert_allclose(ours[axis], case.harp[f"{axis}_bounds"].mean(axis=1),
                                   rtol=0, atol=1e-12)
    # datetime_start/stop (HARP's keep() dropped them): the first and last binned scanline
    # times, inside the input's sensing time
    scanlines = read_l2(case.l2)["time"].values
    start, stop = ours["datetime_start"][0], ours["datetime_stop"][0]
    assert scanlines.min() <= start < stop <= scanlines.max()
    assert start in scanlines and stop in scanlines


@pytest.mark.parametrize("case", [c for c in CASES if not c.point], ids=repr)
def test_merged_parts_equal_harp_binning_everything_at_once(case, tmp_path):
    """The orbit split in three by scanline, each part gridded, written and read back as a daily
    grid is, then merged: still HARP's one-pass grid for every variable, and our one-pass grid
    to rounding (both uncertainties included)."""
    dataset = read_l2(case.l2, bbox=case.grid.bounds, optional=False)
    cuts = np.linspace(0, dataset.sizes["scanline"], 4).astype(int)
    parts = []
    for index, (first, last) in enumerate(zip(cuts[:-1], cuts[1:])):
        part = GridAccumulator(case.grid, threads=1)
        part.add_dataset(dataset.isel(scanline=slice(first, last)), case.qa)
        path = write_netcdf(part.finalize(), tmp_path / f"part{index}.nc")
        parts.append(GridAccumulator.from_dataset(read_l3(path)))
    merged = composite(parts).finalize()
    assert_close_same_cells(merged[VALUE].values, case.harp[VALUE], case.rtol)
    assert_close_same_cells(merged[UNCERTAINTY].values, case.harp[UNCERTAINTY], case.rtol)
    np.testing.assert_allclose(merged[WEIGHT].values, case.harp[WEIGHT], rtol=case.rtol, atol=0)
    assert int(merged[COUNT][0]) == int(case.harp[COUNT][0])
    at_once = GridAccumulator(case.grid, threads=1)
    at_once.add_dataset(dataset, case.qa)
    expected = at_once.finalize()
    for name in (VALUE, UNCERTAINTY, UNCERTAINTY_RANDOM, WEIGHT):
        np.testing.assert_allclose(merged[name].values, expected[name].values, rtol=1e-12,
                                   equal_nan=True)
    np.testing.assert_array_equal(merged[PIXEL_COUNT].values, expected[PIXEL_COUNT].values)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_harps_file_read_back_keeps_each_uncertainty_under_its_name(case):
    """read_l3 of HARP's own file: _uncertainty is HARP's (linear), the random one is unknown."""
    ds = read_l3(case.l3)
    assert GridSpec.from_harp(ds.attrs["harp_operation"]) == case.grid
    for name in (VALUE, UNCERTAINTY, WEIGHT):
        np.testing.assert_array_equal(ds[name].values, np.where(
            np.isfinite(case.harp[VALUE]), case.harp[name], 0.0 if name == WEIGHT else np.nan))
    assert np.isnan(ds[UNCERTAINTY_RANDOM]).all()
    assert int(ds[COUNT][0]) == int(case.harp[COUNT][0])
