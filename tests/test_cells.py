"""Cells × days tables from daily grids, and the purity weights against border dilution, on a
two-country toy grid."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest
import xarray as xr

from s5p_lockdown.cells import cell_tables, purity
from s5p_lockdown.estimator import common_support_means, every_day
from s5p_lockdown.gridding import schema

RES = 0.1
N_LAT, N_LON = 6, 20
LAT = 50 + RES * (np.arange(N_LAT) + 0.5)
LON = 10 + RES * (np.arange(N_LON) + 0.5)


def _masks(border_col: float = 10.5) -> xr.DataArray:
    """West country AAA and east country BBB, the border running through column 10 (its cell is
    half in each) at ``border_col`` cells from the west edge."""
    lon_edges = np.arange(N_LON + 1)
    west = np.clip(border_col - lon_edges[:-1], 0, 1)  # fraction of each column west of the border
    aaa = np.tile(west, (N_LAT, 1))
    return xr.DataArray(np.stack([aaa, 1 - aaa]).astype(np.float32),
                        dims=("country", "latitude", "longitude"),
                        coords={"country": ["AAA", "BBB"], "latitude": LAT, "longitude": LON})


def test_purity_lowers_cells_whose_catchment_crosses_the_border():
    p = purity(_masks(), border_margin=0.05)  # half a cell each side: catchment 2 cells wide
    aaa = p[0, 0]
    assert aaa[:9] == pytest.approx(1.0)  # interior
    assert aaa[9] == pytest.approx((0.5 * 1 + 1 + 0.5 * 0.5) / 2)  # next to the half cell
    assert aaa[10] == pytest.approx((0.5 * 1 + 0.5 + 0.5 * 0) / 2)  # the border cell
    assert (aaa[11:] == 0).all()  # not in AAA at all
    # without a margin the catchment is the cell itself: purity is the cell's own fraction
    assert purity(_masks(), border_margin=0.0)[0, 0] == pytest.approx(_masks().values[0, 0])


def test_box_filter_of_a_wider_margin_counts_partial_neighbours():
    """A margin of 1.5 cells: neighbours at offset 1 count fully, at offset 2 by half."""
    p = purity(_masks(border_col=10.0), border_margin=0.15)[0, 0]
    assert p[9] == pytest.approx((0.5 * 1 + 1 + 1 + 0 + 0.5 * 0) / 4)  # cells 7 (half), 8, 9 | 10, 11 (half) in BBB
    assert p[5] == pytest.approx(1.0)


def _daily_grid(path, value, weight):
    xr.Dataset({
        schema.VALUE: (("time", "latitude", "longitude"), value[None]),
        schema.WEIGHT: (("time", "latitude", "longitude"), weight[None]),
        "wind_speed": (("time", "latitude", "longitude"), np.full((1, N_LAT, N_LON), 4.0)),
    }, coords={"latitude": LAT, "longitude": LON}).to_netcdf(path)


def test_cell_tables_read_the_days_asked_for_and_keep_each_region_cells(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for day in (date(2020, 3, 1), date(2020, 3, 2), date(2020, 3, 3)):
        value = rng.uniform(1, 2, (N_LAT, N_LON))
        weight = np.where(rng.random((N_LAT, N_LON)) < 0.7, rng.uniform(0.5, 2, (N_LAT, N_LON)), 0.0)
        value[weight == 0] = np.nan
        path = tmp_path / f"{day}.nc"
        _daily_grid(path, value, weight)
        paths.append(path)
    tables = cell_tables(paths, _masks(), dates={date(2020, 3, 1), date(2020, 3, 3)}, border_margin=0.05)
    aaa = tables["AAA"]
    assert list(aaa.dates) == [date(2020, 3, 1), date(2020, 3, 3)]
    assert aaa.weight.shape == (2, N_LAT * 11)  # columns 0-10 of every row
    with xr.open_dataset(paths[2]) as ds:
        expected_w = np.nan_to_num(ds[schema.WEIGHT].values[0][:, :11]).ravel()
        expected_x = np.nan_to_num(ds[schema.VALUE].values[0][:, :11]).ravel()
    np.testing.assert_allclose(aaa.weight[1], expected_w)
    np.testing.assert_allclose(aaa.weighted_value[1], expected_w * expected_x)
    assert aaa.wind == pytest.approx([4.0, 4.0])
    cos = np.cos(np.radians(LAT))
    assert aaa.area.sum() == pytest.approx(cos.sum() * 10.5, rel=1e-6)


def test_purity_weighting_reduces_border_dilution(tmp_path):
    """AAA at 1, BBB at 3; each daily cell sees its pixels, which reach half a cell beyond it
    (the catchment): cells near the border read a mix. Weighting by purity brings AAA's mean
    closer to its own value than weighting by area alone (by a third here: the border cell
    keeps some weight)."""
    masks = _masks()
    truth = np.where(masks.values[0] > 0.5, 1.0, 3.0)
    true_fraction = masks.values[0]
    mixed_truth = true_fraction * 1.0 + (1 - true_fraction) * 3.0
    lon_mix = (0.5 * np.roll(mixed_truth, 1, axis=1) + mixed_truth + 0.5 * np.roll(mixed_truth, -1, axis=1)) / 2
    lon_mix[:, 0], lon_mix[:, -1] = truth[:, 0], truth[:, -1]
    path = tmp_path / "2020-03-01.nc"
    _daily_grid(path, lon_mix, np.ones((N_LAT, N_LON)))
    aaa = cell_tables([path], masks, border_margin=0.05)["AAA"]
    by_area = replace(aaa, weight_in_mean=aaa.area)
    error = {name: common_support_means([t], [every_day(t)]).means[0, 0] - 1.0
             for name, t in (("area", by_area), ("purity", aaa))}
    assert error["area"] == pytest.approx(0.0714, abs=1e-3)  # dilution: AAA reads BBB's NO2
    assert error["purity"] < 0.67 * error["area"]
