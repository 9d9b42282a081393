"""Synthetic sub-national regions: a Voronoi tessellation of countries, for demos and benchmarks.

Real NUTS boundaries are not shipped (users bring their own file, :mod:`s5p_lockdown.region_files`);
the demo, the tests and the mask benchmark need a realistic set of small polygons instead: each
country is cut into Voronoi cells around random points inside it, clipped to its borders, so the
regions tile every country exactly (no gap, no overlap) and have irregular, country-shaped
edges where they meet the border or the coast, like NUTS regions. These regions are **demo
data**: their ids (``<ISO3>-<number>``) and names say so, and they correspond to no real
administrative unit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import shapely

from s5p_lockdown.regions import Country


def voronoi_regions(countries: Mapping[str, Country], n_regions: int, seed: int = 0,
                    iso3_list: Iterable[str] | None = None):
    """About ``n_regions`` demo regions tiling the countries ``iso3_list`` (default all):
    each country gets a share proportional to its planar lon/lat area (at least one).

    Returns a GeoDataFrame (EPSG:4326, lon/lat degrees) with columns ``region_id``
    (``<ISO3>-<k>``), ``name`` (``Demo region <k> of <country>``), ``iso3`` and ``geometry``
    (Polygon or MultiPolygon), ordered by country then number; deterministic in ``seed``.
    """
    import geopandas

    codes = list(countries) if iso3_list is None else list(iso3_list)
    areas = np.array([countries[c].geometry.area for c in codes])
    shares = np.maximum(1, np.rint(n_regions * areas / areas.sum()).astype(int))
    rng = np.random.default_rng(seed)
    rows = []
    for code, count in zip(codes, shares):
        country = countries[code]
        for k, cell in enumerate(_tessellate(country.geometry, int(count), rng), 1):
            rows.append({"region_id": f"{code}-{k:03d}", "name": f"Demo region {k} of {country.name}",
                         "iso3": code, "geometry": cell})
    return geopandas.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


def _tessellate(geometry: shapely.Geometry, count: int, rng: np.random.Generator) -> list[shapely.Geometry]:
    """``geometry`` cut into the Voronoi cells of ``count`` random points inside it (cells that
    miss the geometry are dropped; only polygonal parts kept)."""
    if count == 1:
        return [geometry]
    west, south, east, north = geometry.bounds
    points = []
    while len(points) < count:
        x = rng.uniform(west, east, 4 * count)
        y = rng.uniform(south, north, 4 * count)
        inside = shapely.intersects_xy(geometry, x, y)
        points += list(zip(x[inside], y[inside]))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(points[:count]),
                                                       extend_to=shapely.box(west, south, east, north)))
    pieces = []
    for cell in cells:
        piece = shapely.intersection(geometry, cell)
        parts = [p for p in shapely.get_parts(piece) if isinstance(p, shapely.Polygon) and p.area > 0]
        if parts:
            pieces.append(parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts))
    return pieces
