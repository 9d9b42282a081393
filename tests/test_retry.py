"""Exit codes of pool jobs (s5p_lockdown.retry): bad input exits with BAD_INPUT_EXIT_CODE, which
the condor profile does not retry; every other failure keeps its exit status (retried).

Each case runs a real Python process the way a pool job's Snakemake does: the process is armed
(or not, like a local run), a rule body runs inside ``log_to`` and raises, and Snakemake's exit
with status 1 follows.  The profile's side is checked on the real pool in
tests/test_condor_workflow.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from s5p_lockdown.retry import BAD_INPUT_EXIT_CODE
from workflow_helpers import ROOT

JOB = """
import sys
from s5p_lockdown.logs import log_to
from s5p_lockdown.retry import exit_with_bad_input_code
if sys.argv[1] == "armed":
    exit_with_bad_input_code()
try:
    with log_to(sys.argv[2]):
        {body}
except Exception:
    sys.exit(1)  # what Snakemake does after a failed job
"""

BODIES = {
    "corrupt product": "from s5p_lockdown.errors import InvalidProductError; "
                       "raise InvalidProductError('orbit.nc', 'not a netCDF-4/HDF5 file')",
    "bad configuration": "from s5p_lockdown.errors import ConfigError; raise ConfigError('grid')",
    "refused credentials": "from s5p_lockdown.acquire.errors import AuthenticationError; "
                           "raise AuthenticationError('CDSE refused the credentials')",
    "I/O error": "raise OSError(5, 'Input/output error')",
    "download cut off": "from s5p_lockdown.acquire.errors import TransferError; "
                        "raise TransferError('S5P_x.nc', 'connection reset')",
    "success": "pass",
}
BAD_INPUT = {"corrupt product", "bad configuration", "refused credentials"}


def run_job(tmp_path, case: str, armed: bool) -> subprocess.CompletedProcess:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    code = JOB.format(body=BODIES[case])
    return subprocess.run(
        [sys.executable, "-c", code, "armed" if armed else "local", str(tmp_path / "job.log")],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                         "TMPDIR": str(scratch)})


@pytest.mark.parametrize("case", sorted(BODIES))
def test_pool_job_exit_code(tmp_path, case):
    proc = run_job(tmp_path, case, armed=True)
    expected = 0 if case == "success" else BAD_INPUT_EXIT_CODE if case in BAD_INPUT else 1
    assert proc.returncode == expected, proc.stderr
    if case in BAD_INPUT:
        assert "failed on bad input" in proc.stderr and "not retried" in proc.stderr
        # the log was flushed before the early exit
        assert "ERROR s5p_lockdown" in (tmp_path / "job.log").read_text()
    # the marker lived in the job's scratch directory and is gone
    assert list((tmp_path / "scratch").iterdir()) == []


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_local_run_keeps_its_exit_status(tmp_path, case):
    """Not armed (a local run, or the client): bad input exits like any failure."""
    proc = run_job(tmp_path, case, armed=False)
    assert proc.returncode == 1, proc.stderr
    assert "bad input" not in proc.stderr


def test_profile_stops_retries_on_the_bad_input_code():
    settings = yaml.safe_load((ROOT / "profiles" / "condor" / "config.yaml").read_text())
    defaults = settings["default-resources"]
    assert defaults["retry_until"] == BAD_INPUT_EXIT_CODE and defaults["max_retries"] > 0
    # Snakemake must not resubmit on top of HTCondor (it would resubmit bad input too)
    assert settings["retries"] == 0
