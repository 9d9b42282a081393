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

import numpy as np
import xarray as xr

from s5p_lockdown.gridding.grid import GridSpec

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


def build_dataset(
    grid: GridSpec,
    *,
    value: np.ndarray,
    uncertainty: np.ndarray,
    uncertainty_random: np.ndarray,
    weight: np.ndarray,
    pixel_count: np.ndarray,
    count: int,
    time_start: np.datetime64 | None,
    time_stop: np.datetime64 | None,
    sources: list[str],
    weighting: str,
    history: str = "",
) -> xr.Dataset:
    """The schema's Dataset from (latitude, longitude) arrays (a time axis of 1 is added)."""
    lat_edges, lon_edges = grid.lat_edges, grid.lon_edges
    dims = ("time", "latitude", "longitude")
    nat = np.datetime64("NaT", "ns")
    start = nat if time_start is None else np.datetime64(time_start, "ns")
    stop = nat if time_stop is None else np.datetime64(time_stop, "ns")
    data = {
        VALUE: (dims, np.asarray(value, np.float64)[None]),
        UNCERTAINTY: (dims, np.asarray(uncertainty, np.float64)[None]),
        UNCERTAINTY_RANDOM: (dims, np.asarray(uncertainty_random, np.float64)[None]),
        WEIGHT: (dims, np.asarray(weight, np.float64)[None]),
        PIXEL_COUNT: (dims, np.asarray(pixel_count, np.int32)[None]),
        COUNT: (("time",), np.array([count], np.int32)),
        "datetime_start": (("time",), np.array([start])),
        "datetime_stop": (("time",), np.array([stop])),
        "latitude_bounds": (
            ("latitude", "independent"),
            np.stack([lat_edges[:-1], lat_edges[1:]], 1),
        ),
        "longitude_bounds": (
            ("longitude", "independent"),
            np.stack([lon_edges[:-1], lon_edges[1:]], 1),
        ),
    }
    coords = {
        "time": ("time", np.array([start])),
        "latitude": ("latitude", grid.lat_centers),
        "longitude": ("longitude", grid.lon_centers),
    }
    ds = xr.Dataset(data, coords=coords)
    for name, attrs in _VARIABLE_ATTRS.items():
        ds[name].attrs.update(attrs)
    ds["latitude"].attrs.update(
        standard_name="latitude", long_name="latitude of the cell centre",
        units="degrees_north", bounds="latitude_bounds",
    )
    ds["longitude"].attrs.update(
        standard_name="longitude", long_name="longitude of the cell centre",
        units="degrees_east", bounds="longitude_bounds",
    )
    ds["latitude_bounds"].attrs.update(units="degrees_north")
    ds["longitude_bounds"].attrs.update(units="degrees_east")
    ds["time"].attrs.update(standard_name="time", long_name="start of the binned data")
    ds["datetime_start"].attrs.update(long_name="start time of the binned data")
    ds["datetime_stop"].attrs.update(long_name="end time of the binned data")
    ds.attrs.update(
        Conventions="CF-1.8",
        title="Sentinel-5P tropospheric NO2, gridded (HARP bin_spatial semantics)",
        harp_operation=grid.harp_operation(),
        source_product=", ".join(sources),
        weighting=weighting,
        history=history,
    )
    return ds
