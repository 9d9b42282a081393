"""Helpers for batch functions: gridded products with a CRS and provenance.

Units: S5P L2 columns are in mol m-2 (mol per square metre). Multiply by
:data:`MOLECULES_PER_CM2` = 6.02214e19 (Avogadro's number / 1e4 cm² per m²) for molecules cm-2,
the factor the L2 files themselves carry as
``multiplication_factor_to_convert_to_molecules_percm2``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr

from s5p_lockdown.gridding import write_netcdf
from s5p_lockdown.outputs import provenance, write_atomically

#: (molecules cm-2) per (mol m-2).
MOLECULES_PER_CM2 = 6.02214e19

CRS_VARIABLE = "crs"
WGS84_WKT = (
    'GEOGCRS["WGS 84",DATUM["World Geodetic System 1984",ELLIPSOID["WGS 84",6378137,'
    '298.257223563,LENGTHUNIT["metre",1]]],PRIMEM["Greenwich",0,ANGLEUNIT["degree",'
    '0.0174532925199433]],CS[ellipsoidal,2],AXIS["geodetic latitude (Lat)",north,ORDER[1],'
    'ANGLEUNIT["degree",0.0174532925199433]],AXIS["geodetic longitude (Lon)",east,ORDER[2],'
    'ANGLEUNIT["degree",0.0174532925199433]],ID["EPSG",4326]]'
)
"""OGC WKT2 of EPSG:4326 (lat/lon degrees on WGS 84)."""


def add_crs(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with a CF ``crs`` grid-mapping variable (EPSG:4326) referenced by every data
    variable on the latitude/longitude grid (``grid_mapping = "crs"``); GDAL and QGIS read it."""
    crs = xr.DataArray(
        np.int32(0),
        attrs={
            "grid_mapping_name": "latitude_longitude",
            "longitude_of_prime_meridian": 0.0,
            "semi_major_axis": 6378137.0,
            "inverse_flattening": 298.257223563,
            "crs_wkt": WGS84_WKT,
            "spatial_ref": WGS84_WKT,
            "epsg_code": "EPSG:4326",
        },
    )
    out = ds.assign({CRS_VARIABLE: crs})
    for name, var in out.data_vars.items():
        if {"latitude", "longitude"} <= set(var.dims):
            out[name].attrs["grid_mapping"] = CRS_VARIABLE
    return out


def write_grid(
    ds: xr.Dataset,
    output_path: str | Path,
    *,
    config: dict | None = None,
    inputs: Iterable[str | Path] = (),
) -> Path:
    """Write a gridded Dataset (dims ``latitude``/``longitude`` in degrees) as compressed
    netCDF-4 with the EPSG:4326 CRS and provenance attributes (software version, creation
    time, input names and digest, ``config`` as JSON), atomically."""
    ds = add_crs(ds)
    ds.attrs.update(provenance(config, [str(p) for p in inputs]))
    return write_atomically(output_path, lambda tmp: write_netcdf(ds, tmp))
