"""Benchmark of ``--profile condor`` and ``--profile condor-transfer`` on the local HTCondor pool
(issues #6 and #16). Prints figures; asserts nothing.

Usage (as root, from the project root)::

    .venv/bin/python benchmarks/bench_condor.py [--cold] [--keep]

It runs the small demo workflow of ``tests/test_condor_workflow.py`` (2 countries, 0.5 degree
grid, short windows, 200 bootstrap samples) three times from scratch with the same config:

* locally on the host (``snakemake`` with the workflow profile: ``--cores 2``);
* on the local pool with the shared filesystem (``condor-pool run -- snakemake --profile
  condor``: up to 4 jobs in 4 one-CPU slots of the same 2-core machine);
* on the local pool without a shared filesystem (``--profile condor-transfer`` from a copy of
  the workflow's sources, as in a clone; the jobs run on the pool's execute node that sees
  nothing of the project, ``tests/test_condor_transfer.py``);

and reports the wall times side by side (and as a ratio to the local run: the target is at
most 1.3), the CPU seconds each run used (the local run's process tree; the pool client's
process tree plus its jobs' ``RemoteUserCpu + RemoteSysCpu``, whole seconds: the figure the
other users of a shared machine move least), what each transfer job received and sent
(HTCondor's ``BytesRecvd``/``BytesSent`` of the job, by rule or group), and per pool job (a
group job of the profiles' ``groups`` holds several rules' jobs): the local run time of its
rules' jobs (from Snakemake's log, 1 s resolution), the time in the pool's queue
(``JobStartDate - QDate``), the time in a slot (``CompletionDate - JobStartDate``, which
includes starting Python and Snakemake in the job) and the total overhead per job.  Pool start-up: ``warm`` = ``condor-pool up`` from the
cached root after ``down``; with ``--cold`` also ``condor-pool clean`` + ``up`` (debootstrap,
apt, pip: a few minutes, needs the Debian mirror and PyPI).  ``--only condor`` (or
``condor-transfer``) runs the local run and that profile only.

The pool is left running afterwards (``condor-pool down`` to stop it).  Do not run it while
other tests use the pool: it stops and restarts it.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests"))
from test_condor_workflow import DEMO_CONFIG  # noqa: E402  (one demo, shared with the tests)

from s5p_lockdown.outputs import SOURCE_DATE_EPOCH  # noqa: E402

CONDOR_POOL = PROJECT / "workflow" / "scripts" / "condor-pool"
SNAKEFILE = PROJECT / "Snakefile"
WORK = PROJECT / "test-artifacts" / "bench-condor"
PROFILES = ("condor", "condor-transfer")


def pool(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(CONDOR_POOL), *args], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        sys.exit(f"condor-pool {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    result = fn(*args, **kw)
    return time.monotonic() - t0, result


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def job_dir(batch: str) -> str:
    """A pool job's batch name without its job id (``grid_week``) or group job id
    (``week_attribute_week_grid_week_synthesize_week``)."""
    return re.sub(r"-(\d+|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12})$", "", batch)


def write_config(folder: Path) -> None:
    """The demo's config in ``folder``, paths relative to it (as --profile condor-transfer
    needs them)."""
    folder.mkdir(mode=0o777)
    config = {**DEMO_CONFIG, "results": "results",
              "source": {"kind": "synthetic", "archive": "archive"}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))


def local_job_seconds(log: str) -> dict[str, float]:
    """rule-jobid -> seconds between the job's start and 'Finished' timestamps."""
    stamp = r"\[(\w{3} \w{3} +\d+ [\d:]{8} \d{4})\]"
    started, out = {}, {}
    # Snakemake prints "[date]" before every job header and before every "Finished jobid"
    last = None
    for line in log.splitlines():
        m = re.fullmatch(stamp, line.strip())
        if m:
            last = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
            continue
        m = re.match(r"(?:Job|jobid:) (\d+)", line.strip())
        if m and last is not None and m.group(1) not in started:
            started[m.group(1)] = last
        m = re.match(r"Finished jobid: (\d+) \(Rule: (\w+)\)", line)
        if m and last is not None and m.group(2) != "all":
            out[f"{m.group(2)}-{m.group(1)}"] = (last - started[m.group(1)]).total_seconds()
    return out


def pool_run(profile: str, folder: Path, snakefile: list[str]) -> tuple[float, dict, float]:
    """Wall time of the demo with ``profile`` on the pool from ``folder``, its jobs from the
    history: batch name -> (queue wait, in slot, turnaround [s], exit code, bytes received,
    bytes sent), and the CPU seconds of the client and the jobs."""
    before = max([0] + [int(x) for x in pool(
        "run", "--", "condor_history", "-limit", "1", "-af", "ClusterId",
        cwd=folder).stdout.split()])
    cpu0 = children_cpu()
    seconds, run = timed(pool, "run", "--env", f"{SOURCE_DATE_EPOCH}=1584489600", "--",
                         "snakemake", "--profile", profile, *snakefile, "--configfile",
                         "config.yaml", cwd=folder, check=False)
    if run.returncode != 0:
        sys.exit(f"pool run ({profile}) failed:\n{run.stderr[-5000:]}")
    cpu = children_cpu() - cpu0
    time.sleep(2)
    hist = pool("run", "--", "condor_history", "-constraint",
                f'Iwd == "{folder}" && ClusterId > {before}', "-af", "JobBatchName", "QDate",
                "JobStartDate", "CompletionDate", "ExitCode", "BytesRecvd", "BytesSent",
                "RemoteUserCpu", "RemoteSysCpu", cwd=folder).stdout
    jobs = {}
    for line in hist.splitlines():
        batch, q, start, done, code, received, sent, user, system = line.split()
        jobs[batch] = (int(start) - int(q), int(done) - int(start), int(done) - int(q), code,
                       float(received), float(sent))
        cpu += float(user) + float(system)
    return seconds, jobs, cpu


def copy_workflow(folder: Path) -> None:
    """What a clone holds for --profile condor-transfer after ``make venv``: the sources and the
    kernels compiled ahead of time into its package's ``__pycache__`` (sent with the sources;
    tests/test_condor_transfer.py)."""
    shutil.copy2(SNAKEFILE, folder / "Snakefile")
    for name in ("workflow", "src/s5p_lockdown"):
        shutil.copytree(PROJECT / name, folder / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    from s5p_lockdown import aot

    aot.copy_into(folder / "src" / "s5p_lockdown" / "__pycache__")
    for path in folder.rglob("*"):
        path.chmod(0o777 if path.is_dir() else 0o666 | (path.stat().st_mode & 0o111))


def report_jobs(name: str, jobs: dict, local_jobs: dict, transfer: bool) -> None:
    print(f"\n{name}: per job, by rule or group (mean s): local run of its rules' jobs | pool: "
          "queue wait, in slot, turnaround" + (" | MB received, sent" if transfer else ""))
    local_by_rule: dict[str, list[float]] = {}
    for b, t in local_jobs.items():
        local_by_rule.setdefault(b.rsplit("-", 1)[0], []).append(t)

    def local_seconds(batch: str) -> float | None:
        if batch in local_jobs:  # a job of one rule
            return local_jobs[batch]
        # a group job: one job of each rule in its name (a week's, or the summary's)
        rules = [r for r in local_by_rule if r in job_dir(batch)]
        return sum(statistics.mean(local_by_rule[r]) for r in rules) if rules else None

    by_rule: dict[str, list] = {}
    for b, v in jobs.items():
        by_rule.setdefault(job_dir(b), []).append((local_seconds(b), *v))
    for rule, rows in sorted(by_rule.items()):
        def mean(i):
            values = [r[i] for r in rows if r[i] is not None]
            return statistics.mean(values) if values else float("nan")
        line = (f"  {rule[:44]:46}{mean(0):6.1f} | {mean(1):6.1f} {mean(2):6.1f} {mean(3):6.1f}")
        if transfer:
            line += f" | {mean(5) / 1e6:7.2f} {mean(6) / 1e6:7.2f}"
        print(line + f"   (x{len(rows)})")
    loc = [x for x in map(local_seconds, jobs) if x is not None]
    q = [v[0] for v in jobs.values()]
    turnaround = statistics.mean(v[2] for v in jobs.values())
    print(f"  {'all jobs':46}{statistics.mean(loc) if loc else float('nan'):6.1f} | "
          f"{statistics.mean(q):6.1f} {statistics.mean(v[1] for v in jobs.values()):6.1f} "
          f"{turnaround:6.1f}")
    if loc:
        print(f"  per-job overhead (turnaround - local run time): "
              f"{turnaround - statistics.mean(loc):.1f} s (queue wait {statistics.mean(q):.1f} s, "
              f"median {statistics.median(q):.0f}, max {max(q)})")
    if transfer:
        received = sum(v[4] for v in jobs.values())
        sent = sum(v[5] for v in jobs.values())
        print(f"  transferred in all: {received / 1e6:.1f} MB to the jobs, {sent / 1e6:.1f} MB "
              f"back ({received / len(jobs) / 1e6:.2f} and {sent / len(jobs) / 1e6:.2f} MB "
              "per job)")
    print(f"  exit codes: {sorted({v[3] for v in jobs.values()})}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold", action="store_true", help="also measure a cold start (clean root)")
    ap.add_argument("--keep", action="store_true", help=f"keep {WORK}")
    ap.add_argument("--only", choices=PROFILES, help="run the local run and this profile only")
    args = ap.parse_args()
    profiles = [args.only] if args.only else list(PROFILES)

    # ---- pool start-up
    startup = {}
    if args.cold:
        pool("clean")
        startup["cold (clean root: debootstrap, apt, pip, start)"], _ = timed(pool, "up")
    else:
        pool("up")
    startup["stop (condor-pool down)"], _ = timed(pool, "down")
    startup["warm (cached root: mounts, config, master, Ready)"], _ = timed(pool, "up")

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True, mode=0o777)
    pool("up", "--workdir", str(WORK))  # grant the job user access to it
    local_dir = WORK / "local"
    write_config(local_dir)

    # ---- local run
    cpu0 = children_cpu()
    local_s, local = timed(
        subprocess.run, [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
                         "--configfile", "config.yaml"],
        cwd=local_dir, capture_output=True, text=True,
        env={**os.environ, SOURCE_DATE_EPOCH: "1584489600"})
    if local.returncode != 0:
        sys.exit(f"local run failed:\n{local.stderr[-5000:]}")
    local_cpu = children_cpu() - cpu0
    local_jobs = local_job_seconds(local.stderr)

    # ---- pool runs
    results = {}
    for profile in profiles:
        folder = WORK / profile
        write_config(folder)
        if profile == "condor-transfer":
            copy_workflow(folder)  # run from the clone: its Snakefile, relative paths
            results[profile] = pool_run(profile, folder, [])
        else:
            results[profile] = pool_run(profile, folder, ["--snakefile", str(SNAKEFILE)])

    # ---- report
    n = len(local_jobs)
    print(f"\ndemo workflow: {n} jobs ({', '.join(sorted({b.rsplit('-', 1)[0] for b in local_jobs}))})")
    print(f"machine: {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} "
          "cores (shared, load average at the end "
          f"{os.getloadavg()[0]:.1f}); pool: 4 one-CPU slots per execute node, jobs: 4; "
          "local: --cores 2\n")
    print(f"{'':34}{'local':>10}" + "".join(f"{p:>17}" for p in profiles))
    print(f"{'wall time, whole workflow (s)':34}{local_s:10.1f}"
          + "".join(f"{results[p][0]:17.1f}" for p in profiles))
    print(f"{'  ratio to the local run':34}{1:10.2f}"
          + "".join(f"{results[p][0] / local_s:17.2f}" for p in profiles))
    print(f"{'CPU seconds (client + jobs)':34}{local_cpu:10.1f}"
          + "".join(f"{results[p][2]:17.1f}" for p in profiles))
    print(f"{'  ratio to the local run':34}{1:10.2f}"
          + "".join(f"{results[p][2] / local_cpu:17.2f}" for p in profiles))
    print(f"{'  pool jobs':34}{n:10d}" + "".join(f"{len(results[p][1]):17d}" for p in profiles))
    print(f"{'  overhead per pool job (s)':34}{'':10}"
          + "".join(f"{(results[p][0] - local_s) / len(results[p][1]):17.1f}" for p in profiles))
    for p in profiles:
        report_jobs(p, results[p][1], local_jobs, transfer=p == "condor-transfer")
    print("\npool start-up (s)")
    for k, v in startup.items():
        print(f"  {k:52}{v:8.1f}")
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
