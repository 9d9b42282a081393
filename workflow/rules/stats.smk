# Country statistics: daily country means, then window means, changes and intervals.
from s5p_lockdown.gridding import GridSpec
from s5p_lockdown.stats import StatsSettings, country_daily, country_statistics
from s5p_lockdown.outputs import provenance, write_json


rule country_daily:
    input:
        weeks=week_dirs(),
    output:
        f"{R}/stats/country_daily.csv",
    params:
        grid=PLAN.grid.harp_operation(),
        countries=list(PLAN.mask_countries),
    resources:
        mem_mb=1500,
    log:
        f"{R}/logs/country_daily.log",
    message:
        "Computing daily country means"
    run:
        from s5p_lockdown.regions import load_or_build_masks

        with log_to(log[0]):
            # fractional masks are computed once per grid and cached in results/masks
            masks = load_or_build_masks(GridSpec.from_harp(params.grid), f"{R}/masks", params.countries)
            daily = sorted(p for week in input.weeks for p in Path(week).glob("*.nc"))
            write_csv(country_daily(daily, masks), output[0], index=False)


rule country_stats:
    input:
        f"{R}/stats/country_daily.csv",
    output:
        stats=f"{R}/stats/country_stats.csv",
        windows=f"{R}/stats/windows.csv",
        provenance=f"{R}/stats/provenance.json",
    params:
        settings=config["stats"],
        windows=PLAN.country_windows.to_dict("records"),
    log:
        f"{R}/logs/country_stats.log",
    message:
        "Computing country statistics and confidence intervals"
    run:
        import pandas as pd

        with log_to(log[0]):
            windows = pd.DataFrame(params.windows)
            daily = pd.read_csv(input[0])
            stats = country_statistics(daily, windows, StatsSettings(**params.settings))
            write_csv(PLAN.windows, output.windows, index=False)
            write_csv(stats, output.stats, index=False)
            sources = [f for d in PLAN.days for f in PLAN.files_by_day.get(d, [])]
            write_json(provenance(config, sources), output.provenance)
