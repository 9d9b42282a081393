"""Benchmark of ``--profile condor`` on the local HTCondor pool (issue #6). Prints figures;
asserts nothing.

Usage (as root, from the project root)::

    .venv/bin/python benchmarks/bench_condor.py [--cold] [--keep]

It runs the small demo workflow of ``tests/test_condor_workflow.py`` (2 countries, 0.5 degree
grid, short windows, 200 bootstrap samples) twice from scratch with the same config:

* locally on the host (``snakemake`` with the workflow profile: ``--cores 2``);
* on the local pool (``condor-pool run -- snakemake --profile condor``: up to 4 jobs in 4
  one-CPU slots of the same 2-core machine);

and reports the wall times side by side, and per job: the local run time (from Snakemake's
log, 1 s resolution), the time in the pool's queue (``JobStartDate - QDate``), the time in a
slot (``CompletionDate - JobStartDate``, which includes starting Python and Snakemake in the
job) and the total overhead per job.  Pool start-up: ``warm`` = ``condor-pool up`` from the
cached root after ``down``; with ``--cold`` also ``condor-pool clean`` + ``up`` (debootstrap,
apt, pip: a few minutes, needs the Debian mirror and PyPI).

The pool is left running afterwards (``condor-pool down`` to stop it).  Do not run it while
other tests use the pool: it stops and restarts it.
"""

from __future__ import annotations

import argparse
import re
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

CONDOR_POOL = PROJECT / "workflow" / "scripts" / "condor-pool"
SNAKEFILE = PROJECT / "Snakefile"
WORK = PROJECT / "test-artifacts" / "bench-condor"


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


def write_config(folder: Path) -> None:
    folder.mkdir(mode=0o777)
    config = {**DEMO_CONFIG, "results": str(folder / "results"),
              "source": {"kind": "synthetic", "archive": str(folder / "archive")}}
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold", action="store_true", help="also measure a cold start (clean root)")
    ap.add_argument("--keep", action="store_true", help=f"keep {WORK}")
    args = ap.parse_args()

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
    local_dir, pool_dir = WORK / "local", WORK / "pool"
    write_config(local_dir)
    write_config(pool_dir)

    # ---- local run
    local_s, local = timed(
        subprocess.run, [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
                         "--configfile", "config.yaml"],
        cwd=local_dir, capture_output=True, text=True)
    if local.returncode != 0:
        sys.exit(f"local run failed:\n{local.stderr[-5000:]}")
    local_jobs = local_job_seconds(local.stderr)

    # ---- pool run
    before = max([0] + [int(x) for x in pool(
        "run", "--", "condor_history", "-limit", "1", "-af", "ClusterId",
        cwd=pool_dir).stdout.split()])
    pool_s, run = timed(pool, "run", "--", "snakemake", "--profile", "condor", "--snakefile",
                        str(SNAKEFILE), "--configfile", "config.yaml", cwd=pool_dir, check=False)
    if run.returncode != 0:
        sys.exit(f"pool run failed:\n{run.stderr[-5000:]}")
    time.sleep(2)
    hist = pool("run", "--", "condor_history", "-constraint",
                f'Iwd == "{pool_dir}" && ClusterId > {before}', "-af", "JobBatchName", "QDate",
                "JobStartDate", "CompletionDate", "ExitCode", cwd=pool_dir).stdout
    jobs = {}
    for line in hist.splitlines():
        batch, q, start, done, code = line.split()
        jobs[batch] = (int(start) - int(q), int(done) - int(start), int(done) - int(q), code)
    n = len(jobs)

    # ---- report
    print(f"\ndemo workflow: {n} jobs ({', '.join(sorted({b.rsplit('-', 1)[0] for b in jobs}))})")
    print(f"machine: {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} "
          "cores (shared); pool: 4 one-CPU slots, jobs: 4; local: --cores 2\n")
    print(f"{'':34}{'local':>10}{'pool':>10}")
    print(f"{'wall time, whole workflow (s)':34}{local_s:10.1f}{pool_s:10.1f}")
    print(f"{'  per job (s)':34}{local_s / n:10.1f}{pool_s / n:10.1f}")
    print(f"{'  overhead per job (s)':34}{'':10}{(pool_s - local_s) / n:10.1f}")
    loc = [local_jobs[b] for b in jobs if b in local_jobs]
    print("\nper job, by rule (mean s):  local run | pool: queue wait, in slot, turnaround")
    by_rule: dict[str, list] = {}
    for b, v in jobs.items():
        by_rule.setdefault(b.rsplit("-", 1)[0], []).append((local_jobs.get(b), *v))
    for rule, rows in sorted(by_rule.items()):
        mean = lambda i: statistics.mean(r[i] for r in rows if r[i] is not None)  # noqa: E731
        print(f"  {rule:22}{mean(0):6.1f} | {mean(1):6.1f} {mean(2):6.1f} {mean(3):6.1f}"
              f"   (x{len(rows)})")
    q = [v[0] for v in jobs.values()]
    slot = [v[1] for v in jobs.values()]
    print(f"  {'all jobs':22}{statistics.mean(loc) if loc else float('nan'):6.1f} | "
          f"{statistics.mean(q):6.1f} {statistics.mean(slot):6.1f} "
          f"{statistics.mean(v[2] for v in jobs.values()):6.1f}")
    if loc:
        print(f"  per-job overhead (turnaround - local run time): "
              f"{statistics.mean(v[2] for v in jobs.values()) - statistics.mean(loc):.1f} s "
              f"(queue wait {statistics.mean(q):.1f} s, median {statistics.median(q):.0f}, "
              f"max {max(q)})")
    print(f"  exit codes: {sorted({v[3] for v in jobs.values()})}")
    print("\npool start-up (s)")
    for k, v in startup.items():
        print(f"  {k:52}{v:8.1f}")
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
