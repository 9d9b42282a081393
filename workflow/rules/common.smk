# Validation of the config and the plan (grid, windows, days, input files): one place,
# computed by the package before any job runs.
import os
from datetime import date
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import SharedFSUsage
from snakemake.utils import validate

from s5p_lockdown.condor import (
    PoolUnreachableError,
    avoid_status_thread_race,
    report_group_job_messages,
    require_pool,
    run_group_jobs_in_one_process,
)
from s5p_lockdown.errors import S5PLockdownError
from s5p_lockdown.plan import make_plan
from s5p_lockdown.retry import exit_with_bad_input_code
from s5p_lockdown.software import SoftwareMismatchError

validate(config, workflow.source_path("../schemas/config.schema.yaml"), set_default=True)

try:
    PLAN = make_plan(config)
except S5PLockdownError as error:
    raise WorkflowError(f"invalid configuration: {error}") from None


# before the executor starts: with --profile condor, a resumed run would otherwise wait forever
# for jobs that have finished (s5p_lockdown.condor.avoid_status_thread_race)
avoid_status_thread_race()
# group jobs (the condor profiles' groups): their jobs run in one process, one after the other,
# and a failed one says why (its exit code or hold reason)
run_group_jobs_in_one_process()
report_group_job_messages()

if not workflow.remote_exec and "S5P_LOCKDOWN_VERSION" not in os.environ:
    # the version the outputs record (s5p_lockdown.outputs.provenance), for the jobs: on a pool
    # without a shared filesystem they import the transferred sources, not an installed package
    # (profiles/condor-transfer passes this variable on)
    import s5p_lockdown

    os.environ["S5P_LOCKDOWN_VERSION"] = s5p_lockdown.__version__

if PLAN.source == "cdse" and not workflow.remote_exec and \
        SharedFSUsage.INPUT_OUTPUT not in workflow.storage_settings.shared_fs_usage:
    # --profile condor-transfer: HTCondor brings back declared outputs only, and the downloaded
    # orbits are not (fetch_week declares the week's manifest); a run would fail at gridding.
    # One sentence, no traceback (as onstart below)
    raise SystemExit(
        "source kind cdse does not work on a pool without a shared filesystem "
        "(--profile condor-transfer, --shared-fs-usage none): download the orbits with a local "
        "run or --profile condor, then use them as source kind local from storage the execute "
        "nodes mount (--htcondor-shared-fs-prefixes, profiles/README.md)")

if workflow.remote_exec:
    # a job of the pool (the HTCondor executable): it exits with retry.BAD_INPUT_EXIT_CODE when
    # a rule failed on bad input, which the condor profile's retry_until does not retry
    exit_with_bad_input_code()


onstart:
    # --profile condor where no pool answers (e.g. on the host of the local test pool), or whose
    # jobs would run other software than the project venv: one sentence saying what to run
    # instead, before anything is submitted, never a traceback
    try:
        require_pool(getattr(workflow.executor_plugin, "name", None))
    except (PoolUnreachableError, SoftwareMismatchError) as error:
        raise SystemExit(str(error)) from None


R = str(PLAN.results)
ARCHIVE = config["source"]["archive"]
DAY_PATTERN = r"\d{4}-\d{2}-\d{2}"
WINDOW_PATTERN = r"\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}"


wildcard_constraints:
    day=DAY_PATTERN,
    window=WINDOW_PATTERN,


def job_resources(mem_mb, disk_mb, records=True, **extra):
    """A rule's memory and scratch-disk needs, declared once (``resources: **job_resources(...)``):
    Snakemake's own ``mem_mb``/``disk_mb`` (honoured locally with ``--resources``) and the
    HTCondor requests, because snakemake-executor-plugin-htcondor reads only its own keys
    (``htcondor_request_mem_mb``/``htcondor_request_disk_mb`` -> request_memory/request_disk).
    Threads need no mapping: the plugin submits ``request_cpus`` = the job's threads.

    ``records``: the rule writes its log under ``{R}/logs/`` and its benchmark record under
    ``{R}/benchmarks/``, which a pool without a shared filesystem must send back with the
    outputs (``htcondor_transfer_output_files``, read by the plugin only there: it transfers
    declared outputs alone, and Snakemake waits for the benchmark record).  Both folders are
    sent back whole (HTCondor adds their files to the submit side's folders, which keep the
    other jobs' files), so the value is the same for every rule: the condor profiles' groups
    (one job for several rules) require equal string resources in a group."""
    resources = dict(mem_mb=mem_mb, disk_mb=disk_mb, htcondor_request_mem_mb=mem_mb,
                     htcondor_request_disk_mb=disk_mb, **extra)
    if records:
        resources["htcondor_transfer_output_files"] = f"{R}/logs, {R}/benchmarks"
    return resources


def day_of(wildcards):
    return date.fromisoformat(wildcards.day)


def week_dirs():
    return [PLAN.week_dir(w) for w in PLAN.weeks]


def attribution_files(regions):
    """The week files of the pixel-centre attribution to ``regions`` (countries, hotspots,
    regions)."""
    return [f"{R}/attribution/{regions}/{w}.nc" for w in PLAN.weeks]


def final_outputs():
    outputs = [
        f"{R}/composites",
        f"{R}/stats/country_stats.csv",
        f"{R}/stats/hotspot_stats.csv",
        f"{R}/stats/country_daily.csv",
        f"{R}/stats/hotspot_daily.csv",
        f"{R}/stats/windows.csv",
    ]
    if PLAN.region_file is not None:
        outputs += [f"{R}/stats/region_stats.csv", f"{R}/stats/region_daily.csv",
                    f"{R}/stats/regions.geojson"]
    if PLAN.source == "synthetic":
        outputs += [f"{ARCHIVE}/truth_daily.csv", f"{ARCHIVE}/scenario.csv"]
    return outputs
