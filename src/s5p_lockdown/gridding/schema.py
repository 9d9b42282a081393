"""The L3 grid Dataset schema shared by every gridding engine and the HARP L3 reader.

Layout, following HARP's L3 netCDF files (``HARP-1.0``) with CF attributes added:

==============================================  ===========================  ===================
variable                                        dimensions                   dtype, units
==============================================  ===========================  ===================
``latitude`` / ``longitude`` (coordinates)      (latitude) / (longitude)     float64, degrees
``latitude_bounds`` / ``longitude_bounds``      (…, independent=2)           float64, degrees
``time`` (coordinate: start of the data)        (time=1)                     datetime64
``datetime_start`` / ``datetime_stop``          (time)                       datetime64
``tropospheric_NO2_column_number_density``      (time, latitude, longitude)  float64, mol m-2
``tropospheric_NO2_column_number_density``
``_uncertainty``                                (time, latitude, longitude)  float64, mol m-2
``tropospheric_NO2_column_number_density``
``_uncertainty_random``                         (time, latitude, longitude)  float64, mol m-2
``weight``                                      (time, latitude, longitude)  float64, 1
``pixel_count``                                 (time, latitude, longitude)  int32, 1
``count``                                       (time)                       int32, 1
==============================================  ===========================  ===================

* value = Σ w·x / Σ w, NaN where Σ w = 0 (no data);
* ``…_uncertainty`` = Σ w·σ / Σ w, σ = the pixels' S5P ``precision``: what HARP's
  ``bin_spatial`` writes under this name (a linear average, as if the pixels' errors were fully
  correlated; it does not shrink with averaging, an upper bound);
* ``…_uncertainty_random`` = sqrt(Σ (w·σ)²) / Σ w: the same σ taken as uncorrelated between
  pixels, HARP's rule for ``*_uncertainty_random`` in ``bin_spatial``. S5P's precision is mostly
  a random error, so this is the better estimate of a cell mean's random error; NaN where unknown
  (e.g. read from a HARP file that has only ``…_uncertainty``);
* ``weight`` = Σ w with w = overlap area / cell area (area binning) or 1 per point (point
  binning); for an equal-weight composite, the number of inputs with data in the cell;
* ``pixel_count`` = number of pixels with a positive overlap with the cell (-1: unknown, e.g.
  read from a HARP file that does not record it);
* ``count`` = number of pixels with at least one candidate cell in the grid (HARP's ``count``;
  -1 if unknown).

Global attributes: ``Conventions``, ``harp_operation`` (the grid as ``bin_spatial(...)``),
``source_product`` (input file names, comma-separated), ``weighting`` (``weight`` or ``equal``)
and ``history``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

import numpy as np

from s5p_lockdown.gridding.grid import GridSpec

if TYPE_CHECKING:  # annotations only: to_dataset imports xarray when called
    import xarray as xr

#: A (latitude, longitude) grid: an array, or a function giving the block of a latitude slice
#: and a longitude slice (so that a writer can compute and write a large grid block by block).
GridField = Union[np.ndarray, Callable[[slice, slice], np.ndarray]]

#: Input values (corners, columns, precisions) with a magnitude at or above this are fill values
#: (netCDF: 9.97e36); in this numba-free module so that the accumulator can test values without
#: importing the kernel.
FILL_THRESHOLD = 1e30

VALUE = "tropospheric_NO2_column_number_density"
UNCERTAINTY = f"{VALUE}_uncertainty"
UNCERTAINTY_RANDOM = f"{VALUE}_uncertainty_random"
WEIGHT = "weight"
PIXEL_COUNT = "pixel_count"
COUNT = "count"
#: Composite weightings: by Σ w ("weight") or each input equal ("equal").
WEIGHTINGS = ("weight", "equal")
#: Names of the schema's variables and coordinates (other variables may not take them).
RESERVED_NAMES = (VALUE, UNCERTAINTY, UNCERTAINTY_RANDOM, WEIGHT, PIXEL_COUNT, COUNT,
                  "datetime_start", "datetime_stop", "latitude_bounds", "longitude_bounds", "time",
                  "latitude", "longitude")

_VARIABLE_ATTRS = {
    VALUE: {
        "standard_name": "troposphere_mole_content_of_nitrogen_dioxide",
        "long_name": "tropospheric vertical column of NO2, area-weighted mean",
        "units": "mol m-2",
        "description": "sum(w*x)/sum(w), w = overlap area / cell area in planar degrees",
        "ancillary_variables": f"{UNCERTAINTY} {UNCERTAINTY_RANDOM} {WEIGHT} {PIXEL_COUNT}",
    },
    UNCERTAINTY: {
        "standard_name": "troposphere_mole_content_of_nitrogen_dioxide standard_error",
        "long_name": "uncertainty of the tropospheric vertical column of NO2, linear average",
        "units": "mol m-2",
        "description": "sum(w*sigma)/sum(w), sigma = pixel precision: HARP bin_spatial's "
                       "_uncertainty (pixel errors taken as fully correlated)",
    },
    UNCERTAINTY_RANDOM: {
        "standard_name": "troposphere_mole_content_of_nitrogen_dioxide standard_error",
        "long_name": "random uncertainty of the tropospheric vertical column of NO2",
        "units": "mol m-2",
        "description": "sqrt(sum((w*sigma)^2))/sum(w), sigma = pixel precision: HARP "
                       "bin_spatial's _uncertainty_random (pixel errors taken as uncorrelated)",
    },
    WEIGHT: {
        "long_name": "sum of weights (overlap area / cell area, or inputs for equal weighting)",
        "units": "1",
    },
    PIXEL_COUNT: {
        "long_name": "number of pixels overlapping the cell (-1: unknown)",
        "units": "1",
    },
    COUNT: {
        "long_name": "number of pixels with a candidate cell in the grid (-1: unknown)",
        "units": "1",
    },
}


#: Dimension coordinates of the schema (the other variables are data variables).
COORDINATES = ("time", "latitude", "longitude")
#: Dimensions of a gridded variable.
GRID_DIMS = ("time", "latitude", "longitude")


@dataclass(frozen=True)
class L3Variable:
    """One variable of an L3 file. ``data`` is an array of ``shape``, or for a gridded variable
    (:data:`GRID_DIMS`, ``shape`` (1, latitude, longitude)) a :data:`GridField`."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    data: GridField
    attrs: dict = field(default_factory=dict)

    @property
    def banded(self) -> bool:
        """True if ``data`` gives latitude bands (a gridded variable given as a function)."""
        return callable(self.data)

    def block(self, rows: slice, columns: slice = slice(None)) -> np.ndarray:
        """Rows ``rows`` and columns ``columns`` of a gridded variable, (latitude, longitude),
        in ``dtype``."""
        block = self.data(rows, columns) if self.banded else self.data[0, rows, columns]
        return np.asarray(block, self.dtype)

    def values(self) -> np.ndarray:
        """The whole array, shaped ``shape``."""
        if self.banded:
            return self.block(slice(None))[None]
        return np.asarray(self.data, self.dtype).reshape(self.shape)


def grid_variable(grid: GridSpec, name: str, data: GridField, attrs: dict,
                  dtype=np.float64) -> L3Variable:
    """A gridded (time=1, latitude, longitude) variable from a (latitude, longitude) field."""
    if not callable(data):
        data = np.asarray(data, dtype).reshape((1, *grid.shape))
    return L3Variable(name, GRID_DIMS, (1, *grid.shape), np.dtype(dtype), data, dict(attrs))


def l3_variables(
    grid: GridSpec,
    *,
    value: GridField,
    uncertainty: GridField,
    uncertainty_random: GridField,
    weight: GridField,
    pixel_count: GridField,
    count: int,
    time_start: np.datetime64 | None,
    time_stop: np.datetime64 | None,
) -> list[L3Variable]:
    """The schema's variables (coordinates first) from (latitude, longitude) fields."""
    lat_edges, lon_edges = grid.lat_edges, grid.lon_edges
    n_lat, n_lon = grid.shape
    nat = np.datetime64("NaT", "ns")
    start = np.array([nat if time_start is None else np.datetime64(time_start, "ns")])
    stop = np.array([nat if time_stop is None else np.datetime64(time_stop, "ns")])
    time_type = np.dtype("datetime64[ns]")
    return [
        L3Variable("time", ("time",), (1,), time_type, start,
                   {"standard_name": "time", "long_name": "start of the binned data"}),
        L3Variable("latitude", ("latitude",), (n_lat,), np.dtype(np.float64), grid.lat_centers, {
            "standard_name": "latitude", "long_name": "latitude of the cell centre",
            "units": "degrees_north", "bounds": "latitude_bounds",
        }),
        L3Variable("longitude", ("longitude",), (n_lon,), np.dtype(np.float64), grid.lon_centers, {
            "standard_name": "longitude", "long_name": "longitude of the cell centre",
            "units": "degrees_east", "bounds": "longitude_bounds",
        }),
        grid_variable(grid, VALUE, value, _VARIABLE_ATTRS[VALUE]),
        grid_variable(grid, UNCERTAINTY, uncertainty, _VARIABLE_ATTRS[UNCERTAINTY]),
        grid_variable(grid, UNCERTAINTY_RANDOM, uncertainty_random,
                      _VARIABLE_ATTRS[UNCERTAINTY_RANDOM]),
        grid_variable(grid, WEIGHT, weight, _VARIABLE_ATTRS[WEIGHT]),
        grid_variable(grid, PIXEL_COUNT, pixel_count, _VARIABLE_ATTRS[PIXEL_COUNT], np.int32),
        L3Variable(COUNT, ("time",), (1,), np.dtype(np.int32), np.array([count], np.int32),
                   dict(_VARIABLE_ATTRS[COUNT])),
        L3Variable("datetime_start", ("time",), (1,), time_type, start,
                   {"long_name": "start time of the binned data"}),
        L3Variable("datetime_stop", ("time",), (1,), time_type, stop,
                   {"long_name": "end time of the binned data"}),
        L3Variable("latitude_bounds", ("latitude", "independent"), (n_lat, 2),
                   np.dtype(np.float64), np.stack([lat_edges[:-1], lat_edges[1:]], 1),
                   {"units": "degrees_north"}),
        L3Variable("longitude_bounds", ("longitude", "independent"), (n_lon, 2),
                   np.dtype(np.float64), np.stack([lon_edges[:-1], lon_edges[1:]], 1),
                   {"units": "degrees_east"}),
    ]


def l3_attributes(grid: GridSpec, sources: list[str], weighting: str, history: str = "") -> dict:
    """The schema's global attributes."""
    return {
        "Conventions": "CF-1.8",
        "title": "Sentinel-5P tropospheric NO2, gridded (HARP bin_spatial semantics)",
        "harp_operation": grid.harp_operation(),
        "source_product": ", ".join(sources),
        "weighting": weighting,
        "history": history,
    }


def to_dataset(variables: list[L3Variable], attrs: dict) -> xr.Dataset:
    """An :class:`xarray.Dataset` of L3 variables (imports xarray)."""
    import xarray as xr

    def entry(var: L3Variable):
        return (var.dims, var.values(), var.attrs)

    ds = xr.Dataset(
        {var.name: entry(var) for var in variables if var.name not in COORDINATES},
        coords={var.name: entry(var) for var in variables if var.name in COORDINATES},
    )
    ds.attrs.update(attrs)
    return ds


def build_dataset(
    grid: GridSpec,
    *,
    sources: list[str],
    weighting: str,
    history: str = "",
    **fields,
) -> xr.Dataset:
    """The schema's Dataset from (latitude, longitude) arrays (a time axis of 1 is added);
    ``fields`` as the keyword arguments of :func:`l3_variables`."""
    return to_dataset(l3_variables(grid, **fields),
                      l3_attributes(grid, sources, weighting, history))
