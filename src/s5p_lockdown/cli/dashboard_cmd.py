"""``s5p-lockdown dashboard``: the dashboard without a server (a static export)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def dashboard():
    """The lockdown dashboard (dashboards/README.md); served live by dashboards/serve."""


@dashboard.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default="results",
              show_default=True, help="The workflow's results directory.")
def export(target: Path, results: Path):
    """Write a static snapshot of the dashboard into TARGET: HTML pages with the same figures
    and tables, plotly.js copied locally, no kernel, nothing fetched from the internet.

    TARGET must be new, empty, or a previous export (which is replaced)."""
    from s5p_lockdown.dashboard.data import ResultsError
    from s5p_lockdown.dashboard.export import export_site
    from s5p_lockdown.errors import ConfigError

    try:
        export_site(results, target)
    except ResultsError as exc:
        raise ConfigError(f"{results}: {exc}") from None
    click.echo(f"Static dashboard written to {target}/ (open {target / 'index.html'})")
