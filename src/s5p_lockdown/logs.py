"""Send the package's log messages to a job's log file (used by the workflow rules)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def log_to(path: str | Path, level: int = logging.INFO):
    """Attach a file handler for ``path`` to the root logger for the duration of the block;
    an exception is logged with its traceback before it propagates."""
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
    except Exception:
        logging.getLogger("s5p_lockdown").exception("job failed")
        raise
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()
