"""Render gridded outputs as map images: colour mapping and PNG data URLs, numpy only.

A grid is a 2-D variable on ``latitude``/``longitude`` (degrees, regular spacing, any
order); leading length-1 dimensions such as ``time`` are dropped. The PNG's first row is the
northernmost one, so with the map in EPSG:4326 (plate carrée) the image lies exactly on its
cells when placed on ``bounds``.
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

#: Viridis, sampled at 10 evenly spaced points (perceptually uniform, colour-blind safe).
COLORS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e",
          "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725")


@dataclass
class GridImage:
    """A grid variable ready for the map."""

    variable: str
    units: str
    values: np.ndarray
    """(latitude, longitude) values, north first."""
    bounds: tuple[tuple[float, float], tuple[float, float]]
    """((south, west), (north, east)) in degrees, as ipyleaflet's ImageOverlay wants them."""

    def value_range(self, low: float = 2.0, high: float = 98.0) -> tuple[float, float] | None:
        """Percentiles of the finite values (None if there are none)."""
        finite = self.values[np.isfinite(self.values)]
        if finite.size == 0:
            return None
        vmin, vmax = (float(v) for v in np.percentile(finite, [low, high]))
        if vmax <= vmin:  # a constant field: any small range shows it
            vmax = vmin + (abs(vmin) or 1.0) * 1e-6
        return vmin, vmax

    def png_data_url(self, vmin: float, vmax: float) -> str:
        return png_data_url(colorize(self.values, vmin, vmax))


def _edges(centers: np.ndarray, ds: xr.Dataset, name: str) -> tuple[float, float]:
    bounds = f"{name}_bounds"
    if bounds in ds:
        values = ds[bounds].values
        return float(values.min()), float(values.max())
    half = abs(float(centers[1] - centers[0])) / 2 if centers.size > 1 else 0.0
    return float(centers.min()) - half, float(centers.max()) + half


def pick_variable(ds: xr.Dataset, variable: str | None = None) -> str:
    """``variable``, or the first data variable with latitude and longitude dimensions."""
    if variable is not None:
        if variable not in ds:
            raise KeyError(f"no variable {variable!r}; have {sorted(map(str, ds.data_vars))}")
        return variable
    for name, var in ds.data_vars.items():
        if {"latitude", "longitude"} <= set(var.dims):
            return str(name)
    raise ValueError("no data variable with latitude and longitude dimensions")


def read_grid(path: str | Path, variable: str | None = None) -> GridImage:
    """Read one grid variable (see :func:`pick_variable`) from a netCDF file."""
    with xr.open_dataset(path) as ds:
        name = pick_variable(ds, variable)
        var = ds[name]
        extra = [d for d in var.dims if d not in ("latitude", "longitude")]
        if any(var.sizes[d] != 1 for d in extra):
            raise ValueError(f"{path}: {name} has dimensions {var.dims}; only latitude, "
                             "longitude and length-1 dimensions can be drawn")
        var = var.isel({d: 0 for d in extra}).transpose("latitude", "longitude")
        var = var.sortby("latitude", ascending=False).sortby("longitude")
        south, north = _edges(ds["latitude"].values, ds, "latitude")
        west, east = _edges(ds["longitude"].values, ds, "longitude")
        return GridImage(name, str(var.attrs.get("units", "")),
                         var.values.astype(np.float64), ((south, west), (north, east)))


def colorize(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """RGBA uint8 image of ``values`` with :data:`COLORS` between ``vmin`` and ``vmax``
    (clipped); NaN is transparent."""
    rgb = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in COLORS], np.float64)
    with np.errstate(invalid="ignore"):
        t = np.clip((values - vmin) / (vmax - vmin), 0.0, 1.0)
    t = np.nan_to_num(t) * (len(COLORS) - 1)
    stops = np.arange(len(COLORS))
    image = np.empty(values.shape + (4,), np.uint8)
    for channel in range(3):
        image[..., channel] = np.round(np.interp(t, stops, rgb[:, channel]))
    image[..., 3] = np.where(np.isfinite(values), 255, 0)
    return image


def png_bytes(rgba: np.ndarray) -> bytes:
    """A (rows, columns, 4) uint8 array as an RGBA PNG file."""
    height, width, _ = rgba.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in np.ascontiguousarray(rgba, np.uint8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def png_data_url(rgba: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgba)).decode("ascii")


def colorbar(title: str, units: str, vmin: float, vmax: float) -> "WidgetControl":
    """A colour bar of :data:`~s5p_lockdown.batch.render.COLORS` from ``vmin`` to ``vmax`` as a
    map control: branca's SVG in an HTML widget, so it is drawn whichever thread creates it.
    Values of 1000 or more (or below 0.001) are labelled in a power of ten given in the
    caption, e.g. ``(×1e15 molecules cm-2)``. Shared by the preview and the batch monitor."""
    # imported here: jobs import this module to write grids, without any widget library
    import ipywidgets as w
    from branca.colormap import LinearColormap
    from ipyleaflet import WidgetControl

    largest = max(abs(vmin), abs(vmax))
    exponent = math.floor(math.log10(largest)) if largest > 0 else 0
    scale = 10.0**exponent if abs(exponent) >= 3 else 1.0
    unit = f"×1e{exponent} {units}" if scale != 1.0 else units
    colormap = LinearColormap(COLORS, vmin=round(vmin / scale, 9), vmax=round(vmax / scale, 9),
                              caption=f"{title} ({unit})")
    return WidgetControl(widget=w.HTML(colormap._repr_html_()), position="bottomright")
