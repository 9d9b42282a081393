"""Per-region cells × days tables: what the statistics need of the daily grids.

For one region ``r`` (a country or a hotspot) and the days asked for, a :class:`CellTable`
holds every grid cell ``i`` with a fraction ``f_ir > 0`` of its area in the region:

- ``area[i] = cos(lat_i) f_ir``: the part of the region's area on the sphere in the cell (in
  units of an equator cell; only ratios are used);
- ``weight_in_mean[i] = area[i] x purity[i]``: the cell's weight in a region mean, where
  ``purity`` (0-1) is the fraction of the cell's *catchment* (the cell widened by
  ``border_margin`` degrees on each side, about half a TROPOMI pixel) inside the region. A
  daily grid cell holds every pixel that overlaps it, so a cell on or near a border or a coast
  also sees NO2 from beyond: purity lowers the weight of such cells in proportion to how much of
  their catchment lies outside (border and coast dilution). With ``border_margin = 0`` the
  catchment is the cell itself and the purity its own fraction ``f``. (A pixel of width P
  reaching into a cell spills on average about P/6 beyond the cell's edge: 0.01-0.02 degrees for
  TROPOMI's 3.5-7 km pixels);
- per day ``d``: ``weighted_value[d, i] = W_di x_di`` (mol m-2) and ``weight[d, i] = W_di`` (the
  daily grid's Σ of pixel overlap fractions; both 0 where the cell has no data), and the region's
  ``wind`` (m s-1, the ``area x W``-weighted mean of the cells' wind; NaN without wind).

Daily grids are read once for all regions (only the union of the regions' cells is kept), so a
season of days at 0.1 degree over Europe stays a few hundred MB (float64).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import xarray as xr

from s5p_lockdown.gridding import schema


@dataclass(frozen=True)
class CellTable:
    """One region's cells × days (see the module docstring for the conventions)."""

    code: str
    dates: np.ndarray  # (n_days,) datetime.date, ascending
    area: np.ndarray  # (n_cells,)
    weight_in_mean: np.ndarray  # (n_cells,)
    weighted_value: np.ndarray  # (n_days, n_cells), mol m-2 x weight
    weight: np.ndarray  # (n_days, n_cells)
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
        return CellTable(self.code, self.dates[selected], self.area, self.weight_in_mean,
                         self.weighted_value[selected], self.weight[selected], self.wind[selected])


def purity(masks: xr.DataArray, border_margin: float) -> np.ndarray:
    """(region, latitude, longitude) fraction of each cell's catchment inside the region: the
    mean of the fractional mask over the cell widened by ``border_margin`` degrees on each side
    (a separable box filter on the regular grid, neighbouring cells counted with the part of them
    the widened cell covers; cells beyond the grid's edge count as the edge cell). Where the
    mask is 0 the purity is 0; with no margin it is the cell's own fraction."""
    values = masks.values.astype(np.float64)
    for axis, coordinate in ((1, "latitude"), (2, "longitude")):
        step = float(abs(np.diff(masks[coordinate].values[:2])[0]))
        values = _box_filter(values, axis, border_margin / step)
    return np.where(masks.values > 0, np.clip(values, 0.0, 1.0), 0.0)


def _box_filter(values: np.ndarray, axis: int, margin_cells: float) -> np.ndarray:
    """Mean over a window of ``1 + 2 margin_cells`` cells centred on each cell along ``axis``:
    offset k != 0 has weight ``clip(margin_cells - |k| + 1, 0, 1)`` (the covered part of that
    cell). Edge cells are repeated beyond the grid (numpy has no fractional box filter, and
    scipy is not otherwise needed)."""
    reach = int(np.ceil(margin_cells))
    padding = [(0, 0)] * values.ndim
    padding[axis] = (reach, reach)
    padded = np.pad(values, padding, mode="edge")
    n = values.shape[axis]
    out = np.zeros_like(values)
    for k in range(-reach, reach + 1):
        w = 1.0 if k == 0 else float(np.clip(margin_cells - abs(k) + 1, 0.0, 1.0))
        out += w * np.take(padded, np.arange(reach + k, reach + k + n), axis=axis)
    return out / (1 + 2 * margin_cells)


def _day(path: Path) -> date:
    return date.fromisoformat(path.stem)


def cell_tables(
    daily_paths: list[str | Path],
    masks: xr.DataArray,
    dates: set[date] | None = None,
    border_margin: float = 0.02,
) -> dict[str, CellTable]:
    """A :class:`CellTable` per region of ``masks`` (dims region/country, latitude, longitude,
    on the daily grids' grid) from the daily grids ``YYYY-MM-DD.nc`` whose day is in ``dates``
    (all when None)."""
    paths = sorted((Path(p) for p in daily_paths), key=_day)
    if dates is not None:
        paths = [p for p in paths if _day(p) in dates]
    region_dim = masks.dims[0]
    fractions = masks.values.reshape(masks.sizes[region_dim], -1).astype(np.float64)
    cos_lat = np.cos(np.radians(masks["latitude"].values))
    area = fractions * np.repeat(cos_lat, masks.sizes["longitude"])[None, :]
    weight_in_mean = area * purity(masks, border_margin).reshape(area.shape)
    union = np.flatnonzero((fractions > 0).any(axis=0))
    n_days = len(paths)
    value_w = np.zeros((n_days, union.size))
    weight = np.zeros((n_days, union.size))
    wind_w = np.zeros((n_days, union.size))
    wind_weight = np.zeros((n_days, union.size))
    for d, path in enumerate(paths):
        with xr.open_dataset(path) as ds:
            value = ds[schema.VALUE].values[0].ravel()[union]
            w = np.nan_to_num(ds[schema.WEIGHT].values[0].ravel()[union])
            speed = ds["wind_speed"].values[0].ravel()[union] if "wind_speed" in ds else None
        has_data = np.isfinite(value) & (w > 0)
        weight[d] = np.where(has_data, w, 0.0)
        value_w[d] = np.where(has_data, w * np.where(has_data, value, 0.0), 0.0)
        if speed is not None:
            has_wind = has_data & np.isfinite(speed)
            wind_weight[d] = np.where(has_wind, w, 0.0)
            wind_w[d] = np.where(has_wind, w * np.where(has_wind, speed, 0.0), 0.0)
    days = np.array([_day(p) for p in paths], dtype=object)
    tables = {}
    for k, code in enumerate(masks[region_dim].values.astype(str)):
        columns = np.flatnonzero(fractions[k, union] > 0)
        a = area[k, union[columns]]
        wind_sum = wind_w[:, columns] @ a
        wind_total = wind_weight[:, columns] @ a
        with np.errstate(invalid="ignore", divide="ignore"):
            wind = np.where(wind_total > 0, wind_sum / wind_total, np.nan)
        tables[code] = CellTable(code, days, a, weight_in_mean[k, union[columns]],
                                 value_w[:, columns], weight[:, columns], wind)
    return tables
