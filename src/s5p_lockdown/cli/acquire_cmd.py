"""``s5p-lockdown acquire``: search CDSE for L2 NO2 products and download them into an archive,
for given days and area or for what a workflow configuration needs."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

STREAM_CHOICES = ["RPRO", "PAL", "OFFL", "NRTI"]
MAX_JOBS = 4  # s5p_lockdown.acquire.MAX_JOBS (not imported here: --help stays fast)
JOBS_HELP = (f"Parallel downloads, 1 to {MAX_JOBS}: CDSE allows {MAX_JOBS} concurrent "
             "connections per user (1 after 12 TB in 30 days) and answers HTTP 429 beyond.")
# Options that a workflow configuration (--config) gives instead.
DIRECT_OPTIONS = ("start", "end", "bbox", "country", "streams", "processor_version", "archive",
                  "jobs", "base_url", "catalogue_url", "download_url", "token_url", "netrc_path",
                  "retries", "retry_delay")


def _parse_date(_ctx, param, value):
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param=param) from None


@click.command()
@click.option("--config", "config_files", multiple=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Fetch what the workflow needs with this configuration (repeatable, merged "
                   "over config/config.yaml as snakemake --configfile does): days, area, "
                   "archive and settings all come from it.")
@click.option("--workflow-dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=Path("."), show_default=True,
              help="With --config: the workflow folder (holding config/ and workflow/).")
@click.option("--start", callback=_parse_date, help="First day (UTC, YYYY-MM-DD).")
@click.option("--end", callback=_parse_date, help="Last day (UTC), inclusive.")
@click.option("--bbox", nargs=4, type=float, metavar="SOUTH NORTH WEST EAST",
              help="Area of interest in degrees.")
@click.option("--country", metavar="ISO3", help="Area of interest: a country, e.g. ITA.")
@click.option("--stream", "streams", multiple=True,
              type=click.Choice(STREAM_CHOICES, case_sensitive=False),
              help="Stream to search (repeatable; the order is the preference when an orbit "
                   "exists in several). Default: RPRO, PAL, OFFL, NRTI.")
@click.option("--processor-version", metavar="X.Y.Z",
              help="Only this processor version (default: any, newest preferred).")
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path),
              help="Archive folder: files go to ARCHIVE/YYYY/MM/DD/; files already anywhere "
                   "under it are not downloaded again.")
@click.option("--dry-run", is_flag=True,
              help="Only report what would be downloaded: products, orbits, volume, disk and "
                   "time; lists the products unless --config is given.")
@click.option("--jobs", type=int, help=JOBS_HELP + " [default: 3]")
@click.option("--base-url", metavar="URL",
              help="One server for catalogue, download and token (e.g. a local test server).")
@click.option("--catalogue-url", metavar="URL", help="OData root of the catalogue.")
@click.option("--download-url", metavar="URL",
              help="OData root of the downloads (default: the documented "
                   "https://download.dataspace.copernicus.eu/odata/v1).")
@click.option("--token-url", metavar="URL", help="OpenID Connect token URL.")
@click.option("--netrc", "netrc_path", type=click.Path(dir_okay=False, path_type=Path),
              help="netrc-style credentials file (machine identity.dataspace.copernicus.eu). "
                   "Default: CDSE_USERNAME/CDSE_PASSWORD, else ~/.netrc.")
@click.option("--retries", type=click.IntRange(1), help="Attempts per request on 429, 5xx and "
              "dropped connections. [default: 6]")
@click.option("--retry-delay", type=click.FloatRange(0),
              help="First backoff delay in seconds (doubles at each retry). [default: 1.0]")
def acquire(config_files, workflow_dir, dry_run, **direct):
    """Download the S5P L2 NO2 products of the days START..END over an area (or of what a
    workflow configuration needs, --config) from the Copernicus Data Space Ecosystem into
    ARCHIVE: for each orbit one stream and processor version (all slices of an NRTI orbit).

    Downloads resume after interruptions, are checked (size, MD5, netCDF contents) and
    recorded in ARCHIVE/cdse_manifest.json. A summary at the end says what was found,
    downloaded, skipped (already there) and failed, with reasons; the exit status is 1 when
    a product failed. Credentials: environment variables CDSE_USERNAME and CDSE_PASSWORD, or a
    netrc file; never on the command line. Two-factor accounts: CDSE_TOTP holding the current
    code, or type it when asked.
    """
    from s5p_lockdown.acquire import (
        AcquireSettings, Endpoints, RetryPolicy, bbox_polygon, country_polygon, find_for_days,
        find_products, plan_downloads, transfer,
    )
    from s5p_lockdown.acquire.download import human_bytes
    from s5p_lockdown.acquire.estimate import estimate
    from s5p_lockdown.acquire.workflow import workflow_fetch

    if config_files:
        if given := [f"--{k.replace('_', '-')}" for k in DIRECT_OPTIONS if direct[k] not in (None, ())]:
            raise click.UsageError(f"{', '.join(given)}: with --config these come from the "
                                   "configuration (source.archive, source.cdse, grid, windows)")
        fetch = workflow_fetch(list(config_files), workflow_dir)
        settings = AcquireSettings.from_mapping(fetch.settings)
        archive = fetch.archive
        products = find_for_days(fetch.days, bbox_polygon(fetch.bbox), settings)
        what = (f"the workflow configuration {', '.join(map(str, config_files))}: "
                f"{len(fetch.days)} days {fetch.days[0]}..{fetch.days[-1]}, box {fetch.bbox}")
    else:
        start, end, bbox, country = (direct[k] for k in ("start", "end", "bbox", "country"))
        if start is None or end is None or direct["archive"] is None:
            raise click.UsageError("give --start, --end and --archive (or --config)")
        if (bbox is None) == (country is None):
            raise click.UsageError("give exactly one of --bbox and --country")
        if end < start:
            raise click.UsageError(f"--end {end} is before --start {start}")
        jobs = direct["jobs"] if direct["jobs"] is not None else 3
        if not 1 <= jobs <= MAX_JOBS:
            raise click.BadParameter(f"{jobs}: {JOBS_HELP}", param_hint="--jobs")
        area = bbox_polygon(bbox) if bbox else country_polygon(country)
        settings = AcquireSettings(
            streams=direct["streams"], processor_version=direct["processor_version"], jobs=jobs,
            endpoints=Endpoints.from_urls(direct["base_url"], direct["catalogue_url"],
                                          direct["download_url"], direct["token_url"]),
            retry=RetryPolicy(attempts=direct["retries"] or 6,
                              base_delay=1.0 if direct["retry_delay"] is None
                              else direct["retry_delay"]),
            netrc=direct["netrc_path"],
        )
        archive = direct["archive"]
        products = find_products(start, end, area, settings)
        what = f"{start}..{end}"
    plan = plan_downloads(products, archive)
    click.echo(f"searched {what}")
    for line in estimate(products, plan, archive, settings.jobs).lines(archive):
        click.echo(line)
    if dry_run:
        if not config_files:
            for product in plan.download:
                size = human_bytes(product.size) if product.size is not None else "size unknown"
                click.echo(f"  {product.day}  {product.name}  {size}")
        return
    ask = ((lambda: click.prompt("CDSE two-factor code", default="", show_default=False))
           if sys.stdin.isatty() else None)
    outcome = transfer(plan.download, archive, settings, progress=sys.stderr, ask_totp=ask)
    click.echo(
        f"summary: found {len(products)}, downloaded {len(outcome.placed)}, skipped "
        f"{len(plan.present)} (already in {archive}), failed {len(outcome.failed)}"
    )
    for product, error in outcome.failed.items():
        click.echo(f"  failed: {product.name}: {error.reason}")
    if outcome.failed:
        sys.exit(1)
