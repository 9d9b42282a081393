"""Searching the CDSE OData catalogue for Sentinel-5P L2 NO2 products.

Conventions: days are UTC; a product belongs to the day of the middle of its sensing interval
(:func:`s5p_lockdown.archive.overpass_day`), and ranges of days include both ends. Sizes are in
bytes. Areas are lon/lat polygons in degrees (WGS84); a box is ``(south, north, west, east)``.

The catalogue is searched on sensing start (``ContentDate/Start``) from two hours before the
first day (an orbit starting late on the previous day can belong to it) to the end of the last
day; products whose overpass day falls outside the range are then dropped. Streams and processor
version are filtered on the product name, on the server and again here. When several products
hold the same orbit, :func:`s5p_lockdown.archive.index_files` picks one stream and processor
version for it and keeps every file of that choice with a distinct start (NRTI slices).

Paging: the catalogue serves at most :data:`MAX_SKIP` results of one query (past it, it stops
giving ``@odata.nextLink`` without an error). Searches are therefore split into calendar
months, and a part that still comes back truncated (a full last page without a next link) is
split in halves, down to :data:`MIN_SEARCH_SPAN`; a truncated search that cannot be split
further is an error, never a silent gap.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import quote

import requests
import shapely
from shapely.geometry.polygon import orient

from s5p_lockdown.acquire.errors import AcquireError
from s5p_lockdown.acquire.http import CdseSession, Endpoints, RetryPolicy, send
from s5p_lockdown.archive import DEFAULT_STREAM_PREFERENCE, index_files, overpass_day
from s5p_lockdown.errors import ConfigError
from s5p_lockdown.filenames import NO2_PRODUCT, STREAMS, ProductName

log = logging.getLogger(__name__)

SEARCH_LEAD = timedelta(hours=2)
"""How long before the first day the sensing-start search begins (an orbit lasts ~101 min)."""
PAGE_SIZE = 100
"""Products per page (``$top``; the service allows up to 1000)."""
MAX_SKIP = 10_000
"""The catalogue's cap on ``$skip``: a query yields at most this many results plus one page."""
MIN_SEARCH_SPAN = timedelta(hours=1)
"""Truncated searches are split down to this sensing-start interval before giving up."""
COUNTRY_MARGIN_DEG = 0.2
"""A country's search polygon is its convex hull grown by this many degrees, then simplified
(by half as much), so it covers the country with few vertices."""


@dataclass(frozen=True)
class Product:
    """A catalogue entry: ``id`` (UUID), ``name`` as delivered (``.nc``, or ``.zip`` when
    zipped), ``size`` in bytes and ``md5`` (hex) of the delivered file according to the
    catalogue (None when it gives none, or a size of 0: unknown, the HTTP answer says), and
    ``online`` (False: must be ordered from the long-term archive)."""

    id: str
    name: str
    size: int | None
    md5: str | None = None
    online: bool = True

    @property
    def product_name(self) -> ProductName:
        return ProductName.parse(self.name)

    @property
    def filename(self) -> str:
        """Name of the netCDF file in the archive (``<stem>.nc``)."""
        return self.product_name.filename

    @property
    def day(self) -> date:
        """Overpass day (UTC)."""
        return overpass_day(self.product_name)

    @classmethod
    def from_odata(cls, entry: dict) -> Product:
        md5 = next(
            (c.get("Value") for c in entry.get("Checksum") or []
             if str(c.get("Algorithm", "")).upper() == "MD5"),
            None,
        )
        size = entry.get("ContentLength")
        return cls(
            id=str(entry["Id"]), name=str(entry["Name"]), size=int(size) if size else None,
            md5=md5.lower() if md5 else None, online=bool(entry.get("Online", True)),
        )


# --- areas and filters -------------------------------------------------------------------------
def bbox_polygon(bbox: Iterable[float]) -> shapely.Polygon:
    """The polygon of a ``(south, north, west, east)`` box in degrees; west < east, both in
    [-180, 180] (split a box crossing the antimeridian in two searches)."""
    south, north, west, east = (float(v) for v in bbox)
    if not (-90 <= south < north <= 90):
        raise ConfigError(
            f"bbox: need -90 <= south < north <= 90, got south={south}, north={north}"
        )
    if not (-180 <= west < east <= 180):
        raise ConfigError(f"bbox: need -180 <= west < east <= 180, got west={west}, east={east}")
    return orient(shapely.box(west, south, east, north), 1.0)


def country_polygon(iso3: str, countries: dict | None = None) -> shapely.Polygon:
    """A simple polygon covering the country ``iso3`` (see :data:`COUNTRY_MARGIN_DEG`);
    ``countries`` defaults to :func:`s5p_lockdown.regions.load_countries`."""
    if countries is None:
        from s5p_lockdown.regions import load_countries

        countries = load_countries()
    code = iso3.upper()
    if code not in countries:
        raise ConfigError(
            f"country: unknown ISO3 code {iso3!r}; known: {', '.join(sorted(countries))}"
        )
    hull = countries[code].geometry.convex_hull.buffer(COUNTRY_MARGIN_DEG)
    return orient(hull.simplify(COUNTRY_MARGIN_DEG / 2), 1.0)


def _wkt(polygon: shapely.Polygon) -> str:
    points = ", ".join(f"{x:g} {y:g}" for x, y in polygon.exterior.coords)
    return f"POLYGON(({points}))"


def search_window(start: date, end: date) -> tuple[datetime, datetime]:
    """Sensing-start interval [from, to) (naive UTC) to search for the days ``start..end``."""
    if end < start:
        raise ConfigError(f"end {end} is before start {start}")
    return (datetime.combine(start, time()) - SEARCH_LEAD,
            datetime.combine(end + timedelta(days=1), time()))


def odata_filter(
    start: datetime, end: datetime, area: shapely.Polygon, streams: Iterable[str],
    processor_version: str | None = None,
) -> str:
    """OData ``$filter`` for L2 NO2 products sensed from ``start`` (inclusive) to ``end``
    (exclusive), naive UTC, intersecting ``area``, of the given streams and version."""
    clauses = [
        "Collection/Name eq 'SENTINEL-5P'",
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
        f"att/OData.CSC.StringAttribute/Value eq '{NO2_PRODUCT}')",
        f"ContentDate/Start ge {start:%Y-%m-%dT%H:%M:%S}.000Z",
        f"ContentDate/Start lt {end:%Y-%m-%dT%H:%M:%S}.000Z",
        "(" + " or ".join(f"startswith(Name,'S5P_{s}_')" for s in streams) + ")",
    ]
    if processor_version:
        clauses.append(f"contains(Name,'_{processor_code(processor_version)}_')")
    clauses.append(f"OData.CSC.Intersects(area=geography'SRID=4326;{_wkt(area)}')")
    return " and ".join(clauses)


def normalise_streams(streams: Iterable[str] | None) -> tuple[str, ...]:
    """Streams as in file names (``PAL`` -> ``PAL_``), in the given order of preference;
    default :data:`s5p_lockdown.archive.DEFAULT_STREAM_PREFERENCE`."""
    if not streams:
        return DEFAULT_STREAM_PREFERENCE
    result = tuple("PAL_" if s.upper() == "PAL" else s.upper() for s in streams)
    if unknown := [s for s in result if s not in STREAMS]:
        raise ConfigError(f"stream: unknown stream(s) {unknown}; known: OFFL, RPRO, NRTI, PAL")
    return result


def processor_code(version: str) -> str:
    """``"2.4.0"`` -> ``"020400"`` (the processor field of file names)."""
    try:
        major, minor, patch = (int(p) for p in version.split("."))
    except ValueError:
        raise ConfigError(f"processor_version: {version!r} is not like 2.4.0") from None
    return f"{major:02d}{minor:02d}{patch:02d}"


# --- search ------------------------------------------------------------------------------------
class _Truncated(Exception):
    """The catalogue stopped paging before the end of the results (:data:`MAX_SKIP`)."""


def _pages(
    session, url: str, retry: RetryPolicy, timeout: float, page_size: int
) -> Iterator[list[dict]]:
    """The pages of a search; raises :class:`_Truncated` on a full page without a next link
    (the service's paging cap: more results exist than it will page through)."""
    while url:
        response = send(session, "GET", url, retry, "catalogue search", timeout=timeout)
        if response.status_code != 200:
            raise AcquireError(
                f"catalogue search: HTTP {response.status_code} from {url.split('?')[0]}: "
                f"{response.text[:300]}"
            )
        try:
            page = response.json()
            entries = page["value"]
        except (ValueError, KeyError, TypeError):
            raise AcquireError("catalogue search: answer is not an OData product list") from None
        yield entries
        url = page.get("@odata.nextLink") if entries else None
        if url is None and len(entries) >= page_size:
            raise _Truncated()


def split_window(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut at the first instant of each calendar month."""
    cuts = [start]
    month = datetime(start.year, start.month, 1)
    while True:
        month = datetime(month.year + month.month // 12, month.month % 12 + 1, 1)
        if month >= end:
            break
        cuts.append(month)
    return list(zip(cuts, cuts[1:] + [end]))


def search_products(
    start: date, end: date, area: shapely.Polygon, streams: Iterable[str] | None = None,
    processor_version: str | None = None, endpoints: Endpoints = Endpoints(),
    retry: RetryPolicy = RetryPolicy(), timeout: float = 60.0,
    session: requests.Session | None = None, page_size: int = PAGE_SIZE,
) -> list[Product]:
    """All L2 NO2 products of the days ``start..end`` (inclusive, UTC overpass day) over
    ``area``, of ``streams`` and ``processor_version`` (all if None), one search per calendar
    month (split further when the catalogue truncates it, see the module docstring),
    following ``@odata.nextLink`` pages; not de-duplicated (see :func:`select_products`)."""
    streams = normalise_streams(streams)
    session = session or CdseSession()
    entries: list[dict] = []
    pending = split_window(*search_window(start, end))
    while pending:
        low, high = pending.pop(0)
        try:
            entries += _search(session, low, high, area, streams, processor_version, endpoints,
                               retry, timeout, page_size)
        except _Truncated:
            if high - low <= MIN_SEARCH_SPAN:
                raise AcquireError(
                    f"catalogue search: more than {MAX_SKIP} products sensed between {low} and "
                    f"{high} UTC (the catalogue's paging cap); restrict the area, streams or "
                    "processor version"
                ) from None
            middle = low + (high - low) / 2
            log.info("catalogue: search %s..%s truncated by the paging cap; splitting it",
                     low, high)
            pending[:0] = [(low, middle), (middle, high)]
    products = []
    for entry in entries:
        try:
            product = Product.from_odata(entry)
            name = product.product_name
        except (KeyError, TypeError, ValueError) as exc:  # FileNameError is a ValueError
            log.warning("ignoring catalogue entry %s: %s", entry.get("Name", entry.get("Id")), exc)
            continue
        if (
            name.is_no2 and name.stream in streams
            and processor_version in (None, name.processor_version)
            and start <= product.day <= end
        ):
            products.append(product)
    log.info("catalogue: %d L2 NO2 products for %s..%s", len(products), start, end)
    return products


def _search(
    session, low: datetime, high: datetime, area: shapely.Polygon, streams: tuple[str, ...],
    processor_version: str | None, endpoints: Endpoints, retry: RetryPolicy, timeout: float,
    page_size: int,
) -> list[dict]:
    """The catalogue entries of one search (sensing start in ``[low, high)``), all pages;
    raises :class:`_Truncated` when the catalogue stops paging early."""
    query = {
        "$filter": odata_filter(low, high, area, streams, processor_version),
        "$orderby": "ContentDate/Start asc",
        "$top": str(page_size),
    }
    url = endpoints.catalogue + "/Products?" + "&".join(
        f"{key}={quote(value, safe='')}" for key, value in query.items()
    )
    return [entry for entries in _pages(session, url, retry, timeout, page_size)
            for entry in entries]


def select_products(
    products: Iterable[Product], stream_preference: Iterable[str] | None = None
) -> list[Product]:
    """One stream and version per orbit, all its slices (see the module docstring), online
    products only, sorted by day, orbit and start."""
    by_name = {}
    for product in products:
        if not product.online:
            log.warning("%s is offline (must be ordered from the long-term archive); skipped",
                        product.name)
            continue
        by_name[product.name] = product
    kept = index_files(list(by_name), normalise_streams(stream_preference))
    return [by_name[name] for name in kept["name"]]
