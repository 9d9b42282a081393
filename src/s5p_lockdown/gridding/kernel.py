"""Numba kernels for HARP ``bin_spatial``-compatible area-weighted and point binning.

Conventions (all as in HARP 1.30; sources in ``docs/references.md``):

* Coordinates are degrees in a flat (longitude, latitude) plane: pixel edges are straight lines,
  areas are in square degrees, no cos(latitude), no great circles.
* The weight of a pixel in a cell is ``area(pixel ∩ cell) / area(cell)`` (dimensionless), computed
  exactly by polygon clipping in float64.
* Accumulators are float64 arrays ``sums[lat, lon, k]`` with ``k = 0: Σ w``, ``1: Σ w·x``,
  ``2: Σ (w·σ)²``, ``3: Σ w·σ`` and an int32 ``pixel_count[lat, lon]`` (pixels with a positive
  overlap). ``Σ w·σ / Σ w`` is what HARP writes as ``*_uncertainty`` (averaged linearly, as if
  fully correlated); ``sqrt(Σ (w·σ)²) / Σ w`` is HARP's ``*_uncertainty_random``.
  Companion variables (e.g. wind speed) are binned in the same pass with the same weights:
  ``companions[p, j]`` is pixel p's value of companion j (NaN, infinite or fill: none) and
  ``companion_sums[lat, lon, 2j]`` = Σ w, ``[2j + 1]`` = Σ w·x over the pixels that have one.

Deliberate differences from HARP 1.30, each asserted by a test: against HARP's own output for
every variable HARP writes in ``tests/test_gridding_harp_reference.py``, the others in
``tests/test_gridding_geometry.py`` and ``tests/test_gridding_accumulator.py``:

* weights are accumulated in float64 (HARP: float32 in pixel order), so ``weight`` and the
  weighted means differ from HARP's by float32 rounding, ≤ 2.4e-7 relative at 0.1–0.2°;
* ``*_uncertainty_random`` = sqrt(Σ (w·σ)²) / Σ w is written as well, from the same S5P
  precision that HARP averages linearly into ``*_uncertainty`` (HARP writes only the one its
  input is named as); ``*_uncertainty`` itself is HARP's Σ w·σ / Σ w;
* ``pixel_count`` (pixels per cell), ``datetime_start``/``datetime_stop`` and cell-centre
  ``latitude``/``longitude`` are always written (HARP writes no per-cell count, and the others
  only when derived and kept). ``datetime_stop`` is the time of the last binned scanline; HARP's
  derived ``datetime_stop`` is ``datetime_start + datetime_length``;
* merged grids (orbits into a day, days into a composite: :mod:`.accumulator`) stay exactly what
  binning all their pixels at once gives, for both uncertainties; HARP's ``bin()`` of grids
  combines any uncertainty as uncorrelated, so its merged ``*_uncertainty`` is no longer the
  linear average over the pixels (HARP issue #302);
* pixels whose value or uncertainty is NaN or fill are left out entirely (HARP still adds them
  to ``weight`` and ``count``);
* corners that are NaN anywhere in the ring are dropped (HARP: trailing ones only);
* a pixel that encircles a pole is closed over the pole along the full 360° of longitude and is
  also tried 360° west, so it keeps its whole polar cap on any grid (HARP's closing drops the
  part between the last and the first corner, and a cap starting east of the first grid edge
  loses its western part).

Algorithm. :func:`prepare_polygons` turns the corners of each pixel into a polygon in
pixel-local coordinates (longitudes unwrapped around the first grid edge, poles closed, origin
at the polygon's lower-left bounding-box corner, so clipping keeps full precision at 0.01°) and
finds its range of grid rows. :func:`bin_polygons` then clips each polygon to every grid row it
touches (a latitude band) and cuts the band polygon from west to east at the cell edges; each cut
yields the exact area of one cell. Work is split into bands of grid rows ("stripes"): a stripe
owns its rows, so threads never write the same cell, and every cell receives its contributions
in pixel order, with weights that do not depend on the stripe layout. Results are therefore
bit-identical for any number of threads. The serial entry points are also compiled ahead of
time (:mod:`s5p_lockdown.aot`), with bit-identical results, so that a one-thread process need
not import numba.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from s5p_lockdown.gridding.schema import FILL_THRESHOLD

#: A pixel whose area is at most this fraction of its bounding box is degenerate (zero area).
DEGENERATE = 1e-12
#: A ring of unwrapped longitudes spanning 360° within this tolerance encircles a pole (HARP).
_POLE_TOLERANCE = 1e-4


# --- small helpers --------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def locate(edges, inv_step, value):
    """Index ``i`` with ``edges[i] <= value < edges[i+1]``; -1 below the grid, ``len-1`` above.

    ``edges`` must be (nearly) regular with step ``1/inv_step``: the arithmetic guess is corrected
    against the actual edges, so the result is exact for snapped edges too.
    """
    n_cells = edges.shape[0] - 1
    guess = (value - edges[0]) * inv_step
    if guess < -1.0:
        i = -1
    elif guess > n_cells:
        i = n_cells
    else:
        i = int(math.floor(guess))
    while i >= 0 and value < edges[i]:
        i -= 1
    while i < n_cells and edges[i + 1] <= value:
        i += 1
    return i


@njit(cache=True, inline="always")
def cell_range(edges, inv_step, low, high):
    """First and last cell overlapping ``[low, high]`` with positive length, clamped to the grid.

    Returns ``(first, last)``; ``first > last`` when no cell overlaps.
    """
    n_cells = edges.shape[0] - 1
    first = max(locate(edges, inv_step, low), 0)
    last = locate(edges, inv_step, high)
    if last >= 0 and last < n_cells and edges[last] == high:
        last -= 1
    return first, min(last, n_cells - 1)


@njit(cache=True, inline="always")
def _wrap_step(delta):
    """``delta`` moved by a multiple of 360 into [-180, 180] when outside it (HARP's unwrapping)."""
    if delta > 180.0 or delta < -180.0:
        delta -= 360.0 * math.floor((delta + 180.0) / 360.0)
    return delta


@njit(cache=True, inline="always")
def polygon_area(xs, ys, n):
    """Absolute shoelace area of the ring ``(xs[k], ys[k])``, k < n (implicitly closed)."""
    twice = 0.0
    px, py = xs[n - 1], ys[n - 1]
    for k in range(n):
        x, y = xs[k], ys[k]
        twice += px * y - x * py
        px, py = x, y
    return 0.5 * abs(twice)


@njit(cache=True, inline="always")
def clip_half_plane(xs, ys, n, along_y, bound, keep_above, out_x, out_y):
    """Sutherland–Hodgman clip of a ring to one half-plane; returns the output vertex count.

    The half-plane is ``coord >= bound`` (``keep_above``) or ``coord <= bound`` where ``coord`` is
    y (``along_y``) or x. For a simple polygon the output's shoelace area is the exact area of the
    intersection (edges running along the clip line cancel).
    """
    m = 0
    px, py = xs[n - 1], ys[n - 1]
    pc = py if along_y else px
    p_in = pc >= bound if keep_above else pc <= bound
    for k in range(n):
        x, y = xs[k], ys[k]
        c = y if along_y else x
        c_in = c >= bound if keep_above else c <= bound
        if c_in != p_in and c != bound and pc != bound:
            t = (bound - pc) / (c - pc)
            if along_y:
                out_x[m] = px + t * (x - px)
                out_y[m] = bound
            else:
                out_x[m] = bound
                out_y[m] = py + t * (y - py)
            m += 1
        if c_in:
            out_x[m] = x
            out_y[m] = y
            m += 1
        px, py, pc, p_in = x, y, c, c_in
    return m


@njit(cache=True, inline="always")
def split_at_x(xs, ys, n, bound, right_x, right_y):
    """Cut a ring at the vertical line ``x = bound``.

    Writes the part with ``x >= bound`` to ``right_x/right_y`` and returns
    ``(area of the part with x <= bound, vertex count of the right part)``. One pass does both
    halves, which is what makes sweeping a latitude band from west to east cheap.
    """
    m = 0
    twice = 0.0
    have_left = False
    fx = fy = lx = ly = 0.0  # first and last vertex of the left part
    px, py = xs[n - 1], ys[n - 1]
    for k in range(n):
        x, y = xs[k], ys[k]
        if (px < bound < x) or (x < bound < px):
            iy = py + (bound - px) / (x - px) * (y - py)
            right_x[m] = bound
            right_y[m] = iy
            m += 1
            if have_left:
                twice += lx * iy - bound * ly
            else:
                fx, fy, have_left = bound, iy, True
            lx, ly = bound, iy
        if x >= bound:
            right_x[m] = x
            right_y[m] = y
            m += 1
        if x <= bound:
            if have_left:
                twice += lx * y - x * ly
            else:
                fx, fy, have_left = x, y, True
            lx, ly = x, y
        px, py = x, y
    if have_left:
        twice += lx * fy - fx * ly
    return 0.5 * abs(twice), m


# --- stage 1: polygons -------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def prepare_polygons(lat_bounds, lon_bounds, ids, lat_edges, lon_edges, poly_x, poly_y, poly_n,
                     origin, extent, rows, in_grid):
    """Build the polygons of pixels ``ids`` in pixel-local coordinates (HARP rules 2–3).

    Parameters (n = len(ids) pixels, k corners; outputs are filled per pixel, row i for ids[i])
    ----------
    lat_bounds, lon_bounds : (N, k) float32 or float64
        Corner coordinates in degrees, in order around the pixel. Corners that are NaN or fill
        are dropped; 2 corners span a rectangle; fewer than 2 skip the pixel.
    ids : (n,) int64
        Rows of ``lat_bounds``/``lon_bounds`` to prepare.
    lat_edges, lon_edges : float64
        Grid edges (degrees, ascending).
    poly_x, poly_y : (n, k + 3) float64
        Out: vertices minus ``origin`` (longitude, latitude), in degrees.
    poly_n : (n,) int32
        Out: vertex count.
    origin, extent : (n, 2) float64
        Out: lower-left corner (longitude, latitude) of the polygon's bounding box, with
        longitudes unwrapped so the minimum lies in ``[E0-360, E0+180)`` (E0 = first longitude
        edge), and the box's width and height. The polygon is binned at this position and
        shifted by ±360°, so pixels crossing ±180° land right on any grid.
    rows : (n, 2) int64
        Out: first and last grid row the polygon may overlap; ``first > last`` if none (pixel
        skipped, outside the grid's latitudes, or pole-encircling across the equator).
    in_grid : (n,) uint8
        Out: 1 if a vertex lies in a grid cell (half-open), at its position or ±360° from it.
    """
    n_pix = ids.shape[0]
    n_corners = lat_bounds.shape[1]
    e0 = lon_edges[0]
    lat_lo, lat_hi = lat_edges[0], lat_edges[-1]
    lon_lo, lon_hi = lon_edges[0], lon_edges[-1]
    inv_lat_step = (lat_edges.shape[0] - 1) / (lat_hi - lat_lo)
    for i in prange(n_pix):
        rows[i, 0], rows[i, 1] = 0, -1
        in_grid[i] = 0
        poly_n[i] = 0
        xs = poly_x[i]
        ys = poly_y[i]
        m = 0
        pixel = ids[i]
        for j in range(n_corners):
            la, lo = np.float64(lat_bounds[pixel, j]), np.float64(lon_bounds[pixel, j])
            if (math.isfinite(la) and math.isfinite(lo) and abs(la) < FILL_THRESHOLD
                    and abs(lo) < FILL_THRESHOLD):
                xs[m], ys[m] = lo, la
                m += 1
        if m > 2 and xs[0] == xs[m - 1] and ys[0] == ys[m - 1]:
            m -= 1  # explicitly closed ring
        if m < 2:
            continue
        if m == 2:  # two corners: the rectangle they span
            x0, y0, x1, y1 = xs[0], ys[0], xs[1], ys[1]
            xs[1], ys[1] = x1, y0
            xs[2], ys[2] = x1, y1
            xs[3], ys[3] = x0, y1
            m = 4
        # unwrap: corner 0 into [E0-180, E0+180), each next corner within 180° of the previous
        xs[0] -= 360.0 * math.floor((xs[0] - (e0 - 180.0)) / 360.0)
        xmin = xmax = xs[0]
        ymin = ymax = ys[0]
        for j in range(1, m):
            xs[j] = xs[j - 1] + _wrap_step(xs[j] - xs[j - 1])
            xmin, xmax = min(xmin, xs[j]), max(xmax, xs[j])
            ymin, ymax = min(ymin, ys[j]), max(ymax, ys[j])
        x_close = xs[m - 1] + _wrap_step(xs[0] - xs[m - 1])
        xmin, xmax = min(xmin, x_close), max(xmax, x_close)
        if abs(xmax - (xmin + 360.0)) < _POLE_TOLERANCE:  # the ring encircles a pole
            if ymax > 0.0:
                if ymin < 0.0:
                    continue  # crosses the equator too: which pole is unknown (HARP skips it)
                pole = 90.0
                ymax = pole
            elif ymin < 0.0:
                pole = -90.0
                ymin = pole
            else:
                pole = 0.0
            if pole != 0.0:  # close over the pole along the whole 360° (see module docstring)
                xs[m], ys[m] = x_close, ys[0]
                xs[m + 1], ys[m + 1] = x_close, pole
                xs[m + 2], ys[m + 2] = xs[0], pole
                m += 3
        shift = 0.0
        if xmin < e0 - 360.0:
            shift = 360.0
        elif xmin >= e0 + 180.0:
            shift = -360.0 * math.floor((xmin - (e0 - 180.0)) / 360.0)
        xmin += shift
        xmax += shift
        if ymax <= lat_lo or ymin >= lat_hi:
            continue
        # west or east of the grid at every shift: no vertex inside (the in_grid test below)
        # and no weight (the same expression as _bin_stripe's test): nothing more to do
        outside = True
        for s in (0.0, -360.0, 360.0):
            ox = xmin + s
            if ox < lon_hi and (ox + (xmax - xmin) > lon_lo or xmax + s > lon_lo):
                outside = False
                break
        if outside:
            continue
        for j in range(m):
            x = xs[j] + shift
            y = ys[j]
            if lat_lo <= y < lat_hi:
                for s in (-360.0, 0.0, 360.0):
                    if lon_lo <= x + s < lon_hi and xmax + s > lon_lo:  # HARP's bbox test too
                        in_grid[i] = 1
            xs[j] = x - xmin
            ys[j] = y - ymin
        poly_n[i] = m
        origin[i, 0], origin[i, 1] = xmin, ymin
        extent[i, 0], extent[i, 1] = xmax - xmin, ymax - ymin
        if polygon_area(xs, ys, m) <= DEGENERATE * (xmax - xmin) * (ymax - ymin):
            continue  # zero area up to rounding: no weight anywhere (but counted if in_grid)
        first, last = cell_range(lat_edges, inv_lat_step, ymin, ymax)
        rows[i, 0], rows[i, 1] = first, last


# --- stage 2: clipping and accumulation --------------------------------------------------------
@njit(cache=True)
def _bin_stripe(row_lo, row_hi, pixel_ids, poly_x, poly_y, poly_n, origin, extent, rows,
                values, sigmas, companions, lat_edges, lon_edges, sums, pixel_count,
                companion_sums, touched):
    """Accumulate the listed pixels into grid rows ``row_lo <= r < row_hi`` (one thread)."""
    n_companions = companions.shape[1]
    n_lon_cells = lon_edges.shape[0] - 1
    inv_lon_step = n_lon_cells / (lon_edges[-1] - lon_edges[0])
    lon_lo, lon_hi = lon_edges[0], lon_edges[-1]
    size = 8 * poly_x.shape[1] + 16
    band_x = np.empty(size)
    band_y = np.empty(size)
    tmp_x = np.empty(size)
    tmp_y = np.empty(size)
    for p in pixel_ids:
        n = poly_n[p]
        xs = poly_x[p]
        ys = poly_y[p]
        oy = origin[p, 1]
        width, height = extent[p, 0], extent[p, 1]
        value, sigma = values[p], sigmas[p]
        r_first = max(rows[p, 0], row_lo)
        r_last = min(rows[p, 1], row_hi - 1)
        for shift in (-360.0, 0.0, 360.0):
            ox = origin[p, 0] + shift
            if ox + width <= lon_lo or ox >= lon_hi:
                continue
            for r in range(r_first, r_last + 1):
                y_low = lat_edges[r] - oy
                y_high = lat_edges[r + 1] - oy
                if y_low <= 0.0 and y_high >= height:
                    nb = n
                    for k in range(n):
                        band_x[k], band_y[k] = xs[k], ys[k]
                else:
                    nt = clip_half_plane(xs, ys, n, True, y_low, True, tmp_x, tmp_y)
                    nb = clip_half_plane(tmp_x, tmp_y, nt, True, y_high, False, band_x, band_y)
                if nb < 3:
                    continue
                bx_min = bx_max = band_x[0]
                for k in range(1, nb):
                    bx_min = min(bx_min, band_x[k])
                    bx_max = max(bx_max, band_x[k])
                c_first, c_last = cell_range(lon_edges, inv_lon_step, ox + bx_min, ox + bx_max)
                if c_first > c_last:
                    continue
                cell_height = lat_edges[r + 1] - lat_edges[r]
                west = lon_edges[c_first] - ox
                if bx_min < west:
                    nb = clip_half_plane(band_x, band_y, nb, False, west, True, tmp_x, tmp_y)
                    for k in range(nb):
                        band_x[k], band_y[k] = tmp_x[k], tmp_y[k]
                for c in range(c_first, c_last + 1):
                    east = lon_edges[c + 1] - ox
                    if nb < 3:
                        break
                    if bx_max > east:
                        area, nb = split_at_x(band_x, band_y, nb, east, tmp_x, tmp_y)
                        for k in range(nb):
                            band_x[k], band_y[k] = tmp_x[k], tmp_y[k]
                    else:
                        area = polygon_area(band_x, band_y, nb)
                        nb = 0
                    if area > 0.0:
                        w = area / (cell_height * (lon_edges[c + 1] - lon_edges[c]))
                        sums[r, c, 0] += w
                        sums[r, c, 1] += w * value
                        ws = w * sigma
                        sums[r, c, 2] += ws * ws
                        sums[r, c, 3] += ws
                        pixel_count[r, c] += 1
                        touched[p] = 1
                        for j in range(n_companions):
                            x = companions[p, j]
                            if abs(x) < FILL_THRESHOLD:  # not NaN, infinite or fill
                                companion_sums[r, c, 2 * j] += w
                                companion_sums[r, c, 2 * j + 1] += w * x


@njit(cache=True)
def bin_stripes_serial(stripe_rows, stripe_start, stripe_pixels, poly_x, poly_y, poly_n, origin,
                       extent, rows, values, sigmas, companions, lat_edges, lon_edges, sums,
                       pixel_count, companion_sums, touched):
    """Run :func:`_bin_stripe` for every stripe, one after the other."""
    for s in range(stripe_rows.shape[0] - 1):
        _bin_stripe(stripe_rows[s], stripe_rows[s + 1],
                    stripe_pixels[stripe_start[s]:stripe_start[s + 1]], poly_x, poly_y, poly_n,
                    origin, extent, rows, values, sigmas, companions, lat_edges, lon_edges, sums,
                    pixel_count, companion_sums, touched)


@njit(cache=True, parallel=True)
def bin_stripes_parallel(stripe_rows, stripe_start, stripe_pixels, poly_x, poly_y, poly_n, origin,
                         extent, rows, values, sigmas, companions, lat_edges, lon_edges, sums,
                         pixel_count, companion_sums, touched):
    """Run :func:`_bin_stripe` for the stripes on numba's threads (same result as serial)."""
    for s in prange(stripe_rows.shape[0] - 1):
        _bin_stripe(stripe_rows[s], stripe_rows[s + 1],
                    stripe_pixels[stripe_start[s]:stripe_start[s + 1]], poly_x, poly_y, poly_n,
                    origin, extent, rows, values, sigmas, companions, lat_edges, lon_edges, sums,
                    pixel_count, companion_sums, touched)


@njit(cache=True)
def assign_stripes(rows, n_lat_cells, n_stripes):
    """Split the grid rows into ``n_stripes`` bands holding similar numbers of pixels.

    Returns ``(stripe_rows, stripe_start, stripe_pixels)``: stripe ``s`` covers rows
    ``stripe_rows[s] <= r < stripe_rows[s+1]`` and processes pixels
    ``stripe_pixels[stripe_start[s]:stripe_start[s+1]]`` (ascending pixel order).
    """
    per_row = np.zeros(n_lat_cells + 1, np.int64)
    n_pix = rows.shape[0]
    for p in range(n_pix):
        if rows[p, 0] <= rows[p, 1]:
            per_row[rows[p, 0]] += 1
    total = per_row.sum()
    stripe_rows = np.empty(n_stripes + 1, np.int64)
    stripe_rows[0] = 0
    s, running = 1, 0
    for r in range(n_lat_cells):
        running += per_row[r]
        while s < n_stripes and running * n_stripes >= s * total and total > 0:
            stripe_rows[s] = r + 1
            s += 1
    while s <= n_stripes:
        stripe_rows[s] = n_lat_cells
        s += 1
    stripe_of_row = np.empty(n_lat_cells, np.int64)
    for t in range(n_stripes):
        stripe_of_row[stripe_rows[t]:stripe_rows[t + 1]] = t
    counts = np.zeros(n_stripes + 1, np.int64)
    for p in range(n_pix):
        if rows[p, 0] <= rows[p, 1]:
            for t in range(stripe_of_row[rows[p, 0]], stripe_of_row[rows[p, 1]] + 1):
                counts[t + 1] += 1
    stripe_start = np.cumsum(counts)
    fill = stripe_start[:-1].copy()
    stripe_pixels = np.empty(stripe_start[-1], np.int64)
    for p in range(n_pix):
        if rows[p, 0] <= rows[p, 1]:
            for t in range(stripe_of_row[rows[p, 0]], stripe_of_row[rows[p, 1]] + 1):
                stripe_pixels[fill[t]] = p
                fill[t] += 1
    return stripe_rows, stripe_start, stripe_pixels


# --- point binning ------------------------------------------------------------------------------
@njit(cache=True)
def bin_points(latitude, longitude, values, sigmas, companions, lat_edges, lon_edges, sums,
               pixel_count, companion_sums, binned):
    """Point binning (HARP rule 10): each point adds weight 1 to the cell containing it.

    Cells are half-open ``[edge[i], edge[i+1])`` on both axes (the last edge is exclusive);
    longitudes are first wrapped into ``[E0, E0+360)``. As in HARP, a cell's ``*_uncertainty`` is
    then the mean σ and its ``*_uncertainty_random`` sqrt(Σ σ²) / N. ``binned[p]`` is set to 1
    for points that fall in the grid, 0 otherwise.
    """
    n_lat = lat_edges.shape[0] - 1
    n_lon = lon_edges.shape[0] - 1
    inv_lat = n_lat / (lat_edges[-1] - lat_edges[0])
    inv_lon = n_lon / (lon_edges[-1] - lon_edges[0])
    e0 = lon_edges[0]
    for p in range(latitude.shape[0]):
        binned[p] = 0
        la, lo = latitude[p], longitude[p]
        if not (math.isfinite(la) and math.isfinite(lo)):
            continue
        r = locate(lat_edges, inv_lat, la)
        if r < 0 or r >= n_lat:
            continue
        lo -= 360.0 * math.floor((lo - e0) / 360.0)
        c = locate(lon_edges, inv_lon, lo)
        if c < 0 or c >= n_lon:
            continue
        sums[r, c, 0] += 1.0
        sums[r, c, 1] += values[p]
        sums[r, c, 2] += sigmas[p] * sigmas[p]
        sums[r, c, 3] += sigmas[p]
        pixel_count[r, c] += 1
        binned[p] = 1
        for j in range(companions.shape[1]):
            x = companions[p, j]
            if abs(x) < FILL_THRESHOLD:  # not NaN, infinite or fill
                companion_sums[r, c, 2 * j] += 1.0
                companion_sums[r, c, 2 * j + 1] += x
