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
"""

from __future__ import annotations

from s5p_lockdown.errors import S5PLockdownError

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
    """Check, before a workflow submits anything, that the ``htcondor`` executor has a pool.

    ``executor`` is the name of Snakemake's executor plugin (``workflow.executor_plugin.name``);
    other executors need no pool and pass.  Raises :class:`PoolUnreachableError`.
    """
    if executor == "htcondor":
        local_schedd(instead=WORKFLOW_COMMAND)
