"""The HTCondor schedd this machine submits to, or one sentence saying what to run instead.

Without an HTCondor configuration (``CONDOR_CONFIG`` unset and no ``/etc/condor/condor_config``)
or without a running pool, the bindings raise ``HTCondorException: Unable to locate local
daemon``.  That happens, for example, on a Debian 12 development machine whose local test pool
(``workflow/scripts/condor-pool``) runs inside its own Debian 13 root: its Snakemake client and
its notebooks must run inside the pool too (``condor-pool run -- ...``, see profiles/README.md).
Both clients of the pool, the workflow (``--profile condor``, checked in ``onstart`` of
``workflow/rules/common.smk`` before any job is submitted) and :mod:`s5p_lockdown.batch`
(``submit``, ``attach``, ``remove``, ...), get their schedd here, so such a user sees
:class:`PoolUnreachableError` with one actionable sentence instead of a traceback.

Also three adjustments of the HTCondor executor plugin the workflow makes when Snakemake parses
it: :func:`avoid_status_thread_race`, :func:`run_group_jobs_in_one_process` and
:func:`report_group_job_messages`.
"""

from __future__ import annotations

import re
import sys

from s5p_lockdown.errors import S5PLockdownError
from s5p_lockdown.software import require_same_software

#: How to run a client inside the project's local test pool (append the command).
LOCAL_POOL_RUN = "workflow/scripts/condor-pool run --"
#: What a workflow user runs there instead of ``snakemake --profile condor`` on the host.
WORKFLOW_COMMAND = f"{LOCAL_POOL_RUN} snakemake --profile condor"


class PoolUnreachableError(S5PLockdownError):
    """No HTCondor schedd can be reached from this machine and environment."""


def local_schedd(instead: str = f"{LOCAL_POOL_RUN} python YOUR_SCRIPT.py"):
    """The local ``htcondor2.Schedd``, checked to answer a query.

    Raises :class:`PoolUnreachableError` when there is none; its one sentence names ``instead``,
    the command to run on the project's local test pool.
    """
    import htcondor2  # imported here: reading the HTCondor configuration is the caller's choice

    try:
        schedd = htcondor2.Schedd()
        # the constructor only locates the daemon; a query proves that it answers
        schedd.query(constraint="false", projection=["ClusterId"], limit=1)
    except htcondor2.HTCondorException as error:
        reason = str(error).strip().rstrip(".")
        raise PoolUnreachableError(
            f"No HTCondor pool can be reached from here ({reason}): run this on a submit "
            f"node of a pool, or on the project's local test pool inside the pool with "
            f"`{instead}` (see profiles/README.md)."
        ) from None
    return schedd


def require_pool(executor: str | None) -> None:
    """Check, before a workflow submits anything, that the ``htcondor`` executor has a pool and
    that its jobs will run the project venv's software.

    ``executor`` is the name of Snakemake's executor plugin (``workflow.executor_plugin.name``);
    other executors need no pool and pass.  Raises :class:`PoolUnreachableError` or
    :class:`s5p_lockdown.software.SoftwareMismatchError`.
    """
    if executor == "htcondor":
        local_schedd(instead=WORKFLOW_COMMAND)
        require_same_software()


#: Module of the Snakemake executor plugin for HTCondor.
PLUGIN_MODULE = "snakemake_executor_plugin_htcondor"
#: Seconds the plugin's status thread waits before its first check (see below).
FIRST_STATUS_CHECK_SECONDS = 1


def avoid_status_thread_race() -> None:
    """Delay the first job status check of the HTCondor executor plugin by
    :data:`FIRST_STATUS_CHECK_SECONDS` (call before the executor starts: when Snakemake parses
    the Snakefile).

    Plugin 0.3.0 declares ``init_seconds_before_status_checks=0``, and
    ``snakemake-interface-executor-plugins`` starts the status thread in the executor's
    ``__init__``, before the plugin's ``__post_init__`` has made the attributes that thread
    uses.  When the plugin's event log (``<jobdir>/snakemake-rules.log``) already exists, as in
    every rerun or resumed run in the same directory, the first check reads it at once, fails
    with ``AttributeError: ... '_event_logs'``, and the thread ends silently: the jobs run and
    finish, but the client never learns it and waits forever
    (htcondor/snakemake-executor-plugin-htcondor#60).  A first check one second later finds the
    executor initialised.  A no-op when the plugin is not loaded (Snakemake loads every
    installed executor plugin for its command line) or already waits.
    """
    plugin = sys.modules.get(PLUGIN_MODULE)
    settings = getattr(plugin, "common_settings", None)
    if settings is not None and not settings.init_seconds_before_status_checks:
        settings.init_seconds_before_status_checks = FIRST_STATUS_CHECK_SECONDS


def report_group_job_messages() -> None:
    """Show why a failed *group* job failed: the HTCondor executor plugin's message (``...
    completed but failed with ExitCode 65``, ``... is held: <hold reason>``) as an error line
    of its own (call before the executor starts: when Snakemake parses the Snakefile).

    Snakemake 9 prints a failed group job with ``GroupJob.log_error``, which drops the message
    the executor passes (``Error in group week`` and ``message: None`` for each of its jobs),
    so with the condor profiles' ``groups`` a held or failed job would not say why.  A no-op
    when the plugin is not loaded, or its executor prints job errors by itself (or this ran
    already).
    """
    executor = getattr(sys.modules.get(PLUGIN_MODULE), "Executor", None)
    if executor is None or "print_job_error" in vars(executor):
        return
    print_error = executor.print_job_error

    def print_job_error(self, job_info, msg=None, **kwargs):
        if msg and job_info.job.is_group():
            self.logger.error(msg)
        print_error(self, job_info, msg, **kwargs)

    executor.print_job_error = print_job_error


def run_group_jobs_in_one_process() -> None:
    """Run the jobs of a group job (the condor profiles' ``groups``) in the job's own Snakemake
    process, one after the other within the CPUs the group asked for, as a local run runs its
    jobs (call before the executor starts: when Snakemake parses the Snakefile).

    ``snakemake-interface-executor-plugins`` passes ``--force-use-threads`` to every pool job
    except group jobs, so Snakemake in a group job starts a new Snakemake process for each of
    its jobs with a ``run:`` block (all of this workflow's): Python, the imports, parsing the
    workflow and building its DAG again, ~2 CPU seconds each and 10-30 s on a loaded 2-core
    machine (measured: a week's gridding job spent 45 s in the group job for 12 s of work).
    It also gives a group job the client's ``--cores`` (2) whatever the group asked for, so
    jobs the group was sized to run one after the other (``group_cpus``) ran side by side: in
    threads of one process that is more memory than the job requested (HTCondor evicted such
    jobs) and two HDF5 readers at once (one such job died of SIGSEGV).  Adds
    ``--force-use-threads`` to group jobs and gives them ``--cores`` = the CPUs they request
    (the threads of their widest job: with the profiles' ``group_cpus``, jobs of equal threads
    run one at a time; a job of fewer threads may run beside another in the CPUs of a wider
    one).  A no-op when the plugin is not loaded (or this ran already).
    """
    executor = getattr(sys.modules.get(PLUGIN_MODULE), "Executor", None)
    if executor is None or "get_job_args" in vars(executor):
        return
    job_args = executor.get_job_args

    def get_job_args(self, job, **kwargs):
        args = job_args(self, job, **kwargs)
        if not job.is_group():
            return args
        # the client's --cores: a number (shared filesystem) or "all" (file transfer)
        return re.sub(r"--cores \S+", f"--cores {job.threads}", args) + " --force-use-threads"

    executor.get_job_args = get_job_args
