# Country statistics: daily country means (from the daily grids, for the time series), then
# window means, changes and intervals (from the pixel-centre attribution, see grid.smk).
from s5p_lockdown.gridding import GridSpec
from s5p_lockdown.outputs import provenance, write_json


rule daily_means:
    input:
        weeks=week_dirs(),
    output:
        countries=f"{R}/stats/country_daily.csv",
        hotspots=f"{R}/stats/hotspot_daily.csv",
    params:
        grid=PLAN.grid.harp_operation(),
        countries=PLAN.all_countries,
        hotspots=config["hotspots"],
    resources:
        # the masks of every country and every hotspot: 1.1-1.4 GB at 0.05 degree (bench_season)
        **job_resources(mem_mb=2500, disk_mb=200),
    log:
        f"{R}/logs/daily_means.log",
    benchmark:
        f"{R}/benchmarks/daily_means.tsv",
    message:
        "Computing daily country and hotspot means"
    run:
        from s5p_lockdown.regions import hotspot_masks, load_or_build_masks
        from s5p_lockdown.stats import daily_tables

        with log_to(log[0]):
            grid = GridSpec.from_harp(params.grid)
            # fractional masks are computed once per grid and cached in results/masks
            masks = {"countries": load_or_build_masks(grid, f"{R}/masks", params.countries),
                     "hotspots": hotspot_masks(grid, params.hotspots)}
            daily = sorted(p for week in input.weeks for p in Path(week).glob("*.nc"))
            tables = daily_tables(daily, masks)  # each daily grid read once for both
            write_csv(tables["countries"], output.countries, index=False)
            write_csv(tables["hotspots"], output.hotspots, index=False)


rule country_stats:
    input:
        daily=f"{R}/stats/country_daily.csv",
        attribution=attribution_files("countries"),
    output:
        stats=f"{R}/stats/country_stats.csv",
        windows=f"{R}/stats/windows.csv",
        provenance=f"{R}/stats/provenance.json",
    params:
        settings=config["stats"],
        grid=PLAN.grid.harp_operation(),
        countries=PLAN.all_countries,
        windows=PLAN.country_windows.to_dict("records"),
    resources:
        **job_resources(mem_mb=2000, disk_mb=200),
    log:
        f"{R}/logs/country_stats.log",
    benchmark:
        f"{R}/benchmarks/country_stats.tsv",
    message:
        "Computing country statistics and confidence intervals"
    run:
        import pandas as pd

        from s5p_lockdown.regions import load_or_build_masks
        from s5p_lockdown.stats import StatsSettings, statistics_from_attribution

        with log_to(log[0]):
            # daily_means (an input) has built and cached the masks
            masks = load_or_build_masks(GridSpec.from_harp(params.grid), f"{R}/masks", params.countries)
            stats = statistics_from_attribution(input.attribution, masks, pd.DataFrame(params.windows),
                                                StatsSettings(**params.settings), pd.read_csv(input.daily))
            write_csv(PLAN.windows, output.windows, index=False)
            write_csv(stats, output.stats, index=False)
            sources = [f for d in PLAN.days for f in PLAN.files_by_day.get(d, [])]
            write_json(provenance(config, sources), output.provenance)


rule hotspot_stats:
    input:
        daily=f"{R}/stats/hotspot_daily.csv",
        attribution=attribution_files("hotspots"),
    output:
        f"{R}/stats/hotspot_stats.csv",
    params:
        settings=config["stats"],
        grid=PLAN.grid.harp_operation(),
        hotspots=config["hotspots"],
        windows=PLAN.hotspot_windows.to_dict("records"),
    resources:
        **job_resources(mem_mb=1500, disk_mb=200),
    log:
        f"{R}/logs/hotspot_stats.log",
    benchmark:
        f"{R}/benchmarks/hotspot_stats.tsv",
    message:
        "Computing hotspot statistics and confidence intervals"
    run:
        import pandas as pd

        from s5p_lockdown.regions import hotspot_masks
        from s5p_lockdown.stats import StatsSettings, statistics_from_attribution

        with log_to(log[0]):
            masks = hotspot_masks(GridSpec.from_harp(params.grid), params.hotspots)
            stats = statistics_from_attribution(input.attribution, masks, pd.DataFrame(params.windows),
                                                StatsSettings(**params.settings), pd.read_csv(input.daily))
            write_csv(stats.rename(columns={"iso3": "hotspot", "country": "iso3"}), output[0], index=False)


# Region statistics (the config's regions section): the same estimator on the pixels attributed
# to the regions of the region file, each region with its own lockdown dates or its country's;
# their daily means (the dashboard's time series) from the same attribution.
if PLAN.region_file is not None:

    rule region_stats:
        input:
            attribution=attribution_files("regions"),
        output:
            stats=f"{R}/stats/region_stats.csv",
            daily=f"{R}/stats/region_daily.csv",
            outlines=f"{R}/stats/regions.geojson",
        params:
            settings=config["stats"],
            grid=PLAN.grid.harp_operation(),
            regions=PLAN.region_file.digest,
            windows=PLAN.region_windows.to_dict("records"),
        resources:
            **job_resources(mem_mb=2000, disk_mb=200),
        log:
            f"{R}/logs/region_stats.log",
        benchmark:
            f"{R}/benchmarks/region_stats.tsv",
        message:
            "Computing region statistics and confidence intervals"
        run:
            import pandas as pd

            from s5p_lockdown.cells import cell_tables
            from s5p_lockdown.region_files import write_region_outlines
            from s5p_lockdown.regions import load_or_build_region_masks
            from s5p_lockdown.stats import StatsSettings, attributed_daily, region_table, statistics_from_attribution

            with log_to(log[0]):
                # the attribution jobs (inputs) have built and cached the masks
                masks = load_or_build_region_masks(GridSpec.from_harp(params.grid), f"{R}/masks",
                                                   PLAN.region_file)
                windows = pd.DataFrame(params.windows)
                settings = StatsSettings(**params.settings)
                # the statistics on their cells and their windows' days; the daily series (every
                # day) on the grid's cells, as the countries' series come from the daily grids
                stats = statistics_from_attribution(input.attribution, masks, windows, settings)
                write_csv(region_table(stats, PLAN.region_file, windows), output.stats, index=False)
                write_csv(attributed_daily(cell_tables(input.attribution, masks)), output.daily, index=False)
                write_region_outlines(PLAN.region_file, output.outlines)
