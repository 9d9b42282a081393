"""The workflow on a real HTCondor pool with ``--profile condor`` (issues #6 and #16: which
failures are retried, pool outputs byte-identical to local ones).

Everything runs on the local single-machine pool of ``workflow/scripts/condor-pool`` (fixture
``condor_pool``); the Snakemake client runs inside the pool's root as the job user, like a user
on a submit node, in a work directory the execute node sees at the same path (the shared
filesystem the profile assumes).  Never skipped: a machine that cannot run the pool fails.

The demo configuration is small (two countries, 0.5 degree grid, windows of a few days, 200
bootstrap samples: a dozen jobs).  Runs use ``--snakefile <project>/Snakefile`` from their own work
directory, so the Snakefile's ``configfile: "config/config.yaml"`` (relative to the working
directory) does not exist there and the test's config file is the only one: the local reference
run and the pool run read exactly the same configuration.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import xarray as xr
import yaml

from condor_fixtures import (  # noqa: F401  (fixtures are used by name)
    CONDOR_POOL,
    PROJECT_DIR,
    condor_pool,
    condor_workdir,
    processes_in_root,
)
from s5p_lockdown.outputs import SOURCE_DATE_EPOCH
from s5p_lockdown.retry import BAD_INPUT_EXIT_CODE
from workflow_helpers import SNAKEMAKE

pytestmark = pytest.mark.slow

SNAKEFILE = PROJECT_DIR / "Snakefile"
PROFILE = PROJECT_DIR / "profiles" / "condor"
INSTALL_PROFILES = PROJECT_DIR / "workflow" / "scripts" / "install-profiles"
PROFILE_SETTINGS = yaml.safe_load((PROFILE / "config.yaml").read_text())
#: how often HTCondor runs a failed job again (Snakemake itself retries nothing on the pool)
MAX_RETRIES = PROFILE_SETTINGS["default-resources"]["max_retries"]
HELD_TIMEOUT = PROFILE_SETTINGS["htcondor-held-timeout"]

#: 2 countries (France: lockdown 17 March; Sweden: none, reference window), 0.5 degree grid,
#: windows of 4-7 days -> 4 ISO weeks, coarse synthetic orbits: about a dozen jobs.
DEMO_CONFIG = {
    "synthetic": {"seed": 3, "same_weather_every_year": True,
                  "across_track_step": 30, "along_track_step": 20},
    "grid": {"south": 41.0, "north": 70.0, "west": -5.0, "east": 25.0, "resolution": 0.5},
    "countries": ["FRA", "SWE"],
    "windows": {"pre_days": 4, "post_days": 5, "reference_start": "2020-03-16",
                "reference_end": "2020-03-22"},
    "stats": {"bootstrap": 200, "min_days": 3},
}
CORRUPT_NAME = ("S5P_OFFL_L2__NO2____20200318T113000_20200318T131130_12345_01_010302_"
                "20200320T000000.nc")


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------

def demo_config(folder: Path, relative: bool = False, **overrides) -> Path:
    """config.yaml in ``folder`` with results and archive under it (``relative``: named
    relative to the working directory, so that runs in two folders record the same config)."""
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEMO_CONFIG.items()}
    base = Path() if relative else folder
    config["results"] = str(base / "results")
    config["source"] = {"kind": "synthetic", "archive": str(base / "archive")}
    config.update(overrides)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def new_dir(path: Path) -> Path:
    path.mkdir(mode=0o777)  # normal modes: the job user's ACL must not be masked
    return path


def pool_snakemake_argv(*args: str, profile: str = "condor") -> list[str]:
    """``snakemake TARGETS/OPTIONS --profile condor ...`` (targets before --configfile, which
    takes several values)."""
    return ["snakemake", *args, "--profile", profile, "--snakefile", str(SNAKEFILE),
            "--configfile", "config.yaml"]


def run_on_pool(pool, workdir: Path, *args: str, timeout: float = 600,
                env: dict[str, str] | None = None):
    """Snakemake with the condor profile inside the pool (``env``: more variables for it and,
    through ``getenv``, its jobs); a run that does not end within ``timeout`` fails with the
    output it had written (kept for diagnosis)."""
    t0 = time.monotonic()
    try:
        proc = pool.run(*pool_snakemake_argv(*args), cwd=workdir, check=False, timeout=timeout,
                        env=env)
    except subprocess.TimeoutExpired as expired:
        output = "".join(o.decode(errors="replace") if isinstance(o, bytes) else (o or "")
                         for o in (expired.output, expired.stderr))
        (Path(workdir) / "timed_out_run.log").write_text(output)
        raise AssertionError(f"snakemake on the pool did not end within {timeout:.0f} s; "
                             f"its output:\n{output[-5000:]}") from None
    return proc, proc.stdout + proc.stderr, time.monotonic() - t0


def submitted(log: str) -> dict[int, str]:
    """ClusterId -> JobBatchName of the jobs Snakemake submitted: ``<rule>-<jobid>`` for a job
    of one rule, ``<group>_<rules>-<uuid>`` for a group job (the condor profiles' ``groups``)."""
    return {int(c): b for c, b in re.findall(
        r"submitted to HTCondor Cluster ID (\d+) with batch name (\S+)", log)}


def succeeded(log: str) -> set[int]:
    """ClusterIds of the HTCondor jobs Snakemake reports successful (for a group job, before
    it reports each of the group's jobs finished)."""
    return {int(c) for c in re.findall(r"with HTCondor Cluster ID (\d+) was successful", log)}


def job_dir(batch: str) -> str:
    """The folder of a job's output under ``.snakemake/htcondor/``: its batch name without the
    job id (``grid_week``) or the group job's id (``week_grid_week``)."""
    return re.sub(r"-(\d+|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12})$", "", batch)


def finished(log: str) -> set[str]:
    """``<rule>-<jobid>`` of the jobs Snakemake reports finished (``all`` has no action and is
    never submitted: left out)."""
    return {f"{r}-{j}" for j, r in re.findall(r"Finished jobid: (\d+) \(Rule: (\w+)\)", log)
            if r != "all"}


def job_stats(log: str) -> Counter:
    """The first 'Job stats' table of a Snakemake log, without ``all`` and ``total``."""
    block = log.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = Counter()
    for line in block.splitlines():
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if m and m.group(1) not in ("all", "total"):
            counts[m.group(1)] = int(m.group(2))
    return counts


HISTORY_ATTRS = ("ClusterId", "JobBatchName", "JobStatus", "ExitCode", "NumJobStarts", "Args")


def condor_jobs(pool, workdir: Path, after: int = 0, queue: bool = False) -> list[dict]:
    """Jobs submitted from ``workdir`` (their Iwd) with ClusterId > after, from the history
    (or the queue); ``targets`` are Snakemake's ``--target-jobs`` of the job (several for a group
    job), ``starts`` how often HTCondor started it (its attempts)."""
    constraint = f'Iwd == "{workdir}" && ClusterId > {after}'
    cmd = (["condor_q", "-allusers"] if queue else ["condor_history"])
    out = pool.run(*cmd, "-constraint", constraint, "-af:t", *HISTORY_ATTRS, cwd=workdir).stdout
    rows = []
    for line in out.splitlines():
        if not line.strip():
            continue
        cluster, batch, status, exit_code, starts, args = line.split("\t", 5)
        targets = re.search(r"--target-jobs ((?:[^-\s]\S* )+)", args)
        attempt = re.search(r"--attempt (\d+)", args)
        rows.append({"cluster": int(cluster), "batch": batch, "status": int(status),
                     "exit": exit_code, "starts": int(starts) if starts.isdigit() else 0,
                     "targets": tuple(targets.group(1).split()) if targets else (),
                     "attempt": int(attempt.group(1)) if attempt else None})
    return rows


def wait_for_history(pool, workdir: Path, after: int, clusters: set[int],
                     seconds: float = 60) -> list[dict]:
    """History rows once every cluster in ``clusters`` has left the queue."""
    end = time.monotonic() + seconds
    while True:
        rows = condor_jobs(pool, workdir, after)
        if clusters <= {r["cluster"] for r in rows} or time.monotonic() > end:
            return rows
        time.sleep(1)


def wait_queue_empty(pool, workdir: Path, seconds: float) -> list[dict]:
    end = time.monotonic() + seconds
    while True:
        left = condor_jobs(pool, workdir, queue=True)
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.5)


#: Outputs of a run, relative to its working directory (its logs and benchmark records, with
#: times, left out).
OUTPUT_DIRS = ("results", "archive")
#: date_created of both runs of the comparison (outputs.SOURCE_DATE_EPOCH)
SOURCE_DATE = {SOURCE_DATE_EPOCH: "1584489600"}


def output_files(folder: Path, leave_out: tuple[str, ...] = ()) -> dict[str, Path]:
    """Every output file of the run in ``folder`` by its relative path, logs and benchmark
    records (and the folders ``leave_out``, relative paths) left out."""
    skip = [("results", "logs"), ("results", "benchmarks"), *(tuple(Path(p).parts) for p in leave_out)]
    files = {}
    for top in OUTPUT_DIRS:
        for path in sorted((folder / top).rglob("*")):
            rel = path.relative_to(folder)
            if path.is_file() and not any(rel.parts[:len(s)] == s for s in skip):
                files[str(rel)] = path
    return files


@contextlib.contextmanager
def local_reference_run(folder: Path):
    """The config of ``folder`` run by Snakemake locally on the host (the project venv), in the
    background while the block runs (its output in ``snakemake.log``); killed if still running
    when the block ends."""
    with open(folder / "snakemake.log", "w") as log:
        run = subprocess.Popen([*SNAKEMAKE, "--snakefile", str(SNAKEFILE), "--configfile",
                                "config.yaml"], cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env={**os.environ, **SOURCE_DATE})
        try:
            yield run
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()


def assert_same_results(local: Path, pool: Path, leave_out: tuple[str, ...] = ()):
    """Every output of the pool run byte-identical to the local run's (``leave_out``: folders
    of the local run that are no output, see ``output_files``)."""
    a, b = output_files(local, leave_out), output_files(pool)
    assert sorted(a) == sorted(b)
    assert any(name.endswith(".csv") for name in a) and any(name.endswith(".nc") for name in a)
    differ = [name for name in a if a[name].read_bytes() != b[name].read_bytes()]
    assert not differ, f"{len(differ)} of {len(a)} outputs differ: {differ}"
    with xr.open_dataset(local / "results" / "daily" / "2020-W12" / "2020-03-18.nc") as x:
        assert x.attrs["harp_operation"] == "bin_spatial(59,41,0.5,61,-5,0.5)"
    print(f"{len(a)} outputs byte-identical")


# ------------------------------------------------------------------------------------------
# tests
# ------------------------------------------------------------------------------------------

def test_install_profiles_is_idempotent(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    link = tmp_path / "xdg" / "snakemake" / "condor"

    def install(*args):
        return subprocess.run([str(INSTALL_PROFILES), *args], env=env, capture_output=True,
                              text=True, timeout=60)

    first = install()
    assert first.returncode == 0, first.stderr
    assert os.readlink(link) == str(PROFILE)
    # both pool profiles (shared filesystem, file transfer) by default
    assert os.readlink(link.with_name("condor-transfer")) == str(PROFILE) + "-transfer"
    again = install()
    assert again.returncode == 0 and "already installed" in again.stdout
    # a link to another checkout is left alone (two checkouts on one machine do not take each
    # other's profile over), with a note; --force re-points it; a dangling link is replaced
    other = tmp_path / "other-checkout" / "profiles" / "condor"
    other.mkdir(parents=True)
    link.unlink()
    link.symlink_to(other)
    kept = install()
    assert kept.returncode == 0 and os.readlink(link) == str(other), kept.stdout + kept.stderr
    assert "left alone" in kept.stdout and "--profile profiles/condor" in kept.stdout
    forced = install("--force")
    assert forced.returncode == 0 and os.readlink(link) == str(PROFILE), forced.stderr
    link.unlink()
    link.symlink_to(tmp_path / "gone")
    assert install().returncode == 0 and os.readlink(link) == str(PROFILE)
    link.unlink()
    link.mkdir()  # a real directory is left alone, and reported
    refused = install()
    assert refused.returncode == 1 and "not a link" in refused.stderr and link.is_dir()
    dest = install("--dest", str(tmp_path / "site"))
    assert dest.returncode == 0 and (tmp_path / "site" / "condor" / "config.yaml").is_file()
    # Snakemake resolves the bare name through the user config directory once installed
    lookup = [SNAKEMAKE[0], "-c", "from snakemake.cli import get_profile_dir; "
              "print(get_profile_dir('condor'))"]
    env2 = {**env, "XDG_CONFIG_HOME": str(tmp_path / "xdg2")}
    before = subprocess.run(lookup, cwd=tmp_path, env=env2, capture_output=True, text=True,
                            timeout=60)
    assert before.stdout.strip() == "None", before.stdout + before.stderr
    subprocess.run([str(INSTALL_PROFILES)], env=env2, check=True, capture_output=True, timeout=60)
    after = subprocess.run(lookup, cwd=tmp_path, env=env2, capture_output=True, text=True,
                           timeout=60)
    assert str(tmp_path / "xdg2" / "snakemake" / "condor" / "config.yaml") in after.stdout


def test_profile_resolves_and_combines_with_workflow_profile(condor_pool, condor_workdir):
    """`--profile condor` (installed for the job user by `condor-pool up`) and
    `--profile profiles/condor` give the same settings; profiles/default (the workflow
    profile, applied automatically) adds its own keys on top without breaking the condor ones."""
    code = (
        "import json, sys\n"
        "from snakemake.cli import parse_args\n"
        "_, a = parse_args(['--profile', sys.argv[1], '--snakefile', sys.argv[2]])\n"
        "print(json.dumps(dict(executor=a.executor, jobs=a.jobs, cores=a.cores,\n"
        "    retries=a.retries, latency_wait=a.latency_wait, held=a.htcondor_held_timeout,\n"
        "    jobdir=a.htcondor_jobdir, rerun_incomplete=a.rerun_incomplete,\n"
        "    defaults=sorted(a.default_resources), groups=a.groups,\n"
        "    components=a.group_components, scopes=dict(a.set_resource_scopes),\n"
        "    resources=a.resources.args)))\n"
    )
    settings = {}
    for profile in ("condor", str(PROFILE)):
        proc = condor_pool.run("python", "-c", code, profile, str(SNAKEFILE), cwd=condor_workdir)
        assert f"Using profiles {profile} and workflow specific profile " \
               f"{PROJECT_DIR}/profiles/default" in proc.stderr
        settings[profile] = yaml.safe_load(proc.stdout.splitlines()[-1])
    assert settings["condor"] == settings[str(PROFILE)]
    s = settings["condor"]
    assert (s["executor"], s["jobs"], s["retries"], s["held"], s["jobdir"]) == \
        ("htcondor", 4, 0, HELD_TIMEOUT, ".snakemake/htcondor")
    # from profiles/default: cores caps the threads of one job (not the number of jobs: that is
    # `jobs`), rerun-incomplete lets an interrupted run resume
    assert s["cores"] == 2 and s["rerun_incomplete"] is True
    assert {"getenv", "max_retries", "retry_until", "htcondor_request_mem_mb",
            "htcondor_request_disk_mb", "group_cpus"} <= set(s["defaults"])
    # fewer, larger jobs: a week's jobs in one, the rest in one; each group job sized as if its
    # jobs ran one after the other (group_cpus: local, one per group job, from profiles/default)
    assert s["groups"] == {**dict.fromkeys(["synthesize_week", "grid_week", "attribute_week"], "week"),
                           **dict.fromkeys(["period_composites", "daily_means", "country_stats",
                                            "hotspot_stats", "region_stats", "synthetic_truth"],
                                           "summary")}
    assert s["components"] == {"summary": 4} and s["scopes"] == {"group_cpus": "local"}
    assert "group_cpus=1" in s["resources"]


def test_demo_on_pool_interrupt_resume_equals_local(condor_pool, condor_workdir):
    """The demo on the pool: interrupted with SIGINT (its jobs leave the queue), resumed (only
    unfinished jobs run; the resumed client once waited forever, see
    condor.avoid_status_thread_race), every Snakemake job an HTCondor job that exited 0, every
    output byte-identical to a local run of the same config in the project venv (the pool venv
    is a copy of it: same Python, same packages)."""
    pool_dir = new_dir(condor_workdir / "pool")
    local_dir = new_dir(condor_workdir / "local")
    demo_config(pool_dir, relative=True)
    demo_config(local_dir, relative=True)

    # local reference run on the host (the project venv), at the same time
    with local_reference_run(local_dir) as local:
        # ---- run 1: interrupt once one job finished and another waits idle in the queue.
        # The week's jobs ask for 4 threads each, so the profile's week group jobs (synthesis,
        # gridding, attribution of a week, one after the other) request all 4 of the pool's
        # CPUs: of the 4 jobs Snakemake submits one runs and the others wait idle, two of them
        # still for a whole job's duration after the first finished (with 2 threads, two ran
        # at once and finished together, and the pool, which matches within a second, could
        # start the other two before Snakemake reported the first done). An idle job cannot
        # complete before the removal reaches it. (A running job may: Snakemake polls job
        # states only every second.)
        before1 = condor_pool.max_cluster_id()
        log1 = pool_dir / "run1.log"
        with open(log1, "w") as fh:
            # own session, SIGINT handled: a suite started in the background (`cmd &`) has it
            # ignored, and a child inherits that; condor-pool run execs the chroot, which execs
            # snakemake: one process
            # (--cores 4: the workflow profile's cores: 2 would cap the threads of a job at 2)
            argv = pool_snakemake_argv("--cores", "4", "--set-threads", "synthesize_week=4",
                                       "grid_week=4", "attribute_week=4")
            env = [f"--env={k}={v}" for k, v in SOURCE_DATE.items()]
            run1 = subprocess.Popen([str(CONDOR_POOL), "run", *env, "--", *argv],
                                    cwd=pool_dir, stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            end = time.monotonic() + 300
            while True:
                text = log1.read_text()
                if finished(text):
                    idle = [r for r in condor_jobs(condor_pool, pool_dir, before1, queue=True)
                            if r["status"] == 1]
                    if idle:
                        break
                assert run1.poll() is None, f"run 1 ended before the interrupt:\n{text[-3000:]}"
                assert time.monotonic() < end, f"no job finished in 300 s:\n{text[-3000:]}"
                time.sleep(0.3)
            os.killpg(run1.pid, signal.SIGINT)
            t_int = time.monotonic()
            rc1 = run1.wait(timeout=120)
            exit_seconds = time.monotonic() - t_int
        finally:
            if run1.poll() is None:
                os.killpg(run1.pid, signal.SIGKILL)
                run1.wait()
        text1 = log1.read_text()
        assert rc1 != 0, text1[-3000:]
        left = wait_queue_empty(condor_pool, pool_dir, 15)
        queue_seconds = time.monotonic() - t_int
        assert left == [], f"jobs still queued {queue_seconds:.0f} s after SIGINT: {left}"
        sub1, done1 = submitted(text1), succeeded(text1)
        rows1 = wait_for_history(condor_pool, pool_dir, before1, set(sub1))
        assert {r["cluster"]: r["batch"] for r in rows1} == sub1
        # jobs Snakemake had not reported finished: removed (3), or completed (4) before the
        # removal reached them; the ones idle at the interrupt were certainly removed
        removed = [r for r in rows1 if r["cluster"] not in done1]
        assert all(r["status"] == 3 or (r["status"], r["exit"]) == (4, "0") for r in removed), \
            removed
        idle_at_interrupt = [r for r in rows1 if r["cluster"] in {i["cluster"] for i in idle}]
        assert idle_at_interrupt and all(r["status"] == 3 for r in idle_at_interrupt), rows1
        assert all((r["status"], r["exit"]) == (4, "0") for r in rows1 if r["cluster"] in done1)
        print(f"interrupt: snakemake exited {exit_seconds:.1f} s and the queue was empty "
              f"{queue_seconds:.1f} s after SIGINT; {len(done1)} jobs done, "
              f"{len(removed)} removed")

        # ---- run 2: resume
        before2 = condor_pool.max_cluster_id()
        proc, text2, seconds2 = run_on_pool(condor_pool, pool_dir, env=SOURCE_DATE)
        (pool_dir / "run2.log").write_text(text2)
        assert proc.returncode == 0, text2[-5000:]
        sub2, done2 = submitted(text2), succeeded(text2)
        rows2 = wait_for_history(condor_pool, pool_dir, before2, set(sub2))
        # every submitted job (a group job of the profile's groups) ran as exactly one HTCondor
        # job, completed with exit code 0
        assert {r["cluster"] for r in rows2} == done2 == set(sub2)
        assert {r["cluster"]: r["batch"] for r in rows2} == sub2
        assert all((r["status"], r["exit"]) == (4, "0") for r in rows2), rows2
        # ... and left its logs in the predictable place
        for r in rows2:
            err = pool_dir / ".snakemake" / "htcondor" / job_dir(r["batch"]) / \
                f"{r['batch']}_{r['cluster']}.err"
            assert err.is_file(), err
        # only unfinished jobs ran again: never one Snakemake had reported finished
        targets1 = {t for r in rows1 if r["cluster"] in done1 for t in r["targets"]}
        targets2 = {t for r in rows2 for t in r["targets"]}
        assert not targets1 & targets2
        # a removed job that is not rerun completed its work before the removal took effect
        # (condor_rm sends SIGTERM; snakemake in the job finishes its running job first):
        # its output is complete, and the job's own log says so
        for r in removed:
            if not set(r["targets"]) & targets2:
                err = pool_dir / ".snakemake" / "htcondor" / job_dir(r["batch"]) / \
                    f"{r['batch']}_{r['cluster']}.err"
                n = len(r["targets"])
                assert f"{n} of {n} steps (100%) done" in err.read_text(), err
        assert local.wait(timeout=600) == 0, (local_dir / "snakemake.log").read_text()[-5000:]
        expected = job_stats((local_dir / "snakemake.log").read_text())
        every = targets1 | targets2 | {t for r in removed for t in r["targets"]}
        assert Counter(t.split(":")[0] for t in every) == expected
        assert len(every) == sum(expected.values())
        assert len(targets2) < len(every)
        print(f"resume: {len(rows2)} jobs in {seconds2:.1f} s")

    assert_same_results(local_dir, pool_dir)


def test_bad_input_fails_once_and_is_reported(condor_pool, condor_workdir):
    """A corrupt L2 file in a `local` archive: the week's gridding job fails on the pool with the
    bad-input exit code and HTCondor does not run it again (one cluster, one start), although
    the profile retries other failures; the run fails naming the rule, the log and the file."""
    day = condor_workdir / "archive" / "2020" / "03" / "18"
    day.mkdir(parents=True)
    (day / CORRUPT_NAME).write_bytes(os.urandom(4096))
    demo_config(condor_workdir, source={"kind": "local", "archive": str(condor_workdir / "archive"),
                                        "on_missing_data": "flag"})
    before = condor_pool.max_cluster_id()
    week = condor_workdir / "results" / "daily" / "2020-W12"
    proc, out, seconds = run_on_pool(condor_pool, condor_workdir, str(week))
    assert proc.returncode != 0, out[-3000:]
    rows = wait_for_history(condor_pool, condor_workdir, before, set(submitted(out)))
    assert MAX_RETRIES > 0
    # the week's group job (profile's groups) holding the gridding job alone
    assert [(job_dir(r["batch"]), r["targets"], r["starts"], r["status"], r["exit"]) for r in rows] == \
        [("week_grid_week", ("grid_week:week=2020-W12",), 1, 4, str(BAD_INPUT_EXIT_CODE))], rows
    assert out.count("Error in rule grid_week") == 1 and "Error in group week" in out
    # the plugin's message, which Snakemake leaves out for a group job
    # (condor.report_group_job_messages)
    assert f"completed but failed with ExitCode {BAD_INPUT_EXIT_CODE}" in out
    assert "Trying to restart job" not in out
    assert f"{week.parents[1]}/logs/grid_week/2020-W12.log" in out
    # show-failed-logs (profiles/default) prints the job's log: it names the bad file
    assert f"ERROR s5p_lockdown: {day / CORRUPT_NAME}" in out
    assert "At least one job did not complete successfully" in out
    assert not week.exists()
    # the job's own output says why it was not retried
    err = condor_workdir / ".snakemake" / "htcondor" / "week_grid_week" / \
        f"{rows[0]['batch']}_{rows[0]['cluster']}.err"
    assert f"exit code {BAD_INPUT_EXIT_CODE}, not retried" in err.read_text()
    print(f"bad input: 1 attempt, failed and reported in {seconds:.1f} s")


def job_process(pool, workdir: Path, rule: str, seconds: float) -> int:
    """PID of the running pool job of ``rule`` started from ``workdir`` (the job's own
    ``snakemake --mode remote``: the HTCondor executable), waited for up to ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for pid in processes_in_root(pool.root):
            try:
                args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            args = args.split("\0")
            if "remote" in args and any(a.startswith(f"{rule}:") for a in args) \
                    and any(a.startswith(f"{workdir}/") for a in args):
                return pid
        time.sleep(0.2)
    raise AssertionError(f"no job of rule {rule} ran from {workdir} within {seconds:.0f} s")


def start_pool_run(workdir: Path, target: Path, log: Path) -> subprocess.Popen:
    """``snakemake --profile condor TARGET`` inside the pool, in the background, its output in
    ``log``."""
    with open(log, "w") as fh:
        return subprocess.Popen([str(CONDOR_POOL), "run", "--", *pool_snakemake_argv(str(target))],
                                cwd=workdir, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def test_killed_job_is_run_again_by_htcondor(condor_pool, condor_workdir):
    """A job killed while it runs (what a lost execute node or the kernel's OOM killer does to
    it; a transient failure) is run again by HTCondor, in the same cluster, and the run
    finishes: one cluster started twice, exit code 0, output complete."""
    demo_config(condor_workdir)
    target = condor_workdir / "archive" / "manifests" / "2020-W12.txt"
    before = condor_pool.max_cluster_id()
    log = condor_workdir / "run.log"
    run = start_pool_run(condor_workdir, target, log)
    try:
        os.kill(job_process(condor_pool, condor_workdir, "synthesize_week", 120), signal.SIGKILL)
        rc = run.wait(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    out = log.read_text()
    assert rc == 0, out[-5000:]
    rows = wait_for_history(condor_pool, condor_workdir, before, set(submitted(out)))
    assert [(job_dir(r["batch"]), r["starts"], r["status"], r["exit"]) for r in rows] == \
        [("week_synthesize_week", 2, 4, "0")], rows
    assert "Trying to restart job" not in out  # HTCondor ran it again, not Snakemake
    assert target.is_file() and target.read_text().strip()
    print(f"killed job: started twice by HTCondor, run finished: {rows}")


def test_held_job_is_reported_not_waited_on(condor_pool, condor_workdir):
    """A job whose output file cannot be opened on the execute node goes on hold; with
    htcondor-held-timeout 0 the run fails at once with the hold reason (held jobs stay in the
    queue for inspection: removed here)."""
    demo_config(condor_workdir)
    rule_dir = condor_workdir / ".snakemake" / "htcondor" / "week_synthesize_week"
    rule_dir.mkdir(parents=True)
    rule_dir.chmod(0o555)  # also masks the job user's ACL entry
    target = condor_workdir / "archive" / "manifests" / "2020-W12.txt"
    proc, out, seconds = run_on_pool(condor_pool, condor_workdir, str(target),
                                     "--htcondor-held-timeout", "0", timeout=300)
    try:
        assert proc.returncode != 0, out[-3000:]
        assert seconds < 120, f"the held job was waited on for {seconds:.0f} s"
        (cluster,) = submitted(out)
        m = re.search(rf"HTCondor Cluster ID {cluster} is held: (.*)", out)
        assert m and "Permission denied" in m.group(1), out[-3000:]
        assert "Error in rule synthesize_week" in out
        held = condor_jobs(condor_pool, condor_workdir, queue=True)
        assert [(r["cluster"], r["status"]) for r in held] == [(cluster, 5)]  # 5 = held
        print(f"held job reported in {seconds:.1f} s: {m.group(1)}")
    finally:
        condor_pool.run("condor_rm", "-constraint", f'Iwd == "{condor_workdir}"',
                        cwd=condor_workdir, check=False)
        rule_dir.chmod(0o755)
    assert wait_queue_empty(condor_pool, condor_workdir, 30) == []


def test_held_job_that_is_released_goes_on(condor_pool, condor_workdir):
    """A hold that passes: the job's log directory cannot be written, so the job goes on hold;
    once the directory is fixed and the job released (what a pool's periodic release or the
    user does) within the profile's htcondor-held-timeout, the same job runs and the run
    finishes."""
    demo_config(condor_workdir)
    rule_dir = condor_workdir / ".snakemake" / "htcondor" / "week_synthesize_week"
    rule_dir.mkdir(parents=True)
    rule_dir.chmod(0o555)
    target = condor_workdir / "archive" / "manifests" / "2020-W12.txt"
    before = condor_pool.max_cluster_id()
    log = condor_workdir / "run.log"
    run = start_pool_run(condor_workdir, target, log)
    try:
        end = time.monotonic() + 120
        while not [r for r in condor_jobs(condor_pool, condor_workdir, before, queue=True)
                   if r["status"] == 5]:
            assert run.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < end, f"no job held in 120 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        rule_dir.chmod(0o775)  # group bits = the ACL mask: the job user's entry applies again
        condor_pool.run("condor_release", "-constraint", f'Iwd == "{condor_workdir}"',
                        cwd=condor_workdir)
        rc = run.wait(timeout=HELD_TIMEOUT + 120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        rule_dir.chmod(0o755)
    out = log.read_text()
    assert rc == 0, out[-5000:]
    rows = wait_for_history(condor_pool, condor_workdir, before, set(submitted(out)))
    assert [(job_dir(r["batch"]), r["status"], r["exit"]) for r in rows] == \
        [("week_synthesize_week", 4, "0")], rows
    # the job's HTCondor events: held (012), released (013), then it ended (005)
    events = (condor_workdir / ".snakemake" / "htcondor" / "snakemake-rules.log").read_text()
    cluster = f"({rows[0]['cluster']:03d}.000.000)"
    codes = [line.split()[0] for line in events.splitlines() if cluster in line]
    assert [c for c in codes if c in ("012", "013", "005")] == ["012", "013", "005"], events
    assert target.is_file()
