"""The qa_value boundary through every entry point: reader, ``inspect``, accumulator, daily grid,
the ``grid`` command (and the HARP engine's rule) and the workflow's ``qa_threshold``.

Real products store qa_value as a byte 0-100 with scale_factor 0.01, so 0.75 is stored as 75.
The PUM's rule and HARP's ``tropospheric_NO2_column_number_density_validity>75`` keep
``qa_value > 0.75``: a stored 75 is dropped, a stored 76 kept. The references below compare the
stored bytes with integer thresholds (``byte > T`` for a threshold of T/100), independently of
how the code decodes or compares.
"""

from __future__ import annotations

import re
import shutil
from datetime import date

import h5py
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from l2_files import NAME, write_minimal_l2
from s5p_lockdown.cli.grid_cmd import grid as grid_command
from s5p_lockdown.daily import grid_day, grid_days
from s5p_lockdown.gridding import GridAccumulator, GridSpec, read_l3
from s5p_lockdown.gridding.harp_engine import harp_operations
from s5p_lockdown.gridding.schema import VALUE, WEIGHT
from s5p_lockdown.io import inspect_product, read_l2
from workflow_helpers import run_workflow

#: Stored qa_value bytes, one per ground pixel (the same on every scanline but the last, whose
#: qa_value is the fill 255); the column differs per ground pixel, so a cell's mean tells which
#: pixels were kept.
QA_BYTES = np.array([60, 74, 75, 76, 100], np.uint8)
COLUMNS = np.array([1e-4, 2e-4, 3e-4, 4e-4, 5e-4], np.float32)  # mol m-2
N_SCAN = 6
QA_FILL = 255

#: The boundary file's 0.05 degree pixels (45-45.3 N, 10-10.25 E) all lie in cell (1, 1) of this
#: 1 degree grid, each with weight 0.05² / 1² = 0.0025 (to ~2e-6: the corners are float32).
GRID = GridSpec.from_bbox(44.0, 46.0, 9.0, 11.0, 1.0)
CELL = dict(time=0, latitude=1, longitude=1)
PIXEL_WEIGHT = 0.0025

#: Thresholds (bytes, T/100 as qa_value) around the boundary and below it.
THRESHOLDS = [50, 60, 74, 75, 76, 99]


def expected_cell(threshold_byte: int) -> tuple[float, float]:
    """(mean column, weight) of cell ``CELL`` when pixels with a stored qa byte above
    ``threshold_byte`` are kept (scanlines with a qa fill never are)."""
    kept = QA_BYTES > threshold_byte
    n_valid_scans = N_SCAN - 1
    weight = PIXEL_WEIGHT * n_valid_scans * kept.sum()
    mean = float(COLUMNS[kept].astype(np.float64).mean()) if kept.any() else float("nan")
    return mean, weight


def assert_cell(ds: xr.Dataset, threshold_byte: int) -> None:
    mean, weight = expected_cell(threshold_byte)
    assert float(ds[WEIGHT][CELL]) == pytest.approx(weight, rel=1e-4)
    assert float(ds[VALUE][CELL]) == pytest.approx(mean, rel=1e-4)


@pytest.fixture(scope="module")
def boundary_file(tmp_path_factory):
    """An L2 file whose qa values are 0.60, 0.74, exactly 0.75, 0.76 and 1.00 (and fill)."""
    qa = np.tile(QA_BYTES, (N_SCAN, 1))
    qa[-1] = QA_FILL
    column = np.tile(COLUMNS, (N_SCAN, 1))
    folder = tmp_path_factory.mktemp("qa_boundary")
    return write_minimal_l2(folder / NAME, n_scan=N_SCAN, n_pix=QA_BYTES.size, qa=qa, column=column)


# --- reader ---------------------------------------------------------------------------------------
def test_reader_decodes_every_byte_exactly_and_keeps_strictly_above(tmp_path):
    stored = np.append(np.arange(101, dtype=np.uint8), np.uint8(QA_FILL))
    path = write_minimal_l2(tmp_path / NAME, n_scan=1, n_pix=stored.size, qa=stored[None, :])
    qa = read_l2(path)["qa_value"].values[0]
    # the double of each decimal k/100 (what a user's 0.75 is), and NaN for the fill
    assert qa[:-1].tolist() == [k / 100 for k in range(101)]
    assert np.isnan(qa[-1])
    for threshold_byte in range(101):
        column = read_l2(path, qa_threshold=threshold_byte / 100)[
            "nitrogendioxide_tropospheric_column"].values[0]
        kept = np.isfinite(column)
        np.testing.assert_array_equal(
            kept, np.append(stored[:-1] > threshold_byte, False),
            err_msg=f"qa_threshold {threshold_byte / 100}",
        )


def test_reader_on_an_edited_synthetic_orbit(orbit_file, tmp_path):
    """Pixels of a synthetic orbit set to exactly 0.74, 0.75 and 0.76 in the stored bytes."""
    path = tmp_path / orbit_file.name
    shutil.copy(orbit_file, path)
    pixels = {74: (0, slice(0, 10)), 75: (1, slice(0, 10)), 76: (2, slice(0, 10))}
    with h5py.File(path, "r+") as f:
        qa = f["PRODUCT/qa_value"]
        assert qa.dtype == np.uint8 and float(qa.attrs["scale_factor"][0]) == pytest.approx(0.01)
        for byte, (row, cols) in pixels.items():
            qa[0, row, cols] = byte
        column = f["PRODUCT/nitrogendioxide_tropospheric_column"][0, :3, :10]
    assert np.all(np.abs(column) < 1)  # valid columns, so only qa decides
    ds = read_l2(path, qa_threshold=0.75)
    kept = np.isfinite(ds["nitrogendioxide_tropospheric_column"].values[:3, :10])
    assert not kept[0].any() and not kept[1].any() and kept[2].all()
    precision = ds["nitrogendioxide_tropospheric_column_precision"].values[:3, :10]
    assert np.array_equal(np.isfinite(precision), kept)


@pytest.mark.parametrize("threshold_byte", [74, 75, 76])
def test_inspect_counts_strictly_above(boundary_file, threshold_byte):
    summary = inspect_product(boundary_file, qa_threshold=threshold_byte / 100)
    assert summary["valid_pixels"] == N_SCAN * QA_BYTES.size
    assert summary["pixels_passing_qa"] == (N_SCAN - 1) * (QA_BYTES > threshold_byte).sum()


# --- accumulator ----------------------------------------------------------------------------------
def test_accumulator_default_drops_exactly_075(boundary_file):
    acc = GridAccumulator(GRID, threads=1)
    assert acc.add_dataset(read_l2(boundary_file)) == 2 * (N_SCAN - 1)  # 0.76 and 1.00
    assert_cell(acc.finalize(), 75)


@pytest.mark.parametrize("threshold_byte", THRESHOLDS)
@pytest.mark.parametrize("point", [False, True])
def test_accumulator_thresholds(boundary_file, threshold_byte, point):
    acc = GridAccumulator(GRID, threads=1)
    acc.add_dataset(read_l2(boundary_file), qa_threshold=threshold_byte / 100, point=point)
    ds = acc.finalize()
    mean, _ = expected_cell(threshold_byte)
    assert float(ds[VALUE][CELL]) == pytest.approx(mean, rel=1e-4)
    if point:  # weight = number of points
        assert float(ds[WEIGHT][CELL]) == (N_SCAN - 1) * (QA_BYTES > threshold_byte).sum()
    else:
        assert_cell(ds, threshold_byte)


# --- daily grid -----------------------------------------------------------------------------------
def test_daily_grid_default_drops_exactly_075(boundary_file, tmp_path):
    out = grid_day([boundary_file], date(2020, 3, 3), GRID, tmp_path / "day.nc")
    with xr.open_dataset(out) as ds:
        assert_cell(ds, 75)
        assert float(ds.attrs["qa_threshold"]) == 0.75


@pytest.mark.parametrize("threshold_byte", [60, 74, 76])
def test_daily_grids_use_their_threshold(boundary_file, tmp_path, threshold_byte):
    [out] = grid_days({date(2020, 3, 3): [boundary_file]}, GRID, tmp_path / "daily",
                      qa_threshold=threshold_byte / 100)
    assert out.name == "2020-03-03.nc"
    with xr.open_dataset(out) as ds:
        assert_cell(ds, threshold_byte)
        assert float(ds.attrs["qa_threshold"]) == threshold_byte / 100


# --- pixel-centre attribution (the statistics' input) ---------------------------------------------
def _attributed(boundary_file, **options):
    """(mean column, pixel count) of the boundary file's pixels attributed to one region covering
    the grid (they all lie in cell (1, 1))."""
    import shapely

    from s5p_lockdown.attribution import attribute_day
    from s5p_lockdown.regions import Country, RegionSet, country_fraction_masks

    everywhere = {"ALL": Country("ALL", "", "all", True, shapely.box(8, 43, 12, 47))}
    regions = RegionSet(everywhere, country_fraction_masks(GRID, everywhere))
    sums = attribute_day([boundary_file], date(2020, 3, 3), {"all": regions}, **options)["all"]
    assert list(sums.cell) == [1 * 2 + 1]
    return float(sums.sums["no2_sum"][0] / sums.sums["pixel_count"][0]), int(sums.sums["pixel_count"][0])


@pytest.mark.parametrize("threshold_byte", [None, 60, 74, 76])
def test_attribution_keeps_strictly_above_its_threshold(boundary_file, threshold_byte):
    options = {} if threshold_byte is None else {"qa_threshold": threshold_byte / 100}
    kept = QA_BYTES > (75 if threshold_byte is None else threshold_byte)
    mean, count = _attributed(boundary_file, **options)
    assert count == (N_SCAN - 1) * kept.sum()
    assert mean == pytest.approx(float(COLUMNS[kept].astype(np.float64).mean()), rel=1e-6)


# --- the grid command -----------------------------------------------------------------------------
@pytest.mark.parametrize("qa_option, threshold_byte",
                         [([], 75), (["--qa", "0.75"], 75), (["--qa", "0.6"], 60),
                          (["--qa", "0.74"], 74), (["--qa", "0.76"], 76)])
def test_grid_command_qa_option(boundary_file, tmp_path, qa_option, threshold_byte):
    out = tmp_path / "l3.nc"
    result = CliRunner().invoke(grid_command, [
        str(boundary_file), "--bin-spatial", GRID.harp_operation()[len("bin_spatial("):-1],
        "--threads", "1", "-o", str(out), *qa_option,
    ])
    assert result.exit_code == 0, result.output
    ds = read_l3(out)
    assert_cell(ds, threshold_byte)
    assert f"--qa {threshold_byte / 100:g}" in ds.attrs["history"]


@pytest.mark.parametrize("threshold_byte", range(101))
def test_harp_engine_threshold_is_the_same_rule(threshold_byte):
    """The HARP engine's ``validity>X`` keeps the same bytes as ``qa_value > T/100``."""
    operations = harp_operations(GRID, threshold_byte / 100)
    limit = float(re.match(r"tropospheric_NO2_column_number_density_validity>([0-9.]+);",
                           operations).group(1))
    stored = np.arange(101)
    np.testing.assert_array_equal(stored > limit, stored > threshold_byte)


# --- the workflow's qa_threshold ------------------------------------------------------------------
def test_workflow_qa_threshold_reaches_the_daily_grids(boundary_file, tmp_path):
    """Real ``grid_week`` and ``attribute_week`` jobs (Snakemake, local source) with
    ``qa_threshold: 0.76``: the daily grid and the pixels attributed to Italy are only the 1.00
    pixels (the default 0.75 would keep the 0.76 ones too)."""
    import yaml

    day_dir = tmp_path / "archive" / "2020" / "03" / "03"
    day_dir.mkdir(parents=True)
    shutil.copy(boundary_file, day_dir / NAME)
    config = tmp_path / "config.yaml"
    results = tmp_path / "results"
    config.write_text(yaml.safe_dump({
        "results": str(results),
        "source": {"kind": "local", "archive": str(tmp_path / "archive"), "on_missing_data": "flag"},
        "grid": {"south": 44.0, "north": 46.0, "west": 9.0, "east": 11.0, "resolution": 1.0},
        "countries": ["ITA"],
        "qa_threshold": 0.76,
    }))
    week = results / "daily" / "2020-W10"
    attribution = results / "attribution" / "countries" / "2020-W10.nc"
    run_workflow(config, args=["--force-use-threads", "--", str(week), str(attribution)])
    with xr.open_dataset(week / "2020-03-03.nc") as ds:
        assert_cell(ds, 76)
        assert float(ds.attrs["qa_threshold"]) == 0.76
    with xr.open_dataset(attribution) as ds:
        regions = list(ds["region"].values)
        assert set(ds["region_index"].values) == {regions.index("ITA")}
        assert int(ds["pixel_count"].sum()) == N_SCAN - 1  # the 1.00 column of every valid scanline
        assert float(ds["no2_sum"].sum()) == pytest.approx((N_SCAN - 1) * float(COLUMNS[-1]), rel=1e-6)
        assert float(ds.attrs["qa_threshold"]) == 0.76
