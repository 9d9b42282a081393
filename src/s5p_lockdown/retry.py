"""Which failed workflow jobs of an HTCondor pool are retried: the job's exit code says.

HTCondor retries a failed job itself (profile condor: ``max_retries``) unless it exits with
:data:`BAD_INPUT_EXIT_CODE` (``retry_until``): a job that failed on bad input
(:class:`~s5p_lockdown.errors.BadInputError`: a corrupt or wrong product, an invalid
configuration, refused credentials) would fail the same way again; anything else (an I/O error,
a download cut off, a job killed with its node) may pass on another attempt.

How the exit code comes about.  On the pool, a job is ``python -m snakemake --mode remote``
(the HTCondor executable); it runs the rule's ``run:`` block, catches what it raises and exits
with 1 whatever it was.  So the job process arms the exit code when it parses the Snakefile
(:func:`exit_with_bad_input_code`, called in ``workflow/rules/common.smk`` for
``workflow.remote_exec`` only): it names a marker file in an environment variable (which also
reaches a ``run:`` block that Snakemake runs in a child process; the plugin's jobs run theirs in
threads, ``--force-use-threads``); a rule's :func:`~s5p_lockdown.logs.log_to` records a
bad-input failure in it (:func:`record_bad_input`); at exit, the job process exits with
:data:`BAD_INPUT_EXIT_CODE` instead of 1 when the marker is not empty.  Local runs never arm it:
their failures keep Snakemake's own exit status.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import tempfile
from pathlib import Path

#: Exit code of a pool job that failed on bad input: ``EX_DATAERR`` of BSD's ``sysexits.h``
#: ("the input data was incorrect in some way"); ``retry_until`` of the condor profile.
BAD_INPUT_EXIT_CODE = 65

#: Environment variable naming the marker file of the current pool job.
MARKER_VARIABLE = "S5P_BAD_INPUT_MARKER"


def exit_with_bad_input_code() -> Path:
    """Arm this process (a pool job's Snakemake) to exit with :data:`BAD_INPUT_EXIT_CODE` when a
    rule recorded bad input; returns the marker path (in the job's scratch directory: HTCondor
    points ``TMPDIR`` there)."""
    handle, name = tempfile.mkstemp(prefix="s5p-bad-input-")
    os.close(handle)
    marker = Path(name)
    os.environ[MARKER_VARIABLE] = name
    atexit.register(_exit_if_bad_input, marker)
    return marker


def record_bad_input(error: BaseException) -> None:
    """Record that this job failed on bad input (when an armed pool job runs it; no-op else)."""
    marker = os.environ.get(MARKER_VARIABLE)
    if marker:
        Path(marker).write_text(f"{type(error).__name__}: {error}\n")


def _exit_if_bad_input(marker: Path) -> None:
    """At exit of the job process: delete ``marker``; exit with :data:`BAD_INPUT_EXIT_CODE` if a
    rule recorded bad input in it.

    Python offers no way to change an exit status that ``sys.exit`` already chose other than
    ending the process here, so the log and the standard streams are flushed first (the other
    exit handlers are skipped)."""
    try:
        recorded = marker.read_text().strip()
        marker.unlink()
    except FileNotFoundError:
        return
    if not recorded:
        return
    print(f"s5p-lockdown: the job failed on bad input ({recorded}): exit code "
          f"{BAD_INPUT_EXIT_CODE}, not retried", file=sys.stderr)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(BAD_INPUT_EXIT_CODE)
