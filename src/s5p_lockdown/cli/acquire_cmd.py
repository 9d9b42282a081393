"""``s5p-lockdown acquire``: search CDSE for L2 NO2 products and download them into an archive."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

STREAM_CHOICES = ["RPRO", "PAL", "OFFL", "NRTI"]


def _parse_date(_ctx, param, value):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param=param) from None


@click.command()
@click.option("--start", required=True, callback=_parse_date, help="First day (UTC, YYYY-MM-DD).")
@click.option("--end", required=True, callback=_parse_date, help="Last day (UTC), inclusive.")
@click.option("--bbox", nargs=4, type=float, metavar="SOUTH NORTH WEST EAST",
              help="Area of interest in degrees.")
@click.option("--country", metavar="ISO3", help="Area of interest: a country, e.g. ITA.")
@click.option("--stream", "streams", multiple=True,
              type=click.Choice(STREAM_CHOICES, case_sensitive=False),
              help="Stream to search (repeatable; the order is the preference when an orbit "
                   "exists in several). Default: RPRO, PAL, OFFL, NRTI.")
@click.option("--processor-version", metavar="X.Y.Z",
              help="Only this processor version (default: any, newest preferred).")
@click.option("--archive", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Archive folder: files go to ARCHIVE/YYYY/MM/DD/; files already anywhere "
                   "under it are not downloaded again.")
@click.option("--dry-run", is_flag=True, help="Only list what would be downloaded and its size.")
@click.option("--jobs", type=click.IntRange(1, 8), default=3, show_default=True,
              help="Parallel downloads (CDSE allows a few per user).")
@click.option("--base-url", metavar="URL",
              help="One server for catalogue, download and token (e.g. a local test server).")
@click.option("--catalogue-url", metavar="URL", help="OData root of the catalogue.")
@click.option("--download-url", metavar="URL", help="OData root of the downloads.")
@click.option("--token-url", metavar="URL", help="OpenID Connect token URL.")
@click.option("--netrc", "netrc_path", type=click.Path(dir_okay=False, path_type=Path),
              help="netrc-style credentials file (machine identity.dataspace.copernicus.eu). "
                   "Default: CDSE_USERNAME/CDSE_PASSWORD, else ~/.netrc.")
@click.option("--retries", type=click.IntRange(1), default=6, show_default=True,
              help="Attempts per request on 429, 5xx and dropped connections.")
@click.option("--retry-delay", type=click.FloatRange(0), default=1.0, show_default=True,
              help="First backoff delay in seconds (doubles at each retry).")
def acquire(start, end, bbox, country, streams, processor_version, archive, dry_run, jobs,
            base_url, catalogue_url, download_url, token_url, netrc_path, retries, retry_delay):
    """Download the S5P L2 NO2 products of the days START..END over an area from the
    Copernicus Data Space Ecosystem into ARCHIVE, one product per orbit.

    Downloads resume after interruptions, are checked (size, MD5, netCDF contents) and
    recorded in ARCHIVE/cdse_manifest.json. Credentials: environment variables CDSE_USERNAME
    and CDSE_PASSWORD, or a netrc file; never on the command line.
    """
    from s5p_lockdown.acquire import (
        AcquireSettings, Endpoints, RetryPolicy, bbox_polygon, country_polygon, download,
        find_products, plan_downloads,
    )
    from s5p_lockdown.acquire.download import human_bytes

    if (bbox is None) == (country is None):
        raise click.UsageError("give exactly one of --bbox and --country")
    if end < start:
        raise click.UsageError(f"--end {end} is before --start {start}")
    area = bbox_polygon(bbox) if bbox else country_polygon(country)
    settings = AcquireSettings(
        streams=streams, processor_version=processor_version,
        jobs=jobs, endpoints=Endpoints.from_urls(base_url, catalogue_url, download_url, token_url),
        retry=RetryPolicy(attempts=retries, base_delay=retry_delay), netrc=netrc_path,
    )
    products = find_products(start, end, area, settings)
    plan = plan_downloads(products, archive)
    click.echo(
        f"{len(products)} products for {start}..{end}: {len(plan.present)} already in {archive}, "
        f"{len(plan.download)} to download ({human_bytes(plan.download_bytes)}, "
        f"{plan.download_bytes} bytes)"
    )
    if dry_run:
        for product in plan.download:
            click.echo(f"  {product.day}  {product.name}  {human_bytes(product.size)}")
        return
    paths = download(plan.download, archive, settings, progress=sys.stderr)
    click.echo(f"downloaded {len(paths)} products into {archive}")
