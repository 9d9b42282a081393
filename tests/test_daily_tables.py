"""Daily region tables (the dashboard's time series and the usable-day coverage) from the daily
grids: brute-force sums, and several region sets from one read of each grid."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from s5p_lockdown import stats
from s5p_lockdown.gridding import GridAccumulator, GridSpec, write_netcdf
from s5p_lockdown.gridding import schema
from s5p_lockdown.stats import country_daily, daily_tables

GRID = GridSpec.from_bbox(40.0, 44.0, 0.0, 6.0, 1.0)


def _masks(codes: list[str], seed: int) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    shape = (len(codes), *GRID.shape)
    values = rng.uniform(0, 1, shape) * (rng.random(shape) < 0.6)  # some cells outside
    return xr.DataArray(values.astype(np.float32), dims=("country", "latitude", "longitude"),
                        coords={"country": codes, "latitude": GRID.lat_centers, "longitude": GRID.lon_centers})


@pytest.fixture
def daily_paths(tmp_path):
    paths = []
    for i in range(3):
        rng = np.random.default_rng(i)
        acc = GridAccumulator(GRID)
        south, west = rng.uniform(40.0, 42.0, 3), rng.uniform(0.0, 4.0, 3)
        lat = np.stack([south, south, south + 1.5, south + 1.5], axis=-1)
        lon = np.stack([west, west + 1.5, west + 1.5, west], axis=-1)
        acc.add_pixels(rng.uniform(1e-5, 1e-4, 3), np.full(3, 1e-5), lat, lon, source=f"orbit_{i}.nc")
        path = tmp_path / f"{date(2020, 3, 1) + timedelta(days=i)}.nc"
        write_netcdf(acc.finalize(), path)
        paths.append(path)
    return paths


def test_daily_table_sums_equal_a_brute_force_loop(daily_paths):
    masks = _masks(["AAA", "BBB"], seed=1)
    table = country_daily(daily_paths, masks).set_index(["date", "iso3"])
    cos_lat = np.cos(np.radians(GRID.lat_centers))
    for path in daily_paths:
        with xr.open_dataset(path) as ds:
            value = ds[schema.VALUE].values[0]
            weight = np.nan_to_num(ds[schema.WEIGHT].values[0])
        for k, code in enumerate(masks["country"].values):
            s = a = covered = total = 0.0
            for i in range(GRID.shape[0]):
                for j in range(GRID.shape[1]):
                    area = cos_lat[i] * float(masks.values[k, i, j])
                    total += area
                    if np.isfinite(value[i, j]) and weight[i, j] > 0:
                        s += area * weight[i, j] * value[i, j]
                        a += area * weight[i, j]
                        covered += area
            row = table.loc[(path.stem, code)]
            assert row["sum_weighted_no2"] == pytest.approx(s, rel=1e-12)
            assert row["sum_weight"] == pytest.approx(a, rel=1e-12)
            assert row["coverage"] == pytest.approx(covered / total, rel=1e-12)
            assert row["mean_no2"] == pytest.approx(s / a, rel=1e-12) if a else np.isnan(row["mean_no2"])


def test_several_region_sets_from_one_read_of_each_grid(daily_paths, monkeypatch):
    countries, hotspots = _masks(["AAA", "BBB", "CCC"], seed=2), _masks(["City"], seed=3)
    separate = {"countries": country_daily(daily_paths, countries), "hotspots": country_daily(daily_paths, hotspots)}
    opened = []
    real_open = stats.xr.open_dataset
    monkeypatch.setattr(stats.xr, "open_dataset",
                        lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k))
    together = daily_tables(daily_paths, {"countries": countries, "hotspots": hotspots})
    assert sorted(opened) == sorted(daily_paths)  # each grid once for both sets
    for name, frame in separate.items():
        pd.testing.assert_frame_equal(together[name], frame)
