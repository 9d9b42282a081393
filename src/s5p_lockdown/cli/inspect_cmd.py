"""``s5p-lockdown inspect``: summarise L2 NO2 orbit files."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--qa", "qa_threshold", type=float, default=0.75, show_default=True,
              help="Count pixels with qa_value above this.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
def inspect(files, qa_threshold, as_json):
    """Print orbit, stream, processor version, time coverage, pixel counts, the fraction of
    valid pixels passing the qa filter and the latitude/longitude extent of each FILE."""
    from s5p_lockdown.io import inspect_product

    for path in files:
        summary = inspect_product(path, qa_threshold)
        if as_json:
            click.echo(json.dumps(summary))
            continue
        click.echo(
            f"{summary['source_file']}\n"
            f"  orbit {summary['orbit']}, stream {summary['stream']}, processor "
            f"{summary['processor_version']} (product {summary['product_version']})\n"
            f"  time coverage {summary['time_coverage_start']} .. {summary['time_coverage_end']}\n"
            f"  pixels {summary['scanlines']} x {summary['ground_pixels']} = {summary['pixels']}, "
            f"valid {summary['valid_pixels']}, qa > {qa_threshold}: {summary['pixels_passing_qa']} "
            f"({100 * summary['fraction_passing_qa']:.1f} % of valid)\n"
            f"  latitude {summary['latitude_min']:.2f} .. {summary['latitude_max']:.2f}, "
            f"longitude {summary['longitude_min']:.2f} .. {summary['longitude_max']:.2f}\n"
            f"  wind variables: {'yes' if summary['has_wind'] else 'no'}"
        )
