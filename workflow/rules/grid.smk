# Daily grids, one job per ISO week: every qa-filtered pixel of a day's orbits, area-weighted
# (HARP bin_spatial semantics), written to results/daily/<week>/<day>.nc.
from s5p_lockdown.gridding import GridSpec


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
    benchmark:
        f"{R}/benchmarks/grid_week/{{week}}.tsv",
    message:
        "Gridding the orbits of {wildcards.week}"
    run:
        from s5p_lockdown.daily import grid_days

        with log_to(log[0]):
            grid_days(orbit_files_by_day(wildcards.week, input), GridSpec.from_harp(params.grid),
                      output[0], qa_threshold=params.qa_threshold,
                      skip_invalid=params.skip_invalid, threads=threads, config=config)


# Pixel-centre attribution, one job per ISO week: every qa-filtered pixel of the week's orbits
# (read once, without corners) counted in the cell and the region(s) containing its centre, for
# each region set (countries, hotspots, and the config's regions when it names a region file),
# for the statistics: no border dilution (see s5p_lockdown.attribution). New region definitions
# rerun these jobs, never the gridding.
rule attribute_week:
    input:
        orbit_inputs,
    output:
        **{regions: f"{R}/attribution/{regions}/{{week}}.nc" for regions in PLAN.region_sets},
    params:
        grid=PLAN.grid.harp_operation(),
        qa_threshold=config["qa_threshold"],
        skip_invalid=config["source"]["skip_invalid_files"],
        countries=PLAN.all_countries,
        hotspots=config["hotspots"],
        regions=PLAN.region_file.digest if PLAN.region_file else None,
    resources:
        **job_resources(mem_mb=800, disk_mb=200),
    log:
        f"{R}/logs/attribute_week/{{week}}.log",
    benchmark:
        f"{R}/benchmarks/attribute_week/{{week}}.tsv",
    message:
        f"Attributing the pixels of {{wildcards.week}} to {', '.join(PLAN.region_sets)}"
    run:
        from s5p_lockdown.attribution import attribute_days
        from s5p_lockdown.regions import region_set

        with log_to(log[0]):
            grid = GridSpec.from_harp(params.grid)
            region_sets = {kind: region_set(kind, grid, f"{R}/masks", params.countries, params.hotspots,
                                            PLAN.region_file)
                           for kind in PLAN.region_sets}
            attribute_days(orbit_files_by_day(wildcards.week, input), region_sets, dict(output.items()),
                           qa_threshold=params.qa_threshold, skip_invalid=params.skip_invalid)
