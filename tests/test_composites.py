"""Period composites from daily grids: one per window, days read once across windows."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
import xarray as xr

from s5p_lockdown import composites
from s5p_lockdown.composites import DailyCache, period_composites
from s5p_lockdown.errors import InvalidProductError
from s5p_lockdown.gridding import GridAccumulator, GridSpec, composite, write_netcdf
from s5p_lockdown.gridding import schema

GRID = GridSpec.from_bbox(40.0, 44.0, 0.0, 6.0, 1.0)
FIRST = date(2020, 3, 1)
DEFAULT_CACHE_BYTES = composites.DAILY_CACHE_BYTES


def _daily_grid(day_index: int) -> GridAccumulator:
    """A day's grid: a different value and coverage each day (one 1.5 x 1.5 degree pixel
    plus a second one on odd days)."""
    acc = GridAccumulator(GRID)
    rng = np.random.default_rng(day_index)
    n = 1 + day_index % 2
    south = rng.uniform(40.0, 42.0, n)
    west = rng.uniform(0.0, 4.0, n)
    lat = np.stack([south, south, south + 1.5, south + 1.5], axis=-1)
    lon = np.stack([west, west + 1.5, west + 1.5, west], axis=-1)
    acc.add_pixels(rng.uniform(1e-5, 1e-4, n), np.full(n, 1e-5), lat, lon,
                   source=f"orbit_{day_index}.nc")
    return acc


@pytest.fixture
def daily_dir(tmp_path):
    """Daily grids for 1-20 March 2020, except 5 March (no orbit that day)."""
    folder = tmp_path / "daily"
    for i in range(20):
        day = FIRST + timedelta(days=i)
        if day != date(2020, 3, 5):
            write_netcdf(_daily_grid(i).finalize(), folder / f"{day}.nc")
    return folder


def _expected(days: list[date], weighting: str) -> xr.Dataset:
    accs = [_daily_grid((d - FIRST).days) for d in days if d != date(2020, 3, 5)]
    return composite(accs, weighting=weighting).finalize()


@pytest.mark.parametrize("weighting", ["weight", "equal"])
@pytest.mark.parametrize("cache_bytes", [DEFAULT_CACHE_BYTES, 1])
def test_overlapping_windows_equal_direct_composites(daily_dir, tmp_path, monkeypatch,
                                                    weighting, cache_bytes):
    """Each window's composite equals compositing its days directly, whether the days come
    from the cache or (cache of one grid) are read again; each day is read once when the
    cache holds them all."""
    monkeypatch.setattr(composites, "DAILY_CACHE_BYTES", cache_bytes)
    reads = []
    real_load = composites.load_daily
    monkeypatch.setattr(composites, "load_daily", lambda p: reads.append(p) or real_load(p))
    windows = {"a": (date(2020, 3, 1), date(2020, 3, 10)), "b": (date(2020, 3, 4), date(2020, 3, 14)),
               "c": (date(2020, 3, 8), date(2020, 3, 20)), "empty": (date(2020, 4, 1), date(2020, 4, 3))}
    written = period_composites(windows, lambda d: daily_dir / f"{d}.nc", tmp_path / "out",
                                weighting)
    assert [p.name for p in written] == ["a.nc", "b.nc", "c.nc"]  # no data: no composite
    for name in "abc":
        start, end = windows[name]
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        with xr.open_dataset(tmp_path / "out" / f"{name}.nc") as got:
            want = _expected(days, weighting)
            for var in (schema.VALUE, schema.UNCERTAINTY, schema.UNCERTAINTY_RANDOM, schema.WEIGHT,
                        schema.PIXEL_COUNT):
                np.testing.assert_allclose(got[var].values, want[var].values, rtol=1e-12,
                                           equal_nan=True)
            assert got.attrs["days_used"] == len(days) - (date(2020, 3, 5) in days)
            assert got.attrs["missing_days"] == ("2020-03-05" if date(2020, 3, 5) in days else "")
            assert got.attrs["window_start"] == start.isoformat()
    if cache_bytes == DEFAULT_CACHE_BYTES:
        assert len(reads) == len(set(reads)) == 19
    else:
        assert len(reads) > 19, reads  # evicted days are read again


def test_cache_evicts_least_recently_used(daily_dir):
    one_day = composites.load_daily(daily_dir / "2020-03-01.nc").nbytes
    cache = DailyCache(max_bytes=2 * one_day)
    first, second, third = (daily_dir / f"2020-03-0{i}.nc" for i in (1, 2, 3))
    a = cache.load(first)
    cache.load(second)
    assert cache.load(first) is a  # a hit, and now the most recently used
    cache.load(third)  # evicts the second day
    assert cache.load(first) is a
    assert list(cache._items) == [third, first]


def test_daily_grid_without_the_random_uncertainty_is_refused(daily_dir, tmp_path):
    """A daily grid from before ``…_uncertainty_random`` existed (its ``…_uncertainty`` meant the
    random one) is refused with the file's name rather than misread."""
    old = tmp_path / "2020-03-01.nc"
    with xr.open_dataset(daily_dir / "2020-03-01.nc") as ds:
        write_netcdf(ds.load().drop_vars(schema.UNCERTAINTY_RANDOM), old)
    refused = "2020-03-01.nc.*uncertainty_random.*grid them again"
    with pytest.raises(InvalidProductError, match=refused):
        composites.load_daily(old)
