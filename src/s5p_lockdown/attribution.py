"""Pixel-centre attribution: per (region, grid cell) sums of the pixels whose centre lies there.

A daily grid (:mod:`s5p_lockdown.daily`) spreads every pixel over all the cells its footprint
overlaps, as HARP's ``bin_spatial`` does; that is right for maps, but a cell on a border then
holds NO2 from both sides, and a 5.5-7 km pixel centred in one country reaches 0.03-0.05 degrees
into the next (border and coast dilution of a country mean). The statistics therefore read the
pixels a second way: each qa-filtered pixel (the same pixels the daily grid counts) belongs to
the grid cell ``[edge_i, edge_i+1)`` containing its centre and to the region(s) containing its
centre, and is counted with weight 1 there:

    n[d, r, i] = number of pixels of day d centred in cell i and in region r
    s[d, r, i] = Σ of their tropospheric NO2 columns (mol m-2)
    n_wind, s_wind: the same for ``hypot(eastward_wind, northward_wind)`` (m s-1), over the
                    pixels that also have a finite wind

so ``s / n`` is the mean of region r's own pixels in the part of cell i inside r. The cell's
share of the region's area (its fractional mask, :mod:`s5p_lockdown.regions`) then weighs it in
a region mean (:mod:`s5p_lockdown.cells`).

A pixel's region is found by point-in-polygon (GEOS ``intersects``: a centre on a border belongs
to both, then, for exclusive region sets such as countries, to the first in the set's order).
Only pixels in cells that a region covers partly are tested; a pixel in a cell wholly inside
one region (fraction 1, no other region in the cell) takes that region directly.

One file per ISO week and region set (``write_attribution``), entries in the order of
(day, region, cell), so the same inputs give byte-identical files.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import shapely
import xarray as xr

from s5p_lockdown.errors import InvalidProductError
from s5p_lockdown.gridding import GridSpec
from s5p_lockdown.outputs import write_atomically
from s5p_lockdown.regions import RegionSet, mask_entries

log = logging.getLogger(__name__)

#: Fractions at or above this count as "the whole cell" (masks are float32 rounded down).
_WHOLE_CELL = 1.0 - 1e-6

SUMS = ("pixel_count", "no2_sum", "wind_count", "wind_sum")
"""The per-entry sums of an attribution file (see the module docstring)."""


class _CellIndex:
    """The masks as sparse (cell, region) pairs, sorted by cell, for looking up pixel cells."""

    def __init__(self, region_set: RegionSet):
        regions, cells, fractions = mask_entries(region_set.masks)
        order = np.lexsort((regions, cells))  # by cell, then region order
        self.pair_cell = cells[order]
        self.pair_region = regions[order]
        fraction = fractions[order]
        n_cells = region_set.masks.sizes["latitude"] * region_set.masks.sizes["longitude"]
        self.start = np.searchsorted(self.pair_cell, np.arange(n_cells), side="left")
        self.stop = np.searchsorted(self.pair_cell, np.arange(n_cells), side="right")
        # a cell wholly inside one region, with no other region in it: its pixels need no test
        single = (self.stop - self.start) == 1
        self.whole_region = np.full(n_cells, -1)
        first = self.start[single]
        whole = fraction[first] >= _WHOLE_CELL
        self.whole_region[np.flatnonzero(single)[whole]] = self.pair_region[first[whole]]
        self.geometries = [region_set.regions[code].geometry for code in region_set.codes]
        for geometry in self.geometries:
            shapely.prepare(geometry)
        self.exclusive = region_set.exclusive


def pixel_cells(latitude: np.ndarray, longitude: np.ndarray, grid: GridSpec) -> np.ndarray:
    """Flat index (row-major, latitude first) of the cell ``[edge_i, edge_i+1)`` containing each
    pixel centre (degrees; longitudes in any 360-degree range), -1 outside the grid or NaN."""
    lat_edges, lon_edges = grid.lat_edges, grid.lon_edges
    lon = lon_edges[0] + np.mod(longitude - lon_edges[0], 360.0)
    with np.errstate(invalid="ignore"):
        row = np.searchsorted(lat_edges, latitude, side="right") - 1
        col = np.searchsorted(lon_edges, lon, side="right") - 1
        inside = ((row >= 0) & (row < len(lat_edges) - 1) & (col >= 0) & (col < len(lon_edges) - 1)
                  & np.isfinite(latitude) & np.isfinite(lon))
    return np.where(inside, row * (len(lon_edges) - 1) + col, -1)


def attribute_pixels(
    latitude: np.ndarray, longitude: np.ndarray, cells: np.ndarray, index: _CellIndex
) -> tuple[np.ndarray, np.ndarray]:
    """Memberships of pixels in regions: ``(pixel, region)`` index arrays, ordered by pixel.

    ``cells`` from :func:`pixel_cells`. See the module docstring for the rules."""
    candidates = np.flatnonzero(cells >= 0)
    whole = index.whole_region[cells[candidates]]
    pixels = [candidates[whole >= 0]]
    regions = [whole[whole >= 0]]

    tested = candidates[whole < 0]
    counts = index.stop[cells[tested]] - index.start[cells[tested]]
    pixel = np.repeat(tested, counts)
    offset = np.arange(pixel.size) - np.repeat(np.cumsum(counts) - counts, counts)
    region = index.pair_region[np.repeat(index.start[cells[tested]], counts) + offset]
    x = (np.asarray(longitude, np.float64)[pixel] + 180.0) % 360.0 - 180.0
    y = np.asarray(latitude, np.float64)[pixel]
    inside = np.zeros(pixel.size, bool)
    by_region = np.argsort(region, kind="stable")
    for pairs in np.split(by_region, np.flatnonzero(np.diff(region[by_region])) + 1):
        if pairs.size:  # one region's candidate pixels, tested in one vectorised call
            geometry = index.geometries[region[pairs[0]]]
            inside[pairs] = shapely.intersects_xy(geometry, x[pairs], y[pairs])
    pixel, region = pixel[inside], region[inside]
    if index.exclusive:  # the first region (pairs are in region order within a cell)
        first = np.ones(pixel.size, bool)
        first[1:] = pixel[1:] != pixel[:-1]
        pixel, region = pixel[first], region[first]
    pixels.append(pixel)
    regions.append(region)
    pixel, region = np.concatenate(pixels), np.concatenate(regions)
    order = np.lexsort((region, pixel))
    return pixel[order], region[order]


@dataclass
class DaySums:
    """One day's attributed sums: entries (region, cell) with the :data:`SUMS`."""

    day: date
    region: np.ndarray  # (n,) int, index into the region set
    cell: np.ndarray  # (n,) int, flat cell index
    sums: dict[str, np.ndarray]  # name -> (n,)


def _orbit_pixels(path: Path, grid: GridSpec, qa_threshold: float) -> dict[str, np.ndarray]:
    """The usable pixels of one orbit (the daily grid's: qa-filtered, valid column and
    precision) near ``grid``: ``latitude``, ``longitude`` (degrees), ``no2`` (mol m-2) and
    ``wind`` (m s-1, NaN without wind). Corners are not read."""
    # imported here: the statistics read attribution files without the reader
    from s5p_lockdown.gridding.accumulator import usable_pixels
    from s5p_lockdown.io import read_l2_arrays

    ds = read_l2_arrays(path, bbox=grid.bounds, optional=("eastward_wind", "northward_wind"),
                        bounds=False)
    usable = np.flatnonzero(usable_pixels(ds, qa_threshold).ravel())
    pixels = {"latitude": ds["latitude"].ravel()[usable],
              "longitude": ds["longitude"].ravel()[usable],
              "no2": ds["nitrogendioxide_tropospheric_column"].ravel()[usable]}
    if "eastward_wind" in ds and "northward_wind" in ds:
        pixels["wind"] = np.hypot(ds["eastward_wind"], ds["northward_wind"]).ravel()[usable]
    else:
        pixels["wind"] = np.full(usable.size, np.nan)
    return pixels


def _day_sums(day: date, key: np.ndarray, no2: np.ndarray, wind: np.ndarray, n_cells: int) -> DaySums:
    """Sums per distinct ``key`` = region x n_cells + cell, in key order."""
    unique, inverse = np.unique(key, return_inverse=True)
    has_wind = np.isfinite(wind)
    sums = {
        "pixel_count": np.bincount(inverse, minlength=unique.size).astype(np.int32),
        "no2_sum": np.bincount(inverse, weights=no2, minlength=unique.size),
        "wind_count": np.bincount(inverse, weights=has_wind, minlength=unique.size).astype(np.int32),
        "wind_sum": np.bincount(inverse, weights=np.where(has_wind, wind, 0.0), minlength=unique.size),
    }
    return DaySums(day, unique // n_cells, unique % n_cells, sums)


def _common_grid(region_sets: Mapping[str, RegionSet]) -> GridSpec:
    grids = {name: regions.masks.attrs["grid"] for name, regions in region_sets.items()}
    if len(set(grids.values())) != 1:
        raise ValueError(f"region sets on different grids: {grids}")
    return next(iter(region_sets.values())).grid()


def attribute_day(
    files: Sequence[str | Path],
    day: date,
    region_sets: Mapping[str, RegionSet],
    qa_threshold: float = 0.75,
    skip_invalid: bool = False,
    indexes: Mapping[str, _CellIndex] | None = None,
) -> dict[str, DaySums]:
    """Attribute the qa-filtered pixels of ``files`` (one day's orbits, each read once) to the
    regions and cells of each region set (all on one grid); one :class:`DaySums` per set.

    An invalid file raises :class:`InvalidProductError` naming it, or with ``skip_invalid`` is
    logged and left out (as by :func:`s5p_lockdown.daily.grid_day`)."""
    grid = _common_grid(region_sets)
    indexes = indexes or {name: _CellIndex(regions) for name, regions in region_sets.items()}
    n_cells = grid.shape[0] * grid.shape[1]
    parts = {name: {"key": [], "no2": [], "wind": []} for name in region_sets}
    for path in map(Path, files):
        try:
            pixels = _orbit_pixels(path, grid, qa_threshold)
        except InvalidProductError as exc:
            if not skip_invalid:
                raise
            log.warning("skipping invalid file: %s", exc)
            continue
        cells = pixel_cells(pixels["latitude"], pixels["longitude"], grid)
        for name, part in parts.items():
            pixel, region = attribute_pixels(pixels["latitude"], pixels["longitude"], cells, indexes[name])
            part["key"].append(region.astype(np.int64) * n_cells + cells[pixel])
            part["no2"].append(pixels["no2"][pixel])
            part["wind"].append(pixels["wind"][pixel])
            log.info("%s %s: %d of %d usable pixels attributed to %s", day, path.name, pixel.size,
                     cells.size, name)
    return {name: _day_sums(day, *(np.concatenate(part[k]) if part[k] else np.zeros(0, dtype)
                                   for k, dtype in (("key", np.int64), ("no2", float), ("wind", float))),
                            n_cells)
            for name, part in parts.items()}


def attribute_days(
    files_by_day: Mapping[date, Sequence[str | Path]],
    region_sets: Mapping[str, RegionSet],
    out_paths: Mapping[str, str | Path],
    qa_threshold: float = 0.75,
    skip_invalid: bool = False,
) -> list[Path]:
    """:func:`attribute_day` for every day of ``files_by_day``; each region set's days are
    written to its file in ``out_paths`` (netCDF, atomically; see :func:`write_attribution`)."""
    indexes = {name: _CellIndex(regions) for name, regions in region_sets.items()}
    days = [attribute_day(files, day, region_sets, qa_threshold, skip_invalid, indexes)
            for day, files in sorted(files_by_day.items())]
    return [write_attribution([d[name] for d in days], regions, out_paths[name], qa_threshold)
            for name, regions in region_sets.items()]


def write_attribution(days: Sequence[DaySums], region_set: RegionSet, path: str | Path,
                      qa_threshold: float) -> Path:
    """Write days' sums as netCDF: dims ``day`` (ISO dates; a day with files but no pixel is
    listed, it is a day without data) and ``entry`` (``day_index``, ``region_index``,
    ``cell_index`` and the :data:`SUMS`); coordinate ``region`` (codes)."""
    lengths = [d.region.size for d in days]
    data = {
        "day_index": ("entry", np.repeat(np.arange(len(days), dtype=np.int32), lengths)),
        "region_index": ("entry", _concat([d.region for d in days], np.int32)),
        "cell_index": ("entry", _concat([d.cell for d in days], np.int64)),
    }
    for name in SUMS:
        dtype = np.int32 if name.endswith("count") else np.float64
        data[name] = ("entry", _concat([d.sums[name] for d in days], dtype))
    dataset = xr.Dataset(
        data,
        coords={"day": [d.day.isoformat() for d in days], "region": region_set.codes},
        attrs={"grid": region_set.masks.attrs["grid"], "qa_threshold": qa_threshold,
               "exclusive": int(region_set.exclusive),
               "conventions": "pixel-centre attribution, see s5p_lockdown.attribution"},
    )
    dataset["no2_sum"].attrs["units"] = "mol m-2"
    dataset["wind_sum"].attrs["units"] = "m s-1"
    encoding = {name: {"zlib": True, "complevel": 4} for name in data}
    return write_atomically(path, lambda tmp: dataset.to_netcdf(tmp, encoding=encoding))


def _concat(arrays: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)


def read_attribution(path: str | Path) -> xr.Dataset:
    """An attribution file as written by :func:`write_attribution` (loaded into memory);
    a file that is not one raises :class:`InvalidProductError` naming it."""
    try:
        with xr.open_dataset(path) as dataset:
            dataset = dataset.load()
    except (OSError, ValueError) as exc:
        raise InvalidProductError(path, f"cannot read the attribution file: {exc}") from None
    missing = {"day_index", "region_index", "cell_index", *SUMS} - set(dataset.variables)
    if missing:
        raise InvalidProductError(path, f"not an attribution file: no {sorted(missing)}")
    return dataset
