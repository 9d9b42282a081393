"""GridAccumulator: weighted means and uncertainties, point binning, L2 datasets, merging,
composites, the output schema and netCDF round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from s5p_lockdown.gridding import GridAccumulator, GridSpec, composite, read_l3
from s5p_lockdown.gridding.schema import (
    COUNT, PIXEL_COUNT, UNCERTAINTY, UNCERTAINTY_RANDOM, VALUE, WEIGHT,
)

GRID = GridSpec.from_bbox(10, 12, 20, 23, 0.5)  # 4 x 6 cells


def square(lat0, lon0, size):
    """Corners of an axis-aligned square pixel, counter-clockwise."""
    return [lat0, lat0, lat0 + size, lat0 + size], [lon0, lon0 + size, lon0 + size, lon0]


def test_weighted_mean_and_both_uncertainties():
    # pixel A covers all of cell (1, 2); pixel B covers a quarter of it
    a_lat, a_lon = square(10.5, 21.0, 0.5)
    b_lat, b_lon = square(10.5, 21.0, 0.25)
    acc = GridAccumulator(GRID, threads=1)
    acc.add_pixels([2.0, 4.0], [0.3, 0.4], np.array([a_lat, b_lat]), np.array([a_lon, b_lon]))
    ds = acc.finalize()
    w = np.array([1.0, 0.25])
    cell = dict(time=0, latitude=1, longitude=2)
    assert float(ds[WEIGHT][cell]) == pytest.approx(1.25)
    assert float(ds[VALUE][cell]) == pytest.approx((2.0 * 1.0 + 4.0 * 0.25) / 1.25)
    # HARP's _uncertainty: linear average; _uncertainty_random: uncorrelated propagation
    assert float(ds[UNCERTAINTY][cell]) == pytest.approx((0.3 * 1.0 + 0.4 * 0.25) / 1.25)
    assert float(ds[UNCERTAINTY_RANDOM][cell]) == pytest.approx(
        np.sqrt(np.sum((w * [0.3, 0.4]) ** 2)) / 1.25
    )
    assert int(ds[PIXEL_COUNT][cell]) == 2 and int(ds[COUNT][0]) == 2
    assert np.isnan(ds[VALUE][0, 0, 0]) and float(ds[WEIGHT][0, 0, 0]) == 0.0


def test_output_schema():
    acc = GridAccumulator(GRID)
    lat, lon = square(10.1, 20.1, 0.2)
    t = np.datetime64("2020-03-25T11:00:00", "ns")
    acc.add_pixels([1e-4], [2e-5], [lat], [lon], time=[t], source="S5P_file.nc")
    ds = acc.finalize(history="test")
    assert dict(ds.sizes) == {"time": 1, "latitude": 4, "longitude": 6, "independent": 2}
    for name in (VALUE, UNCERTAINTY, UNCERTAINTY_RANDOM, WEIGHT, PIXEL_COUNT):
        assert ds[name].dims == ("time", "latitude", "longitude")
    assert ds[VALUE].dtype == np.float64 and ds[WEIGHT].dtype == np.float64
    assert ds[PIXEL_COUNT].dtype == np.int32 and ds[COUNT].dims == ("time",)
    assert ds[VALUE].attrs["units"] == "mol m-2"
    assert ds[VALUE].attrs["standard_name"] == "troposphere_mole_content_of_nitrogen_dioxide"
    assert ds["latitude"].attrs["bounds"] == "latitude_bounds"
    np.testing.assert_allclose(ds["latitude"], [10.25, 10.75, 11.25, 11.75])
    np.testing.assert_allclose(ds["longitude_bounds"][0], [20.0, 20.5])
    assert ds.attrs["harp_operation"] == "bin_spatial(5,10,0.5,7,20,0.5)"
    assert ds.attrs["source_product"] == "S5P_file.nc"
    assert ds.attrs["Conventions"].startswith("CF-")
    assert ds["datetime_start"].values[0] == t and ds["time"].values[0] == t


def test_point_binning_edges_and_wrapping():
    acc = GridAccumulator(GRID)
    lat = [10.0, 10.49, 12.0, 11.0, 11.0, np.nan]
    lon = [20.0, 20.49, 21.0, 20.0 - 360.0, 23.0, 21.0]
    counted = acc.add_points([1.0, 3.0, 5.0, 7.0, 9.0, 11.0], [1.0] * 6, lat, lon)
    # lower edges inclusive; the last edge (12 N, 23 E) exclusive; -340 wraps to 20; NaN ignored
    assert counted == 3
    ds = acc.finalize()
    assert float(ds[VALUE][0, 0, 0]) == pytest.approx(2.0)
    assert float(ds[WEIGHT][0, 0, 0]) == 2.0
    assert float(ds[UNCERTAINTY][0, 0, 0]) == 1.0
    assert float(ds[UNCERTAINTY_RANDOM][0, 0, 0]) == pytest.approx(np.sqrt(2.0) / 2.0)
    assert float(ds[VALUE][0, 2, 0]) == 7.0


def test_point_binning_matches_a_brute_force_reference():
    """Each cell's mean, uncertainty Σ σ / N and random uncertainty sqrt(Σ σ²) / N, against
    loops over the cells; σ varies (0.5-3) so that the two differ."""
    rng = np.random.default_rng(7)
    n = 500
    lat = rng.uniform(9.7, 12.3, n)  # some points outside the grid (10-12 N, 20-23 E)
    lon = rng.uniform(19.6, 23.4, n)
    values = rng.normal(5.0, 2.0, n)
    sigmas = rng.uniform(0.5, 3.0, n)
    acc = GridAccumulator(GRID)
    counted = acc.add_points(values, sigmas, lat, lon)
    ds = acc.finalize()
    lat_edges, lon_edges = np.linspace(10, 12, 5), np.linspace(20, 23, 7)
    total = 0
    for i in range(4):
        for j in range(6):
            inside = ((lat >= lat_edges[i]) & (lat < lat_edges[i + 1])
                      & (lon >= lon_edges[j]) & (lon < lon_edges[j + 1]))
            total += inside.sum()
            cell = dict(time=0, latitude=i, longitude=j)
            assert float(ds[WEIGHT][cell]) == inside.sum() > 0
            assert float(ds[VALUE][cell]) == pytest.approx(values[inside].mean(), rel=1e-12)
            assert float(ds[UNCERTAINTY][cell]) == pytest.approx(sigmas[inside].mean(), rel=1e-12)
            expected_sigma = np.sqrt(np.sum(sigmas[inside] ** 2)) / inside.sum()
            assert float(ds[UNCERTAINTY_RANDOM][cell]) == pytest.approx(expected_sigma, rel=1e-12)
    assert counted == total < n


def l2_dataset(values, qa, lat_b, lon_b, source="S5P_test.nc"):
    """A minimal dataset in the read_l2 layout (scanline, ground_pixel, corner)."""
    values = np.asarray(values, np.float32)
    shape = values.shape
    lat_b = np.asarray(lat_b, np.float32).reshape(*shape, 4)
    lon_b = np.asarray(lon_b, np.float32).reshape(*shape, 4)
    dims = ("scanline", "ground_pixel")
    return xr.Dataset(
        {
            "nitrogendioxide_tropospheric_column": (dims, values),
            "nitrogendioxide_tropospheric_column_precision": (dims, np.full(shape, 1e-5, np.float32)),
            "qa_value": (dims, np.asarray(qa, np.float32)),
            "latitude": (dims, lat_b.mean(-1)),
            "longitude": (dims, lon_b.mean(-1)),
            "latitude_bounds": (dims + ("corner",), lat_b),
            "longitude_bounds": (dims + ("corner",), lon_b),
        },
        coords={"time": ("scanline", np.array(["2020-03-25T12:00", "2020-03-25T12:01"], "datetime64[ns]")[: shape[0]])},
        attrs={"source_file": source, "orbit": 1, "processor_version": "2.4.0"},
    )


def test_add_dataset_filters_qa_strictly_and_nan():
    lat, lon = square(10.5, 21.0, 0.5)
    ds = l2_dataset(
        [[1e-4, 2e-4, np.nan, 4e-4]], [[0.76, 0.75, 1.0, 0.5]], [lat] * 4, [lon] * 4
    )
    acc = GridAccumulator(GRID)
    assert acc.add_dataset(ds, qa_threshold=0.75) == 1  # qa 0.75 is not > 0.75
    out = acc.finalize()
    assert float(out[VALUE][0, 1, 2]) == pytest.approx(1e-4)
    assert out.attrs["source_product"] == "S5P_test.nc"
    assert out["datetime_start"].values[0] == np.datetime64("2020-03-25T12:00", "ns")
    point = GridAccumulator(GRID)
    assert point.add_dataset(ds, qa_threshold=0.5, point=True) == 2
    assert float(point.finalize()[WEIGHT][0, 1, 2]) == 2.0


def test_empty_orbit_dataset():
    empty = l2_dataset(np.zeros((0, 450)), np.zeros((0, 450)), np.zeros((0, 450, 4)), np.zeros((0, 450, 4)))
    acc = GridAccumulator(GRID)
    assert acc.add_dataset(empty) == 0
    assert acc.finalize()[COUNT].values[0] == 0


def random_orbit(seed: int, n: int = 400):
    rng = np.random.default_rng(seed)
    lat0 = rng.uniform(9.8, 11.9, n)
    lon0 = rng.uniform(19.8, 22.9, n)
    size = rng.uniform(0.05, 0.4, n)
    lat = np.stack([lat0, lat0, lat0 + size, lat0 + size], 1)
    lon = np.stack([lon0, lon0 + size, lon0 + size * 1.2, lon0 - 0.1], 1)
    return rng.normal(1e-4, 2e-5, n), rng.uniform(1e-5, 3e-5, n), lat, lon


def test_merge_equals_binning_everything_at_once():
    orbits = [random_orbit(s) for s in range(3)]
    together = GridAccumulator(GRID)
    parts = []
    for i, orbit in enumerate(orbits):
        together.add_pixels(*orbit, source=f"orbit{i}")
        part = GridAccumulator(GRID)
        part.add_pixels(*orbit, source=f"orbit{i}")
        parts.append(part)
    merged = composite(parts)
    np.testing.assert_allclose(merged.sums, together.sums, rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(merged.pixel_count, together.pixel_count)
    assert merged.count == together.count and merged.sources == ["orbit0", "orbit1", "orbit2"]
    assert parts[0].count == GridAccumulator.from_dataset(parts[0].finalize()).count


def test_equal_weighting_is_the_mean_of_daily_means():
    days = []
    for seed in range(3):
        day = GridAccumulator(GRID)
        day.add_pixels(*random_orbit(seed, n=30 + 40 * seed))
        days.append(day)
    means = np.stack([d.finalize()[VALUE].values[0] for d in days])
    linear = np.stack([d.finalize()[UNCERTAINTY].values[0] for d in days])
    sigmas = np.stack([d.finalize()[UNCERTAINTY_RANDOM].values[0] for d in days])
    result = composite(days, weighting="equal").finalize()
    n_days = np.sum(np.isfinite(means), axis=0)
    with np.errstate(invalid="ignore"):
        expected = np.nanmean(means, axis=0)
        expected_linear = np.nanmean(linear, axis=0)
        expected_sigma = np.sqrt(np.nansum(sigmas**2, axis=0)) / n_days
    np.testing.assert_allclose(result[VALUE].values[0], expected, rtol=1e-12)
    np.testing.assert_allclose(result[UNCERTAINTY].values[0], expected_linear, rtol=1e-12)
    np.testing.assert_allclose(result[UNCERTAINTY_RANDOM].values[0],
                               np.where(n_days > 0, expected_sigma, np.nan), rtol=1e-12)
    np.testing.assert_array_equal(result[WEIGHT].values[0], n_days)
    assert result.attrs["weighting"] == "equal"


def test_merge_refuses_other_grids_and_weightings():
    acc = GridAccumulator(GRID)
    with pytest.raises(ValueError, match="different grids"):
        acc.merge(GridAccumulator(GridSpec.from_bbox(10, 12, 20, 23, 0.25)))
    with pytest.raises(ValueError, match="weighted"):
        acc.merge(acc.normalized())
    with pytest.raises(ValueError, match="no accumulators"):
        composite([])


@pytest.mark.parametrize("threads", [1, 2])
def test_companion_is_binned_with_the_same_weights(threads):
    """A companion variable (e.g. wind speed) binned in the same pass gives exactly what
    binning it as a main variable over the same pixels gives; NaN companions add nothing."""
    values, sigmas, lat, lon = random_orbit(3, n=600)
    values[::7] = np.nan  # pixels the main variable leaves out: no companion either
    wind = np.random.default_rng(4).uniform(0, 12, values.size)
    wind[::5] = np.nan  # pixels without a companion value still count for the main variable
    wind[1::5] = np.inf
    wind[2::5] = 9.96921e36  # netCDF fill
    acc = GridAccumulator(GRID, threads=threads, companions=("wind_speed",))
    acc.add_pixels(values, sigmas, lat, lon, companions={"wind_speed": wind})
    plain = GridAccumulator(GRID, threads=threads)
    plain.add_pixels(values, sigmas, lat, lon)
    np.testing.assert_array_equal(acc.sums, plain.sums)
    alone = GridAccumulator(GRID, threads=threads)
    alone.add_pixels(np.where(np.isfinite(values) & (wind < 1e30), wind, np.nan),
                     np.zeros_like(wind), lat, lon)
    result = acc.finalize()
    np.testing.assert_array_equal(result["wind_speed"].values, alone.finalize()[VALUE].values)
    assert np.isfinite(result["wind_speed"].values).sum() > 10
    # an orbit without the companion adds weight to the main variable only
    acc.add_pixels(values, sigmas, lat, lon)
    np.testing.assert_array_equal(acc.finalize()["wind_speed"].values, result["wind_speed"].values)


def test_companions_merge_normalise_and_point_binning():
    days = []
    for seed in range(3):
        values, sigmas, lat, lon = random_orbit(seed, n=50 + 30 * seed)
        day = GridAccumulator(GRID, companions=("wind_speed",))
        day.add_pixels(values, sigmas, lat, lon, companions={"wind_speed": values * 1e5})
        days.append(day)
    means = np.stack([d.finalize()["wind_speed"].values[0] for d in days])
    with np.errstate(invalid="ignore"):
        expected = np.nanmean(means, axis=0)
    equal = composite(days, weighting="equal").finalize()
    np.testing.assert_allclose(equal["wind_speed"].values[0], expected, rtol=1e-12)
    # the companion equals the main value here (x 1e5), so weight-merged means agree too
    merged = composite(days).finalize()
    np.testing.assert_allclose(merged["wind_speed"].values, merged[VALUE].values * 1e5, rtol=1e-12)
    points = GridAccumulator(GRID, companions=("wind_speed",))
    points.add_points([1.0, 3.0, 5.0], [0.1, 0.1, 0.1], [10.1, 10.2, 10.3], [20.1, 20.2, 20.3],
                      companions={"wind_speed": [2.0, np.nan, 6.0]})
    cell = points.finalize()["wind_speed"].values[0, 0, 0]
    assert cell == pytest.approx(4.0) and points.finalize()[VALUE].values[0, 0, 0] == pytest.approx(3.0)


def test_companion_errors():
    acc = GridAccumulator(GRID, companions=("wind_speed",))
    values, sigmas, lat, lon = random_orbit(1, n=10)
    with pytest.raises(ValueError, match="unknown companion"):
        acc.add_pixels(values, sigmas, lat, lon, companions={"cloud": values})
    with pytest.raises(ValueError, match="has 3 values"):
        acc.add_pixels(values, sigmas, lat, lon, companions={"wind_speed": values[:3]})
    with pytest.raises(ValueError, match="companion"):
        acc.merge(GridAccumulator(GRID))
    for names in (("weight",), ("wind_speed", "wind_speed")):
        with pytest.raises(ValueError, match="companion names"):
            GridAccumulator(GRID, companions=names)


def test_netcdf_round_trip(tmp_path):
    acc = GridAccumulator(GRID)
    acc.add_pixels(*random_orbit(7), time=np.datetime64("2020-03-25T12:00"), source="a.nc")
    path = acc.to_netcdf(tmp_path / "l3.nc", history="created by a test")
    ds = read_l3(path)
    expected = acc.finalize()
    for name in (VALUE, UNCERTAINTY, UNCERTAINTY_RANDOM, WEIGHT, PIXEL_COUNT, COUNT):
        np.testing.assert_array_equal(ds[name].values, expected[name].values)
    assert ds.attrs["weighting"] == "weight" and ds.attrs["source_product"] == "a.nc"
    back = GridAccumulator.from_dataset(ds)
    assert back.grid == acc.grid
    np.testing.assert_allclose(back.sums, acc.sums, rtol=1e-12, atol=1e-300)
    assert back.time_start == np.datetime64("2020-03-25T12:00", "ns")
    assert back.merge(acc).count == 2 * acc.count


def test_netcdf_file_is_the_finalized_dataset(tmp_path):
    """to_netcdf (netCDF4, band by band, empty chunks left unwritten) writes what finalize
    gives: every variable, value, dtype and attribute, on a grid of several chunks per axis
    with data in only some of them (one band: the first and third chunk, not the second), and a
    companion variable."""
    grid = GridSpec.from_bbox(0.0, 60.0, 0.0, 70.0, 0.1)  # 600 x 700 cells: 3 x 3 chunks
    acc = GridAccumulator(grid, threads=1, companions=("wind_speed",))
    corners = [square(30.0 + 0.3 * i, 10.0 + 0.3 * i, 0.35) for i in range(40)]  # 2 chunks
    lat, lon = np.array([c[0] for c in corners]), np.array([c[1] for c in corners])
    values, sigmas = np.linspace(1e-5, 2e-5, 40), np.full(40, 1e-6)
    acc.add_pixels(values, sigmas, lat, lon, time=np.datetime64("2020-03-25T12:00"),
                   source="a.nc", companions={"wind_speed": np.full(values.shape, 4.0)})
    far_lat, far_lon = square(35.0, 65.0, 0.35)  # the band's third chunk: the second between has no data
    acc.add_pixels(np.array([3e-5]), np.array([1e-6]), np.array([far_lat]), np.array([far_lon]),
                   time=np.datetime64("2020-03-25T12:00"), source="a.nc")
    path = acc.to_netcdf(tmp_path / "l3.nc", history="a test", attrs={"day": "2020-03-25"},
                         variable_attrs={"wind_speed": {"units": "m s-1"}})
    expected = acc.finalize(history="a test")
    with xr.open_dataset(path) as written:
        assert list(written.variables) == list(expected.variables)
        for name, var in expected.variables.items():
            assert written[name].dtype == var.dtype, name
            np.testing.assert_array_equal(written[name].values, var.values, err_msg=name)
            assert written[name].attrs == {**var.attrs, **({"units": "m s-1"} if name == "wind_speed" else {})}
        assert written.attrs == {**expected.attrs, "day": "2020-03-25"}
        assert np.isfinite(written[VALUE].values).sum() == (acc.sums[..., 0] > 0).sum() > 0
        assert (written[WEIGHT].values[0] == acc.sums[..., 0]).all()  # 0, not NaN, where empty


def test_large_sums_are_zeros_on_small_pages_mapped_only_where_written():
    """The accumulator's sums (0.85 GB at 0.01° over Europe) stay out of transparent huge pages
    and take memory only where binning writes: reading untouched cells maps nothing."""
    from s5p_lockdown.gridding.accumulator import small_page_zeros

    array = small_page_zeros((1024, 1024), np.float64)  # 8 MB
    assert array.shape == (1024, 1024) and array.dtype == np.float64 and array.flags.writeable
    assert array.sum() == 0.0  # reads every page
    array[10, :] = 1.0  # writes one page
    assert array.sum() == 1024.0
    address = array.__array_interface__["data"][0]
    mapping = _smaps_entry(address)
    assert "nh" in mapping["VmFlags"].split()  # MADV_NOHUGEPAGE
    assert int(mapping["Rss"].split()[0]) < 1024  # kB: only the written page(s), not 8 MB
    assert small_page_zeros((3, 2), np.int32).tolist() == [[0, 0]] * 3


def _smaps_entry(address: int) -> dict:
    """The /proc/self/smaps fields of the mapping containing ``address``."""
    fields, inside = {}, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and ":" not in head:
            start, end = (int(x, 16) for x in head.split("-"))
            inside = start <= address < end
        elif inside:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields
