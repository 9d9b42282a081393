"""Read Sentinel-5P L2 NO2 orbit files into an :class:`xarray.Dataset` (:func:`read_l2`) or into
plain numpy arrays (:func:`read_l2_arrays`, the same variables without importing xarray: what
``s5p-lockdown grid`` and the gridding jobs use, as importing xarray and pandas costs ~0.5 s of
CPU per process).

The reader opens the file with h5py (a netCDF-4 file is an HDF5 file), checks that it is an L2
NO2 product (file name and metadata, cross-checked), reads only the variables the pipeline
needs and, when a latitude / longitude box is given, only the scanlines that can overlap it. A
full orbit is ~450 MB but Europe is ~15-20 % of it, so a box read touches a fraction of the
compressed chunks. Why h5py rather than netCDF4: the netCDF library reads the whole metadata
tree on open (the ``METADATA`` group of a real product holds ~6,000 objects: ~30 ms, a third of
reading a Europe segment), h5py opens lazily and reads only what is asked.

Returned Dataset (dims ``scanline``, ``ground_pixel``, ``corner`` = 4; the file's leading
``time`` dimension of length 1 is dropped):

========================================================  =====================================
``latitude``, ``longitude`` (scanline, ground_pixel)       pixel centre, degrees north / east
``latitude_bounds``, ``longitude_bounds`` (…, corner)      corners, degrees; corner order goes
                                                           round the pixel (0: i,j; 1: i,j+1;
                                                           2: i+1,j+1; 3: i+1,j). Longitudes are
                                                           as stored, in [-180, 180]: a pixel on
                                                           the antimeridian has corners near
                                                           both +180 and -180 (see
                                                           :func:`unwrap_longitude_bounds`).
``nitrogendioxide_tropospheric_column``                    mol m-2, float32, NaN where filled
``nitrogendioxide_tropospheric_column_precision``          mol m-2 (1 sigma)
``qa_value``                                               0-1, float64: the stored byte / 100,
                                                           exactly the double of that decimal,
                                                           so ``qa_value > 0.75`` is HARP's
                                                           ``validity>75``; NaN fill
``time`` (scanline)                                        datetime64[ns], UTC
``eastward_wind``, ``northward_wind`` (optional)           m s-1, near surface (processor>=1.3)
``cloud_fraction`` (optional)                              cloud_fraction_crb_nitrogendioxide_window
``surface_pressure`` (optional)                            Pa
========================================================  =====================================

Attributes: ``source_file``, ``product_id``, ``stream``, ``processing_mode``, ``orbit``,
``collection``, ``processor_version``, ``product_version``, ``time_coverage_start``,
``time_coverage_end`` (ISO 8601 UTC strings), and ``scanline_offset`` (index of the first
returned scanline in the file).

Every problem with the file raises :class:`~s5p_lockdown.errors.InvalidProductError` naming the
file and the problem; no netCDF4/HDF5 exception escapes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from s5p_lockdown.errors import InvalidProductError
from s5p_lockdown.filenames import NO2_PRODUCT, FileNameError, ProductName

if TYPE_CHECKING:  # annotations only: read_l2 imports xarray when called
    import xarray as xr

log = logging.getLogger(__name__)

FILL_FLOAT = 9.96921e36
"""netCDF default float fill value used by S5P L2 products."""

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

PROCESSING_MODES = {
    "NRTI": ("Near-realtime", "NRTI", "Near real time"),
    "OFFL": ("Offline", "OFFL"),
    "RPRO": ("Reprocessing", "RPRO"),
    "PAL_": ("Products Algorithm Laboratory", "PAL", "PAL_", "Reprocessing"),
}
"""Accepted ``METADATA/GRANULE_DESCRIPTION:ProcessingMode`` values per file-name stream."""

Box = tuple[float, float, float, float]
"""(south, north, west, east) in degrees; ``east`` may exceed 180 to cross the antimeridian."""


@dataclass(frozen=True)
class _Var:
    group: str
    name: str
    output: str
    required: bool


_PRODUCT = "PRODUCT"
_GEO = "PRODUCT/SUPPORT_DATA/GEOLOCATIONS"
_DETAILED = "PRODUCT/SUPPORT_DATA/DETAILED_RESULTS"
_INPUT = "PRODUCT/SUPPORT_DATA/INPUT_DATA"

PIXEL_VARIABLES = (
    _Var(_PRODUCT, "latitude", "latitude", True),
    _Var(_PRODUCT, "longitude", "longitude", True),
    _Var(_PRODUCT, "nitrogendioxide_tropospheric_column", "nitrogendioxide_tropospheric_column", True),
    _Var(
        _PRODUCT,
        "nitrogendioxide_tropospheric_column_precision",
        "nitrogendioxide_tropospheric_column_precision",
        True,
    ),
    _Var(_PRODUCT, "qa_value", "qa_value", True),
    _Var(_GEO, "latitude_bounds", "latitude_bounds", True),
    _Var(_GEO, "longitude_bounds", "longitude_bounds", True),
    _Var(_INPUT, "eastward_wind", "eastward_wind", False),
    _Var(_INPUT, "northward_wind", "northward_wind", False),
    _Var(_INPUT, "surface_pressure", "surface_pressure", False),
    _Var(_DETAILED, "cloud_fraction_crb_nitrogendioxide_window", "cloud_fraction", False),
)

BOX_MARGIN_DEG = 1.0
"""Pixel centres within this many degrees of a box keep their scanline: the largest S5P pixels
(swath edge, ~14 x 7 km) reach ~0.2 degrees from their centre, so 1 degree is safe."""


# --------------------------------------------------------------------------------------------
# Opening and validation
# --------------------------------------------------------------------------------------------
@contextmanager
def open_product(path: str | Path) -> Iterator[h5py.File]:
    """Open ``path`` as a netCDF-4 (HDF5) file, turning low-level failures into clear errors."""
    path = Path(path)
    if not path.is_file():
        raise InvalidProductError(path, "file does not exist")
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
    if head != HDF5_SIGNATURE:
        kind = "a netCDF-3 file" if head[:3] == b"CDF" else "not a netCDF-4/HDF5 file"
        if size == 0:
            kind = "an empty file"
        raise InvalidProductError(path, f"{kind}; Sentinel-5P L2 products are netCDF-4")
    try:
        nc = h5py.File(path, "r")
    except OSError as exc:
        raise InvalidProductError(
            path, f"cannot be opened as netCDF-4/HDF5 (truncated or corrupt file?): {exc}"
        ) from None
    try:
        yield nc
    except (OSError, RuntimeError) as exc:  # HDF5's errors on damaged objects met while reading
        raise InvalidProductError(
            path, f"cannot be read (truncated or corrupt file?): {exc}"
        ) from None
    finally:
        nc.close()


def _group(nc: h5py.File, path: Path, group: str) -> h5py.Group:
    node = nc
    for part in group.split("/"):
        child = node.get(part)
        if not isinstance(child, h5py.Group):
            raise InvalidProductError(path, f"missing group {group!r}")
        node = child
    return node


def _variable(nc: h5py.File, path: Path, spec: _Var) -> h5py.Dataset | None:
    try:
        group = _group(nc, path, spec.group)
    except InvalidProductError:
        if spec.required:
            raise
        return None
    var = group.get(spec.name)
    if not isinstance(var, h5py.Dataset):
        if spec.required:
            raise InvalidProductError(path, f"missing variable {spec.group}/{spec.name}")
        return None
    return var


def _attr(node: h5py.HLObject, name: str, default=None):
    """An attribute as a Python value: netCDF stores numbers as 1-element arrays and text as
    fixed-length bytes or variable-length strings."""
    value = node.attrs.get(name, default)
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    return value


def product_metadata(nc: h5py.File, path: Path) -> dict:
    """Metadata from the file name and attributes, cross-checked; raises on inconsistency."""
    granule = nc.get("METADATA/GRANULE_DESCRIPTION")
    if not isinstance(granule, h5py.Group):
        raise InvalidProductError(path, "missing group 'METADATA/GRANULE_DESCRIPTION'")
    short_name = _attr(granule, "ProductShortName")
    if short_name != NO2_PRODUCT:
        raise InvalidProductError(
            path, f"wrong product type {short_name!r} in metadata, expected {NO2_PRODUCT!r}"
        )
    product_id = _attr(nc, "id")
    try:
        name = ProductName.parse(path)
    except FileNameError:
        name = None
        log.warning("%s: file name is not a Sentinel-5P product name; using metadata only", path)
    if name is not None and not name.is_no2:
        raise InvalidProductError(
            path, f"wrong product type {name.product!r} in file name, expected {NO2_PRODUCT!r}"
        )
    if name is None and product_id:
        try:
            name = ProductName.parse(product_id)
        except FileNameError:
            pass
    processor = _attr(nc, "processor_version") or _attr(granule, "ProcessorVersion")
    orbit = _attr(nc, "orbit")
    mode = _attr(granule, "ProcessingMode")
    problems = []
    if name is not None:
        if processor is not None and str(processor) != name.processor_version:
            problems.append(f"processor_version {processor!r} != {name.processor_version!r}")
        if orbit is not None and int(orbit) != name.orbit:
            problems.append(f"orbit {orbit} != {name.orbit}")
        if mode is not None and mode not in PROCESSING_MODES[name.stream]:
            problems.append(f"ProcessingMode {mode!r} does not match stream {name.stream!r}")
    if problems:
        raise InvalidProductError(
            path, "file name and metadata disagree (renamed file?): " + "; ".join(problems)
        )
    return {
        "source_file": path.name,
        "product_id": product_id or (name.stem if name else path.stem),
        "stream": name.stream if name else "",
        "processing_mode": mode or "",
        "orbit": int(orbit if orbit is not None else (name.orbit if name else -1)),
        "collection": name.collection if name else -1,
        "processor_version": str(processor or (name.processor_version if name else "")),
        "product_version": str(_attr(nc, "product_version", "")),
        "time_coverage_start": str(_attr(nc, "time_coverage_start", "")),
        "time_coverage_end": str(_attr(nc, "time_coverage_end", "")),
    }


# --------------------------------------------------------------------------------------------
# Scanline selection
# --------------------------------------------------------------------------------------------
def _in_lon_range(lon: np.ndarray, west: float, east: float) -> np.ndarray:
    """True where ``lon`` (any representation) lies in ``[west, east]`` modulo 360.

    In the precision of ``lon`` (float32 in products: within ~1e-4 degrees of ``west``, a value
    may land on either side; callers add a margin). ``d - 360 floor(d / 360)`` is 6x faster than
    ``np.mod``, which matters for the 370,000 centres of an orbit segment."""
    offset = lon - lon.dtype.type(west)
    offset -= lon.dtype.type(360) * np.floor(offset * lon.dtype.type(1 / 360))
    return offset <= (east - west)


def scanlines_overlapping(lat: np.ndarray, lon: np.ndarray, box: Box) -> slice:
    """Smallest contiguous scanline range whose pixel centres come within
    :data:`BOX_MARGIN_DEG` of ``box``. ``lat``/``lon`` are (scanline, ground_pixel) centres;
    NaN centres are ignored. Returns an empty slice when nothing overlaps."""
    south, north, west, east = box
    m = BOX_MARGIN_DEG
    with np.errstate(invalid="ignore"):
        inside = (lat >= south - m) & (lat <= north + m)
        if east - west + 2 * m < 360:
            inside &= _in_lon_range(lon, west - m, east + m)
    rows = np.flatnonzero(inside.any(axis=1))
    if rows.size == 0:
        return slice(0, 0)
    return slice(int(rows[0]), int(rows[-1]) + 1)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------
def _read(var: h5py.Dataset, path: Path, rows: slice) -> np.ndarray:
    """Read rows of a (time=1, scanline, ...) variable, decoded: floats with fill -> NaN,
    scale_factor/add_offset applied; integer and byte fills -> NaN in float32."""
    name = var.name.lstrip("/")
    if var.ndim < 2 or var.shape[0] != 1:
        raise InvalidProductError(
            path, f"variable {name!r} has shape {var.shape}, expected (time=1, scanline, ...)"
        )
    from s5p_lockdown.hdf5_chunks import read_rows  # libdeflate and the chunk kernels: only when reading

    try:
        raw = read_rows(var, rows)
    except (OSError, RuntimeError, IndexError, ValueError) as exc:  # incl. ChunkError
        raise InvalidProductError(
            path, f"cannot read variable {name!r} (truncated or corrupt file?): {exc}"
        ) from None
    fill = _attr(var, "_FillValue")
    scale = _attr(var, "scale_factor")
    offset = _attr(var, "add_offset")
    data = raw.astype(np.float32, copy=raw.dtype.kind != "f" or raw.dtype != np.float32)
    if raw.dtype.kind == "f":
        # the netCDF default fill and anything near it; a non-default fill value too
        invalid = np.abs(raw) >= np.float32(FILL_FLOAT * 0.999)
        if fill is not None and not abs(float(fill)) >= FILL_FLOAT * 0.999:
            invalid |= raw == fill
        data[invalid] = np.nan
    elif fill is not None:
        data[raw == fill] = np.nan
    if scale is not None:
        inverse = round(1.0 / float(scale))
        if raw.dtype.kind in "iu" and inverse >= 1 and abs(float(scale) * inverse - 1.0) < 1e-6:
            # an integer count of 1/inverse (qa_value: a byte x 0.01): the float64 nearest to
            # k/inverse, so that comparisons with a decimal threshold are exact on the stored
            # integer (byte 75 decodes to the double 0.75, and `> 0.75` drops it like HARP's
            # validity>75; float32 k x 0.01f would only be right by luck of rounding)
            data = data.astype(np.float64) / inverse
        else:
            data *= np.float32(scale)
    if offset is not None:
        data += data.dtype.type(offset)
    return data


_TIME_UNITS = re.compile(r"^\s*(milliseconds|seconds)\s+since\s+(.+?)\s*$")


def _parse_units(units: str, var: str, path: Path) -> tuple[str, np.datetime64]:
    match = _TIME_UNITS.match(units or "")
    if match is None:
        raise InvalidProductError(path, f"variable {var!r} has unsupported time units {units!r}")
    ref = match.group(2).replace("T", " ").rstrip("Z").strip()
    try:
        return match.group(1), np.datetime64(ref.replace(" ", "T"), "ms")
    except ValueError:
        raise InvalidProductError(path, f"variable {var!r} has unparsable units {units!r}") from None


def _scanline_times(product: h5py.Group, path: Path, rows: slice, n_scan: int) -> np.ndarray:
    """UTC time of each scanline: ``time`` (s since 2010-01-01) + ``delta_time`` (ms)."""
    for name in ("time", "delta_time"):
        if not isinstance(product.get(name), h5py.Dataset):
            raise InvalidProductError(path, f"missing variable PRODUCT/{name}")
    time_var, delta_var = product["time"], product["delta_time"]
    unit, ref = _parse_units(_attr(time_var, "units", ""), "time", path)
    try:
        base = np.asarray(time_var[()]).ravel()
        delta = np.asarray(delta_var[0, rows, ...] if delta_var.ndim > 1 else delta_var[rows])
    except (OSError, RuntimeError, IndexError, ValueError) as exc:
        raise InvalidProductError(path, f"cannot read time variables: {exc}") from None
    if base.size != 1:
        raise InvalidProductError(path, f"PRODUCT/time has {base.size} values, expected 1")
    if delta.ndim == 2:  # some processor versions store delta_time per pixel
        delta = delta[:, 0]
    if delta.shape != (n_scan,):
        raise InvalidProductError(
            path, f"PRODUCT/delta_time has {delta.shape[0]} scanlines, expected {n_scan}"
        )
    factor = 1000 if unit == "seconds" else 1
    t0 = ref + np.timedelta64(int(round(float(base[0]) * factor)), "ms")
    delta_fill = _attr(delta_var, "_FillValue")
    valid = delta != delta_fill if delta_fill is not None else np.ones(delta.shape, bool)
    times = np.full(n_scan, np.datetime64("NaT"), dtype="datetime64[ns]")
    times[valid] = (t0 + delta[valid].astype("int64").astype("timedelta64[ms]")).astype(
        "datetime64[ns]"
    )
    return times


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
@dataclass
class L2Arrays:
    """An L2 orbit as plain arrays: what :func:`read_l2` puts in its Dataset, without xarray.

    ``variables`` maps the output names of the module docstring to arrays (scanline,
    ground_pixel[, corner]), ``time`` is the UTC time of each scanline (datetime64[ns]) and
    ``attrs`` the Dataset's attributes. ``orbit[name]`` and ``name in orbit`` work as on the
    Dataset (``"time"`` included), so :meth:`GridAccumulator.add_dataset` takes either.
    """

    variables: dict[str, np.ndarray]
    time: np.ndarray
    attrs: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.time if name == "time" else self.variables[name]

    def __contains__(self, name: object) -> bool:
        return name == "time" or name in self.variables


def read_l2_arrays(
    path: str | Path,
    bbox: Box | None = None,
    qa_threshold: float | None = None,
    optional: bool | Collection[str] = True,
    bounds: bool = True,
) -> L2Arrays:
    """Read an S5P L2 NO2 orbit file into numpy arrays; arguments as :func:`read_l2`."""
    path = Path(path)
    wanted = _optional_outputs(optional)
    with open_product(path) as nc:
        attrs = product_metadata(nc, path)
        specs = [spec for spec in PIXEL_VARIABLES
                 if (spec.required or spec.output in wanted) and (bounds or not spec.output.endswith("_bounds"))]
        found = {spec.output: _variable(nc, path, spec) for spec in specs}
        variables = {name: var for name, var in found.items() if var is not None}
        lat_var = variables["latitude"]
        if lat_var.ndim != 3 or lat_var.shape[0] != 1:
            raise InvalidProductError(
                path, f"PRODUCT/latitude has shape {lat_var.shape}, expected (1, scanline, ground_pixel)"
            )
        _, n_scan, n_pix = lat_var.shape
        for name, var in variables.items():
            expected = (1, n_scan, n_pix, 4) if name.endswith("_bounds") else (1, n_scan, n_pix)
            if tuple(var.shape) != expected:
                raise InvalidProductError(
                    path,
                    f"inconsistent shapes: {var.name.lstrip('/')} is "
                    f"{tuple(var.shape)}, expected {expected}",
                )
        rows, data = slice(0, n_scan), {}
        if bbox is not None:  # centres of the whole orbit decide which scanlines to read
            lat = _read(lat_var, path, rows)
            lon = _read(variables["longitude"], path, rows)
            rows = scanlines_overlapping(lat, lon, bbox)
            data = {"latitude": lat[rows], "longitude": lon[rows]}
        data.update({name: _read(var, path, rows) for name, var in variables.items() if name not in data})
        n_rows = rows.stop - rows.start
        times = _scanline_times(_group(nc, path, _PRODUCT), path, rows, n_rows)
    if qa_threshold is not None:
        with np.errstate(invalid="ignore"):
            bad = ~(data["qa_value"] > qa_threshold)
        for name in ("nitrogendioxide_tropospheric_column", "nitrogendioxide_tropospheric_column_precision"):
            data[name] = np.where(bad, np.nan, data[name])
    if n_rows == 0:
        log.info("%s: no scanline overlaps the box %s; empty result", path.name, bbox)
    elif not np.isfinite(data["nitrogendioxide_tropospheric_column"]).any():
        log.info("%s: no valid tropospheric NO2 pixel in the selection", path.name)
    return L2Arrays(data, times, {**attrs, "scanline_offset": rows.start})


def read_l2(
    path: str | Path,
    bbox: Box | None = None,
    qa_threshold: float | None = None,
    optional: bool | Collection[str] = True,
    bounds: bool = True,
) -> xr.Dataset:
    """Read an S5P L2 NO2 orbit file (see the module docstring for the returned schema).

    Parameters
    ----------
    path
        The ``.nc`` product file.
    bbox
        ``(south, north, west, east)`` in degrees. Only scanlines with a pixel centre within
        :data:`BOX_MARGIN_DEG` of the box are read (others are not decompressed). Pixels of
        those scanlines outside the box are kept: the gridder clips them exactly.
    qa_threshold
        When given, the tropospheric column and its precision are set to NaN where
        ``qa_value <= qa_threshold`` or qa_value is filled (the PUM recommends keeping
        ``qa_value > 0.75``; a stored 75, i.e. exactly 0.75, is dropped, as by HARP's
        ``validity>75``).
    optional
        Also read wind, cloud fraction and surface pressure when the file has them (True), none
        of them (False), or those named (output names, e.g. ``("eastward_wind",
        "northward_wind")``).
    bounds
        Also read the pixel corners (``latitude_bounds``, ``longitude_bounds``); False reads
        only the centres, for uses that need no footprint (much less to decompress).

    An orbit without any pixel in ``bbox`` (or without a valid column) is not an error: the
    result has zero (or all-NaN) scanlines and a message is logged.
    """
    import xarray as xr

    orbit = read_l2_arrays(path, bbox, qa_threshold, optional, bounds)
    dims2 = ("scanline", "ground_pixel")
    dataset = xr.Dataset(
        {
            name: (dims2 + (("corner",) if name.endswith("_bounds") else ()), values)
            for name, values in orbit.variables.items()
        },
        coords={"time": ("scanline", orbit.time)},
        attrs=orbit.attrs,
    )
    _set_variable_attrs(dataset)
    return dataset


def _optional_outputs(optional: bool | Collection[str]) -> set[str]:
    """The optional variables (output names) ``read_l2``'s ``optional`` asks for."""
    known = {spec.output for spec in PIXEL_VARIABLES if not spec.required}
    if isinstance(optional, bool):
        return known if optional else set()
    if isinstance(optional, str):
        raise ValueError(f"optional must be a bool or a collection of names, got {optional!r}")
    unknown = set(optional) - known
    if unknown:
        raise ValueError(f"unknown optional variable(s) {sorted(unknown)}; known: {sorted(known)}")
    return set(optional)


_UNITS = {
    "latitude": ("degrees_north", "pixel centre latitude"),
    "longitude": ("degrees_east", "pixel centre longitude"),
    "latitude_bounds": ("degrees_north", "pixel corner latitudes"),
    "longitude_bounds": ("degrees_east", "pixel corner longitudes"),
    "nitrogendioxide_tropospheric_column": ("mol m-2", "tropospheric vertical column of NO2"),
    "nitrogendioxide_tropospheric_column_precision": (
        "mol m-2",
        "precision (1 sigma) of the tropospheric vertical column of NO2",
    ),
    "qa_value": ("1", "data quality value (0 = no output, 1 = best)"),
    "eastward_wind": ("m s-1", "eastward near-surface wind (ECMWF)"),
    "northward_wind": ("m s-1", "northward near-surface wind (ECMWF)"),
    "surface_pressure": ("Pa", "surface air pressure"),
    "cloud_fraction": ("1", "cloud fraction in the NO2 window (cloud_fraction_crb_nitrogendioxide_window)"),
}


def _set_variable_attrs(dataset: xr.Dataset) -> None:
    for name, (units, long_name) in _UNITS.items():
        if name in dataset:
            dataset[name].attrs.update(units=units, long_name=long_name)


def unwrap_longitude_bounds(lon_bounds: np.ndarray, lon_centre: np.ndarray) -> np.ndarray:
    """Corner longitudes moved by ±360 to lie within 180 degrees of the pixel centre.

    A pixel on the antimeridian (corners 179.9 and -179.9) becomes a small polygon around 180
    (179.9 and 180.1), so its planar area is right. Values may leave [-180, 180].
    """
    diff = lon_bounds - lon_centre[..., None]
    return lon_bounds - 360.0 * np.round(diff / 360.0)


def inspect_product(path: str | Path, qa_threshold: float = 0.75) -> dict:
    """Summary of an orbit file for ``s5p-lockdown inspect``: metadata, pixel counts, fraction
    of valid pixels with ``qa_value > qa_threshold``, latitude/longitude extent (degrees)."""
    ds = read_l2(path)
    column = ds["nitrogendioxide_tropospheric_column"].values
    qa = ds["qa_value"].values
    valid = np.isfinite(column)
    with np.errstate(invalid="ignore"):
        good = valid & (qa > qa_threshold)
    lat, lon = ds["latitude"].values, ds["longitude"].values
    has_geo = np.isfinite(lat) & np.isfinite(lon)
    summary = {k: ds.attrs[k] for k in (
        "source_file", "stream", "orbit", "processor_version", "product_version",
        "time_coverage_start", "time_coverage_end",
    )}
    summary.update(
        scanlines=int(ds.sizes["scanline"]),
        ground_pixels=int(ds.sizes["ground_pixel"]),
        pixels=int(column.size),
        valid_pixels=int(valid.sum()),
        qa_threshold=qa_threshold,
        pixels_passing_qa=int(good.sum()),
        fraction_passing_qa=float(good.sum() / valid.sum()) if valid.any() else 0.0,
        latitude_min=float(lat[has_geo].min()) if has_geo.any() else float("nan"),
        latitude_max=float(lat[has_geo].max()) if has_geo.any() else float("nan"),
        longitude_min=float(lon[has_geo].min()) if has_geo.any() else float("nan"),
        longitude_max=float(lon[has_geo].max()) if has_geo.any() else float("nan"),
        has_wind="eastward_wind" in ds,
    )
    return summary
