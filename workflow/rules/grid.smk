# Daily grids, one job per ISO week: every qa-filtered pixel of a day's orbits, area-weighted
# (HARP bin_spatial semantics), written to results/daily/<week>/<day>.nc.
from s5p_lockdown.gridding import GridSpec
from s5p_lockdown.regions import REGION_SETS


rule grid_week:
    input:
        orbit_inputs,
    output:
        directory(f"{R}/daily/{{week}}"),
    params:
        grid=PLAN.grid.harp_operation(),
        qa_threshold=config["qa_threshold"],
        skip_invalid=config["source"]["skip_invalid_files"],
    threads: config["gridding"]["threads"]
    resources:
        **job_resources(mem_mb=800, disk_mb=500),
    log:
        f"{R}/logs/grid_week/{{week}}.log",
    message:
        "Gridding the orbits of {wildcards.week}"
    run:
        from s5p_lockdown.daily import grid_days

        with log_to(log[0]):
            grid_days(orbit_files_by_day(wildcards.week, input), GridSpec.from_harp(params.grid),
                      output[0], qa_threshold=params.qa_threshold,
                      skip_invalid=params.skip_invalid, threads=threads, config=config)


# Pixel-centre attribution, one job per region set and ISO week: every qa-filtered pixel of the
# week's orbits counted in the cell and the region(s) containing its centre, for the statistics
# (no border dilution; see s5p_lockdown.attribution). A new hotspot table reruns only these jobs
# of the hotspots, never the gridding.
rule attribute_week:
    input:
        orbit_inputs,
    output:
        f"{R}/attribution/{{regions}}/{{week}}.nc",
    wildcard_constraints:
        regions="|".join(REGION_SETS),
    params:
        grid=PLAN.grid.harp_operation(),
        qa_threshold=config["qa_threshold"],
        skip_invalid=config["source"]["skip_invalid_files"],
        countries=PLAN.all_countries,
        hotspots=config["hotspots"],
    resources:
        **job_resources(mem_mb=800, disk_mb=200),
    log:
        f"{R}/logs/attribute_week/{{regions}}/{{week}}.log",
    message:
        "Attributing the pixels of {wildcards.week} to {wildcards.regions}"
    run:
        from s5p_lockdown.attribution import attribute_days
        from s5p_lockdown.regions import region_set

        with log_to(log[0]):
            regions = region_set(wildcards.regions, GridSpec.from_harp(params.grid), f"{R}/masks",
                                 params.countries, params.hotspots)
            attribute_days(orbit_files_by_day(wildcards.week, input), regions, output[0],
                           qa_threshold=params.qa_threshold, skip_invalid=params.skip_invalid)
