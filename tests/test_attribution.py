"""Pixel-centre attribution to regions and cells, and the cells × days tables built from it.

Toy grid: 0.1 degree cells over 50-50.6 N, 10-12 E; country AAA west of 11.0625 E and BBB east
of it up to a coast at 11.953125 E, the sea beyond (longitudes that binary floating point holds
exactly): the border runs through column 10, the coast through column 19.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import shapely

from s5p_lockdown.attribution import (
    DaySums,
    _CellIndex,
    attribute_day,
    attribute_days,
    attribute_pixels,
    pixel_cells,
    write_attribution,
)
from s5p_lockdown.cells import cell_tables
from s5p_lockdown.errors import InvalidProductError
from s5p_lockdown.estimator import common_support_means, every_day
from s5p_lockdown.gridding import GridAccumulator, GridSpec
from s5p_lockdown.regions import Country, RegionSet, country_fraction_masks, country_of_points
from s5p_lockdown.stats import StatsSettings, statistics_from_attribution
from stats_support import window_dates, windows_frame

GRID = GridSpec.from_bbox(50.0, 50.6, 10.0, 12.0, 0.1)
BORDER = 11.0625
COAST = 11.953125


def _countries() -> dict[str, Country]:
    return {
        "AAA": Country("AAA", "", "West", True, shapely.box(9.0, 49.0, BORDER, 52.0)),
        "BBB": Country("BBB", "", "East", True, shapely.box(BORDER, 49.0, COAST, 52.0)),
    }


def _region_set(regions=None, exclusive=True) -> RegionSet:
    regions = regions or _countries()
    return RegionSet(regions, country_fraction_masks(GRID, regions, exclusive=exclusive), exclusive)


def test_pixel_cells_are_half_open_and_wrap_longitudes():
    lat = np.array([50.0, 50.05, 50.6, 49.99, 50.1, np.nan, 50.05])
    lon = np.array([10.0, 10.15, 10.5, 10.5, 10.1 + 360.0, 10.5, 11.999])
    cells = pixel_cells(lat, lon, GRID)
    # (row, column): the south-west edge belongs to cell (0, 0); the north edge is outside
    np.testing.assert_array_equal(cells, [0, 1, -1, -1, 1 * 20 + 1, -1, 19])


def test_each_pixel_goes_to_the_country_containing_its_centre():
    rng = np.random.default_rng(3)
    lat = rng.uniform(49.9, 50.7, 4000)
    lon = rng.uniform(9.9, 12.1, 4000)
    lon[:50] = BORDER  # on the border: the first country of the set (AAA), as country_of_points
    regions = _region_set()
    cells = pixel_cells(lat, lon, GRID)
    pixel, region = attribute_pixels(lat, lon, cells, _CellIndex(regions))
    assert np.all(np.diff(pixel) > 0)  # exclusive: at most one region per pixel, in pixel order
    expected = country_of_points(lon, lat, regions.regions)
    inside = cells >= 0
    np.testing.assert_array_equal(pixel, np.flatnonzero(inside & (expected != "")))
    np.testing.assert_array_equal(np.array(regions.codes)[region], expected[pixel])
    assert set(np.array(regions.codes)[region[np.isin(pixel, np.arange(50))]]) == {"AAA"}
    assert not np.isin(np.flatnonzero(lon > COAST), pixel).any()  # at sea: no country


def test_overlapping_regions_each_count_a_shared_pixel():
    circles = {name: Country(name, "", name, True, shapely.Point(x, 50.3).buffer(0.25))
               for name, x in (("West", 10.8), ("East", 11.2))}
    regions = _region_set(circles, exclusive=False)
    lat = np.array([50.3, 50.3, 50.3, 50.3])
    lon = np.array([10.6, 11.0, 11.4, 11.9])  # West only, both, East only, neither
    pixel, region = attribute_pixels(lat, lon, pixel_cells(lat, lon, GRID), _CellIndex(regions))
    names = np.array(regions.codes)[region]
    assert list(zip(pixel, names)) == [(0, "West"), (1, "West"), (1, "East"), (2, "East")]


def _pixels_across_the_border(rng, n=20000, size=0.06):
    """Square pixels (``size`` degrees) with centres all over the grid; each pixel's column is
    its country's value at the centre (AAA 1, BBB 3, the sea 10; x 1e-5 mol m-2)."""
    lat = rng.uniform(50.0, 50.6, n)
    lon = rng.uniform(10.0, 12.0, n)
    value = np.where(lon < BORDER, 1e-5, np.where(lon < COAST, 3e-5, 10e-5))
    half = size / 2
    lat_bounds = np.stack([lat - half, lat - half, lat + half, lat + half], axis=-1)
    lon_bounds = np.stack([lon - half, lon + half, lon + half, lon - half], axis=-1)
    return lat, lon, value, lat_bounds, lon_bounds


def _day_sums(day, lat, lon, value, regions) -> DaySums:
    """What attribute_day computes for one day from pixel arrays (no file)."""
    cells = pixel_cells(lat, lon, GRID)
    pixel, region = attribute_pixels(lat, lon, cells, _CellIndex(regions))
    n_cells = GRID.shape[0] * GRID.shape[1]
    key = region * n_cells + cells[pixel]
    unique, inverse = np.unique(key, return_inverse=True)
    count = np.bincount(inverse).astype(np.int32)
    sums = {"pixel_count": count, "no2_sum": np.bincount(inverse, weights=value[pixel]),
            "wind_count": count, "wind_sum": 4.0 * count}
    return DaySums(day, unique // n_cells, unique % n_cells, sums)


def test_border_attribution_removes_the_dilution_of_the_daily_grid(tmp_path):
    """Area binning (the daily grid) spreads each pixel over every cell its footprint touches:
    AAA's area-weighted mean reads some of BBB's NO2, BBB's some of the sea's. Attributed by
    their centres, AAA's pixels give exactly AAA's value and BBB's exactly BBB's."""
    rng = np.random.default_rng(0)
    lat, lon, value, lat_bounds, lon_bounds = _pixels_across_the_border(rng)
    regions = _region_set()
    path = write_attribution([_day_sums(date(2020, 3, 1), lat, lon, value, regions)], regions,
                             tmp_path / "2020-W09.nc", 0.75)
    tables = cell_tables([path], regions.masks)
    means = {code: common_support_means([t], [every_day(t)]).means[0, 0] for code, t in tables.items()}
    assert means["AAA"] == pytest.approx(1e-5, rel=1e-12)
    assert means["BBB"] == pytest.approx(3e-5, rel=1e-12)

    accumulator = GridAccumulator(GRID)
    accumulator.add_pixels(value, np.full(value.size, 1e-6), lat_bounds, lon_bounds)
    grid = accumulator.finalize()
    area = np.cos(np.radians(GRID.lat_centers))[:, None] * regions.masks.values[0]
    diluted = np.nansum(area * grid["tropospheric_NO2_column_number_density"].values[0]) / area.sum()
    assert diluted > 1.02e-5  # the grid's border cells mix in BBB's 3e-5


def test_cell_tables_keep_the_days_asked_for_in_date_order(tmp_path):
    rng = np.random.default_rng(1)
    regions = _region_set()
    days = [date(2020, 3, 2), date(2020, 3, 1), date(2020, 3, 9)]
    sums = [_day_sums(day, *_pixels_across_the_border(rng, n=500)[:3], regions) for day in days]
    week9 = write_attribution(sums[:2], regions, tmp_path / "2020-W09.nc", 0.75)
    week10 = write_attribution(sums[2:], regions, tmp_path / "2020-W10.nc", 0.75)
    tables = cell_tables([week10, week9], regions.masks, dates={date(2020, 3, 1), date(2020, 3, 9)})
    aaa = tables["AAA"]
    assert list(aaa.dates) == [date(2020, 3, 1), date(2020, 3, 9)]
    assert aaa.weight.shape == (2, 6 * 11)  # columns 0-10 of every row
    # the day of 1 March holds exactly the pixels attributed to AAA that day
    first = sums[1]
    assert aaa.weight[0].sum() == first.sums["pixel_count"][first.region == 0].sum()
    assert aaa.weighted_value[0].sum() == pytest.approx(first.sums["no2_sum"][first.region == 0].sum())
    assert aaa.wind == pytest.approx([4.0, 4.0])
    cos = np.cos(np.radians(GRID.lat_centers))
    assert aaa.area.sum() == pytest.approx(cos.sum() * 10.625, rel=1e-6)


def test_statistics_cells_are_blocks_of_grid_cells_with_their_sums(tmp_path):
    """cell_size 0.2 on the 0.1 degree grid: 2 x 2 blocks aligned on the grid's south-west
    corner; each block's area and daily sums are those of its grid cells, the region's totals
    unchanged, and a border block holds only its own region's pixels (BBB's 3e-5 stays out of
    AAA's mean)."""
    rng = np.random.default_rng(4)
    regions = _region_set()
    lat, lon, value = _pixels_across_the_border(rng, n=3000)[:3]
    path = write_attribution([_day_sums(date(2020, 3, 1), lat, lon, value, regions)], regions,
                             tmp_path / "2020-W09.nc", 0.75)
    fine = cell_tables([path], regions.masks)["AAA"]
    blocks = cell_tables([path], regions.masks, cell_size=0.2)["AAA"]
    # AAA: grid columns 0-10 (column 10 partly) of 6 rows -> 3 block rows x 6 block columns
    assert blocks.area.shape == (3 * 6,)
    grid_cells = fine.area.reshape(6, 11)
    expected = np.add.reduceat(np.add.reduceat(grid_cells, [0, 2, 4], axis=0), [0, 2, 4, 6, 8, 10], axis=1)
    np.testing.assert_allclose(blocks.area, expected.ravel(), rtol=1e-12)
    for name in ("weight", "weighted_value"):
        day = getattr(fine, name)[0].reshape(6, 11)
        summed = np.add.reduceat(np.add.reduceat(day, [0, 2, 4], axis=0), [0, 2, 4, 6, 8, 10], axis=1)
        np.testing.assert_allclose(getattr(blocks, name)[0], summed.ravel(), rtol=1e-12)
    np.testing.assert_array_equal(blocks.wind, fine.wind)
    mean = common_support_means([blocks], [every_day(blocks)]).means[0, 0]
    assert mean == pytest.approx(1e-5, rel=1e-12)
    # a size that is not a whole multiple rounds to the nearest one; below one cell: the grid's
    assert cell_tables([path], regions.masks, cell_size=0.24)["AAA"].area.shape == (3 * 6,)
    assert cell_tables([path], regions.masks, cell_size=0.04)["AAA"].area.shape == fine.area.shape


@pytest.mark.parametrize("code", ["BBB", "ALL"])
def test_statistics_cells_are_aligned_on_the_grid_not_the_region(tmp_path, code):
    """3 x 3 blocks (cell_size 0.3) on the 6 x 20 grid: 20 columns leave a partial block at the
    east edge; BBB starts at column 10, inside a block, and ALL covers the whole grid (a row's
    last, partial block next to the following row's first): the blocks are the grid's
    (row // 3, column // 3), checked against a plain grouping of the region's grid cells."""
    rng = np.random.default_rng(5)
    regions = (_region_set() if code == "BBB" else
               _region_set({"ALL": Country("ALL", "", "All", True, shapely.box(9.0, 49.0, 13.0, 52.0))}))
    lat, lon, value = _pixels_across_the_border(rng, n=3000)[:3]
    path = write_attribution([_day_sums(date(2020, 3, 1), lat, lon, value, regions)], regions,
                             tmp_path / "2020-W09.nc", 0.75)
    fine = cell_tables([path], regions.masks)[code]
    blocks = cell_tables([path], regions.masks, cell_size=0.3)[code]
    rows, columns = np.nonzero(regions.masks.sel(country=code).values)  # row-major, as the tables' cells
    groups = sorted({(r // 3, c // 3) for r, c in zip(rows, columns)})
    assert len(groups) == {"BBB": 2 * 4, "ALL": 2 * 7}[code]  # the last block column is partial
    member = np.array([groups.index((r // 3, c // 3)) for r, c in zip(rows, columns)])
    for name in ("area", "weight", "weighted_value"):
        expected = np.zeros((len(groups),) if name == "area" else (1, len(groups)))
        np.add.at(expected.T, member, getattr(fine, name).T)
        np.testing.assert_allclose(getattr(blocks, name), expected, rtol=1e-12)


def test_statistics_cells_keep_pixels_that_fell_in_neighbouring_grid_cells(tmp_path):
    """The 2019 pixels are centred in AAA's even grid columns, the 2020 ones in its odd columns:
    on the grid's own cells no cell has data in both years (post vs baseline is NaN with its
    reason), on the default 0.2 degree statistics cells the blocks of two columns hold both and
    the 30 % cut is recovered exactly; post vs pre (2020 only) is the same either way."""
    regions = _region_set()
    rows, columns = np.meshgrid(np.arange(6), np.arange(11), indexing="ij")
    sums = []
    for key in ("pre_baseline", "post_baseline", "pre_analysis", "post_analysis"):
        mine = columns % 2 == (0 if key.endswith("baseline") else 1)
        lat, lon = 50.05 + 0.1 * rows[mine], 10.05 + 0.1 * columns[mine]
        value = np.full(lat.size, 0.7e-5 if key == "post_analysis" else 1e-5)
        sums += [_day_sums(day, lat, lon, value, regions) for day in window_dates(key, 3)]
    path = write_attribution(sums, regions, tmp_path / "2020-W09.nc", 0.75)
    windows = windows_frame()
    grid_cells = statistics_from_attribution([path], regions.masks, windows,
                                             StatsSettings(bootstrap=50, min_day_coverage=0.0, cell_size=None)).iloc[0]
    assert np.isnan(grid_cells["change_post_vs_baseline"])
    assert grid_cells["reason_post_vs_baseline"] == "no grid cell has data in every window compared"
    blocks = statistics_from_attribution([path], regions.masks, windows,
                                         StatsSettings(bootstrap=50, min_day_coverage=0.0)).iloc[0]
    assert blocks["change_post_vs_baseline"] == pytest.approx(-0.3, abs=1e-12)
    assert blocks["support_cells_post_vs_baseline"] == 3 * 5  # the last block holds column 10 only
    for row in (grid_cells, blocks):
        assert row["change_post_vs_pre"] == pytest.approx(-0.3, abs=1e-12)


def test_cell_tables_refuse_a_file_of_another_grid_naming_it(tmp_path):
    regions = _region_set()
    path = write_attribution([], regions, tmp_path / "2020-W09.nc", 0.75)
    other = RegionSet(regions.regions, country_fraction_masks(GridSpec.from_bbox(50.0, 50.6, 10.0, 12.0, 0.2),
                                                              regions.regions))
    with pytest.raises(InvalidProductError, match="2020-W09.nc.*grid"):
        cell_tables([path], other.masks)
    broken = tmp_path / "2020-W10.nc"
    broken.write_bytes(b"not netCDF")
    with pytest.raises(InvalidProductError, match="2020-W10.nc"):
        cell_tables([broken], regions.masks)


def test_attribute_day_counts_the_daily_grids_pixels(orbit_file):
    """With one region covering the whole grid, the attribution of a real (synthetic) orbit has,
    in every cell, the pixels that point binning of the same orbit counts there, with the same
    mean column: the same qa filter and the same half-open cells."""
    from s5p_lockdown.io import read_l2

    grid = GridSpec.from_bbox(44.0, 56.0, 0.0, 20.0, 0.5)
    everywhere = {"ALL": Country("ALL", "", "all", True, shapely.box(-1, 43, 21, 57))}
    regions = RegionSet(everywhere, country_fraction_masks(grid, everywhere))
    sums = attribute_day([orbit_file], date(2020, 3, 25), {"all": regions})["all"]
    accumulator = GridAccumulator(grid)
    accumulator.add_dataset(read_l2(orbit_file, bbox=grid.bounds), point=True)
    points = accumulator.finalize()
    count = points["pixel_count"].values[0].ravel()
    assert count.sum() > 200  # demo-sized pixels, about half of them clear
    np.testing.assert_array_equal(sums.cell, np.flatnonzero(count > 0))
    np.testing.assert_array_equal(sums.sums["pixel_count"], count[count > 0])
    mean = points["tropospheric_NO2_column_number_density"].values[0].ravel()[count > 0]
    np.testing.assert_allclose(sums.sums["no2_sum"] / sums.sums["pixel_count"], mean, rtol=1e-9)
    assert (sums.sums["wind_count"] == sums.sums["pixel_count"]).all()  # synthetic orbits carry wind


def test_attribute_day_names_an_invalid_file_or_skips_it(orbit_file, tmp_path):
    bad = tmp_path / "S5P_OFFL_L2__NO2____20200325T000000_20200325T010000_12345_01_010302_20200326T000000.nc"
    bad.write_bytes(b"\x89HDF truncated")
    regions = {"countries": _region_set()}
    with pytest.raises(InvalidProductError, match=bad.name):
        attribute_day([bad], date(2020, 3, 25), regions)
    skipped = attribute_day([bad, orbit_file], date(2020, 3, 25), regions, skip_invalid=True)
    alone = attribute_day([orbit_file], date(2020, 3, 25), regions)
    np.testing.assert_array_equal(skipped["countries"].sums["pixel_count"], alone["countries"].sums["pixel_count"])


def test_attribute_days_reads_each_orbit_once_for_every_region_set(orbit_file, tmp_path):
    """Countries (exclusive) and overlapping circles from one pass over the files, each set in
    its own file; a day without usable pixels is still listed (a day without data)."""
    grid = GridSpec.from_bbox(44.0, 56.0, 0.0, 20.0, 0.5)
    country_shapes = {"WWW": Country("WWW", "", "west", True, shapely.box(0, 44, 10, 56)),
                      "EEE": Country("EEE", "", "east", True, shapely.box(10, 44, 20, 56))}
    circles = {name: Country(name, "", name, True, shapely.Point(x, 50).buffer(3.0))
               for name, x in (("A", 9.0), ("B", 11.0))}
    sets = {"countries": RegionSet(country_shapes, country_fraction_masks(grid, country_shapes)),
            "circles": RegionSet(circles, country_fraction_masks(grid, circles, exclusive=False), exclusive=False)}
    paths = {name: tmp_path / name / "2020-W13.nc" for name in sets}
    attribute_days({date(2020, 3, 25): [orbit_file], date(2020, 3, 26): []}, sets, paths)
    import xarray as xr

    with xr.open_dataset(paths["countries"]) as countries, xr.open_dataset(paths["circles"]) as circles_ds:
        assert list(countries["day"].values) == ["2020-03-25", "2020-03-26"]
        assert set(countries["day_index"].values) == {0}
        assert list(circles_ds["region"].values) == ["A", "B"]
        # the circles overlap between 8 and 12 E: cells there hold pixels of both
        region, cell = circles_ds["region_index"].values, circles_ds["cell_index"].values
        assert set(cell[region == 0]) & set(cell[region == 1])
        total = int(countries["pixel_count"].sum())
        assert total == attribute_day([orbit_file], date(2020, 3, 25), {"c": sets["countries"]})["c"].sums["pixel_count"].sum()
