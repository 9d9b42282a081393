"""Clients of HTCondor where no pool answers (issue #16, item 1): one sentence, no traceback.

On a machine whose local test pool runs in its own root (Debian 12), the HTCondor bindings of
the project venv find no configuration; ``snakemake --profile condor`` and
``s5p_lockdown.batch`` used to end in ``HTCondorException: Unable to locate local daemon``.
These tests need no pool: they run with ``CONDOR_CONFIG=/dev/null`` (what the bindings fall back
to when ``CONDOR_CONFIG`` is unset and no ``/etc/condor/condor_config`` exists) and with a
configuration naming a pool that is not running.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from s5p_lockdown.condor import WORKFLOW_COMMAND
from workflow_helpers import ROOT, SNAKEMAKE, write_config

NO_POOL_CONFIGS = {
    "no configuration": None,
    "pool not running": "COLLECTOR_HOST = 127.0.0.1:9\nSCHEDD_ADDRESS_FILE = {tmp}/missing\n",
}


@pytest.fixture(params=sorted(NO_POOL_CONFIGS))
def no_pool_env(request, tmp_path) -> dict[str, str]:
    """The environment of a client that finds no pool (CONDOR_CONFIG set for it)."""
    text = NO_POOL_CONFIGS[request.param]
    if text is None:
        condor_config = "/dev/null"
    else:
        condor_config = str(tmp_path / "condor_config")
        (tmp_path / "condor_config").write_text(text.format(tmp=tmp_path))
    return {**os.environ, "CONDOR_CONFIG": condor_config}


BATCH_CALLS = {
    "attach": "BatchJob.attach(1)",
    "submit": "submit(lambda source, target: None, ['orbit.nc'], 'out')",
}


@pytest.mark.parametrize("call", sorted(BATCH_CALLS))
def test_batch_says_where_to_run(no_pool_env, tmp_path, call):
    """``BatchJob.attach`` and ``submit`` (and so the monitor's buttons, which use the same
    schedd) raise PoolUnreachableError with the sentence instead of HTCondorException."""
    (tmp_path / "orbit.nc").write_bytes(b"")
    code = ("from s5p_lockdown.batch import BatchJob, submit\n"
            "from s5p_lockdown.condor import PoolUnreachableError\n"
            f"try:\n    {BATCH_CALLS[call]}\n"
            "except PoolUnreachableError as error:\n    print(error)\n"
            "else:\n    raise SystemExit('no error')\n")
    result = subprocess.run([sys.executable, "-c", code], env=no_pool_env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    message = result.stdout.strip()
    assert message.startswith("No HTCondor pool can be reached from here (")
    assert "workflow/scripts/condor-pool run -- python" in message
    assert message.count("\n") == 0 and message.endswith(".")
    assert "Traceback" not in result.stderr


def test_snakemake_condor_profile_stops_with_one_sentence(no_pool_env, tmp_path):
    """The README's ``snakemake --profile condor`` with no pool: the onstart check stops the run
    before anything is submitted, with one sentence naming the command to run instead."""
    config = write_config(tmp_path, {"countries": ["FRA"], "stats": {"bootstrap": 100}})
    result = subprocess.run(
        SNAKEMAKE + ["--profile", str(ROOT / "profiles" / "condor"),
                     "--snakefile", str(ROOT / "Snakefile"), "--configfile", str(config)],
        cwd=tmp_path, env=no_pool_env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "Traceback" not in output and "HTCondorException" not in output, output[-3000:]
    sentences = [line for line in output.splitlines()
                 if line.startswith("No HTCondor pool can be reached from here")]
    assert len(sentences) == 1, output[-3000:]
    assert f"`{WORKFLOW_COMMAND}`" in sentences[0]
    # stopped before any submission: the plugin's job directory holds no job logs
    jobdir = tmp_path / yaml.safe_load((ROOT / "profiles" / "condor" / "config.yaml")
                                       .read_text())["htcondor-jobdir"]
    assert not any(p.is_file() for p in jobdir.rglob("*")), list(jobdir.rglob("*"))
    assert not (tmp_path / "results").exists()


def test_dry_run_needs_no_pool(no_pool_env, tmp_path):
    """Planning a pool run (``-n``) still works without a pool."""
    config = write_config(tmp_path, {"countries": ["FRA"], "stats": {"bootstrap": 100}})
    result = subprocess.run(
        SNAKEMAKE + ["--profile", str(ROOT / "profiles" / "condor"), "-n",
                     "--snakefile", str(ROOT / "Snakefile"), "--configfile", str(config)],
        cwd=tmp_path, env=no_pool_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "This was a dry-run" in result.stdout + result.stderr


def test_cdse_source_without_shared_filesystem_stops_with_one_sentence(tmp_path):
    """``source.kind: cdse`` with ``--profile condor-transfer`` (issue #16): the downloaded orbits
    are no declared output, so no job could receive them; the run stops before planning with
    one sentence saying what to do instead, no traceback. With ``--profile condor`` (shared
    filesystem) the same config plans."""
    config = write_config(tmp_path, {"countries": ["FRA"], "stats": {"bootstrap": 100},
                                     "source": {"kind": "cdse"}})
    env = {**os.environ, "CONDOR_CONFIG": "/dev/null"}
    runs = {}
    for profile in ("condor-transfer", "condor"):
        runs[profile] = subprocess.run(
            SNAKEMAKE + ["--profile", str(ROOT / "profiles" / profile), "-n",
                         "--snakefile", str(ROOT / "Snakefile"), "--configfile", str(config)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    refused = runs["condor-transfer"]
    text = refused.stdout + refused.stderr
    assert refused.returncode == 1, text[-3000:]
    assert "source kind cdse does not work on a pool without a shared filesystem " \
           "(--profile condor-transfer, --shared-fs-usage none): download the orbits" in text
    assert "Traceback" not in text and 'File "' not in text
    assert "Job stats" not in text
    planned = runs["condor"]
    assert planned.returncode == 0, (planned.stdout + planned.stderr)[-3000:]
    assert "fetch_week" in planned.stdout + planned.stderr
