"""Acquisition of Sentinel-5P L2 NO2 products from the Copernicus Data Space Ecosystem (CDSE).

Search the OData catalogue (:mod:`.catalogue`), keep one stream and version per orbit (all
its NRTI slices), skip what the archive already has, and download the rest with an OpenID
token (:mod:`.auth`), resuming interrupted transfers (:mod:`.download`), verifying and placing
each file atomically in
``<archive>/YYYY/MM/DD/<stem>.nc`` (:mod:`.store`).

Conventions: days are UTC overpass days (the middle of the sensing interval) and ranges of days
include both ends; sizes are bytes; delays and timeouts are seconds; boxes are
``(south, north, west, east)`` in degrees.

Typical use::

    settings = AcquireSettings(streams=("OFFL",), jobs=3)
    products = find_products(date(2020, 3, 1), date(2020, 3, 31), bbox_polygon(box), settings)
    plan = plan_downloads(products, archive)          # plan.download, plan.download_bytes
    download(plan.download, archive, settings)        # credentials: CDSE_USERNAME/PASSWORD

:func:`transfer` does the same but returns an :class:`~.store.Outcome` (placed and failed
products with reasons) instead of raising the failures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TextIO

import shapely

from s5p_lockdown.acquire.auth import Credentials, TokenManager, load_credentials
from s5p_lockdown.acquire.catalogue import (
    Product, bbox_polygon, country_polygon, normalise_streams, search_products, select_products,
)
from s5p_lockdown.acquire.errors import (
    AcquireError, ArchiveWriteError, AuthenticationError, CredentialsError, DownloadError,
    TransferError,
)
from s5p_lockdown.acquire.http import Endpoints, RetryPolicy
from s5p_lockdown.acquire.store import Outcome, Plan, download_products, plan_downloads
from s5p_lockdown.archive import DEFAULT_STREAM_PREFERENCE
from s5p_lockdown.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_JOBS = 3
"""Parallel downloads by default."""
MAX_JOBS = 4
"""Parallel downloads at most: the CDSE quota is 4 concurrent connections per user (1 after
12 TB in 30 days; https://documentation.dataspace.copernicus.eu/Quotas.html); beyond it the
service answers HTTP 429."""
JOBS_REASON = (
    f"CDSE allows {MAX_JOBS} concurrent connections per user (1 after 12 TB in 30 days) and "
    "answers HTTP 429 beyond"
)

_SECRET_KEYS = ("username", "password", "token", "access_token", "refresh_token", "credentials")


@dataclass(frozen=True)
class AcquireSettings:
    """How to search and download (never credentials).

    ``streams`` are searched and preferred in this order; ``processor_version`` (e.g.
    ``"2.4.0"``) restricts to one version (None: any, newest preferred); ``jobs`` parallel
    downloads; ``timeout`` seconds per network read; ``netrc`` a credentials file to use
    instead of the environment (see :func:`~.auth.load_credentials`).
    """

    streams: tuple[str, ...] = DEFAULT_STREAM_PREFERENCE
    processor_version: str | None = None
    jobs: int = DEFAULT_JOBS
    endpoints: Endpoints = field(default_factory=Endpoints)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 60.0
    netrc: Path | None = None

    def __post_init__(self):
        object.__setattr__(self, "streams", normalise_streams(self.streams))
        if not 1 <= self.jobs <= MAX_JOBS:
            raise ConfigError(
                f"jobs: {self.jobs} parallel downloads; allowed 1 to {MAX_JOBS}: {JOBS_REASON}"
            )

    @classmethod
    def from_mapping(cls, settings: Mapping) -> AcquireSettings:
        """Settings from a configuration mapping (e.g. the workflow's ``source`` section; keys
        it does not use are ignored): ``stream_preference``, ``processor_version``, ``jobs``,
        ``base_url``, ``catalogue_url``, ``download_url``, ``token_url``, ``netrc``,
        ``retry_attempts``, ``retry_base_delay``, ``retry_max_delay`` (seconds), ``timeout``
        (seconds). Credentials in the mapping are refused."""
        if secrets := [k for k in _SECRET_KEYS if k in settings]:
            raise ConfigError(
                f"{', '.join(secrets)}: credentials must not be in the configuration; set "
                "CDSE_USERNAME and CDSE_PASSWORD or use a netrc file (netrc: PATH)"
            )
        defaults, version = RetryPolicy(), settings.get("processor_version")
        try:
            return cls(
                streams=tuple(settings.get("stream_preference") or DEFAULT_STREAM_PREFERENCE),
                processor_version=str(version) if version else None,
                jobs=int(settings.get("jobs", DEFAULT_JOBS)),
                endpoints=Endpoints.from_urls(
                    settings.get("base_url"), settings.get("catalogue_url"),
                    settings.get("download_url"), settings.get("token_url"),
                ),
                retry=RetryPolicy(
                    int(settings.get("retry_attempts", defaults.attempts)),
                    float(settings.get("retry_base_delay", defaults.base_delay)),
                    float(settings.get("retry_max_delay", defaults.max_delay)),
                ),
                timeout=float(settings.get("timeout", 60.0)),
                netrc=Path(settings["netrc"]) if settings.get("netrc") else None,
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"acquisition settings: {exc}") from None


def find_products(
    start: date, end: date, area: shapely.Polygon, settings: AcquireSettings = AcquireSettings()
) -> list[Product]:
    """The products of the days ``start..end`` (inclusive, UTC) over ``area``: one stream
    and version per orbit (:func:`.catalogue.select_products`)."""
    products = search_products(
        start, end, area, settings.streams, settings.processor_version, settings.endpoints,
        settings.retry, settings.timeout,
    )
    return select_products(products, settings.streams)


def transfer(
    products: list[Product], archive: Path, settings: AcquireSettings = AcquireSettings(),
    credentials: Credentials | None = None, progress: TextIO | None = None,
    ask_totp: Callable[[], str] | None = None,
) -> Outcome:
    """Download ``products`` into ``archive`` (see :func:`.store.download_products`): what
    was placed and what failed, with reasons. ``credentials`` default to
    :func:`~.auth.load_credentials`, read only if there is something to download;
    ``ask_totp`` asks for a two-factor code when needed (see :class:`~.auth.TokenManager`)."""
    if not products:
        return Outcome({}, {})
    tokens = TokenManager(
        credentials or load_credentials(settings.netrc), settings.endpoints.token,
        settings.retry, settings.timeout, ask_totp=ask_totp,
    )
    return download_products(
        products, archive, tokens, settings.endpoints, settings.retry, settings.timeout,
        settings.jobs, progress,
    )


def download(
    products: list[Product], archive: Path, settings: AcquireSettings = AcquireSettings(),
    credentials: Credentials | None = None, progress: TextIO | None = None,
) -> list[Path]:
    """Download ``products`` into ``archive``; returns their archive files in order, or
    raises the failures (see :meth:`.store.Outcome.paths`)."""
    return transfer(products, archive, settings, credentials, progress).paths(products)


def _runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days grouped into inclusive (first, last) ranges."""
    runs: list[list[date]] = []
    for day in sorted(set(days)):
        if runs and day - runs[-1][1] == timedelta(days=1):
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(first, last) for first, last in runs]


def find_for_days(
    days: Iterable[date], area: shapely.Polygon, settings: AcquireSettings = AcquireSettings()
) -> list[Product]:
    """Like :func:`find_products` for a set of days (one search per run of consecutive days,
    split by month)."""
    found = []
    for first, last in _runs(days):
        found += search_products(
            first, last, area, settings.streams, settings.processor_version, settings.endpoints,
            settings.retry, settings.timeout,
        )
    return select_products(found, settings.streams)


def fetch_for_days(
    days: list[date], bbox: tuple[float, float, float, float], archive: Path, settings: Mapping,
) -> list[Path]:
    """Make sure ``archive`` holds one L2 NO2 product per orbit over ``bbox`` for each of
    ``days`` (UTC overpass days), downloading what is missing; returns the archive files of
    those days (present and downloaded), sorted by day and orbit.

    ``settings`` is a configuration mapping (see :meth:`AcquireSettings.from_mapping`);
    credentials come from the environment or a netrc file, never from it.
    """
    options = AcquireSettings.from_mapping(settings)
    products = find_for_days(days, bbox_polygon(bbox), options)
    plan = plan_downloads(products, Path(archive))
    log.info("%d products for %d days: %d in the archive, %d to download (%d bytes%s)",
             len(products), len(set(days)), len(plan.present), len(plan.download),
             plan.download_bytes,
             f", {plan.unknown_sizes} of unknown size" if plan.unknown_sizes else "")
    outcome = transfer(plan.download, Path(archive), options)
    log.info("found %d, downloaded %d, skipped %d (already in %s), failed %d", len(products),
             len(outcome.placed), len(plan.present), archive, len(outcome.failed))
    downloaded = dict(zip(plan.download, outcome.paths(plan.download)))
    return [plan.present.get(p) or downloaded[p] for p in products]


__all__ = [
    "AcquireError", "AcquireSettings", "ArchiveWriteError", "AuthenticationError",
    "Credentials", "CredentialsError", "DownloadError", "Endpoints", "MAX_JOBS", "Outcome",
    "Plan", "Product", "RetryPolicy", "TransferError", "bbox_polygon", "country_polygon",
    "download", "fetch_for_days", "find_for_days", "find_products", "load_credentials", "plan_downloads",
    "transfer",
]
