"""The ``s5p-lockdown`` command line: tools that are not part of the Snakemake workflow.

Each subcommand lives in its own module of this package and is registered here.
"""

from __future__ import annotations

import logging
import sys

import click

from s5p_lockdown.errors import S5PLockdownError


def _print_version(context: click.Context, _param, value: bool) -> None:
    """``--version``: the package's version, looked up only then (``s5p_lockdown.__version__``:
    also answers from a source tree that is not installed, where click's own version option,
    reading the package metadata, fails)."""
    if value and not context.resilient_parsing:
        import s5p_lockdown

        click.echo(f"s5p-lockdown {s5p_lockdown.__version__}")
        context.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and exit.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def cli(verbose: bool) -> None:
    """Sentinel-5P NO2 lockdown analysis tools."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _register() -> None:
    from s5p_lockdown.cli import (
        acquire_cmd, dashboard_cmd, grid_cmd, inspect_cmd, summary_cmd, synth_cmd,
    )

    cli.add_command(synth_cmd.synth)
    cli.add_command(inspect_cmd.inspect)
    cli.add_command(grid_cmd.grid)
    cli.add_command(grid_cmd.compile_kernels)
    cli.add_command(summary_cmd.summary)
    cli.add_command(acquire_cmd.acquire)
    cli.add_command(dashboard_cmd.dashboard)


_register()


def main() -> None:
    """Entry point: project errors become one clear line and exit status 2, not a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except S5PLockdownError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
