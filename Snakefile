# s5p-lockdown: Sentinel-5P NO2 lockdown composites and per-country statistics.
# Run: snakemake                     (profiles/default applies by itself: the workflow profile)
#      snakemake --configfile config/long_windows.yaml
# Configuration: config/config.yaml, documented in config/README.md.

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/archive.smk"
include: "workflow/rules/grid.smk"
include: "workflow/rules/composites.smk"
include: "workflow/rules/stats.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
