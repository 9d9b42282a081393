# Input orbits, by ISO week: generated (synthetic source), downloaded (cdse source; both write
# a manifest of the week's files) or indexed from an existing archive (local source:
# PLAN.files_by_day, built from file names when the workflow starts).
# Rule files import only light modules at the top: every job parses them. A job imports what
# it runs (numba, xarray, netCDF4) in its own run block.
from s5p_lockdown.logs import log_to
from s5p_lockdown.outputs import write_csv
from s5p_lockdown.plan import days_of_week


if PLAN.source == "cdse":

    rule fetch_week:
        output:
            manifest=f"{ARCHIVE}/manifests/{{week}}.txt",
        params:
            settings=PLAN.cdse_settings,
            bbox=PLAN.grid.bounds,
        log:
            f"{R}/logs/fetch_week/{{week}}.log",
        message:
            "Downloading the orbits of {wildcards.week} from the Copernicus Data Space"
        resources:
            # the CDSE quota (4 connections per user) holds across parallel fetch jobs: the
            # profiles cap the sum of cdse_connections at 4
            **job_resources(mem_mb=500, disk_mb=1000, records=False,
                            cdse_connections=PLAN.cdse_settings["jobs"]),
        run:
            from s5p_lockdown.daily import fetch_days

            with log_to(log[0]):
                fetch_days(ARCHIVE, days_of_week(wildcards.week), params.bbox, params.settings,
                           output.manifest)


if PLAN.source == "synthetic":

    # the week's orbits go to a folder of their own (archive/orbits/<week>/YYYY/MM/DD/), a
    # declared output: on a pool without a shared filesystem (profiles/condor-transfer) it is
    # what HTCondor brings back and hands to the gridding and attribution jobs
    rule synthesize_week:
        output:
            orbits=directory(f"{ARCHIVE}/orbits/{{week}}"),
            manifest=f"{ARCHIVE}/manifests/{{week}}.txt",
            truth=f"{ARCHIVE}/truth/{{week}}.csv",
        params:
            settings=PLAN.synthetic_settings,
            scenario=config["synthetic"]["scenario"],
            regions=PLAN.synthetic_regions,
        log:
            f"{R}/logs/synthesize_week/{{week}}.log",
        benchmark:
            f"{R}/benchmarks/synthesize_week/{{week}}.tsv",
        message:
            "Generating the synthetic orbits of {wildcards.week}"
        resources:
            **job_resources(mem_mb=600, disk_mb=1000),
        run:
            from s5p_lockdown.daily import synthesize_days

            with log_to(log[0]):
                synthesize_days(output.orbits, days_of_week(wildcards.week), params.settings,
                                output.manifest, output.truth, params.scenario, params.regions)

    rule synthetic_truth:
        input:
            [f"{ARCHIVE}/truth/{week}.csv" for week in PLAN.weeks],
        output:
            truth=f"{ARCHIVE}/truth_daily.csv",
            scenario=f"{ARCHIVE}/scenario.csv",
        params:
            scenario=config["synthetic"]["scenario"],
            region_dates=(PLAN.synthetic_regions or {}).get("lockdown_dates"),
        log:
            f"{R}/logs/synthetic_truth.log",
        benchmark:
            f"{R}/benchmarks/synthetic_truth.tsv",
        resources:
            **job_resources(mem_mb=1000, disk_mb=1000),
        message:
            "Collecting the noise-free truth and the scenario of the synthetic archive"
        run:
            import pandas as pd

            from s5p_lockdown.synth.scenario import Scenario

            with log_to(log[0]):
                write_csv(pd.concat(pd.read_csv(p) for p in input), output.truth, index=False)
                Scenario.load(params.scenario, params.region_dates).write(output.scenario)


def orbit_inputs(wildcards):
    """The week's orbit files (local source), or the manifest listing them first (with the
    folder of the week's orbits for the synthetic source)."""
    if PLAN.source == "local":
        return [f for d in PLAN.week_days(wildcards.week) for f in PLAN.files_by_day[d]]
    manifest = f"{ARCHIVE}/manifests/{wildcards.week}.txt"
    if PLAN.source == "synthetic":
        return [manifest, f"{ARCHIVE}/orbits/{wildcards.week}"]
    return [manifest]


def orbit_files_by_day(week, inputs):
    from s5p_lockdown.daily import read_manifest

    if PLAN.source == "local":
        return {d: PLAN.files_by_day[d] for d in PLAN.week_days(week)}
    return read_manifest(inputs[0])
