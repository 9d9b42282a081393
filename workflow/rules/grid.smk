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
    message:
        "Gridding the orbits of {wildcards.week}"
    run:
        from s5p_lockdown.daily import grid_days

        with log_to(log[0]):
            grid_days(orbit_files_by_day(wildcards.week, input), GridSpec.from_harp(params.grid),
                      output[0], qa_threshold=params.qa_threshold,
                      skip_invalid=params.skip_invalid, threads=threads, config=config)
