"""Pytest fixtures for a real single-machine HTCondor pool (``workflow/scripts/condor-pool``).

Fixtures
--------
``condor_pool`` (session)
    Runs ``condor-pool up`` once per session and ``condor-pool down`` in the finalizer (also
    when ``up`` or a test fails).  Yields a :class:`CondorPool`.
``condor_workdir`` (function)
    A fresh directory under the pool's session work directory: visible at the same absolute
    path inside the pool and writable by the job user (uid 4242).  Run ``pool.run(...)`` with
    ``cwd=condor_workdir``.

Wire them in with ``pytest_plugins = ["condor_fixtures"]`` in ``tests/conftest.py`` (or import
them into a test module).  The session work directory lives under
``<project>/test-artifacts/condor-pool/`` (git-ignored, covered by the project's bind mount);
it is deleted at the end of the session unless ``S5P_KEEP_TEST_ARTIFACTS=1``.

Notes for tests:
* create directories for jobs with normal modes (``mkdir`` 0o777 before umask), not
  ``tempfile.mkdtemp`` (0o700): the ACL mask then hides the job user's access;
* ``condor_history`` persists across pool restarts: select your own jobs (ClusterId,
  ``JobBatchName``, ``-since``);
* the job user cannot overwrite files root created with mode 0o644 (it can delete and
  recreate them).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
CONDOR_POOL = PROJECT_DIR / "workflow" / "scripts" / "condor-pool"
ARTIFACTS_DIR = PROJECT_DIR / "test-artifacts" / "condor-pool"

#: settings of the recipe's ``condor`` profile, as command-line options (for tests that do
#: not use ``--profile``)
SNAKEMAKE_HTCONDOR_ARGS = [
    "--executor", "htcondor",
    "--jobs", "4",
    "--latency-wait", "10",
    "--seconds-between-status-checks", "2",
    "--htcondor-jobdir", ".snakemake/htcondor",
    "--htcondor-held-timeout", "0",
    "--default-resources", "getenv=True", "htcondor_request_mem_mb=256",
    "htcondor_request_disk_mb=100",
]


def condor_pool_cli(*args: str, cwd: os.PathLike | str | None = None, check: bool = True,
                    timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``condor-pool ARGS`` and capture its output; raise AssertionError on failure."""
    proc = subprocess.run([str(CONDOR_POOL), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"condor-pool {' '.join(args)} failed (exit {proc.returncode})\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")
    return proc


def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mounts_under(root: os.PathLike | str) -> list[str]:
    """Mount points at or under ``root`` according to /proc/self/mounts."""
    root = str(root).rstrip("/")
    out = []
    with open("/proc/self/mounts") as fh:
        for line in fh:
            mp = _unescape(line.split()[1])
            if mp == root or mp.startswith(root + "/"):
                out.append(mp)
    return out


def processes_in_root(root: os.PathLike | str) -> list[int]:
    """PIDs whose /proc/PID/root is ``root`` (i.e. processes running in the chroot)."""
    root = str(root)
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/root") == root:
                    pids.append(int(d))
            except OSError:
                pass
    return pids


@dataclasses.dataclass
class CondorPool:
    """Handle on the running pool."""

    info: dict[str, str]
    workdir: Path
    up_seconds: float = 0.0

    @property
    def mode(self) -> str:
        return self.info["MODE"]

    @property
    def root(self) -> Path:
        return Path(self.info["ROOT"])

    def cli(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return condor_pool_cli(*args, **kw)

    def up(self) -> subprocess.CompletedProcess:
        return condor_pool_cli("up", "--workdir", str(self.workdir))

    def down(self) -> subprocess.CompletedProcess:
        return condor_pool_cli("down")

    def run(self, *cmd: str, cwd: os.PathLike | str | None = None, check: bool = True,
            timeout: float = 600, env: dict[str, str] | None = None,
            as_root: bool = False) -> subprocess.CompletedProcess:
        """``condor-pool run CMD`` as the job user in ``cwd`` (default: the session workdir)."""
        opts: list[str] = ["--as-root"] if as_root else []
        for k, v in (env or {}).items():
            opts += ["--env", f"{k}={v}"]
        return condor_pool_cli("run", *opts, "--", *cmd, cwd=cwd or self.workdir,
                               check=check, timeout=timeout)

    def history(self, constraint: str, *attrs: str) -> list[list[str]]:
        """``condor_history -constraint C -af ATTRS`` as rows of strings."""
        out = self.run("condor_history", "-constraint", constraint, "-af", *attrs).stdout
        return [line.split() for line in out.splitlines() if line.strip()]

    def max_cluster_id(self) -> int:
        """Highest ClusterId in history or queue (0 if none): select later jobs with
        ``ClusterId > N``."""
        ids = [0]
        for cmd in (("condor_history", "-limit", "50", "-af", "ClusterId"),
                    ("condor_q", "-allusers", "-af", "ClusterId")):
            out = self.run(*cmd).stdout
            ids += [int(x) for x in out.split() if x.isdigit()]
        return max(ids)

    def submit_and_wait(self, submit_file: str, cwd: os.PathLike | str,
                        log: str, timeout: int = 120) -> int:
        """condor_submit + condor_wait; returns the ClusterId."""
        out = self.run("condor_submit", submit_file, cwd=cwd).stdout
        m = re.search(r"submitted to cluster (\d+)", out)
        assert m, out
        self.run("condor_wait", "-wait", str(timeout), log, cwd=cwd, timeout=timeout + 60)
        return int(m.group(1))


@pytest.fixture(scope="session")
def condor_pool() -> CondorPool:
    """A running single-machine HTCondor pool for the whole session (see module doc)."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    workdir = ARTIFACTS_DIR / f"session-{os.getpid()}-{int(time.time())}"
    workdir.mkdir(mode=0o777)
    pool = None
    try:
        t0 = time.monotonic()
        condor_pool_cli("up", "--workdir", str(workdir))
        up_seconds = time.monotonic() - t0
        info = dict(line.split("=", 1)
                    for line in condor_pool_cli("info").stdout.splitlines() if "=" in line)
        pool = CondorPool(info=info, workdir=workdir, up_seconds=up_seconds)
        yield pool
    finally:
        # always stop the pool and unmount, even when `up` failed half-way
        down = condor_pool_cli("down", check=False)
        if not os.environ.get("S5P_KEEP_TEST_ARTIFACTS"):
            shutil.rmtree(workdir, ignore_errors=True)
        if down.returncode != 0:
            raise AssertionError(f"condor-pool down failed:\n{down.stdout}\n{down.stderr}")


@pytest.fixture
def condor_workdir(condor_pool: CondorPool, request) -> Path:
    """A fresh directory visible inside the pool and writable by the job user."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:80]
    path = condor_pool.workdir / name
    n = 0
    while path.exists():
        n += 1
        path = condor_pool.workdir / f"{name}-{n}"
    path.mkdir(mode=0o777)
    return path
