"""Area weights of the numba gridder against an exact slow reference (shapely polygon
intersections), conservation, edge cases and the antimeridian / poles.

Weights are in units of cell area (w = overlap area / cell area, planar degrees). The reference
computes intersections in coordinates relative to the grid origin to keep its own rounding far
below the tolerance: relative 1e-9 per cell, plus 1e-12 absolute (of a cell, or of the pixel's
bounding box if larger) for slivers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon, box

from s5p_lockdown.gridding import GridAccumulator, GridSpec

RTOL, ATOL = 1e-9, 1e-12


def bin_one(grid: GridSpec, lat, lon, value=1.0, sigma=0.1, threads=1) -> GridAccumulator:
    acc = GridAccumulator(grid, threads=threads)
    acc.add_pixels([value], [sigma], np.array([lat], float), np.array([lon], float))
    return acc


def reference_weights(grid: GridSpec, lat, lon) -> np.ndarray:
    """Overlap area / cell area per cell with shapely (no longitude wrapping)."""
    lat_e, lon_e = grid.lat_edges, grid.lon_edges
    y0, x0 = lat_e[0], lon_e[0]
    pixel = Polygon(list(zip(np.asarray(lon) - x0, np.asarray(lat) - y0)))
    weights = np.zeros(grid.shape)
    if pixel.area == 0:
        return weights
    pixel = pixel.buffer(0) if not pixel.is_valid else pixel
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            cell = box(lon_e[j] - x0, lat_e[i] - y0, lon_e[j + 1] - x0, lat_e[i + 1] - y0)
            weights[i, j] = pixel.intersection(cell).area / cell.area
    return weights


def shoelace(lat, lon) -> float:
    x, y = np.asarray(lon, float), np.asarray(lat, float)
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


# --- property-based: random convex quadrilaterals -------------------------------------------------
@st.composite
def grids(draw):
    lat_step = draw(st.sampled_from([0.01, 0.05, 0.1, 0.25, 1.0]))
    lon_step = draw(st.sampled_from([lat_step, 2 * lat_step, 0.3]))
    n_lat = draw(st.integers(2, 12))
    n_lon = draw(st.integers(2, 12))
    lat0 = draw(st.floats(-60, 50)) // lat_step * lat_step
    lon0 = draw(st.floats(-170, 150)) // lon_step * lon_step
    return GridSpec(n_lat, lat0, lat_step, n_lon, lon0, lon_step)


@st.composite
def convex_quads(draw, grid: GridSpec, margin: float = 0.2, max_scale: float = 1.5):
    """A convex quadrilateral (affine image of a cyclic one) centred within ``margin`` (fraction
    of the extent) of the grid, at most ``max_scale`` times its size."""
    south, north, west, east = grid.bounds
    cy = draw(st.floats(south - margin * (north - south), north + margin * (north - south)))
    cx = draw(st.floats(west - margin * (east - west), east + margin * (east - west)))
    angles = sorted(draw(st.lists(st.floats(0, 2 * math.pi), min_size=4, max_size=4)))
    sx = draw(st.floats(0.001, max_scale)) * (east - west)
    sy = draw(st.floats(0.001, max_scale)) * (north - south)
    shear = draw(st.floats(-1, 1))
    rot = draw(st.floats(0, math.pi))
    u, v = np.cos(angles), np.sin(angles)
    u, v = u + shear * v, v
    x = cx + sx * (np.cos(rot) * u - np.sin(rot) * v) / 2
    y = cy + sy * (np.sin(rot) * u + np.cos(rot) * v) / 2
    if draw(st.booleans()):  # either orientation
        x, y = x[::-1], y[::-1]
    return np.clip(y, -89.9, 89.9), x


@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_weights_match_exact_polygon_intersection(data):
    grid = data.draw(grids())
    lat, lon = data.draw(convex_quads(grid))
    acc = bin_one(grid, lat, lon)
    expected = reference_weights(grid, lat, lon)
    # slivers: rounding (and the kernel's zero-area test) scale with the pixel's bounding box
    atol = ATOL * max(1.0, np.ptp(lat) * np.ptp(lon) / (grid.lat_edge_step * grid.lon_edge_step))
    np.testing.assert_allclose(acc.sums[..., 0], expected, rtol=RTOL, atol=atol)
    assert np.array_equal(acc.pixel_count > 0, acc.sums[..., 0] > 0)


@given(data=st.data())
@settings(max_examples=200, deadline=None)
def test_area_is_conserved_for_pixels_inside_the_grid(data):
    grid = GridSpec.from_bbox(30, 40, 0, 12, data.draw(st.sampled_from([0.01, 0.1, 0.5])))
    lat, lon = data.draw(convex_quads(grid, margin=-0.1, max_scale=0.4))
    assume(lat.min() > 30 and lat.max() < 40 and lon.min() > 0 and lon.max() < 12)
    acc = bin_one(grid, lat, lon)
    cell_area = np.outer(np.diff(grid.lat_edges), np.diff(grid.lon_edges))
    total = float(np.sum(acc.sums[..., 0] * cell_area))
    bbox_area = np.ptp(lat) * np.ptp(lon)  # slivers: rounding is relative to the pixel's size
    assert total == pytest.approx(shoelace(lat - lat[0], lon - lon[0]), rel=1e-9, abs=1e-12 * bbox_area)


# --- edge cases ----------------------------------------------------------------------------------
GRID = GridSpec.from_bbox(10, 12, 20, 23, 0.5)  # 4 x 6 cells


def test_pixel_equal_to_a_cell():
    acc = bin_one(GRID, [10.5, 10.5, 11.0, 11.0], [21.0, 21.5, 21.5, 21.0])
    expected = np.zeros(GRID.shape)
    expected[1, 2] = 1.0
    np.testing.assert_array_equal(acc.sums[..., 0], expected)
    assert acc.pixel_count.sum() == 1 and acc.count == 1


def test_pixel_with_edges_on_cell_edges_spanning_cells():
    acc = bin_one(GRID, [10.5, 10.5, 11.5, 11.5], [20.5, 22.0, 22.0, 20.5], value=3.0)
    expected = np.zeros(GRID.shape)
    expected[1:3, 1:4] = 1.0
    np.testing.assert_allclose(acc.sums[..., 0], expected, rtol=0, atol=1e-15)
    assert acc.pixel_count.sum() == 6
    ds = acc.finalize()
    assert np.nanmax(np.abs(ds["tropospheric_NO2_column_number_density"].values - 3.0)) < 1e-15


def test_pixel_larger_than_many_cells_and_partly_outside():
    grid = GridSpec.from_bbox(0, 5, 0, 5, 0.1)
    lat, lon = [-1.0, -1.2, 3.33, 3.4], [-2.0, 4.0, 4.2, -0.5]
    acc = bin_one(grid, lat, lon)
    np.testing.assert_allclose(acc.sums[..., 0], reference_weights(grid, lat, lon), rtol=RTOL, atol=ATOL)
    assert np.isclose(acc.sums[..., 0], 1.0, rtol=1e-12).sum() > 300  # interior cells covered
    assert acc.count == 1


@pytest.mark.parametrize(
    "lat, lon, counted",
    [
        ([11.2, 11.2, 11.2, 11.2], [21.3, 21.3, 21.3, 21.3], 1),  # a point inside
        ([10.2, 10.7, 11.2, 11.7], [20.2, 20.7, 21.2, 21.7], 1),  # collinear corners
        ([10.5, 10.5, 11.5, 11.5], [21.0, 21.0, 21.0, 21.0], 1),  # a segment on a cell edge
        ([5.0, 5.0, 5.0, 5.0], [21.0, 21.0, 21.0, 21.0], 0),  # a point outside
    ],
)
def test_degenerate_pixels_add_no_weight(lat, lon, counted):
    acc = bin_one(GRID, lat, lon)
    assert acc.sums.sum() == 0 and acc.pixel_count.sum() == 0
    assert acc.count == counted


def test_nan_and_fill_values_and_corners():
    acc = GridAccumulator(GRID, threads=1)
    square_lat = [10.6, 10.6, 10.9, 10.9]
    square_lon = [21.1, 21.4, 21.4, 21.1]
    lat = np.array([square_lat] * 4)
    lon = np.array([square_lon] * 4)
    counted = acc.add_pixels(
        [np.nan, 9.96921e36, 1.0, 2.0], [0.1, 0.1, np.nan, 0.1], lat, lon
    )
    assert counted == 1  # only the last pixel has a usable value and uncertainty
    ds = acc.finalize()
    assert ds["tropospheric_NO2_column_number_density"].values[0, 1, 2] == pytest.approx(2.0)
    # documented difference from HARP: the other three add nothing to ``weight`` either
    assert float(ds["weight"].sum()) == pytest.approx(0.3 * 0.3 / 0.25)


def test_missing_corners_make_triangles_and_rectangles():
    grid = GridSpec.from_bbox(0, 2, 0, 2, 1.0)
    triangle = bin_one(grid, [0.0, 0.0, 2.0, np.nan], [0.0, 2.0, 0.0, np.nan])
    assert triangle.sums[..., 0].sum() == pytest.approx(2.0 / 1.0)  # area 2 in 1-deg cells
    rectangle = bin_one(grid, [0.5, 1.5, np.nan, np.nan], [0.5, 1.5, np.nan, np.nan])
    np.testing.assert_allclose(rectangle.sums[..., 0], 0.25)
    single = bin_one(grid, [0.5, np.nan, np.nan, np.nan], [0.5, np.nan, np.nan, np.nan])
    assert single.count == 0 and single.sums.sum() == 0
    # documented difference from HARP: a NaN corner inside the ring is dropped as well
    inner = bin_one(grid, [0.0, np.nan, 0.0, 2.0], [0.0, np.nan, 2.0, 0.0])
    assert inner.sums[..., 0].sum() == pytest.approx(2.0)


def test_empty_input():
    acc = GridAccumulator(GRID)
    assert acc.add_pixels(np.zeros(0), np.zeros(0), np.zeros((0, 4)), np.zeros((0, 4))) == 0
    ds = acc.finalize()
    assert np.isnan(ds["tropospheric_NO2_column_number_density"]).all()
    assert int(ds["count"][0]) == 0


# --- antimeridian and poles -----------------------------------------------------------------------
DATELINE_PIXEL = ([9.8, 10.1, 10.4, 10.0], [179.7, -179.6, -179.8, 179.9])
DATELINE_UNWRAPPED = [179.7, 180.4, 180.2, 179.9]


@pytest.mark.parametrize(
    "grid",
    [
        GridSpec.from_bbox(9, 11, -180, 180, 0.25),  # dateline at both ends of the grid
        GridSpec.from_bbox(9, 11, 170, 190, 0.25),  # grid across the dateline
        GridSpec.from_bbox(9, 11, 0, 360, 0.25),  # 0..360 convention
        GridSpec.from_bbox(9, 11, 179.5, 180.5, 0.1),  # tiny grid across the dateline
    ],
)
def test_antimeridian_pixel_is_binned_whole(grid):
    lat, lon = DATELINE_PIXEL
    acc = bin_one(grid, lat, lon)
    cell_area = np.outer(np.diff(grid.lat_edges), np.diff(grid.lon_edges))
    area = shoelace(lat, DATELINE_UNWRAPPED)
    assert float(np.sum(acc.sums[..., 0] * cell_area)) == pytest.approx(area, rel=1e-9)
    # the same as exact intersections with the polygon at all its 360-degree translations
    expected = sum(
        reference_weights(grid, lat, np.array(DATELINE_UNWRAPPED) + shift)
        for shift in (-720.0, -360.0, 0.0, 360.0)
    )
    np.testing.assert_allclose(acc.sums[..., 0], expected, rtol=RTOL, atol=ATOL)
    assert acc.count == 1


def test_antimeridian_pixel_on_grid_without_the_dateline():
    lat, lon = DATELINE_PIXEL
    acc = bin_one(GridSpec.from_bbox(9, 11, -20, 20, 0.25), lat, lon)
    assert acc.sums.sum() == 0 and acc.count == 0
    lat, lon = [0.0, 0.0, 1.0, 1.0], [-0.5, 0.5, 0.5, -0.5]  # a pixel across 0 on a 0..360 grid
    acc = bin_one(GridSpec.from_bbox(-1, 2, 0, 360, 0.5), lat, lon)
    assert acc.sums[..., 0].sum() * 0.25 == pytest.approx(1.0)
    assert acc.sums[2, 0, 0] == pytest.approx(1.0) and acc.sums[2, -1, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("west", [-180.0, 0.0, -45.0, 10.0])
def test_pixel_around_the_pole_keeps_its_whole_cap(west):
    grid = GridSpec.from_bbox(80, 90, west, west + 360, 1.0)
    acc = bin_one(grid, [89.5, 89.5, 89.5, 89.5], [0.0, 90.0, 180.0, 270.0])
    cell_area = np.outer(np.diff(grid.lat_edges), np.diff(grid.lon_edges))
    assert float(np.sum(acc.sums[..., 0] * cell_area)) == pytest.approx(360 * 0.5, rel=1e-9)
    np.testing.assert_allclose(acc.sums[-1, :, 0], 0.5)


def test_pole_pixel_crossing_the_equator_is_skipped():
    grid = GridSpec.from_bbox(-90, 90, -180, 180, 10.0)
    acc = bin_one(grid, [-1.0, 1.0, -1.0, 1.0], [0.0, 120.0, 240.0, 0.0])
    assert acc.sums.sum() == 0 and acc.count == 0


# --- parallel determinism ---------------------------------------------------------------------------
def random_pixels(n: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    centre_lat = rng.uniform(40, 50, n)
    centre_lon = rng.uniform(0, 20, n)
    angle = rng.uniform(0, 2 * np.pi, n)[:, None] + np.array([0, 0.5, 1, 1.5]) * np.pi
    radius = rng.uniform(0.01, 0.2, (n, 1))
    return (
        rng.normal(1e-4, 3e-5, n),
        rng.uniform(1e-5, 2e-5, n),
        centre_lat[:, None] + radius * np.sin(angle),
        centre_lon[:, None] + radius * np.cos(angle) * 1.4,
    )


def test_results_do_not_depend_on_threads_or_chunking(monkeypatch):
    from s5p_lockdown.gridding import accumulator

    grid = GridSpec.from_bbox(39, 51, -1, 21, 0.05)
    pixels = random_pixels(20_000)
    one = GridAccumulator(grid, threads=1)
    one.add_pixels(*pixels)
    two = GridAccumulator(grid, threads=2)
    two.add_pixels(*pixels)
    monkeypatch.setattr(accumulator, "CHUNK_SIZE", 777)
    chunked = GridAccumulator(grid, threads=2)
    chunked.add_pixels(*pixels)
    for other in (two, chunked):
        np.testing.assert_array_equal(one.sums, other.sums)
        np.testing.assert_array_equal(one.pixel_count, other.pixel_count)
        assert one.count == other.count == 20_000
