"""Region boundary files (NUTS regions, city boundaries, ...) read with geopandas.

A region file is any vector file GDAL reads through pyogrio (GeoPackage, Shapefile, GeoJSON,
FlatGeobuf, ...) in any coordinate reference system. The workflow's ``regions`` config names it
and its columns (:class:`RegionFileSpec`)::

    regions: {file: NUTS_RG_01M_2021_3035.gpkg, id: NUTS_ID, name: NAME_LATN,
              filter: "LEVL_CODE == 3", country: CNTR_CODE}

Reading (:func:`read_region_file`):

* the rows are restricted by ``filter`` (a :meth:`pandas.DataFrame.query` expression over the
  file's columns), then reprojected to longitude/latitude (EPSG:4326, degrees, longitudes in
  [-180, 180]); a file without a CRS is an error (no guess is made about its units);
* ids (the ``id`` column, as text, stripped) must be non-empty and unique; regions are ordered
  by id (the order of every output);
* geometries must be polygons or multipolygons; an invalid one (self-intersection, ...) is
  repaired with GEOS ``make_valid`` (its polygonal part kept) and the repaired ids are logged;
  a missing or empty geometry, or one with no polygonal part, is an error naming the id;
* each region's country (ISO 3166-1 alpha-3, for the country lockdown dates it falls back to)
  is the ``country`` column's code (alpha-3, or alpha-2 as in NUTS' ``CNTR_CODE``, where
  Eurostat's ``EL`` and ``UK`` stand for GR and GB) or, without that column, the shipped
  country containing a point inside the region (``""`` when none does).

Every error is a :class:`~s5p_lockdown.regions.BoundaryFileError` naming the file.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely

from s5p_lockdown.errors import ConfigError
from s5p_lockdown.regions import BoundaryFileError, Country, country_of_points, load_countries

log = logging.getLogger(__name__)

LONLAT_CRS = "EPSG:4326"

EUROSTAT_COUNTRY_CODES = {"EL": "GR", "UK": "GB"}
"""Eurostat's two-letter codes that differ from ISO 3166-1 alpha-2 (NUTS ``CNTR_CODE``)."""


@dataclass(frozen=True)
class RegionFileSpec:
    """Which file and columns hold the regions (the ``regions`` config section).

    ``file``: path of the vector file; ``id``/``name``: columns of the region id (unique) and
    display name; ``filter``: optional :meth:`pandas.DataFrame.query` expression selecting rows
    (e.g. ``"LEVL_CODE == 2"``); ``country``: optional column of the region's country code;
    ``layer``: the layer of a multi-layer file (GeoPackage), default the first.
    """

    file: str
    id: str
    name: str
    filter: str | None = None
    country: str | None = None
    layer: str | None = None

    @classmethod
    def from_config(cls, section: Mapping) -> RegionFileSpec:
        """From the validated ``regions`` config section; a missing key raises ConfigError."""
        missing = [k for k in ("file", "id", "name") if not section.get(k)]
        if missing:
            raise ConfigError(f"regions: missing key(s) {missing} (file, id and name are needed)")
        return cls(**{k: section.get(k) for k in ("file", "id", "name", "filter", "country", "layer")})


@dataclass(frozen=True)
class RegionFile:
    """The regions of a file: ``regions`` (id -> :class:`~s5p_lockdown.regions.Country` with
    the id in ``iso3``, lon/lat polygons), ``country_of`` (id -> ISO3 of its country, ``""``
    when unknown), ``digest`` (sha256 of the ids, names, countries and geometries read: the
    mask cache key, the same whatever the format the regions came in) and the ``spec``."""

    spec: RegionFileSpec
    regions: dict[str, Country]
    country_of: dict[str, str]
    digest: str
    repaired: list[str] = field(default_factory=list)


def read_region_file(spec: RegionFileSpec) -> RegionFile:
    """Read, filter, check, repair and reproject the regions of ``spec`` (module docstring)."""
    import geopandas
    import pyogrio.errors

    path = Path(spec.file)
    if not path.exists():
        raise BoundaryFileError(path, "no such region file")
    try:
        frame = geopandas.read_file(path, layer=spec.layer, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        raise BoundaryFileError(path, f"cannot read as a region boundary file: {exc}") from None
    for key in ("id", "name", "country"):
        column = getattr(spec, key)
        if column is not None and column not in frame.columns:
            columns = ", ".join(c for c in frame.columns if c != frame.geometry.name)
            raise BoundaryFileError(path, f"no column {column!r} (regions.{key}); columns: {columns}")
    if spec.filter:
        try:
            frame = frame.query(spec.filter)
        except Exception as exc:  # query raises many types (SyntaxError, UndefinedVariableError, ...)
            raise BoundaryFileError(path, f"regions.filter {spec.filter!r} fails: {exc}") from None
    if frame.empty:
        raise BoundaryFileError(path, "no region" + (f" passes regions.filter {spec.filter!r}" if spec.filter else ""))
    if frame.crs is None:
        raise BoundaryFileError(
            path, "has no coordinate reference system (CRS), so its coordinates cannot be placed "
            "on the grid; add one (e.g. ogr2ogr -a_srs EPSG:4326, or the .prj file of a Shapefile)")

    ids = frame[spec.id].astype(str).str.strip()
    if (ids == "").any() or frame[spec.id].isna().any():
        raise BoundaryFileError(path, f"rows without a region id (column {spec.id!r})")
    if ids.duplicated().any():
        repeated = sorted(set(ids[ids.duplicated()]))
        raise BoundaryFileError(
            path, f"region ids repeat in column {spec.id!r}: {', '.join(repeated[:10])}"
            + (f" and {len(repeated) - 10} more" if len(repeated) > 10 else "")
            + ("" if spec.filter else "; a filter (regions.filter) may select one level"))
    # sorted by id: some formats (FlatGeobuf's spatial index) do not keep the written order
    order = np.argsort(ids.to_numpy(), kind="stable")
    frame, ids = frame.iloc[order], ids.iloc[order]
    missing = frame.geometry.isna() | frame.geometry.is_empty
    if missing.any():
        raise BoundaryFileError(path, f"region(s) without geometry: {', '.join(ids[missing][:10])}")

    frame = frame.to_crs(LONLAT_CRS)
    geometries, repaired = [], []
    for code, geometry in zip(ids, frame.geometry.values):
        if not geometry.is_valid:
            reason = shapely.is_valid_reason(geometry)
            geometry = _polygonal_part(shapely.make_valid(geometry))
            if geometry is None:
                raise BoundaryFileError(path, f"region {code}: invalid geometry ({reason}) with no "
                                              "polygonal part once repaired")
            repaired.append(code)
            log.warning("%s: region %s: invalid geometry (%s) repaired with make_valid", path, code, reason)
        if not isinstance(geometry, shapely.Polygon | shapely.MultiPolygon):
            raise BoundaryFileError(path, f"region {code}: geometry must be a Polygon or "
                                          f"MultiPolygon, not {geometry.geom_type}")
        shapely.prepare(geometry)
        geometries.append(geometry)

    names = frame[spec.name].astype(str).str.strip().tolist()
    codes = ids.tolist()
    if spec.country:
        countries = _country_codes(path, codes, frame[spec.country].astype(str).tolist())
    else:
        points = shapely.point_on_surface(np.array(geometries, dtype=object))
        countries = list(country_of_points(shapely.get_x(points), shapely.get_y(points), load_countries()))

    digest = hashlib.sha256()
    for code, name, country, geometry in zip(codes, names, countries, geometries):
        digest.update("\x1f".join((code, name, country)).encode() + shapely.to_wkb(geometry))
    regions = {code: Country(code, "", name, True, geometry)
               for code, name, geometry in zip(codes, names, geometries)}
    return RegionFile(spec, regions, dict(zip(codes, countries)), digest.hexdigest(), repaired)


def _polygonal_part(geometry: shapely.Geometry) -> shapely.Geometry | None:
    """The union of the polygons of a repaired geometry (``make_valid`` may return a
    collection with lines or points where a polygon collapsed), None if it has none."""
    if isinstance(geometry, shapely.Polygon | shapely.MultiPolygon):
        return geometry
    parts = [g for g in shapely.get_parts(geometry) if isinstance(g, shapely.Polygon | shapely.MultiPolygon)]
    return shapely.union_all(parts) if parts else None


def _country_codes(path: Path, codes: list[str], values: list[str]) -> list[str]:
    """ISO3 codes of the regions from their country column (alpha-3, or alpha-2 of the shipped
    countries, with Eurostat's EL/UK accepted)."""
    shipped = load_countries()
    by_iso2 = {c.iso2: c.iso3 for c in shipped.values() if c.iso2}
    out = []
    for code, value in zip(codes, values):
        value = value.strip().upper()
        value = EUROSTAT_COUNTRY_CODES.get(value, value)
        iso3 = value if value in shipped else by_iso2.get(value)
        if iso3 is None:
            raise BoundaryFileError(path, f"region {code}: unknown country code {value!r} "
                                          "(ISO 3166-1 alpha-2 or alpha-3 of a shipped country)")
        out.append(iso3)
    return out


OUTLINE_TOLERANCE = 0.005
"""Simplification of the region outlines written for maps (degrees, ~0.5 km)."""


def write_region_outlines(region_file: RegionFile, path: str | Path) -> Path:
    """The regions as GeoJSON for maps (the dashboard): properties ``region`` (id), ``name``,
    ``iso3`` (its country), lon/lat polygons simplified by :data:`OUTLINE_TOLERANCE` degrees
    (topology kept per polygon), written atomically."""
    import geopandas

    from s5p_lockdown.outputs import write_atomically

    codes = list(region_file.regions)
    frame = geopandas.GeoDataFrame(
        {"region": codes, "name": [region_file.regions[c].name for c in codes],
         "iso3": [region_file.country_of[c] for c in codes]},
        geometry=[shapely.simplify(region_file.regions[c].geometry, OUTLINE_TOLERANCE) for c in codes],
        crs=LONLAT_CRS)
    return write_atomically(path, lambda tmp: frame.to_file(tmp, driver="GeoJSON", engine="pyogrio",
                                                            COORDINATE_PRECISION=4))
