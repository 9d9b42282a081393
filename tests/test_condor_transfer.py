"""The workflow on a pool without a shared filesystem: ``--profile condor-transfer`` (issue #16,
item 5) on the local pool's second execute node.

``workflow/scripts/condor-pool`` runs two execute nodes: one shares the filesystem with the
submit side (``--profile condor``, ``tests/test_condor_workflow.py``); the other runs its jobs
in a scratch directory of a mount namespace where the project directory, and with it every
test work directory, the project venv and every ``results/``, is an empty read-only tmpfs.  A
job goes there when it transfers its files (``should_transfer_files = YES``, what the profile
submits).  The first test proves that such a job sees nothing of the project; the second runs
the demo with the profile from a clone-like copy of the workflow (the Snakefile, ``workflow/``,
``src/s5p_lockdown/``: what the profile transfers) and compares every output byte for byte with
a local run.  Never skipped: a machine that cannot run the pool fails.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from s5p_lockdown import aot

from condor_fixtures import PROJECT_DIR, condor_pool, condor_workdir  # noqa: F401
from test_condor_workflow import (
    SOURCE_DATE,
    assert_same_results,
    demo_config,
    finished,
    job_dir,
    job_stats,
    local_reference_run,
    new_dir,
    submitted,
    succeeded,
    wait_for_history,
)

pytestmark = pytest.mark.slow

PROFILE = PROJECT_DIR / "profiles" / "condor-transfer"
#: the execute node without a shared filesystem (condor-pool: STARTD_NAME of its startd)
SCRATCH_NODE = "@scratch@"
#: what a clone must hold for the profile: the Snakefile and what it transfers besides
WORKFLOW_SOURCES = ("Snakefile", "workflow", "src/s5p_lockdown")
#: the local run's cache of region masks (built by the jobs that need them; in a job's scratch
#: directory on a pool without a shared filesystem, not an output brought back)
MASK_CACHE = ("results/masks",)


def copy_workflow(folder: Path) -> None:
    """The workflow's sources into ``folder``, as in a clone of the project (without caches),
    with the kernels compiled ahead of time into its package's ``__pycache__``, as ``make venv``
    does in a clone (``s5p_lockdown.aot``): transferred with the sources, they let the jobs run
    without numba."""
    for name in WORKFLOW_SOURCES:
        source, target = PROJECT_DIR / name, folder / name
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o777)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    aot.copy_into(folder / "src" / "s5p_lockdown" / "__pycache__")
    for path in [folder, *folder.rglob("*")]:  # the job user writes here (ACL mask)
        path.chmod(0o777 if path.is_dir() else 0o666 | (path.stat().st_mode & 0o111))


def probe(pool, workdir: Path, transfer: bool) -> tuple[str, str, str]:
    """A job that reports its working directory and what it sees of the project directory;
    (its output, its error output, the slot it ran in)."""
    name = "transfer" if transfer else "shared"
    script = textwrap.dedent(f"""\
        echo "cwd=$PWD"
        echo "entries=$(ls -A {PROJECT_DIR} | wc -l)"
        for path in {PROJECT_DIR}/Snakefile {PROJECT_DIR}/.venv/bin/python {workdir}; do
            if [ -e "$path" ]; then echo "sees $path"; else echo "misses $path"; fi
        done
        grep " {PROJECT_DIR} " /proc/self/mountinfo
        """)
    (workdir / f"{name}.sh").write_text(script)
    (workdir / f"{name}.sub").write_text(textwrap.dedent(f"""\
        executable = /bin/sh
        arguments = {name}.sh
        transfer_executable = false
        {"transfer_input_files = " + name + ".sh" if transfer else ""}
        should_transfer_files = {"YES" if transfer else "NO"}
        output = {name}.out
        error = {name}.err
        log = {name}.log
        queue
        """))
    cluster = pool.submit_and_wait(f"{name}.sub", cwd=workdir, log=f"{name}.log")
    host = pool.history(f"ClusterId == {cluster}", "LastRemoteHost")[0][0]
    return (workdir / f"{name}.out").read_text(), (workdir / f"{name}.err").read_text(), host


def test_scratch_node_sees_nothing_of_the_project(condor_pool, condor_workdir):
    """A job that transfers its files runs on the node without a shared filesystem, in a
    scratch directory outside the project, and sees neither the project directory (an empty
    tmpfs there), its venv nor the test's work directory; the same job without file transfer
    runs on the shared node and sees them (so the probe can tell)."""
    out, err, host = probe(condor_pool, condor_workdir, transfer=True)
    assert SCRATCH_NODE in host, host
    cwd = out.split("cwd=", 1)[1].split("\n", 1)[0]
    assert not cwd.startswith(str(PROJECT_DIR)), out
    assert "entries=0\n" in out, out
    for path in (PROJECT_DIR / "Snakefile", PROJECT_DIR / ".venv" / "bin" / "python",
                 condor_workdir):
        assert f"misses {path}\n" in out, out
    assert " tmpfs s5p-hidden ro," in out, out  # the mount that hides it
    shared_out, _, shared_host = probe(condor_pool, condor_workdir, transfer=False)
    assert SCRATCH_NODE not in shared_host, shared_host
    assert f"cwd={condor_workdir}\n" in shared_out
    assert f"sees {PROJECT_DIR / 'Snakefile'}\n" in shared_out, shared_out
    assert f"sees {condor_workdir}\n" in shared_out, shared_out
    assert not err, err


def test_demo_without_shared_filesystem_equals_local(condor_pool, condor_workdir):
    """The demo with ``--profile condor-transfer`` from a copy of the workflow: every job runs on
    the node without a shared filesystem, receives its inputs and the workflow's sources and
    sends its outputs back (bytes counted by HTCondor), exits 0; every output is byte-identical
    to a local run of the same config (the region-mask cache, which stays in the jobs' scratch
    directories, left out)."""
    pool_dir = new_dir(condor_workdir / "pool")
    local_dir = new_dir(condor_workdir / "local")
    copy_workflow(pool_dir)
    demo_config(pool_dir, relative=True)
    demo_config(local_dir, relative=True)

    with local_reference_run(local_dir) as local:
        before = condor_pool.max_cluster_id()
        proc = condor_pool.run("snakemake", "--profile", "condor-transfer", "--configfile",
                               "config.yaml", cwd=pool_dir, check=False, timeout=900,
                               env=SOURCE_DATE)
        text = proc.stdout + proc.stderr
        (pool_dir / "run.log").write_text(text)
        assert proc.returncode == 0, text[-5000:]
        assert local.wait(timeout=900) == 0, (local_dir / "snakemake.log").read_text()[-5000:]

    jobs = submitted(text)
    local_jobs = job_stats((local_dir / "snakemake.log").read_text())
    # every job of the local run ran, in the profile's group jobs: one per week (its orbits
    # generated, gridded and attributed) and one for everything after the weeks
    assert len(finished(text)) == sum(job_stats(text).values()) == sum(local_jobs.values())
    assert sorted(job_dir(b).split("_", 1)[0] for b in jobs.values()) == \
        ["summary"] + ["week"] * local_jobs["grid_week"]
    assert succeeded(text) == set(jobs)
    wait_for_history(condor_pool, pool_dir, before, set(jobs))
    rows = condor_pool.history(f'Iwd == "{pool_dir}" && ClusterId > {before}', "ClusterId",
                               "LastRemoteHost", "ExitCode", "BytesRecvd", "BytesSent")
    assert sorted(int(r[0]) for r in rows) == sorted(jobs)
    sources = sum(f.stat().st_size for name in WORKFLOW_SOURCES[1:]
                  for f in (pool_dir / name).rglob("*") if f.is_file())
    for cluster, host, exit_code, received, sent in rows:
        assert SCRATCH_NODE in host and exit_code == "0", (cluster, host, exit_code)
        # every job received at least the workflow's sources, and sent outputs back
        assert float(received) >= sources and float(sent) > 0, (jobs[int(cluster)], received, sent)
    # the transfer profile's settings are the ones used (shared-fs-usage none: YES)
    settings = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert settings["shared-fs-usage"] == "none"
    assert not (pool_dir / "results" / "masks").exists()
    # the node's job cache (S5P_JOB_CACHE): the sources, copied once under the digest of their
    # content, with the compiled kernels that came with them; the jobs loaded those: numba
    # compiled nothing (its cache would hold an index beside the kernel's source)
    cache = condor_pool.root / "var" / "cache" / "s5p-job-cache" / "uid-4242"
    # (folders of other sources may be there from earlier runs)
    with_module = [d for d in cache.glob("src-*") if list(d.glob("s5p_lockdown/__pycache__/_s5p_aot_*.so"))]
    assert with_module, sorted(cache.rglob("*"))
    for folder in with_module:
        assert not list(folder.rglob("*.nbi")), sorted(folder.rglob("*.nbi"))
    assert_same_results(local_dir, pool_dir, leave_out=MASK_CACHE)
    # each job's log and benchmark record came back with its outputs (not declared outputs:
    # job_resources(records=True) in workflow/rules/common.smk)
    for records in ("logs", "benchmarks"):
        local_records = sorted(p.relative_to(local_dir) for p in (local_dir / "results" / records).rglob("*")
                               if p.is_file())
        assert local_records, records
        assert sorted(p.relative_to(pool_dir) for p in (pool_dir / "results" / records).rglob("*")
                      if p.is_file()) == local_records
