"""``s5p-lockdown summary``: print what a workflow run produced and where it is."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("results", type=click.Path(file_okay=False, path_type=Path), default="results")
def summary(results: Path):
    """Summarise the country statistics in RESULTS (default: results/) and list the outputs."""
    import pandas as pd

    from s5p_lockdown.errors import ConfigError

    stats_path = results / "stats" / "country_stats.csv"
    if not stats_path.exists():
        raise ConfigError(f"{stats_path} does not exist: run the workflow first (make demo)")
    stats = pd.read_csv(stats_path)
    # each change has its own data needs: list the countries that have this one
    ok = stats[stats["change_post_vs_baseline"].notna()].sort_values("change_post_vs_baseline")
    click.echo(f"{len(ok)} of {len(stats)} countries with enough data; lockdown-window change of "
               "tropospheric NO2 vs the same window of the baseline year (95 % CI):")
    for row in ok.itertuples():
        flag = " (no lockdown: reference window)" if row.reference_window else ""
        click.echo(f"  {row.iso3} {row.country:<24} {100 * row.change_post_vs_baseline:+6.1f} % "
                   f"[{100 * row.change_post_vs_baseline_low:+6.1f}, "
                   f"{100 * row.change_post_vs_baseline_high:+6.1f}]{flag}")
    missing = stats[stats["change_post_vs_baseline"].isna()]
    for row in missing.itertuples():
        reason = getattr(row, "reason_post_vs_baseline", "") or row.reason
        click.echo(f"  {row.iso3} {row.country:<24} not computed: {reason}")
    click.echo("\nOutputs:")
    for path, what in (
        ("stats/country_stats.csv", "per-country statistics (columns: config/README.md)"),
        ("stats/country_daily.csv", "daily country means"),
        ("composites/", "period composites (netCDF)"),
        ("daily/", "daily grids (netCDF), one folder per ISO week"),
    ):
        click.echo(f"  {results / path}: {what}")
    click.echo("\nDashboard: .venv/bin/python dashboards/serve  (then http://127.0.0.1:8866/; see dashboards/README.md)")
