"""Tests of s5p_lockdown.regions: shipped boundaries, point look-up, cell fractions, cache."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import shapely
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from s5p_lockdown import outputs, regions
from s5p_lockdown.errors import ConfigError
from s5p_lockdown.gridding import GridSpec
from s5p_lockdown.regions import BoundaryFileError, Country

RESOURCES = Path(regions.__file__).parent / "resources"
SMALL_STATES = ["AND", "LIE", "SMR", "MCO", "VAT", "MLT", "LUX"]
EUROPE_HALF_DEGREE = GridSpec.from_bbox(34, 72, -25, 45, 0.5)


def lockdown_iso3() -> set[str]:
    with open(RESOURCES / "lockdown_dates.csv", newline="", encoding="utf-8") as f:
        return {row["iso3"] for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def countries() -> dict[str, Country]:
    return regions.load_countries()


@pytest.fixture(scope="module")
def europe_masks(countries) -> xr.DataArray:
    return regions.country_fraction_masks(EUROPE_HALF_DEGREE, countries)


def square(iso3: str, west: float, south: float, east: float, north: float) -> Country:
    return Country(iso3, "", iso3, True, shapely.box(west, south, east, north))


def write_geojson(path: Path, features: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def feature(iso3: str, geometry: shapely.Geometry, **props) -> dict:
    properties = {"iso3": iso3, "iso2": iso3[:2], "name": iso3, "analysed": True, **props}
    return {"type": "Feature", "properties": properties,
            "geometry": shapely.geometry.mapping(geometry)}


# --- shipped boundaries -------------------------------------------------------------------------
def test_shipped_boundaries_have_every_lockdown_country(countries):
    analysed = {c.iso3 for c in countries.values() if c.analysed}
    assert analysed == lockdown_iso3()
    for code in SMALL_STATES + ["RUS", "TUR", "MAR", "DZA", "TUN", "LBY", "EGY"]:
        assert code in countries, code
    assert countries["MLT"].name == "Malta" and countries["MLT"].iso2 == "MT"
    assert countries["XKX"].iso2 == "XK"


def test_shipped_boundaries_are_small_clipped_and_disjoint(countries):
    path = RESOURCES / regions.DEFAULT_BOUNDARIES
    assert path.stat().st_size < 1.5e6
    geometries = [c.geometry for c in countries.values()]
    west, south, east, north = shapely.total_bounds(geometries)
    assert west >= -32 and south >= 27 and east <= 50 and north <= 72
    tree = shapely.STRtree(geometries)
    pairs = tree.query(geometries, predicate="intersects")
    pairs = pairs[:, pairs[0] < pairs[1]]
    overlaps = shapely.area(shapely.intersection(
        np.take(geometries, pairs[0]), np.take(geometries, pairs[1])
    ))
    assert overlaps.max() == 0.0
    # Malta (~316 km2) keeps its real size: 1:50m data, not over-simplified
    assert countries["MLT"].geometry.area == pytest.approx(0.0275, rel=0.05)


# --- point look-up ------------------------------------------------------------------------------
def test_country_of_points_cities_and_sea(countries):
    lon = [2.35, 12.50, -3.70, 6.13, 14.51, -5.0, 5.0, np.nan]
    lat = [48.86, 41.90, 40.42, 49.61, 35.90, 45.0, 38.0, 45.0]
    codes = regions.country_of_points(lon, lat, countries)
    assert codes.tolist() == ["FRA", "ITA", "ESP", "LUX", "MLT", "", "", ""]


def test_country_of_points_shape_and_longitude_wrap(countries):
    lon = np.array([[2.35, 362.35], [-357.65, 12.5]])
    lat = np.array([[48.86, 48.86], [48.86, 41.9]])
    codes = regions.country_of_points(lon, lat, countries)
    assert codes.shape == (2, 2)
    assert codes.tolist() == [["FRA", "FRA"], ["FRA", "ITA"]]


def test_country_of_points_border_goes_to_first_country():
    a, b = square("AAA", 0, 0, 1, 1), square("BBB", 1, 0, 2, 1)
    assert regions.country_of_points([1.0], [0.5], {"AAA": a, "BBB": b}).tolist() == ["AAA"]
    assert regions.country_of_points([1.0], [0.5], {"BBB": b, "AAA": a}).tolist() == ["BBB"]


# --- cell fractions -----------------------------------------------------------------------------
def test_fractions_of_a_square_are_exact():
    grid = GridSpec.from_bbox(0, 3, 0, 3, 1.0)
    masks = regions.country_fraction_masks(grid, {"SQR": square("SQR", 0.25, 0.5, 1.75, 2.5)})
    assert masks.dims == ("country", "latitude", "longitude")
    assert masks.dtype == np.float32
    expected = np.array([
        [0.75 * 0.5, 0.75 * 0.5, 0],
        [0.75, 0.75, 0],
        [0.75 * 0.5, 0.75 * 0.5, 0],
    ])
    np.testing.assert_allclose(masks.sel(country="SQR").values, expected, atol=1e-7)
    np.testing.assert_allclose(masks.latitude, [0.5, 1.5, 2.5])


def test_cell_inside_big_country_is_one(europe_masks):
    # 46.0-46.5 N, 2.0-2.5 E lies well inside France
    cell = europe_masks.sel(country="FRA", latitude=46.25, longitude=2.25)
    assert float(cell) == 1.0
    assert float(europe_masks.sel(country="DEU", latitude=46.25, longitude=2.25)) == 0.0


def test_fractions_sum_to_at_most_one(europe_masks):
    total = europe_masks.astype(np.float64).sum("country")
    assert float(total.max()) <= 1 + 1e-9
    assert float(europe_masks.min()) >= 0.0
    assert float(total.max()) == pytest.approx(1.0)


def test_fractions_times_cell_area_give_country_area(countries, europe_masks):
    grid = EUROPE_HALF_DEGREE
    cell_area = np.outer(np.diff(grid.lat_edges), np.diff(grid.lon_edges))
    south, north, west, east = grid.bounds
    grid_box = shapely.box(west, south, east, north)
    for code in europe_masks.country.values:
        expected = shapely.intersection(countries[code].geometry, grid_box).area
        got = float((europe_masks.sel(country=code).astype(np.float64) * cell_area).sum())
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-12), code


def test_small_countries_get_fractions_on_coarse_grid(countries):
    grid = GridSpec.from_bbox(34, 72, -25, 45, 0.5)
    masks = regions.country_fraction_masks(grid, countries, SMALL_STATES)
    assert masks.country.values.tolist() == SMALL_STATES
    for code in SMALL_STATES:
        assert float(masks.sel(country=code).max()) > 0, code


def test_overlapping_polygons_are_scaled_to_sum_one():
    grid = GridSpec.from_bbox(0, 2, 0, 2, 1.0)
    overlapping = {"AAA": square("AAA", 0, 0, 1, 1), "BBB": square("BBB", 0, 0, 2, 1)}
    masks = regions.country_fraction_masks(grid, overlapping)
    np.testing.assert_allclose(masks.sel(latitude=0.5, longitude=0.5), [0.5, 0.5])
    np.testing.assert_allclose(masks.sel(latitude=0.5, longitude=1.5), [0.0, 1.0])
    assert float(masks.astype(np.float64).sum("country").max()) <= 1.0


def test_grid_past_the_antimeridian():
    grid = GridSpec.from_bbox(-20, -10, 170, 190, 1.0)
    fiji_like = {"FJI": square("FJI", -179.5, -18, -178, -16)}
    masks = regions.country_fraction_masks(grid, fiji_like).sel(country="FJI")
    cell_area = 1.0
    assert float(masks.sum()) * cell_area == pytest.approx(1.5 * 2)
    assert float(masks.sel(latitude=-16.5, longitude=181.5)) == 1.0


def test_unknown_country_code_is_a_config_error(countries):
    with pytest.raises(ConfigError, match="XYZ"):
        regions.country_fraction_masks(EUROPE_HALF_DEGREE, countries, ["FRA", "XYZ"])


@settings(max_examples=40, deadline=None)  # no subnormals: GEOS overlay misbehaves on them
@given(
    st.floats(-3, 3, allow_subnormal=False), st.floats(-3, 3, allow_subnormal=False),
    st.floats(0.01, 4), st.floats(0.01, 4),
    st.sampled_from([0.1, 0.25, 0.5, 1.0]),
)
def test_fraction_areas_match_clipped_polygon(x, y, width, height, step):
    grid = GridSpec.from_bbox(-2, 2, -2, 2, step)
    triangle = shapely.Polygon([(x, y), (x + width, y), (x, y + height)])
    country = Country("TRI", "", "triangle", True, triangle)
    masks = regions.country_fraction_masks(grid, {"TRI": country}).values[0].astype(np.float64)
    expected = shapely.intersection(triangle, shapely.box(-2, -2, 2, 2)).area
    assert masks.sum() * step**2 == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert masks.max() <= 1.0


# --- cache --------------------------------------------------------------------------------------
def test_masks_are_cached_and_reused(tmp_path, monkeypatch):
    grid = GridSpec.from_bbox(40, 52, -6, 10, 0.5)
    first = regions.load_or_build_masks(grid, tmp_path, ["FRA", "LUX"])
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".nc"
    mtime = files[0].stat().st_mtime_ns

    def no_rebuild(*args, **kwargs):
        raise AssertionError("masks were rebuilt instead of read from the cache")

    monkeypatch.setattr(regions, "country_fraction_masks", no_rebuild)
    second = regions.load_or_build_masks(grid, tmp_path, ["FRA", "LUX"])
    xr.testing.assert_identical(first, second)
    assert files[0].stat().st_mtime_ns == mtime
    assert second.attrs["grid"] == grid.harp_operation()
    assert second.attrs["boundary_file"] == regions.DEFAULT_BOUNDARIES


def test_cache_key_follows_grid_countries_and_file(tmp_path):
    grid = GridSpec.from_bbox(0, 2, 0, 2, 1.0)
    path = write_geojson(tmp_path / "a.geojson", [feature("AAA", shapely.box(0, 0, 1, 1))])
    cache = tmp_path / "cache"
    regions.load_or_build_masks(grid, cache, path=path)
    regions.load_or_build_masks(GridSpec.from_bbox(0, 2, 0, 2, 0.5), cache, path=path)
    regions.load_or_build_masks(grid, cache, ["AAA"], path=path)
    assert len(list(cache.iterdir())) == 3

    write_geojson(path, [feature("AAA", shapely.box(0, 0, 2, 1))])  # boundary file changes
    masks = regions.load_or_build_masks(grid, cache, path=path)
    assert float(masks.sum()) == 2.0
    assert len(list(cache.iterdir())) == 4


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    grid = GridSpec.from_bbox(0, 2, 0, 2, 1.0)
    path = write_geojson(tmp_path / "a.geojson", [feature("AAA", shapely.box(0, 0, 1, 1))])
    cache = tmp_path / "cache"
    real_to_netcdf, renames = xr.DataArray.to_netcdf, []

    def crash_midway(self, target, *args, **kwargs):
        Path(target).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(xr.DataArray, "to_netcdf", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        regions.load_or_build_masks(grid, cache, path=path)
    assert list(cache.iterdir()) == []  # neither a partial cache file nor a temporary left

    def record_replace(src, dst):
        renames.append((Path(src), Path(dst)))
        os.rename(src, dst)

    monkeypatch.setattr(xr.DataArray, "to_netcdf", real_to_netcdf)
    monkeypatch.setattr(outputs.os, "replace", record_replace)  # the masks are written by outputs
    regions.load_or_build_masks(grid, cache, path=path)
    [(src, dst)] = renames
    assert src.parent == dst.parent == cache and not src.exists()
    assert list(cache.iterdir()) == [dst]


def test_unreadable_cache_is_rebuilt(tmp_path):
    grid = GridSpec.from_bbox(0, 2, 0, 2, 1.0)
    path = write_geojson(tmp_path / "a.geojson", [feature("AAA", shapely.box(0, 0, 1, 1))])
    cache = tmp_path / "cache"
    regions.load_or_build_masks(grid, cache, path=path)
    [cached] = cache.iterdir()
    cached.write_bytes(b"not netcdf")
    masks = regions.load_or_build_masks(grid, cache, path=path)
    assert float(masks.sum()) == 1.0
    assert cached.read_bytes()[:3] == b"\x89HD"  # netCDF-4 (HDF5) again


# --- bad boundary files -------------------------------------------------------------------------
def test_missing_boundary_file_names_it(tmp_path):
    missing = tmp_path / "nowhere.geojson"
    with pytest.raises(BoundaryFileError, match="nowhere.geojson") as info:
        regions.load_countries(missing)
    assert info.value.path == str(missing)


BOWTIE = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not a GeoJSON file"),
        (json.dumps({"type": "Feature"}), "FeatureCollection"),
        (json.dumps({"type": "FeatureCollection", "features": []}), "FeatureCollection"),
        ([{"type": "Feature", "properties": {"iso3": "AAA"}, "geometry": None}],
         "needs properties"),
        ([feature("AAA", shapely.box(0, 0, 1, 1), analysed="yes")], "analysed must be"),
        ([feature("AAA", shapely.Point(0, 0))], "Polygon or MultiPolygon"),
        ([feature("AAA", BOWTIE)], "invalid polygon"),
        ([feature("AAA", shapely.box(0, 0, 1, 1))] * 2, "appears twice"),
        ([{"type": "Feature", "properties": feature("AAA", BOWTIE)["properties"],
           "geometry": {"type": "Polygon", "coordinates": "garbage"}}], "bad geometry"),
    ],
)
def test_bad_boundary_file_names_it(tmp_path, content, reason):
    path = tmp_path / "bad.geojson"
    if isinstance(content, list):
        write_geojson(path, content)
    else:
        path.write_text(content)
    with pytest.raises(BoundaryFileError, match=reason) as info:
        regions.load_countries(path)
    assert str(path) in str(info.value)
