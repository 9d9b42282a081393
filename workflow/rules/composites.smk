# Period composites, one file per distinct window (shared by countries with the same dates),
# all made by one job: they are cheap, and many small jobs cost more in scheduling than work.

rule period_composites:
    input:
        [PLAN.week_dir(w) for w in PLAN.weeks],
    output:
        directory(f"{R}/composites"),
    params:
        weighting=config["composite_weighting"],
        windows={w: PLAN.window_span(w) for w in PLAN.window_ids},
    resources:
        **job_resources(mem_mb=1000, disk_mb=500),
    log:
        f"{R}/logs/period_composites.log",
    benchmark:
        f"{R}/benchmarks/period_composites.tsv",
    message:
        "Compositing the daily grids of every window"
    run:
        from s5p_lockdown.composites import period_composites

        with log_to(log[0]):
            period_composites(params.windows, PLAN.daily_path, output[0], params.weighting,
                              config=config)
