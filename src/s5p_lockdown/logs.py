"""Send the package's log messages to a job's log file (used by the workflow rules)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

from s5p_lockdown.errors import BadInputError, S5PLockdownError
from s5p_lockdown.retry import record_bad_input


@contextmanager
def log_to(path: str | Path, level: int = logging.INFO):
    """Attach a file handler for ``path`` to the root logger for the duration of the block.

    An exception is logged before it propagates: the project's own errors (bad input, bad
    configuration, missing credentials) as their one-line message, anything else with its
    traceback.  Bad input is also recorded for the exit code of a pool job
    (:mod:`s5p_lockdown.retry`: HTCondor does not retry it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(min(previous, level) if previous else level)
    try:
        yield
    except S5PLockdownError as error:
        logging.getLogger("s5p_lockdown").error("%s", error)
        if isinstance(error, BadInputError):
            record_bad_input(error)
        raise
    except Exception:
        logging.getLogger("s5p_lockdown").exception("job failed")
        raise
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()
