"""Integration tests of the single-machine HTCondor pool (workflow/scripts/condor-pool).

These start a real pool (root build on first use: 1½-3 minutes, see
docs/htcondor-local-pool.md; cached afterwards) and are never skipped: a machine that cannot run
them fails them.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time

import pytest

from condor_fixtures import (  # noqa: F401  (fixtures are used by name)
    SNAKEMAKE_HTCONDOR_ARGS,
    condor_pool,
    condor_pool_cli,
    condor_workdir,
    mounts_under,
    processes_in_root,
)

pytestmark = pytest.mark.slow


def test_trivial_echo_job(condor_pool, condor_workdir):
    (condor_workdir / "hi.sub").write_text(textwrap.dedent("""\
        executable = /bin/echo
        arguments = hello from condor
        log = hi.log
        output = hi.out
        error = hi.err
        batch_name = s5p-test-trivial
        queue
        """))
    t0 = time.monotonic()
    cluster = condor_pool.submit_and_wait("hi.sub", cwd=condor_workdir, log="hi.log")
    latency = time.monotonic() - t0
    print(f"trivial job latency: {latency:.1f} s")
    rows = condor_pool.history(f"ClusterId == {cluster}", "Owner", "Cmd", "ExitCode",
                               "JobStatus")
    assert rows == [["htcuser", "/bin/echo", "0", "4"]]
    assert (condor_workdir / "hi.out").read_text() == "hello from condor\n"


def test_up_is_idempotent(condor_pool):
    t0 = time.monotonic()
    condor_pool.up()
    assert time.monotonic() - t0 < 60
    status = condor_pool_cli("status")
    assert "pool: up" in status.stdout
    assert "slot1@" in status.stdout


def test_pool_venv_runs_the_project_venvs_software(condor_pool, condor_workdir):
    """Jobs and clients of the pool run a copy of the project venv: the same Python build and
    exactly its packages (s5p_lockdown.software compares them, as every client of the pool
    does before it submits)."""
    code = ("import json, sys\n"
            "from s5p_lockdown.software import project_venv, running_software, venv_software\n"
            "here, there = running_software(), venv_software(project_venv())\n"
            "print(json.dumps([sys.prefix, sys.version, here.differences(there),"
            " len(here.packages)]))\n")
    prefix, version, differences, count = json.loads(
        condor_pool.run("python", "-c", code, cwd=condor_workdir).stdout)
    assert prefix == "/opt/htc-venv" and differences == [] and count > 100
    assert version == sys.version  # the same build: version, date and compiler
    print(f"pool venv: Python {version.split()[0]}, {count} packages as in the project venv")


def test_run_outside_workdir_fails_clearly(condor_pool, tmp_path):
    # tmp_path is not bind-mounted into the root (chroot mode); in native mode the job user
    # cannot enter it (pytest's base temp directory is mode 0700)
    proc = condor_pool_cli("run", "true", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    if condor_pool.mode == "chroot":
        assert "not visible inside the pool root" in proc.stderr


def test_snakemake_htcondor_executor(condor_pool, condor_workdir):
    """A 2-rule workflow whose jobs run on the pool and import the project package."""
    (condor_workdir / "Snakefile").write_text(textwrap.dedent("""\
        rule all:
            input: "out/summary.txt"

        rule make:
            output: "out/data_{i}.txt"
            shell: "echo {wildcards.i} slot=$_CONDOR_SLOT > {output}"

        rule summary:
            input: expand("out/data_{i}.txt", i=[1, 2])
            output: "out/summary.txt"
            run:
                import os
                import s5p_lockdown
                with open(output[0], "w") as fh:
                    for f in input:
                        fh.write(open(f).read())
                    fh.write(f"summary slot={os.environ.get('_CONDOR_SLOT')} "
                             f"pkg={s5p_lockdown.__file__}\\n")
        """))
    before = condor_pool.max_cluster_id()
    proc = condor_pool.run("snakemake", *SNAKEMAKE_HTCONDOR_ARGS, cwd=condor_workdir,
                           check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = (condor_workdir / "out" / "summary.txt").read_text().splitlines()
    assert len(lines) == 3
    for line in lines:
        assert "slot=slot1" in line, line  # every job ran under a condor_starter
    src = condor_pool.info["PROJECT_DIR"] + "/src/s5p_lockdown/__init__.py"
    assert lines[-1].endswith(f"pkg={src}")  # the editable install: current sources
    rows = condor_pool.history(f"ClusterId > {before}", "JobBatchName", "ExitCode", "JobStatus")
    assert sorted(r[0].split("-")[0] for r in rows) == ["make", "make", "summary"]
    assert all(r[1:] == ["0", "4"] for r in rows), rows


def test_down_leaves_no_mount(condor_pool):
    """Keep this test last in the module: it stops the pool and then restarts it."""
    root = condor_pool.root
    condor_pool.down()
    if condor_pool.mode == "chroot":
        assert mounts_under(root) == []
        assert processes_in_root(root) == []
    assert "pool: down" in condor_pool_cli("status", check=False).stdout
    condor_pool.down()  # idempotent
    condor_pool.up()    # restore the session pool for later tests
    assert "pool: up" in condor_pool_cli("status").stdout
    if condor_pool.mode == "chroot":
        assert os.path.ismount(root / "proc")
