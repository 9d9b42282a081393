"""Grid specification with HARP ``bin_spatial`` semantics.

A grid is given, as in HARP, by the number of cell *edges* along each axis, the first edge and
the step, all in degrees: ``bin_spatial(lat_edge_count, lat_edge_offset, lat_edge_step,
lon_edge_count, lon_edge_offset, lon_edge_step)``. ``lat_edge_count = 381`` means 380 cells.
Edges are ``offset + i * step`` computed in float64; a latitude edge within 1e-10 of ±90 snaps to
±90 and a last longitude edge within 1e-10 of ``first + 360`` snaps to ``first + 360``, as in HARP.
Longitude edges may run past 180° (a grid from 170 to 190 is "170°E to 170°W").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from s5p_lockdown.errors import ConfigError

_SNAP = 1e-10


@dataclass(frozen=True)
class GridSpec:
    """A regular latitude/longitude grid, defined by its cell edges (degrees).

    Cells are half-open intervals ``[edge[i], edge[i+1])`` for point binning; area binning uses
    exact overlap, so edges belong to both neighbours with zero area.
    """

    lat_edge_count: int
    lat_edge_offset: float
    lat_edge_step: float
    lon_edge_count: int
    lon_edge_offset: float
    lon_edge_step: float

    def __post_init__(self) -> None:
        for axis in ("lat", "lon"):
            count = getattr(self, f"{axis}_edge_count")
            step = getattr(self, f"{axis}_edge_step")
            if int(count) != count or count < 2:
                raise ConfigError(f"grid: {axis}_edge_count must be an integer >= 2, got {count!r}")
            if not (step > 0 and math.isfinite(step)):
                raise ConfigError(f"grid: {axis}_edge_step must be a positive number, got {step!r}")
        lat = self.lat_edges
        if lat[0] < -90 or lat[-1] > 90:
            raise ConfigError(
                f"grid: latitude edges {lat[0]:g}..{lat[-1]:g} must lie within [-90, 90]"
            )
        lon = self.lon_edges
        if lon[-1] - lon[0] > 360:
            raise ConfigError(
                f"grid: longitude edges {lon[0]:g}..{lon[-1]:g} span more than 360 degrees"
            )

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_bbox(
        cls, south: float, north: float, west: float, east: float, resolution: float
    ) -> GridSpec:
        """Grid covering ``[south, north] x [west, east]`` (degrees) with square cells.

        The extent must be a whole number of cells (within 1e-6 of a cell); ``east`` may exceed
        180 to cross the antimeridian (e.g. west=170, east=190).
        """
        if not resolution > 0:
            raise ConfigError(f"grid: resolution must be positive, got {resolution!r}")
        if not north > south:
            raise ConfigError(f"grid: north ({north}) must be greater than south ({south})")
        if not east > west:
            raise ConfigError(f"grid: east ({east}) must be greater than west ({west})")
        counts = []
        for name, span in (("latitude", north - south), ("longitude", east - west)):
            cells = span / resolution
            if abs(cells - round(cells)) > 1e-6:
                raise ConfigError(
                    f"grid: {name} extent {span:g} degrees is not a whole number of "
                    f"{resolution:g} degree cells"
                )
            counts.append(int(round(cells)) + 1)
        return cls(counts[0], float(south), float(resolution), counts[1], float(west), float(resolution))

    @classmethod
    def from_harp(cls, text: str) -> GridSpec:
        """Parse ``"381,34,0.1,701,-25,0.1"`` or ``"bin_spatial(381,34,0.1,701,-25,0.1)"``."""
        body = text.strip()
        if body.startswith("bin_spatial(") and body.endswith(")"):
            body = body[len("bin_spatial(") : -1]
        parts = [p.strip() for p in body.split(",")]
        if len(parts) != 6:
            raise ConfigError(
                f"bin_spatial needs 6 comma-separated numbers "
                f"(lat_edge_count,lat_edge_offset,lat_edge_step,lon_edge_count,lon_edge_offset,"
                f"lon_edge_step), got {text!r}"
            )
        try:
            lat_n, lon_n = int(parts[0]), int(parts[3])
            values = [float(parts[i]) for i in (1, 2, 4, 5)]
        except ValueError as exc:
            raise ConfigError(f"bin_spatial: cannot parse {text!r}: {exc}") from None
        return cls(lat_n, values[0], values[1], lon_n, values[2], values[3])

    @classmethod
    def from_dict(cls, mapping: dict[str, Any]) -> GridSpec:
        """Build from a config mapping: either the six HARP fields, or
        ``{south, north, west, east, resolution}``."""
        keys = set(mapping)
        harp_keys = {f.name for f in cls.__dataclass_fields__.values()}
        bbox_keys = {"south", "north", "west", "east", "resolution"}
        if keys == harp_keys:
            return cls(**{k: mapping[k] for k in harp_keys})
        if keys == bbox_keys:
            return cls.from_bbox(**{k: float(mapping[k]) for k in bbox_keys})
        raise ConfigError(
            f"grid: expected keys {sorted(bbox_keys)} or {sorted(harp_keys)}, got {sorted(keys)}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The six HARP fields as a plain dict (YAML/JSON/netCDF-attribute friendly)."""
        return asdict(self)

    # --- derived values -----------------------------------------------------------------------
    @property
    def lat_edges(self) -> np.ndarray:
        """Latitude cell edges (degrees, ascending, float64), snapped to ±90 as HARP does."""
        edges = _edges(self.lat_edge_offset, self.lat_edge_count, self.lat_edge_step)
        edges[np.abs(edges - 90) < _SNAP] = 90.0
        edges[np.abs(edges + 90) < _SNAP] = -90.0
        return edges

    @property
    def lon_edges(self) -> np.ndarray:
        """Longitude cell edges (degrees, ascending, float64); may exceed 180."""
        edges = _edges(self.lon_edge_offset, self.lon_edge_count, self.lon_edge_step)
        if abs(edges[-1] - (edges[0] + 360)) < _SNAP:
            edges[-1] = edges[0] + 360
        return edges

    @property
    def lat_centers(self) -> np.ndarray:
        e = self.lat_edges
        return 0.5 * (e[:-1] + e[1:])

    @property
    def lon_centers(self) -> np.ndarray:
        e = self.lon_edges
        return 0.5 * (e[:-1] + e[1:])

    @property
    def shape(self) -> tuple[int, int]:
        """(number of latitude cells, number of longitude cells)."""
        return (self.lat_edge_count - 1, self.lon_edge_count - 1)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(south, north, west, east) in degrees."""
        lat, lon = self.lat_edges, self.lon_edges
        return (float(lat[0]), float(lat[-1]), float(lon[0]), float(lon[-1]))

    def harp_operation(self) -> str:
        """The equivalent HARP operation, e.g. ``bin_spatial(381,34,0.1,701,-25,0.1)``."""
        return (
            f"bin_spatial({self.lat_edge_count},{self.lat_edge_offset:.12g},"
            f"{self.lat_edge_step:.12g},{self.lon_edge_count},{self.lon_edge_offset:.12g},"
            f"{self.lon_edge_step:.12g})"
        )

    def __str__(self) -> str:
        return self.harp_operation()


def same_grid(a: GridSpec, b: GridSpec) -> bool:
    """True if both grids have the same cells (edges equal within 1e-9 of a cell)."""
    if a.shape != b.shape:
        return False
    return bool(
        np.allclose(a.lat_edges, b.lat_edges, rtol=0, atol=1e-9 * a.lat_edge_step)
        and np.allclose(a.lon_edges, b.lon_edges, rtol=0, atol=1e-9 * a.lon_edge_step)
    )


def _edges(offset: float, count: int, step: float) -> np.ndarray:
    """``offset + i * step`` for ``i < count``, in float64 whatever the fields' types (a grid
    given in integers; the compiled kernels take float64 edges only)."""
    return float(offset) + np.arange(count, dtype=np.float64) * float(step)
