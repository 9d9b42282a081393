"""Per-region cells × days tables: what the statistics need of the pixels.

For one region ``r`` (a country or a hotspot) and the days asked for, a :class:`CellTable`
holds every grid cell ``i`` with a fraction ``f_ir > 0`` of its area in the region:

- ``area[i] = cos(lat_i) f_ir``: the part of the region's area on the sphere in the cell (in
  units of an equator cell; only ratios are used), the cell's weight in a region mean;
- per day ``d``: ``weighted_value[d, i]`` = Σ of the tropospheric NO2 columns (mol m-2) of the
  region's pixels *centred* in the cell and ``weight[d, i]`` = their number (both 0 where the
  cell has no such pixel), from the pixel-centre attribution files of
  :mod:`s5p_lockdown.attribution`; and the region's ``wind`` (m s-1, the mean wind of those
  pixels, each weighted by its cell's ``area``; NaN without wind).

Attributing pixels by their centre, rather than reading the daily grids (where every pixel is
spread over all the cells its footprint overlaps), keeps a border or coast cell's value to the
region's own pixels: the neighbour's NO2 does not leak into the region's mean (border dilution).

**Statistics cells.** With ``cell_size`` (degrees) the tables' cells are blocks of
``k_lat × k_lon`` grid cells (``k`` the whole multiple of the grid's step nearest to
``cell_size``, at least 1; blocks aligned on the grid's south-west corner, partial at its north
and east edges): a block's ``area`` is the sum of its grid cells' (so still the region's area in
it), its sums are the sums of the region's pixels centred in any of them. Each day's pixels still
belong to the region whose mask holds their centre's grid cell; only the statistics' support and
composites are coarser. Why: a 0.1° cell holds a few pixel centres per clear day, so in a short,
cloudy window many cells have data in only one of the windows compared and leave the common
support, and the per-cell composites of the rest are means of 1-3 pixels: at 0.2° the support
keeps more of the data and each composite averages more pixels, while the weights stay the
area's. Measured (benchmarks/bench_accuracy.py, 10 seeds, 0.1° grid, 14 countries): the largest
country error of an archive, median over seeds, 1.47 / 1.66 pp (post vs baseline / vs pre) on
0.1° cells, 1.25 / 1.23 pp on 0.2°; without retrieval noise (the estimator's own bias) both
0.1-0.13 pp on average. Larger blocks let where the sky was clear *inside* a block weigh its
composite: on 0.3° and 0.4° blocks the noiseless error grows (0.14-0.19 pp on average, up to
1.3 and 2.1 pp).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import xarray as xr

from s5p_lockdown.attribution import SUMS, read_attribution
from s5p_lockdown.errors import InvalidProductError
from s5p_lockdown.gridding import GridSpec
from s5p_lockdown.regions import mask_codes, mask_entries


@dataclass(frozen=True)
class CellTable:
    """One region's cells × days (see the module docstring for the conventions)."""

    code: str
    dates: np.ndarray  # (n_days,) datetime.date, ascending
    area: np.ndarray  # (n_cells,)
    weighted_value: np.ndarray  # (n_days, n_cells), Σ of pixel columns, mol m-2
    weight: np.ndarray  # (n_days, n_cells), pixel counts
    wind: np.ndarray  # (n_days,), m s-1

    @property
    def coverage(self) -> np.ndarray:
        """(n_days,) fraction of the region's area with data each day (0-1)."""
        total = self.area.sum()
        if total <= 0:
            return np.zeros(len(self.dates))
        return (self.weight > 0).astype(np.float64) @ self.area / total

    def days(self, selected: np.ndarray) -> CellTable:
        """The table restricted to the days where the boolean ``selected`` (n_days,) is true."""
        return CellTable(self.code, self.dates[selected], self.area,
                         self.weighted_value[selected], self.weight[selected], self.wind[selected])


def _entries(paths: list[str | Path], masks: xr.DataArray, codes: np.ndarray,
             dates: set[date] | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The days (ascending) of the attribution files that are in ``dates`` and their entries:
    ``day`` (index into the days), ``region`` (index into ``codes``, -1 for a region the masks
    do not have), ``cell`` and the :data:`SUMS` (float64)."""
    parts, file_days = [], []
    position = {c: k for k, c in enumerate(codes)}
    for path in paths:
        ds = read_attribution(path)
        if ds.attrs.get("grid") != masks.attrs.get("grid"):
            raise InvalidProductError(path, f"attribution file for grid {ds.attrs.get('grid')}, "
                                            f"the statistics use {masks.attrs.get('grid')}")
        days = [date.fromisoformat(d) for d in ds["day"].values.astype(str)]
        keep = np.array([dates is None or d in dates for d in days], bool)
        day_of_entry = ds["day_index"].values
        entries = keep[day_of_entry] if keep.size else np.zeros(0, bool)
        offset = len(file_days)
        file_days += [d for d, k in zip(days, keep) if k]
        region_of = np.array([position.get(c, -1) for c in ds["region"].values.astype(str)], int)
        parts.append({
            "day": (np.cumsum(keep) - 1 + offset)[day_of_entry[entries]],
            "region": region_of[ds["region_index"].values[entries]],
            "cell": ds["cell_index"].values[entries],
            **{name: ds[name].values[entries].astype(np.float64) for name in SUMS},
        })
    if len(set(file_days)) != len(file_days):
        raise InvalidProductError(paths[0], "a day appears in more than one attribution file")
    order = np.argsort(np.array(file_days, dtype="datetime64[D]"), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    names = ("day", "region", "cell", *SUMS)
    entries = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, int) for k in names}
    entries["day"] = rank[entries["day"].astype(np.int64)]
    return np.array(file_days, dtype=object)[order], entries


def block_shape(grid: GridSpec, cell_size: float | None) -> tuple[int, int]:
    """Grid cells per statistics cell along latitude and longitude: the whole multiples of the
    grid's steps nearest to ``cell_size`` (degrees), at least 1; (1, 1) when None."""
    if cell_size is None:
        return 1, 1
    return (max(1, round(cell_size / grid.lat_edge_step)), max(1, round(cell_size / grid.lon_edge_step)))


def _blocks(cells: np.ndarray, n_lon: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For grid cells ``cells`` (flat, row-major): the order that groups them by statistics
    cell and the start of each group in that order (for ``np.add.reduceat``)."""
    rows, columns = cells // n_lon, cells % n_lon
    key = (rows // shape[0]) * (n_lon // shape[1] + 1) + columns // shape[1]
    order = np.argsort(key, kind="stable")
    return order, np.flatnonzero(np.diff(key[order], prepend=-1))


def cell_tables(
    attribution_paths: list[str | Path],
    masks: xr.DataArray | xr.Dataset,
    dates: set[date] | None = None,
    cell_size: float | None = None,
) -> dict[str, CellTable]:
    """A :class:`CellTable` per region of ``masks`` (dense, dims region/country, latitude,
    longitude, or sparse, :func:`s5p_lockdown.regions.sparse_fraction_masks`; attribute
    ``grid``) from pixel-centre attribution files (:mod:`s5p_lockdown.attribution`, e.g. one
    per week) of the same grid, for their days in ``dates`` (all when None), on statistics
    cells of about ``cell_size`` degrees (the grid's cells when None; see the module
    docstring). A file of another grid, or a day in two files, raises
    :class:`InvalidProductError` naming the file."""
    codes = np.array(mask_codes(masks), dtype=str)
    mask_region, mask_cell, mask_fraction = mask_entries(masks)
    by_region = np.lexsort((mask_cell, mask_region))
    mask_region, mask_cell, mask_fraction = mask_region[by_region], mask_cell[by_region], mask_fraction[by_region]
    bounds = np.searchsorted(mask_region, np.arange(len(codes) + 1))
    n_lon = masks.sizes["longitude"]
    shape = block_shape(GridSpec.from_harp(masks.attrs["grid"]), cell_size)
    cos_lat = np.cos(np.radians(masks["latitude"].values))
    days, entries = _entries(list(attribution_paths), masks, codes, dates)
    by_entry_region = np.argsort(entries["region"], kind="stable")
    entry_bounds = np.searchsorted(entries["region"][by_entry_region], np.arange(len(codes) + 1))
    tables = {}
    for k, code in enumerate(codes):
        cells = mask_cell[bounds[k]:bounds[k + 1]]  # ascending
        area = cos_lat[cells // n_lon] * mask_fraction[bounds[k]:bounds[k + 1]]
        mine = by_entry_region[entry_bounds[k]:entry_bounds[k + 1]]
        column = np.minimum(np.searchsorted(cells, entries["cell"][mine]), max(cells.size - 1, 0))
        # a pixel centred in a sliver the float32 mask rounds to 0 has no cell (area 0 anyway)
        found = cells[column] == entries["cell"][mine] if cells.size else np.zeros(mine.size, bool)
        mine, column = mine[found], column[found]
        at = (entries["day"][mine], column)
        sums = {name: np.zeros((days.size, cells.size)) for name in SUMS}
        for name in SUMS:
            np.add.at(sums[name], at, entries[name][mine])
        with np.errstate(invalid="ignore", divide="ignore"):
            wind_weight = sums["wind_count"] @ area
            wind = np.where(wind_weight > 0, (sums["wind_sum"] @ area) / wind_weight, np.nan)
        if shape != (1, 1) and cells.size:
            order, starts = _blocks(cells, n_lon, shape)
            area = np.add.reduceat(area[order], starts)
            sums = {name: np.add.reduceat(sums[name][:, order], starts, axis=1) for name in SUMS}
        tables[code] = CellTable(code, days, area, sums["no2_sum"], sums["pixel_count"], wind)
    return tables
