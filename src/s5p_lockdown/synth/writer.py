"""Write a synthetic orbit in the exact structure of a real S5P L2 NO2 file.

The file gets the real groups (``PRODUCT``, ``PRODUCT/SUPPORT_DATA/{GEOLOCATIONS,
DETAILED_RESULTS,INPUT_DATA}``, ``METADATA/...``), dimension names, dtypes, units, fill values,
the ``time``/``delta_time`` encoding and every variable HARP's S5P NO2 ingestion reads. The
``METADATA`` groups and global attributes are copied from a real product (the shipped template,
see ``resources/PROVENANCE.md``) with the orbit, times, processor version and file id replaced,
so synthetic files carry the real metadata layout. Data variables are compressed with deflate
(level 3, shuffle) in scanline chunks, like real products.

Creating the ~50 variables and copying the ~6,000-object ``METADATA`` tree costs far more than
the data of a small orbit, so the structure is built once per swath shape and process (a
*skeleton* file: the complete file of the first orbit of that shape); each orbit copies the
skeleton and overwrites every value and orbit-specific attribute in place, the templated
``METADATA`` attributes re-derived from the template. The result does not depend on which orbit
built the skeleton (``tests/test_synth.py`` checks it).

Files are written to a temporary name in the target folder and renamed into place, so a reader
never sees a half-written orbit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import netCDF4
import numpy as np

from s5p_lockdown.filenames import NO2_PRODUCT, ProductName
from s5p_lockdown.resources import resource_path
from s5p_lockdown.synth.orbit import ALONG_TRACK_CHANGE, SwathGeometry

FILL_FLOAT = np.float32(9.96921e36)
FILL_INT32 = np.int32(-2147483647)
FILL_UBYTE = np.uint8(255)
FILL_UINT32 = np.uint32(4294967295)
TIME_EPOCH = datetime(2010, 1, 1)
N_LAYERS = 34
CHUNK_SCANLINES = 256
MOLECULES_PER_CM2 = 6.02214e19

TEMPLATE_ID = "S5P_OFFL_L2__NO2____20200303T013547_20200303T031717_12367_01_010302_20200306T053815"
TEMPLATE_START = "2020-03-03T01:57:22"
TEMPLATE_END = "2020-03-03T02:55:45"
TEMPLATE_CREATED = "2020-03-06T05:38:34"
PROCESSING_MODE = {"NRTI": "Near-realtime", "OFFL": "Offline", "RPRO": "Reprocessing",
                   "PAL_": "Products Algorithm Laboratory"}


@dataclass(frozen=True)
class OrbitFields:
    """Per-pixel values (scanline, ground_pixel) of one synthetic orbit.

    ``column``/``precision`` in mol m-2 (NaN = fill), ``qa`` 0-1, ``cloud_fraction`` 0-1,
    ``eastward_wind``/``northward_wind`` m s-1, ``surface_pressure`` Pa, ``snow_ice`` 0-255 flag,
    ``stratospheric_column`` mol m-2.
    """

    column: np.ndarray
    precision: np.ndarray
    qa: np.ndarray
    cloud_fraction: np.ndarray
    eastward_wind: np.ndarray
    northward_wind: np.ndarray
    surface_pressure: np.ndarray
    snow_ice: np.ndarray
    stratospheric_column: np.ndarray


def product_name(
    geometry: SwathGeometry,
    orbit: int,
    stream: str = "RPRO",
    processor_version: str = "2.4.0",
    collection: int = 3,
) -> ProductName:
    """File name of a synthetic orbit: sensing start/end from its first/last scanline, and a
    production time four days after the sensing day."""
    start = geometry.times[0].astype("datetime64[s]").astype(datetime)
    end = geometry.times[-1].astype("datetime64[s]").astype(datetime)
    production = datetime.combine(start.date() + timedelta(days=4), datetime.min.time()).replace(
        hour=5, minute=38, second=34
    )
    return ProductName(stream, NO2_PRODUCT, start, end, orbit, collection, processor_version,
                       production)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S")


def _replace_strings(value, replacements: list[tuple[str, str]]):
    if isinstance(value, str):
        for old, new in replacements:
            value = value.replace(old, new)
    return value


def _copy_group(src: netCDF4.Group, dst: netCDF4.Group, replacements) -> None:
    """Copy attributes, dimensions, variables and sub-groups recursively, with string
    replacements in attribute values."""
    for name in src.ncattrs():
        dst.setncattr(name, _replace_strings(src.getncattr(name), replacements))
    for name, dim in src.dimensions.items():
        dst.createDimension(name, None if dim.isunlimited() else len(dim))
    for name, var in src.variables.items():
        fill = var.__dict__.get("_FillValue")
        out = dst.createVariable(name, var.datatype, var.dimensions, fill_value=fill)
        for attr in var.ncattrs():
            if attr != "_FillValue":
                out.setncattr(attr, _replace_strings(var.getncattr(attr), replacements))
        out[...] = var[...]
    for name, group in src.groups.items():
        _copy_group(group, dst.createGroup(name), replacements)


@lru_cache(maxsize=1)
def _templated_attributes() -> tuple[tuple[str, str | None, str], ...]:
    """(group path, variable or None, attribute) of every ``METADATA`` attribute whose value
    contains a template string that :func:`_write` replaces (looked up once per process)."""
    found = []
    olds = (TEMPLATE_ID, TEMPLATE_START, TEMPLATE_END, TEMPLATE_CREATED, "2020-03-03T00:00:00",
            "7x3.5km", "OFFL-processing")

    def visit(group, path):
        for owner, var in [(group, None)] + [(v, n) for n, v in group.variables.items()]:
            for attr in owner.ncattrs():
                value = owner.getncattr(attr)
                if isinstance(value, str) and any(old in value for old in olds):
                    found.append((path, var, attr))
        for name, child in group.groups.items():
            visit(child, f"{path}/{name}")

    with netCDF4.Dataset(resource_path("l2_no2_metadata_template.nc")) as template:
        visit(template.groups["METADATA"], "/METADATA")
    return tuple(found)


def _replace_metadata(nc: netCDF4.Dataset, template: netCDF4.Dataset, replacements) -> None:
    """Set the templated ``METADATA`` attributes of ``nc`` (copied unreplaced from ``template``)
    to their values for this orbit."""
    for path, var, attr in _templated_attributes():
        src, dst = template[path], nc[path]
        if var is not None:
            src, dst = src.variables[var], dst.variables[var]
        dst.setncattr(attr, _replace_strings(src.getncattr(attr), replacements))


def _group(parent, name: str):
    """The sub-group ``name`` of ``parent``, created if missing."""
    return parent.groups[name] if name in parent.groups else parent.createGroup(name)


def _variable(group, name, dtype, dims, values, fill, **attrs):
    """Create (or, in a skeleton copy, reuse) a compressed variable, scanline-chunked when it
    has a scanline dimension, and write its attributes and values."""
    if name in group.variables:
        var = group.variables[name]
    else:
        chunks = None
        if "scanline" in dims:
            chunks = tuple(
                1 if d == "time" else min(CHUNK_SCANLINES, size) if d == "scanline" else size
                for d, size in zip(dims, _dim_sizes(group, dims))
            )
        var = group.createVariable(
            name, dtype, dims, fill_value=fill, zlib=True, complevel=3, shuffle=True,
            chunksizes=chunks,
        )
    for key, value in attrs.items():
        var.setncattr(key, value)
    var.set_auto_maskandscale(False)  # values arrive packed, with fill values in place
    if values is not None:
        var[...] = values
    return var


def _dim_sizes(group, dims):
    sizes = []
    for d in dims:
        node = group
        while d not in node.dimensions:
            node = node.parent
        sizes.append(node.dimensions[d].size)
    return sizes


def _float(values: np.ndarray) -> np.ndarray:
    out = np.asarray(values, dtype=np.float32)
    return np.where(np.isfinite(out), out, FILL_FLOAT)[None]


def _solar_angles(geometry: SwathGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Solar zenith and azimuth angles (degrees) at the pixel centres (standard formulas)."""
    times = geometry.times[:, None]
    day_of_year = (times.astype("datetime64[D]") - times.astype("datetime64[Y]")).astype(float)
    utc_hours = (times - times.astype("datetime64[D]")) / np.timedelta64(1, "h")
    decl = np.radians(-23.44) * np.cos(2 * np.pi * (day_of_year + 10) / 365.25)
    hour_angle = np.radians((utc_hours + geometry.longitude / 15.0 - 12.0) * 15.0)
    lat = np.radians(geometry.latitude)
    cos_sza = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    sza = np.degrees(np.arccos(np.clip(cos_sza, -1, 1)))
    azimuth = np.degrees(
        np.arctan2(-np.sin(hour_angle), np.tan(decl) * np.cos(lat) - np.sin(lat) * np.cos(hour_angle))
    )
    return sza, np.mod(azimuth + 180.0, 360.0) - 180.0


def write_orbit(
    path: str | Path,
    geometry: SwathGeometry,
    fields: OrbitFields,
    name: ProductName,
) -> Path:
    """Write one orbit file atomically at ``path`` (a folder: the product's file name is used,
    or a full ``.nc`` path). Returns the final path."""
    path = Path(path)
    if path.suffix != ".nc":
        path = path / name.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(_skeleton(geometry, fields, name), tmp)
        with netCDF4.Dataset(tmp, "r+") as nc:
            _write(nc, geometry, fields, name)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


_SKELETONS: dict[tuple[int, int], Path] = {}


def _skeleton(geometry: SwathGeometry, fields: OrbitFields, name: ProductName) -> Path:
    """A complete file of this swath shape, written for this orbit the first time the shape
    is seen, in a per-process temporary folder."""
    shape = geometry.latitude.shape
    if shape not in _SKELETONS:
        folder = Path(_skeleton_folder().name)
        path = folder / f"skeleton_{shape[0]}x{shape[1]}.nc"
        with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
            with netCDF4.Dataset(resource_path("l2_no2_metadata_template.nc")) as template:
                _copy_group(template.groups["METADATA"], nc.createGroup("METADATA"), [])
            _write(nc, geometry, fields, name)
        _SKELETONS[shape] = path
    return _SKELETONS[shape]


@lru_cache(maxsize=1)
def _skeleton_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="s5p-lockdown-skeletons-")


def _write(nc: netCDF4.Dataset, g: SwathGeometry, f: OrbitFields, name: ProductName) -> None:
    """Write the orbit's values and attributes into ``nc``: a new file holding a copy of the
    template's ``METADATA`` (a skeleton), or a copy of a skeleton of the same shape."""
    n_scan, n_pix = g.latitude.shape
    day = g.times[0].astype("datetime64[D]").astype(date)
    reference = datetime.combine(day, datetime.min.time())
    first = g.times[0].astype("datetime64[s]").astype(datetime)
    last = g.times[-1].astype("datetime64[s]").astype(datetime)
    resolution = "5.5x3.5km2" if day >= ALONG_TRACK_CHANGE else "7x3.5km2"
    replacements = [
        (TEMPLATE_ID, name.stem),
        (TEMPLATE_START, _iso(first)),
        (TEMPLATE_END, _iso(last)),
        (TEMPLATE_CREATED, _iso(name.production)),
        ("2020-03-03T00:00:00", _iso(reference)),
        ("7x3.5km", resolution[:-1]),
        ("OFFL-processing", f"{name.stream}-processing"),
    ]
    with netCDF4.Dataset(resource_path("l2_no2_metadata_template.nc")) as template:
        for attr in template.ncattrs():
            value = _replace_strings(template.getncattr(attr), replacements)
            if attr == "creator_name":  # a variable-length string in real files
                nc.setncattr_string(attr, value)
            else:
                nc.setncattr(attr, value)
        _replace_metadata(nc, template, replacements)

    valid = np.isfinite(f.column)
    lat_ok = np.isfinite(g.latitude)
    nc.setncatts(
        {
            "id": name.stem,
            "orbit": np.int32(name.orbit),
            "processor_version": name.processor_version,
            "algorithm_version": name.processor_version,
            "product_version": name.processor_version if not name.processor_version.startswith("1.")
            else "1.1.0",
            "time_reference": _iso(reference) + "Z",
            "time_reference_days_since_1950": np.int32((day - date(1950, 1, 1)).days),
            "time_reference_julian_day": np.float64(2433282.5 + (day - date(1950, 1, 1)).days),
            "time_reference_seconds_since_1970": np.int64(
                (reference - datetime(1970, 1, 1)).total_seconds()
            ),
            "time_coverage_start": _iso(first) + "Z",
            "time_coverage_end": _iso(last) + "Z",
            "time_coverage_duration": f"PT{(last - first).total_seconds():.3f}S",
            "time_coverage_resolution": f"PT{(g.times[1] - g.times[0]) / np.timedelta64(1, 's') if n_scan > 1 else 0.84:.3f}S",
            "geospatial_lat_min": np.float32(np.nanmin(g.latitude[lat_ok])),
            "geospatial_lat_max": np.float32(np.nanmax(g.latitude[lat_ok])),
            "geospatial_lon_min": np.float32(np.nanmin(g.longitude[lat_ok])),
            "geospatial_lon_max": np.float32(np.nanmax(g.longitude[lat_ok])),
            "spatial_resolution": resolution,
            "processing_status": f"{name.stream}-processing nominal product (synthetic, s5p-lockdown)",
        }
    )
    meta = nc.groups["METADATA"]
    granule = meta.groups["GRANULE_DESCRIPTION"]
    granule.setncatts(
        {
            "ProcessorVersion": name.processor_version,
            "ProcessingMode": PROCESSING_MODE[name.stream],
            "LongitudeOfDaysideNadirEquatorCrossing": np.float32(
                g.satellite_longitude[np.argmin(np.abs(g.satellite_latitude))]
            ),
        }
    )
    qa_stats = meta.groups["QA_STATISTICS"]
    qa_stats.setncatts(
        {
            "number_of_groundpixels": np.int32(n_scan * n_pix),
            "number_of_processed_pixels": np.int32(n_scan * n_pix),
            "number_of_successfully_processed_pixels": np.int32(valid.sum()),
            "number_of_rejected_pixels_not_enough_spectrum": np.int32(0),
            "number_of_failed_retrievals": np.int32((~valid).sum()),
        }
    )
    _update_histogram(qa_stats, f.column)

    product = _group(nc, "PRODUCT")
    _write_product(product, g, f, reference, n_scan, n_pix)
    support = _group(product, "SUPPORT_DATA")
    _write_geolocations(_group(support, "GEOLOCATIONS"), g)
    _write_detailed(_group(support, "DETAILED_RESULTS"), g, f)
    _write_input(_group(support, "INPUT_DATA"), g, f)


def _update_histogram(qa_stats: netCDF4.Group, column: np.ndarray) -> None:
    """Recompute the tropospheric column histogram on the template's bins."""
    names = ("nitrogendioxide_tropospheric_column_histogram",
             "nitrogendioxide_tropospheric_column_histogram_bounds")
    if not all(n in qa_stats.variables for n in names):
        return
    bounds = qa_stats.variables[names[1]][:]
    edges = np.append(bounds[:, 0], bounds[-1, 1]).astype(float)
    values = column[np.isfinite(column)]
    counts, _ = np.histogram(values, bins=edges)
    hist = qa_stats.variables[names[0]]
    hist[:] = counts.astype(np.int32)
    hist.number_of_overflow_values = np.int32((values > edges[-1]).sum())
    hist.number_of_underflow_values = np.int32((values < edges[0]).sum())


def _coordinates(product, n_scan, n_pix):
    """Dimensions and index coordinate variables (the same for every orbit of a shape: kept
    as they are in a skeleton copy)."""
    if "scanline" in product.dimensions:
        return
    for dim, size in (("scanline", n_scan), ("ground_pixel", n_pix), ("corner", 4), ("time", 1),
                      ("polynomial_exponents", 6), ("intensity_offset_polynomial_exponents", 1),
                      ("layer", N_LAYERS), ("vertices", 2)):
        product.createDimension(dim, size)
    for dim, long_name, axis in (
        ("scanline", "along-track dimension index", "Y"),
        ("ground_pixel", "across-track dimension index", "X"),
        ("corner", "pixel corner index", None),
        ("polynomial_exponents", "polynomial exponents", None),
        ("intensity_offset_polynomial_exponents", "polynomial exponents", None),
        ("layer", "layer index", None),
        ("vertices", "vertices index", None),
    ):
        var = product.createVariable(dim, "i4", (dim,))
        var.setncatts({"units": "1", "long_name": long_name, "comment": f"This coordinate variable defines the indices for the {long_name}"})
        if axis:
            var.axis = axis
        var[:] = np.arange(len(product.dimensions[dim]), dtype=np.int32)


def _write_product(product, g, f, reference, n_scan, n_pix):
    _coordinates(product, n_scan, n_pix)
    time = product.variables.get("time") or product.createVariable(
        "time", "i4", ("time",), fill_value=FILL_INT32)
    time.setncatts({"units": "seconds since 2010-01-01 00:00:00", "standard_name": "time",
                    "axis": "T", "long_name": "reference time for the measurements",
                    "comment": "The time in this variable corresponds to the time in the time_reference global attribute"})
    time[:] = np.int32((reference - TIME_EPOCH).total_seconds())
    ref64 = np.datetime64(reference, "ms")
    delta = ((g.times - ref64) / np.timedelta64(1, "ms")).astype(np.int32)
    _variable(product, "delta_time", "i4", ("time", "scanline"), delta[None], FILL_INT32,
              long_name="offset from reference start time of measurement",
              units=f"milliseconds since {reference:%Y-%m-%d %H:%M:%S}")
    utc = product.variables.get("time_utc") or product.createVariable(
        "time_utc", str, ("time", "scanline"))
    utc.long_name = "Time of observation as ISO 8601 date-time string"
    utc[0, :] = np.array([np.datetime_as_string(t, unit="ms") + "Z" for t in g.times], dtype=object)
    coords = "longitude latitude"
    qa = np.where(np.isfinite(f.qa), np.round(f.qa * 100), FILL_UBYTE).astype(np.uint8)
    _variable(product, "qa_value", "u1", ("time", "scanline", "ground_pixel"), qa[None], FILL_UBYTE,
              units="1", scale_factor=np.float32(0.01), add_offset=np.float32(0.0),
              valid_min=np.uint8(0), valid_max=np.uint8(100), long_name="data quality value",
              comment="A continuous quality descriptor, varying between 0 (no data) and 1 (full quality data). Recommend to ignore data with qa_value < 0.5",
              coordinates=coords)
    _variable(product, "latitude", "f4", ("time", "scanline", "ground_pixel"), _float(g.latitude),
              FILL_FLOAT, long_name="pixel center latitude", units="degrees_north",
              standard_name="latitude", valid_min=np.float32(-90), valid_max=np.float32(90),
              bounds="/PRODUCT/SUPPORT_DATA/GEOLOCATIONS/latitude_bounds")
    _variable(product, "longitude", "f4", ("time", "scanline", "ground_pixel"), _float(g.longitude),
              FILL_FLOAT, long_name="pixel center longitude", units="degrees_east",
              standard_name="longitude", valid_min=np.float32(-180), valid_max=np.float32(180),
              bounds="/PRODUCT/SUPPORT_DATA/GEOLOCATIONS/longitude_bounds")
    pixel = ("time", "scanline", "ground_pixel")
    _variable(product, "nitrogendioxide_tropospheric_column", "f4", pixel, _float(f.column),
              FILL_FLOAT, units="mol m-2", standard_name="troposphere_mole_content_of_nitrogen_dioxide",
              long_name="Tropospheric vertical column of nitrogen dioxide", coordinates=coords,
              multiplication_factor_to_convert_to_molecules_percm2=np.float32(MOLECULES_PER_CM2),
              ancillary_variables="nitrogendioxide_tropospheric_column_precision air_mass_factor_troposphere air_mass_factor_total averaging_kernel")
    _variable(product, "nitrogendioxide_tropospheric_column_precision", "f4", pixel,
              _float(f.precision), FILL_FLOAT, units="mol m-2",
              standard_name="troposphere_mole_content_of_nitrogen_dioxide standard_error",
              long_name="Precision of the tropospheric vertical column of nitrogen dioxide",
              coordinates=coords,
              multiplication_factor_to_convert_to_molecules_percm2=np.float32(MOLECULES_PER_CM2))
    _variable(product, "nitrogendioxide_tropospheric_column_precision_kernel", "f4", pixel,
              _float(f.precision * 0.9), FILL_FLOAT, units="mol m-2",
              long_name="Precision of the tropospheric vertical column of nitrogen dioxide when applying the averaging kernel",
              coordinates=coords,
              multiplication_factor_to_convert_to_molecules_percm2=np.float32(MOLECULES_PER_CM2))
    amf_trop = 1.6 - 0.6 * np.nan_to_num(f.cloud_fraction)
    _variable(product, "air_mass_factor_troposphere", "f4", pixel, _float(amf_trop), FILL_FLOAT,
              units="1", long_name="Tropospheric air mass factor", coordinates=coords)
    _variable(product, "air_mass_factor_total", "f4", pixel, _float(amf_trop + 0.9), FILL_FLOAT,
              units="1", long_name="Total air mass factor", coordinates=coords)
    profile = np.linspace(0.3, 1.6, N_LAYERS, dtype=np.float32)
    kernel = np.broadcast_to(profile, g.latitude.shape + (N_LAYERS,))
    _variable(product, "averaging_kernel", "f4", pixel + ("layer",), kernel[None], FILL_FLOAT,
              units="1", long_name="Averaging kernel", coordinates=coords)
    _variable(product, "tm5_tropopause_layer_index", "i4", pixel,
              np.full((1,) + g.latitude.shape, 20, np.int32), FILL_INT32, units="1",
              long_name="TM5 layer index of the highest layer in the tropopause", coordinates=coords)
    sigma = np.linspace(1.0, 0.0, N_LAYERS + 1)
    a = (1 - sigma) * sigma * 20000.0
    b = sigma ** 2
    for name, coef, units in (("tm5_constant_a", a, "Pa"), ("tm5_constant_b", b, "1")):
        _variable(product, name, "f4", ("layer", "vertices"),
                  np.stack([coef[:-1], coef[1:]], axis=1).astype(np.float32), FILL_FLOAT,
                  units=units, long_name=f"TM5 hybrid {'A' if name.endswith('a') else 'B'} coefficient at upper and lower interface levels")


def _write_geolocations(geo, g: SwathGeometry):
    pixel = ("time", "scanline", "ground_pixel")
    lat_b, lon_b = g.bounds()
    _variable(geo, "latitude_bounds", "f4", pixel + ("corner",), _float(lat_b), FILL_FLOAT,
              units="degrees_north", long_name="pixel corner latitudes")
    _variable(geo, "longitude_bounds", "f4", pixel + ("corner",), _float(lon_b), FILL_FLOAT,
              units="degrees_east", long_name="pixel corner longitudes")
    sza, saa = _solar_angles(g)
    vza = np.broadcast_to(np.abs(g.viewing_zenith_angle), g.latitude.shape)
    vaa = np.broadcast_to(np.where(g.viewing_zenith_angle > 0, -80.0, 100.0), g.latitude.shape)
    for name, values, long_name in (
        ("solar_zenith_angle", sza, "solar zenith angle"),
        ("solar_azimuth_angle", saa, "solar azimuth angle"),
        ("viewing_zenith_angle", vza, "viewing zenith angle"),
        ("viewing_azimuth_angle", vaa, "viewing azimuth angle"),
    ):
        _variable(geo, name, "f4", pixel, _float(values), FILL_FLOAT, units="degree",
                  long_name=long_name, valid_min=np.float32(-180), valid_max=np.float32(180))
    scan = ("time", "scanline")
    for name, values, units, long_name in (
        ("satellite_latitude", g.satellite_latitude, "degrees_north", "sub satellite latitude"),
        ("satellite_longitude", g.satellite_longitude, "degrees_east", "satellite_longitude"),
        ("satellite_altitude", np.full(g.satellite_latitude.shape, 824_000.0), "m",
         "The altitude of the satellite with respect to the geodetic subsatellite point"),
        ("satellite_orbit_phase", (np.arcsin(np.clip(g.satellite_latitude / 81.3, -1, 1)) / (2 * np.pi)),
         "1", "Relative offset [0.0, ..., 1.0] of the measurement in the orbit"),
    ):
        _variable(geo, name, "f4", scan, _float(values), FILL_FLOAT, units=units, long_name=long_name)
    _variable(geo, "geolocation_flags", "u1", pixel, np.zeros((1,) + g.latitude.shape, np.uint8),
              FILL_UBYTE, long_name="ground pixel quality flag", units="1")


def _write_detailed(det, g: SwathGeometry, f: OrbitFields):
    pixel = ("time", "scanline", "ground_pixel")
    failed = ~np.isfinite(f.column)
    flags = np.where(failed, np.uint32(8), np.uint32(0))
    _variable(det, "processing_quality_flags", "u4", pixel, flags[None], FILL_UINT32,
              long_name="Processing quality flags", units="1")
    strat = f.stratospheric_column
    total = strat + f.column
    amf_total = 2.5 - 0.6 * np.nan_to_num(f.cloud_fraction)
    for name, values, long_name in (
        ("nitrogendioxide_stratospheric_column", strat, "Stratospheric vertical column of nitrogen dioxide, derived from the TM5-MP vertical profiles"),
        ("nitrogendioxide_stratospheric_column_precision", np.full_like(strat, 2.5e-6), "Precision of the stratospheric vertical column of nitrogen dioxide"),
        ("nitrogendioxide_total_column", total, "Total vertical column of nitrogen dioxide derived from the total slant column and TM5 profile in stratosphere and troposphere"),
        ("nitrogendioxide_total_column_precision", f.precision * 0.5, "Precision of the total vertical column of nitrogen dioxide"),
        ("nitrogendioxide_summed_total_column", total, "Sum of tropospheric and stratospheric vertical column of nitrogen dioxide"),
        ("nitrogendioxide_summed_total_column_precision", f.precision, "Precision of the sum of tropospheric and stratospheric vertical column of nitrogen dioxide"),
        ("nitrogendioxide_slant_column_density", total * amf_total, "Total slant column of nitrogen dioxide"),
        ("nitrogendioxide_slant_column_density_precision", np.full_like(strat, 1.2e-5), "Precision of the total slant column of nitrogen dioxide"),
    ):
        _variable(det, name, "f4", pixel, _float(np.where(failed, np.nan, values)), FILL_FLOAT,
                  units="mol m-2", long_name=long_name,
                  multiplication_factor_to_convert_to_molecules_percm2=np.float32(MOLECULES_PER_CM2))
    for name, values, long_name in (
        ("air_mass_factor_stratosphere", np.full_like(strat, 2.4), "Stratospheric air mass factor"),
        ("cloud_fraction_crb_nitrogendioxide_window", f.cloud_fraction, "Cloud fraction at 440 nm for NO2 retrieval"),
        ("cloud_radiance_fraction_nitrogendioxide_window", np.clip(f.cloud_fraction * 1.4, 0, 1), "Cloud radiance fraction at 440 nm for NO2 retrieval"),
    ):
        _variable(det, name, "f4", pixel, _float(values), FILL_FLOAT, units="1", long_name=long_name)


def _write_input(inp, g: SwathGeometry, f: OrbitFields):
    pixel = ("time", "scanline", "ground_pixel")
    shape = g.latitude.shape
    cf = np.nan_to_num(f.cloud_fraction)
    altitude = np.clip(1500.0 * np.exp(-((g.latitude - 46.5) ** 2 / 2 + (g.longitude - 10.0) ** 2 / 18)), 0, None)
    for name, values, units, long_name in (
        ("surface_pressure", f.surface_pressure, "Pa", "Surface pressure"),
        ("surface_altitude", altitude, "m", "Surface altitude"),
        ("surface_altitude_precision", np.full(shape, 15.0), "m", "Surface altitude precision"),
        ("surface_albedo_nitrogendioxide_window", np.where(f.snow_ice > 0, 0.6, 0.05), "1", "Surface albedo in the NO2 fit window"),
        ("surface_albedo", np.where(f.snow_ice > 0, 0.6, 0.05), "1", "Surface albedo"),
        ("cloud_pressure_crb", 60000.0 + 20000.0 * (1 - cf), "Pa", "Cloud optical centroid pressure"),
        ("cloud_albedo_crb", np.full(shape, 0.8), "1", "Cloud albedo"),
        ("cloud_fraction_crb", cf, "1", "Cloud fraction at 758 nm (FRESCO)"),
        ("scene_albedo", 0.05 + 0.75 * cf, "1", "Scene albedo"),
        ("apparent_scene_pressure", f.surface_pressure - 40000.0 * cf, "Pa", "Apparent scene pressure"),
        ("aerosol_index_354_388", np.full(shape, -1.0), "1", "Aerosol index from 388 and 354 nm"),
        ("eastward_wind", f.eastward_wind, "m s-1", "Eastward wind from ECMWF at 10 meter height level"),
        ("northward_wind", f.northward_wind, "m s-1", "Northward wind from ECMWF at 10 meter height level"),
    ):
        _variable(inp, name, "f4", pixel, _float(values), FILL_FLOAT, units=units, long_name=long_name)
    _variable(inp, "snow_ice_flag", "u1", pixel, f.snow_ice.astype(np.uint8)[None], FILL_UBYTE,
              long_name="Snow-ice mask", units="1",
              comment="0: snow-free land; 1-100: sea-ice concentration percent; 101: permanent ice; 103: snow")
