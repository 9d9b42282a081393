"""Small L2 NO2 files written from scratch for reader and qa tests (the real group layout, only
the variables the pipeline reads)."""

from __future__ import annotations

import netCDF4
import numpy as np

NAME = "S5P_OFFL_L2__NO2____20200303T013547_20200303T031717_12367_01_010302_20200306T053815.nc"
FILL = np.float32(9.96921e36)


def write_minimal_l2(
    path,
    n_scan=6,
    n_pix=4,
    product="L2__NO2___",
    skip=(),
    lon0=10.0,
    lat0=45.0,
    column=None,
    bad_shape=None,
    orbit=12367,
    processor="1.3.2",
    qa=None,
):
    """A small file with the real group layout and just the variables the reader needs:
    ``n_scan`` x ``n_pix`` square pixels of 0.05 degrees from (``lat0``, ``lon0``), pixel
    (i, j) covering latitudes lat0 + 0.05 [i, i+1] and longitudes lon0 + 0.05 [j, j+1]; ``column``
    in mol m-2 (default 3e-5, NaN written as fill), precision 1e-5; ``qa`` the stored qa_value
    bytes (uint8 0-100, 255 = fill, scale_factor 0.01 as in real products; default 100)."""
    with netCDF4.Dataset(path, "w") as nc:
        nc.setncatts({"id": path.stem if hasattr(path, "stem") else "x", "orbit": np.int32(orbit),
                      "processor_version": processor,
                      "time_coverage_start": "2020-03-03T01:57:22Z",
                      "time_coverage_end": "2020-03-03T02:55:45Z"})
        granule = nc.createGroup("METADATA").createGroup("GRANULE_DESCRIPTION")
        granule.setncatts({"ProductShortName": product, "ProcessingMode": "Offline",
                           "ProcessorVersion": processor})
        prod = nc.createGroup("PRODUCT")
        for dim, size in (("time", 1), ("scanline", n_scan), ("ground_pixel", n_pix), ("corner", 4)):
            prod.createDimension(dim, size)
        prod.createDimension("other", n_scan + 1)
        t = prod.createVariable("time", "i4", ("time",))
        t.units = "seconds since 2010-01-01 00:00:00"
        t[:] = 320889600  # 2020-03-03 00:00:00
        dt = prod.createVariable("delta_time", "i4", ("time", "scanline"), fill_value=np.int32(-2147483647))
        dt.units = "milliseconds since 2020-03-03 00:00:00"
        dt[0, :] = 7042000 + 840 * np.arange(n_scan)
        i, j = np.meshgrid(np.arange(n_scan + 1), np.arange(n_pix + 1), indexing="ij")
        corner_lat = lat0 + 0.05 * i
        corner_lon = lon0 + 0.05 * j
        corner_lon = (corner_lon + 180) % 360 - 180

        def stack(grid):
            return np.stack([grid[:-1, :-1], grid[:-1, 1:], grid[1:, 1:], grid[1:, :-1]], -1)

        centre_lat = stack(corner_lat).mean(-1)
        centre_lon = lon0 + 0.05 * (j[:-1, :-1] + 0.5)
        centre_lon = (centre_lon + 180) % 360 - 180
        col = np.full((n_scan, n_pix), 3e-5, np.float32) if column is None else column
        pixel = ("time", "scanline", "ground_pixel")
        values = {
            "latitude": centre_lat, "longitude": centre_lon,
            "nitrogendioxide_tropospheric_column": col,
            "nitrogendioxide_tropospheric_column_precision": np.full((n_scan, n_pix), 1e-5),
        }
        for name, data in values.items():
            if name in skip:
                continue
            dims = ("time", "other", "ground_pixel") if name == bad_shape else pixel
            var = prod.createVariable(name, "f4", dims, fill_value=FILL)
            var[0, : data.shape[0]] = np.where(np.isfinite(data), data, FILL)
        if "qa_value" not in skip:
            qa_var = prod.createVariable("qa_value", "u1", pixel, fill_value=np.uint8(255))
            qa_var.scale_factor = np.float32(0.01)
            qa_var.add_offset = np.float32(0)
            qa_var.set_auto_maskandscale(False)
            qa_var[0] = np.full((n_scan, n_pix), 100, np.uint8) if qa is None else qa
        geo = prod.createGroup("SUPPORT_DATA").createGroup("GEOLOCATIONS")
        for name, grid in (("latitude_bounds", corner_lat), ("longitude_bounds", corner_lon)):
            if name in skip:
                continue
            var = geo.createVariable(name, "f4", pixel + ("corner",), fill_value=FILL)
            var[0] = stack(grid)
    return path
