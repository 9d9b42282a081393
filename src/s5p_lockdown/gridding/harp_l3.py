"""Read L3 grids written by HARP (``harpconvert`` / ``harp.export_product``) or by this package
into the schema of :mod:`s5p_lockdown.gridding.schema`, so an archive of HARP daily grids can
feed the same workflow (merge with :meth:`GridAccumulator.from_dataset`).

HARP L3 files in the wild are often netCDF-3, all float64, and after ``keep(...)`` may have lost
the bounds, ``weight``, ``count`` and datetime variables, leaving only cell-centre
``latitude``/``longitude``. The reader copes:

* grid: from ``latitude_bounds``/``longitude_bounds`` if present, else from evenly spaced
  centres (edges = centre ∓ step/2); irregular axes are an error;
* ``weight``: ``<variable>_weight`` or ``weight`` if present; otherwise 1 in every cell with a
  value and the Dataset is marked ``weighting = "equal"`` (the file's Σ w is unknown, so it can
  only be combined cell by cell with equal weights);
* uncertainties: ``…_uncertainty`` and ``…_uncertainty_random`` each from the variable of that
  name, NaN (unknown) where the file has none (HARP writes only the one its input was named as);
* ``pixel_count`` / ``count``: -1 (unknown) unless recorded;
* time range: ``datetime_start``/``datetime_stop`` if present, else the sensing start/stop in
  the S5P file name of ``source_product``, else NaT;
* units: mol/m2 (HARP's spelling) or molec/cm2, converted to mol m-2.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import xarray as xr

from s5p_lockdown.errors import ConfigError, InvalidProductError
from s5p_lockdown.gridding import schema
from s5p_lockdown.gridding.grid import GridSpec, same_grid

#: Relative tolerance on the regularity of grid axes.
_REGULAR_RTOL = 1e-6
_AVOGADRO = 6.02214076e23
_TO_MOL_M2 = {
    "mol/m2": 1.0,
    "mol m-2": 1.0,
    "mol/m^2": 1.0,
    "molec/cm2": 1e4 / _AVOGADRO,
    "molec cm-2": 1e4 / _AVOGADRO,
    "molecules/cm2": 1e4 / _AVOGADRO,
}
_S5P_TIMES = re.compile(r"_(\d{8}T\d{6})_(\d{8}T\d{6})_")


def _regular_spec(lat_edges: np.ndarray, lon_edges: np.ndarray) -> GridSpec:
    """GridSpec of ascending, evenly spaced edges; ValueError if they are not."""
    params = []
    for name, edges in (("latitude", lat_edges), ("longitude", lon_edges)):
        if edges.size < 2:
            raise ValueError(f"{name} axis needs at least one cell with known edges")
        step = (edges[-1] - edges[0]) / (edges.size - 1)
        expected = edges[0] + step * np.arange(edges.size)
        if not step > 0 or np.max(np.abs(edges - expected)) > _REGULAR_RTOL * step:
            raise ValueError(f"{name} axis is not ascending and evenly spaced")
        rounded = float(f"{step:.12g}")  # 0.09999999999999998 -> 0.1, as a user would write it
        if abs(rounded - step) < 1e-9 * step:
            step = rounded
        params += [edges.size, float(edges[0]), float(step)]
    return GridSpec(*params)


def _axis_edges(ds: xr.Dataset, axis: str) -> np.ndarray:
    """Cell edges of ``axis`` from ``<axis>_bounds`` or from evenly spaced centres."""
    bounds_name = f"{axis}_bounds"
    if bounds_name in ds.variables:
        bounds = np.asarray(ds[bounds_name].values, np.float64).reshape(-1, 2)
        return np.append(bounds[:, 0], bounds[-1, 1])
    centres = np.asarray(ds[axis].values, np.float64).ravel()
    if centres.size < 2:
        raise ValueError(f"cannot derive cell edges from a single {axis} centre without bounds")
    step = (centres[-1] - centres[0]) / (centres.size - 1)
    return centres[0] - step / 2 + step * np.arange(centres.size + 1)


def grid_from_dataset(ds: xr.Dataset) -> GridSpec:
    """The :class:`GridSpec` of an L3 Dataset: its ``harp_operation`` attribute when that matches
    the coordinates, else derived from the bounds or from evenly spaced cell centres."""
    derived = _regular_spec(_axis_edges(ds, "latitude"), _axis_edges(ds, "longitude"))
    operation = ds.attrs.get("harp_operation")
    if operation:
        try:
            recorded = GridSpec.from_harp(str(operation))
        except ConfigError:
            return derived
        if same_grid(recorded, derived):
            return recorded
    return derived


def _first_present(ds: xr.Dataset, names: tuple[str, ...]) -> xr.DataArray | None:
    return next((ds[n] for n in names if n in ds.variables), None)


def _as_grid_array(var: xr.DataArray, path: Path) -> np.ndarray:
    """A (latitude, longitude) float64 array from a variable with an optional time axis of 1."""
    if "time" in var.dims:
        if var.sizes["time"] != 1:
            raise InvalidProductError(
                path,
                f"{var.name} has {var.sizes['time']} time steps; "
                "only single-time L3 grids are supported",
            )
        var = var.isel(time=0)
    if var.dims != ("latitude", "longitude"):
        raise InvalidProductError(
            path, f"{var.name} has dimensions {var.dims}, expected (time, latitude, longitude)"
        )
    return np.asarray(var.values, np.float64)


def _s5p_time(stamp: str) -> np.datetime64:
    """``20211217T114745`` -> datetime64."""
    return np.datetime64(
        f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:11]}:{stamp[11:13]}:{stamp[13:15]}", "ns"
    )


def _time_range(ds: xr.Dataset, sources: list[str]) -> tuple[np.datetime64 | None, ...]:
    """(start, stop) from datetime variables, else from S5P file names; None if unknown."""
    found = []
    for name, pick in (("datetime_start", np.min), ("datetime_stop", np.max)):
        times = np.array([], "datetime64[ns]")
        if name in ds.variables and np.issubdtype(ds[name].dtype, np.datetime64):
            times = ds[name].values.astype("datetime64[ns]").ravel()
            times = times[~np.isnat(times)]
        found.append(pick(times) if times.size else None)
    if found[0] is None or found[1] is None:
        stamps = [m.groups() for m in map(_S5P_TIMES.search, sources) if m]
        if stamps:
            start = min(_s5p_time(s) for s, _ in stamps)
            stop = max(_s5p_time(e) for _, e in stamps)
            found = [
                start if found[0] is None else found[0],
                stop if found[1] is None else found[1],
            ]
    return found[0], found[1]


def read_l3(path: str | Path) -> xr.Dataset:
    """Read a HARP (or s5p-lockdown) L3 NO2 grid into the schema of
    :mod:`s5p_lockdown.gridding.schema`. Raises :class:`InvalidProductError` naming the file."""
    path = Path(path)
    try:
        with xr.open_dataset(path) as raw:
            ds = raw.load()
    except (OSError, ValueError) as exc:
        raise InvalidProductError(path, f"cannot open as netCDF: {exc}") from None
    if schema.VALUE not in ds.variables:
        raise InvalidProductError(path, f"no variable {schema.VALUE!r}; is this an L3 NO2 grid?")
    for axis in ("latitude", "longitude"):
        centres = ds[axis].values if axis in ds.coords else np.array([])
        if centres.size > 1 and centres[0] > centres[-1]:
            ds = ds.isel({axis: slice(None, None, -1)})
    try:
        grid = grid_from_dataset(ds)
    except (KeyError, ValueError) as exc:
        raise InvalidProductError(path, f"cannot recover the grid: {exc}") from None
    units = str(ds[schema.VALUE].attrs.get("units", "mol/m2")).strip()
    if units not in _TO_MOL_M2:
        raise InvalidProductError(
            path, f"{schema.VALUE} has units {units!r}; expected mol/m2 or molec/cm2"
        )
    scale = _TO_MOL_M2[units]
    value = _as_grid_array(ds[schema.VALUE], path) * scale
    has_value = np.isfinite(value)
    uncertainties = {}
    for name in (schema.UNCERTAINTY, schema.UNCERTAINTY_RANDOM):
        uncertainties[name] = np.full(grid.shape, np.nan)
        if name in ds.variables:
            uncertainties[name] = _as_grid_array(ds[name], path) * scale
    weight_var = _first_present(ds, (f"{schema.VALUE}_weight", schema.WEIGHT))
    if weight_var is None:
        weight, weighting = has_value.astype(np.float64), "equal"
    else:
        weight = np.nan_to_num(_as_grid_array(weight_var, path), nan=0.0)
        weighting = str(ds.attrs.get("weighting", "weight"))
    if schema.PIXEL_COUNT in ds.variables:
        pixel_count = _as_grid_array(ds[schema.PIXEL_COUNT], path).astype(np.int32)
    else:
        pixel_count = np.full(grid.shape, -1, np.int32)
    count = int(np.sum(ds[schema.COUNT].values)) if schema.COUNT in ds.variables else -1
    sources = str(ds.attrs.get("source_product", path.name)).split(",")
    sources = [s.strip() for s in sources if s.strip()]
    start, stop = _time_range(ds, sources)
    return schema.build_dataset(
        grid,
        value=np.where(has_value, value, np.nan),
        uncertainty=np.where(has_value, uncertainties[schema.UNCERTAINTY], np.nan),
        uncertainty_random=np.where(has_value, uncertainties[schema.UNCERTAINTY_RANDOM], np.nan),
        weight=np.where(has_value, weight, 0.0),
        pixel_count=pixel_count,
        count=count,
        time_start=start,
        time_stop=stop,
        sources=sources,
        weighting=weighting,
        history=f"{ds.attrs.get('history', '')}\nread_l3({path.name})".strip(),
    )
