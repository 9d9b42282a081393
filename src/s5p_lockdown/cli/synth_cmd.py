"""``s5p-lockdown synth``: write a synthetic L2 NO2 archive with known lockdown truth."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from s5p_lockdown.errors import ConfigError


def _parse_date(_ctx, param, value):
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param=param) from None


def _per_year(example: str):
    """A click callback turning repeated ``YEAR=NUMBER`` values into ``{year: number}``."""

    def parse(_ctx, param, values):
        numbers = {}
        for value in values:
            try:
                year, number = value.split("=")
                numbers[int(year)] = float(number)
            except ValueError:
                raise click.BadParameter(f"{value!r}: expected YEAR=NUMBER, e.g. {example}",
                                         param=param) from None
        return numbers

    return parse


@click.command()
@click.argument("archive", type=click.Path(file_okay=False, path_type=Path))
@click.option("--start", required=True, callback=_parse_date, help="First day (YYYY-MM-DD).")
@click.option("--end", required=True, callback=_parse_date, help="Last day, inclusive.")
@click.option("--baseline-year", "baseline_years", type=int, multiple=True,
              help="Also generate the same calendar days in this year (repeatable), e.g. 2019.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (deterministic output).")
@click.option("--scenario", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Scenario CSV (iso3,reduction,start,end). Default: shipped lockdown dates "
                   "with a reduction per kind of measure.")
@click.option("--across-track-step", type=int, default=10, show_default=True,
              help="Aggregate this many native across-track pixels (1 = full 450 pixels).")
@click.option("--along-track-step", type=int, default=6, show_default=True,
              help="Aggregate this many native scanlines (1 = full 5.5/7 km).")
@click.option("--lat-band", nargs=2, type=float, default=(28.0, 74.0), show_default=True,
              help="Latitude band (degrees) of the scanlines written.")
@click.option("--stream", type=click.Choice(["OFFL", "RPRO", "NRTI", "PAL_"]), default="RPRO",
              show_default=True)
@click.option("--processor-version", default="2.4.0", show_default=True)
@click.option("--wind-scale", multiple=True, callback=_per_year("2020=1.4"),
              help="YEAR=FACTOR: multiply that year's wind speeds (repeatable).")
@click.option("--cloud-shift", multiple=True, callback=_per_year("2020=-0.6"),
              help="YEAR=SHIFT: shift that year's cloud driver; < 0 is a sunnier year "
                   "(repeatable).")
@click.option("--constant-truth", is_flag=True,
              help="No season and no wind dispersion: the true column changes only by the "
                   "lockdown.")
@click.option("--same-weather-every-year", is_flag=True,
              help="Give each calendar day the same weather in every year.")
@click.option("--no-noise", is_flag=True, help="Write the true columns without retrieval noise.")
@click.option("--dispersion", "dispersion_law", type=click.Choice(["power", "plume-inverse"]),
              default="power", show_default=True,
              help="How wind ventilates the column: a power law on the boundary layer and the "
                   "plumes, or the plumes alone as 1/speed.")
@click.option("--uniform-wind", is_flag=True, help="One wind a day over the whole domain.")
def synth(archive, start, end, baseline_years, seed, scenario, across_track_step,
          along_track_step, lat_band, stream, processor_version, wind_scale, cloud_shift,
          constant_truth, same_weather_every_year, no_noise, dispersion_law, uniform_wind):
    """Generate synthetic S5P L2 NO2 orbits over Europe into ARCHIVE/YYYY/MM/DD/.

    Files have the real product structure; ARCHIVE also receives scenario.csv (the injected
    reductions), truth_daily.csv (noise-free daily country means) and synth.json.
    """
    from s5p_lockdown.synth.archive import ArchiveGenerator, SynthSettings, daterange
    from s5p_lockdown.synth.scenario import Scenario

    if end < start:
        raise ConfigError(f"--end {end} is before --start {start}")
    days = daterange(start, end)
    for year in baseline_years:
        try:
            days += daterange(start.replace(year=year), end.replace(year=year))
        except ValueError as exc:  # 29 February in a non-leap year
            raise ConfigError(f"--baseline-year {year}: {exc}") from None
    settings = SynthSettings(
        seed=seed, lat_band=tuple(lat_band), across_track_step=across_track_step,
        along_track_step=along_track_step, stream=stream, processor_version=processor_version,
        noise=not no_noise, wind_scale=wind_scale,
        same_weather_every_year=same_weather_every_year, cloud_shift=cloud_shift,
        constant_truth=constant_truth, dispersion_law=dispersion_law, uniform_wind=uniform_wind,
    )
    generator = ArchiveGenerator(settings, Scenario.load(scenario))
    files = generator.generate(archive, days, progress=lambda msg: click.echo(msg, err=True))
    click.echo(f"wrote {len(files)} orbit files for {len(set(days))} days to {archive}")
