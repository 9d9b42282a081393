"""Country boundaries: point look-up and per-grid-cell country fractions; the region sets the
pixels are attributed to (countries, hotspots, and the regions of a region file read by
:mod:`s5p_lockdown.region_files`, whose many small regions get sparse masks,
:func:`sparse_fraction_masks`).

Conventions
-----------
* Coordinates are longitude/latitude in degrees (WGS84). Country polygons are in [-180, 180];
  point longitudes and grid longitudes may be given in any 360-degree range (a grid running
  from 170 to 190 is handled).
* Areas are *planar* areas in the lon/lat plane (square degrees), not areas on the sphere.
  A cell's country fraction is ``area(country ∩ cell) / area(cell)``, both planar; it differs
  from the fraction of the cell's area on the sphere by at most about
  ``tan(lat) * cell_height / 8`` (height in radians): 6e-4 for 0.1 degree cells at 70°N.
* Fractions are exact polygon ∩ cell overlaps (GEOS), so a country smaller than a cell (Malta,
  Luxembourg, Monaco on a 0.5 degree grid) still gets its share, and cells on a border are
  shared between the countries.

The shipped boundaries (``resources/europe_countries_50m.geojson``, see its PROVENANCE file)
are Natural Earth 1:50m admin-0 countries clipped to lon -32..50, lat 27..72: a grid reaching
outside that box finds no countries there. Every feature has the properties ``iso3``,
``iso2`` (``""`` when there is none), ``name`` and ``analysed`` (true for the countries of
``lockdown_dates.csv``); another file with the same layout can be passed as ``path``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import shapely
import shapely.affinity

from s5p_lockdown.errors import BadInputError, ConfigError
from s5p_lockdown.gridding.grid import GridSpec
from s5p_lockdown.outputs import write_atomically

if TYPE_CHECKING:  # xarray is imported where masks are made or read: the workflow's plan (every
    # Snakemake job's start-up) imports this module for REGION_SETS only
    import xarray as xr

log = logging.getLogger(__name__)

DEFAULT_BOUNDARIES = "europe_countries_50m.geojson"
MASK_VARIABLE = "country_fraction"

# Cells are intersected in square blocks about this many degrees wide: each block's share of
# the country is cut out once, then the block's cells are intersected with that small piece
# instead of with the whole country.
_BLOCK_DEGREES = 1.0


class BoundaryFileError(BadInputError):
    """A country boundary file is missing or unusable; the message names the file."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True, eq=False)
class Country:
    """One country: codes, name and (multi)polygon in lon/lat degrees."""

    iso3: str
    iso2: str
    name: str
    analysed: bool
    geometry: shapely.Geometry


# --- loading ------------------------------------------------------------------------------------
def _read_boundary_file(path: str | Path | None) -> tuple[bytes, str]:
    """Bytes of the boundary file and the name to use in messages (the shipped one if None)."""
    if path is None:
        resource = files("s5p_lockdown") / "resources" / DEFAULT_BOUNDARIES
        source, reader = str(resource), resource.read_bytes
    else:
        source, reader = str(path), Path(path).read_bytes
    try:
        return reader(), source
    except OSError as exc:
        reason = f"cannot read boundary file: {exc.strerror or exc}"
        raise BoundaryFileError(source, reason) from exc


def _parse_countries(data: bytes, source: str) -> dict[str, Country]:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BoundaryFileError(source, f"not a GeoJSON file: {exc}") from None
    if (
        not isinstance(document, dict)
        or document.get("type") != "FeatureCollection"
        or not isinstance(features := document.get("features"), list)
        or not features
    ):
        raise BoundaryFileError(source, "expected a GeoJSON FeatureCollection with features")

    countries: dict[str, Country] = {}
    for number, feature in enumerate(features):
        where = f"feature {number}"
        try:
            props = feature["properties"]
            iso3, iso2, name, analysed = (props[k] for k in ("iso3", "iso2", "name", "analysed"))
        except (KeyError, TypeError):
            raise BoundaryFileError(
                source, f"{where}: needs properties iso3, iso2, name and analysed"
            ) from None
        if not (all(isinstance(v, str) for v in (iso3, iso2, name)) and iso3):
            raise BoundaryFileError(
                source, f"{where}: iso3, iso2 and name must be text, iso3 non-empty"
            )
        if not isinstance(analysed, bool):
            raise BoundaryFileError(source, f"{where} ({iso3}): analysed must be true or false")
        if iso3 in countries:
            raise BoundaryFileError(source, f"{where}: country {iso3} appears twice")
        try:
            geometry = shapely.geometry.shape(feature["geometry"])
        except Exception as exc:  # shapely raises many types for malformed GeoJSON geometry
            raise BoundaryFileError(source, f"{where} ({iso3}): bad geometry: {exc}") from None
        if not isinstance(geometry, shapely.Polygon | shapely.MultiPolygon):
            raise BoundaryFileError(
                source, f"{where} ({iso3}): geometry must be a Polygon or MultiPolygon, "
                f"not {geometry.geom_type}"
            )
        if not geometry.is_valid:
            raise BoundaryFileError(
                source, f"{where} ({iso3}): invalid polygon: {shapely.is_valid_reason(geometry)}"
            )
        shapely.prepare(geometry)
        countries[iso3] = Country(iso3, iso2, name, analysed, geometry)
    return countries


def load_countries(path: str | Path | None = None) -> dict[str, Country]:
    """Countries of a GeoJSON boundary file, by ISO 3166-1 alpha-3 code, in file order.

    ``path`` defaults to the shipped European boundaries. Raises :class:`BoundaryFileError`,
    naming the file, if it is missing, is not GeoJSON, or a feature lacks a property, has a
    non-polygonal or invalid geometry, or repeats a code.
    """
    return _parse_countries(*_read_boundary_file(path))


def _select(countries: Mapping[str, Country], iso3_list: Iterable[str] | None) -> list[str]:
    codes = list(countries) if iso3_list is None else list(iso3_list)
    if unknown := [c for c in codes if c not in countries]:
        raise ConfigError(
            f"countries: unknown ISO3 code(s) {unknown}; known: {', '.join(sorted(countries))}"
        )
    if len(set(codes)) != len(codes):
        raise ConfigError(f"countries: repeated ISO3 code in {codes}")
    return codes


# --- points -------------------------------------------------------------------------------------
def country_of_points(lon, lat, countries: Mapping[str, Country]) -> np.ndarray:
    """ISO3 code of the country containing each point, ``""`` where none does.

    ``lon`` and ``lat`` are arrays (degrees, broadcast together; longitudes in any 360-degree
    range). A point on a shared border goes to the first of its countries in ``countries``'
    order; NaN coordinates give ``""``. Returns a string array of the broadcast shape.
    """
    lon, lat = np.broadcast_arrays(
        np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    )
    x = (lon.ravel() + 180.0) % 360.0 - 180.0
    y = lat.ravel()
    codes = list(countries)
    owner = np.full(x.shape, len(codes))  # index into codes + [""]
    for k, code in enumerate(codes):
        geometry = countries[code].geometry
        west, south, east, north = geometry.bounds
        candidates = np.flatnonzero(
            (owner == len(codes)) & (x >= west) & (x <= east) & (y >= south) & (y <= north)
        )
        inside = shapely.intersects_xy(geometry, x[candidates], y[candidates])
        owner[candidates[inside]] = k
    return np.array(codes + [""])[owner].reshape(lon.shape)


# --- grid fractions -----------------------------------------------------------------------------
def _shifted_copies(geometry: shapely.Geometry, west: float, east: float) -> shapely.Geometry:
    """``geometry`` plus its copies shifted by ±360 degrees that reach into [west, east]."""
    g_west, _, g_east, _ = geometry.bounds
    copies = [
        shapely.transform(geometry, lambda xy, s=shift: xy + (s, 0.0))
        for shift in (-360.0, 0.0, 360.0)
        if g_west + shift < east and g_east + shift > west
    ]
    if len(copies) == 1:
        return copies[0]
    return shapely.union_all(copies) if copies else geometry


def _cell_range(edges: np.ndarray, low: float, high: float) -> tuple[int, int]:
    """Cells ``[i0, i1)`` whose interval (between ascending ``edges``) overlaps (low, high)."""
    i0 = max(int(np.searchsorted(edges, low, side="right")) - 1, 0)
    i1 = min(int(np.searchsorted(edges, high, side="left")), len(edges) - 1)
    return i0, max(i1, i0)


def _fractions_in_window(
    geometry: shapely.Geometry, lat_edges: np.ndarray, lon_edges: np.ndarray
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Fraction of each cell covered by ``geometry``, over the window of cells its bounding
    box touches. Returns ``(window, fractions)`` with ``fractions`` float64 of the window's
    shape (possibly empty)."""
    west, south, east, north = geometry.bounds
    i0, i1 = _cell_range(lat_edges, south, north)
    j0, j1 = _cell_range(lon_edges, west, east)
    window = (slice(i0, i1), slice(j0, j1))
    fractions = np.zeros((i1 - i0, j1 - j0))
    if fractions.size == 0:
        return window, fractions

    lat, lon = lat_edges[i0 : i1 + 1], lon_edges[j0 : j1 + 1]
    step = min(np.diff(lat).min(), np.diff(lon).min())
    block = max(1, round(_BLOCK_DEGREES / step))
    rows = np.arange(0, i1 - i0, block)
    cols = np.arange(0, j1 - j0, block)
    r_end = np.minimum(rows + block, i1 - i0)
    c_end = np.minimum(cols + block, j1 - j0)
    blocks = shapely.box(
        lon[cols][None, :], lat[rows][:, None], lon[c_end][None, :], lat[r_end][:, None]
    )
    # 1. Blocks of cells: inside the country (all ones), outside (zeros) or partial, for
    # which the country's piece inside the block is cut out.
    shapely.prepare(geometry)
    full = shapely.covers(geometry, blocks)
    partial = shapely.intersects(geometry, blocks) & ~full
    for bi, bj in zip(*np.nonzero(full)):
        fractions[rows[bi] : r_end[bi], cols[bj] : c_end[bj]] = 1.0

    pieces = shapely.intersection(geometry, blocks[partial])
    # 2. Cells of partial blocks: exact overlap with their block's piece, in one vectorised call.
    cell_rows, cell_cols, cell_piece = [], [], []
    for piece, bi, bj in zip(pieces, *np.nonzero(partial)):
        r, c = np.mgrid[rows[bi] : r_end[bi], cols[bj] : c_end[bj]]
        cell_rows.append(r.ravel())
        cell_cols.append(c.ravel())
        cell_piece.append(np.full(r.size, piece, dtype=object))
    if cell_rows:
        r, c = np.concatenate(cell_rows), np.concatenate(cell_cols)
        cells = shapely.box(lon[c], lat[r], lon[c + 1], lat[r + 1])
        overlap = shapely.area(shapely.intersection(np.concatenate(cell_piece), cells))
        fractions[r, c] = overlap / shapely.area(cells)
    return window, fractions


def _float32_down(values: np.ndarray) -> np.ndarray:
    """Round float64 values to float32 towards zero, so that sums never grow by rounding."""
    result = values.astype(np.float32)
    up = result > values
    result[up] = np.nextafter(result[up], np.float32(0))
    return result


def country_fraction_masks(
    grid: GridSpec,
    countries: Mapping[str, Country],
    iso3_list: Iterable[str] | None = None,
    exclusive: bool = True,
) -> xr.DataArray:
    """Fraction (0-1) of each grid cell's planar lon/lat area inside each country.

    ``iso3_list`` picks and orders the countries (default: all of ``countries``); an unknown
    code raises :class:`ConfigError`. Returns a float32 DataArray ``country_fraction`` with dims
    ``(country, latitude, longitude)``, coordinates ``country`` (ISO3), ``country_name`` and the
    cell centres (degrees). With ``exclusive`` (countries), for every cell the sum over
    countries is at most 1: where a boundary file's polygons overlap, the overlapping fractions
    are scaled down to sum to 1; ``exclusive=False`` keeps each region's own fraction (for
    regions that may overlap, such as hotspots). Values are rounded towards zero to float32.
    """
    codes = _select(countries, iso3_list)
    masks = np.zeros((len(codes), *grid.shape), dtype=np.float32)
    for k, window, fractions in _scaled_fractions(grid, countries, codes, exclusive):
        masks[k][window] = fractions

    import xarray as xr

    return xr.DataArray(
        masks,
        dims=("country", "latitude", "longitude"),
        coords={
            "country": codes,
            "country_name": ("country", [countries[c].name for c in codes]),
            "latitude": ("latitude", grid.lat_centers, {"units": "degrees_north"}),
            "longitude": ("longitude", grid.lon_centers, {"units": "degrees_east"}),
        },
        name=MASK_VARIABLE,
        attrs={
            "long_name": "fraction of grid cell area inside country",
            "units": "1",
            "comment": "planar lon/lat area of country polygon ∩ cell divided by cell area",
            "grid": grid.harp_operation(),
        },
    )


def _scaled_fractions(grid: GridSpec, regions: Mapping[str, Country], codes: list[str], exclusive: bool):
    """``(k, window, fractions)`` per region ``codes[k]``: its float32 cell fractions over the
    window of cells its bounding box touches, scaled down where exclusive regions overlap."""
    lat_edges, lon_edges = grid.lat_edges, grid.lon_edges
    windows = []
    total = np.zeros(grid.shape)
    for code in codes:
        geometry = _shifted_copies(regions[code].geometry, lon_edges[0], lon_edges[-1])
        window, fractions = _fractions_in_window(geometry, lat_edges, lon_edges)
        total[window] += fractions
        windows.append((window, fractions))
    over = total > 1.0 if exclusive else np.zeros(grid.shape, bool)
    for k, (window, fractions) in enumerate(windows):
        scale = np.where(over[window], total[window], 1.0)
        yield k, window, _float32_down(fractions / scale)


SPARSE_VARIABLES = ("region_index", "cell_index", "fraction")


def sparse_fraction_masks(grid: GridSpec, regions: Mapping[str, Country], exclusive: bool = True) -> xr.Dataset:
    """The fractions of :func:`country_fraction_masks` (same values) stored sparsely, for
    region sets of thousands of small regions whose dense masks would not fit in memory
    (1,200 NUTS-3 regions on a 0.05 degree Europe grid: 5 GB dense, 560,000 entries sparse).

    A Dataset with dim ``entry`` (the cells with a fraction > 0 of each region, by region then
    cell): ``region_index`` (into coordinate ``country``, the region codes, with
    ``country_name``), ``cell_index`` (flat row-major cell index, latitude first), ``fraction``
    (float32, 0-1); coordinates ``latitude``/``longitude`` (cell centres, degrees) and the
    ``grid`` attribute. :func:`mask_entries` reads either layout."""
    codes = list(regions)
    n_lon = grid.shape[1]
    region_index, cell_index, fraction = [], [], []
    for k, (rows, cols), values in _scaled_fractions(grid, regions, codes, exclusive):
        r, c = np.nonzero(values > 0)
        region_index.append(np.full(r.size, k, np.int32))
        cell_index.append((r + rows.start) * n_lon + c + cols.start)
        fraction.append(values[r, c])
    import xarray as xr

    return xr.Dataset(
        {"region_index": ("entry", np.concatenate(region_index) if codes else np.zeros(0, np.int32)),
         "cell_index": ("entry", np.concatenate(cell_index).astype(np.int64) if codes else np.zeros(0, np.int64)),
         "fraction": ("entry", np.concatenate(fraction) if codes else np.zeros(0, np.float32),
                      {"long_name": "fraction of grid cell area inside region", "units": "1"})},
        coords={"country": codes, "country_name": ("country", [regions[c].name for c in codes]),
                "latitude": ("latitude", grid.lat_centers, {"units": "degrees_north"}),
                "longitude": ("longitude", grid.lon_centers, {"units": "degrees_east"})},
        attrs={"grid": grid.harp_operation(),
               "comment": "planar lon/lat area of region polygon ∩ cell divided by cell area; "
                          "sparse: cells with a fraction > 0 only"},
    )


def mask_codes(masks: xr.DataArray | xr.Dataset) -> list[str]:
    """The region codes of dense (:func:`country_fraction_masks`) or sparse
    (:func:`sparse_fraction_masks`) masks, in order."""
    name = "country" if "country" in masks.coords else masks.dims[0]
    return [str(c) for c in masks[name].values]


def mask_entries(masks: xr.DataArray | xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(region_index, cell_index, fraction)`` of every (region, cell) with a fraction > 0, by
    region then cell (cell index flat row-major, latitude first; fraction float64), from dense
    or sparse masks."""
    import xarray as xr

    if isinstance(masks, xr.Dataset):
        return (masks["region_index"].values.astype(np.int64), masks["cell_index"].values.astype(np.int64),
                masks["fraction"].values.astype(np.float64))
    flat = masks.values.reshape(masks.shape[0], -1)
    regions, cells = np.nonzero(flat)
    return regions, cells, flat[regions, cells].astype(np.float64)


# --- cache --------------------------------------------------------------------------------------
def _read_cached(path: Path, grid: GridSpec, digest: str, codes: list[str] | None, sparse: bool):
    """The cached masks at ``path`` if readable and built for this grid, file and regions."""
    import xarray as xr

    try:
        with xr.open_dataset(path) as dataset:
            masks = dataset.load() if sparse else dataset[MASK_VARIABLE].load()
    except (OSError, ValueError, KeyError) as exc:
        log.warning("%s: unreadable mask cache (%s); rebuilding", path, exc)
        return None
    if (
        masks.attrs.get("grid") == grid.harp_operation()
        and masks.attrs.get("boundary_sha256") == digest
        and (codes is None or mask_codes(masks) == codes)
    ):
        return masks
    log.warning("%s: mask cache does not match its key; rebuilding", path)
    return None


def _write_masks(masks: xr.DataArray | xr.Dataset, path: Path) -> None:
    """Write dense or sparse masks as compressed netCDF, atomically (readers never see a
    partial file)."""
    import xarray as xr

    if isinstance(masks, xr.Dataset):
        encoding = {name: {"zlib": True, "complevel": 4} for name in SPARSE_VARIABLES}
    else:
        encoding = {MASK_VARIABLE: {"zlib": True, "complevel": 4, "_FillValue": None,
                                    "chunksizes": (1, *masks.shape[1:])}}
    write_atomically(path, lambda tmp: masks.to_netcdf(tmp, encoding=encoding))


def load_or_build_masks(
    grid: GridSpec,
    cache_dir: str | Path,
    iso3_list: Iterable[str] | None = None,
    path: str | Path | None = None,
) -> xr.DataArray:
    """:func:`country_fraction_masks` for ``grid``, cached as netCDF in ``cache_dir``.

    The cache file name is a hash of ``grid.harp_operation()``, the sha256 of the boundary
    file's bytes (``path``, default the shipped one) and ``iso3_list``; the same values are
    stored as attributes and checked on reading, so a changed boundary file or grid is never
    served stale masks. The file is written atomically (temporary file + ``os.replace``).
    """
    data, source = _read_boundary_file(path)
    digest = hashlib.sha256(data).hexdigest()
    codes = None if iso3_list is None else list(iso3_list)
    return _cached_masks(grid, Path(cache_dir), "country_masks", digest, codes, Path(source).name,
                         lambda: country_fraction_masks(grid, _parse_countries(data, source), codes))


def load_or_build_region_masks(grid: GridSpec, cache_dir: str | Path, region_file) -> xr.Dataset:
    """Exclusive sparse fractional masks (:func:`sparse_fraction_masks`) of the regions of a
    :class:`s5p_lockdown.region_files.RegionFile` (ordered by id) on ``grid``, cached in
    ``cache_dir`` like :func:`load_or_build_masks`, keyed by the grid and the digest of the
    regions read (ids, names, countries, geometries)."""
    return _cached_masks(grid, Path(cache_dir), "region_masks", region_file.digest, list(region_file.regions),
                         Path(region_file.spec.file).name,
                         lambda: sparse_fraction_masks(grid, region_file.regions, exclusive=True), sparse=True)


def _cached_masks(grid: GridSpec, cache_dir: Path, prefix: str, digest: str, codes: list[str] | None,
                  source_name: str, build, sparse: bool = False):
    """The masks cached under a hash of (grid, digest, codes), or ``build()`` written there."""
    key = json.dumps([grid.harp_operation(), digest, codes])
    cache_file = cache_dir / f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:16]}.nc"
    if cache_file.exists() and (masks := _read_cached(cache_file, grid, digest, codes, sparse)) is not None:
        return masks
    masks = build()
    masks.attrs.update(boundary_file=source_name, boundary_sha256=digest)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _write_masks(masks, cache_file)
    log.info("wrote %s %s (%d regions, grid %s)", prefix.replace("_", " "), cache_file, len(mask_codes(masks)), grid)
    return masks


# --- hotspots -----------------------------------------------------------------------------------
KM_PER_DEGREE = 111.195
"""Kilometres per degree of latitude (spherical Earth, R = 6371 km)."""


def load_hotspots(path: str | Path | None = None) -> dict[str, Country]:
    """Hotspots (cities, industrial regions) as circular regions, by name.

    The table (default: the shipped ``hotspots.csv``) has columns ``name, iso3, kind, lat, lon,
    radius_km``; each becomes a polygon of the circle of ``radius_km`` around (lat, lon) in the
    lon/lat plane (an ellipse 1/cos(lat) wider in longitude). The regions' ``iso3`` field
    holds the hotspot name; :func:`hotspot_countries` gives each hotspot's country.
    """
    table = hotspot_table(path)
    regions = {}
    for row in table.itertuples(index=False):
        radius_lat = row.radius_km / KM_PER_DEGREE
        radius_lon = radius_lat / max(np.cos(np.radians(row.lat)), 0.05)
        circle = shapely.affinity.scale(
            shapely.Point(row.lon, row.lat).buffer(1.0, quad_segs=16), radius_lon, radius_lat
        )
        regions[row.name] = Country(row.name, "", f"{row.name} ({row.iso3})", True, circle)
    return regions


def hotspot_countries(path: str | Path | None = None) -> dict[str, str]:
    """Hotspot name -> ISO3 code of its country."""
    table = hotspot_table(path)
    return dict(zip(table["name"], table["iso3"]))


def hotspot_table(path: str | Path | None = None):
    """The hotspot table as a DataFrame (default: the shipped ``hotspots.csv``: ``name, iso3,
    kind, lat, lon, radius_km, peak_mol_m2``), checked for the columns every user needs and for
    unique names; the one reader of that table."""
    import pandas as pd

    from s5p_lockdown.resources import resource_path

    source = Path(path) if path else resource_path("hotspots.csv")
    try:
        table = pd.read_csv(source)
    except (OSError, ValueError) as exc:
        raise BoundaryFileError(source, f"cannot read the hotspot table: {exc}") from None
    missing = {"name", "iso3", "lat", "lon", "radius_km"} - set(table.columns)
    if missing:
        raise BoundaryFileError(source, f"hotspot table lacks column(s) {sorted(missing)}")
    if table["name"].duplicated().any():
        raise BoundaryFileError(source, f"duplicate hotspot names {sorted(table['name'][table['name'].duplicated()])}")
    return table


def hotspot_masks(grid: GridSpec, path: str | Path | None = None) -> xr.DataArray:
    """Fraction of each grid cell inside each hotspot circle (dims country=hotspot name,
    latitude, longitude); hotspots may overlap (e.g. Milan inside the Po Valley)."""
    return country_fraction_masks(grid, load_hotspots(path), exclusive=False)


# --- region sets for pixel attribution ----------------------------------------------------------
@dataclass(frozen=True)
class RegionSet:
    """Regions that pixels are attributed to, with their fractional masks on the grid.

    ``masks`` is (region, latitude, longitude) as built by
    :func:`s5p_lockdown.regions.country_fraction_masks`, or the sparse layout of
    :func:`sparse_fraction_masks` (read both with :func:`mask_entries`); ``regions`` holds the polygons of the
    same codes (lon/lat degrees, in [-180, 180]). ``exclusive``: a pixel belongs to at most one
    region (countries); otherwise to every region containing its centre (hotspots may overlap).
    """

    regions: Mapping[str, Country]
    masks: xr.DataArray | xr.Dataset
    exclusive: bool = True

    @property
    def codes(self) -> list[str]:
        return mask_codes(self.masks)

    def grid(self) -> GridSpec:
        return GridSpec.from_harp(self.masks.attrs["grid"])


REGION_SETS = ("countries", "hotspots", "regions")
"""The region sets the workflow can attribute pixels to (``region_set``'s ``kind``); ``regions``
only when the config names a region file."""


def region_set(kind: str, grid: GridSpec, masks_dir: str | Path, countries: Iterable[str] | None = None,
               hotspots: str | Path | None = None, regions=None) -> RegionSet:
    """The workflow's ``countries`` (shipped boundaries, the codes ``countries``, exclusive;
    masks cached in ``masks_dir``), ``hotspots`` (the hotspot table ``hotspots``, default the
    shipped one; circles may overlap) or ``regions`` (the regions of a region file, ``regions``
    a :class:`s5p_lockdown.region_files.RegionFile`, exclusive; masks cached in ``masks_dir``)
    on ``grid``."""
    if kind == "countries":
        return RegionSet(load_countries(), load_or_build_masks(grid, masks_dir, countries), exclusive=True)
    if kind == "hotspots":
        return RegionSet(load_hotspots(hotspots), hotspot_masks(grid, hotspots), exclusive=False)
    if kind == "regions":
        if regions is None:
            raise ValueError("region set 'regions' needs a region file (the config's regions section)")
        return RegionSet(regions.regions, load_or_build_region_masks(grid, masks_dir, regions), exclusive=True)
    raise ValueError(f"unknown region set {kind!r}; known: {', '.join(REGION_SETS)}")
