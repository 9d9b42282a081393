"""Batch processing on HTCondor: apply a Python function to every input file.

- :func:`submit` – ``f(input_path, output_path, **params)`` over a list or glob of files, one
  HTCondor job per file (or per chunk); returns a :class:`BatchJob` (``status()``, ``wait()``,
  ``outputs()``, ``logs(file)``, ``remove()``, ``retry_failed()``; ``BatchJob.attach(cluster)``).
- :func:`write_grid` – write a gridded result as netCDF with CRS (EPSG:4326) and provenance.
- :mod:`s5p_lockdown.batch.gui` – the Jupyter monitor
  (:class:`~s5p_lockdown.batch.gui.BatchMonitor`) with per-state progress, a job table, buttons
  and a live map (needs ipywidgets and ipyleaflet).
- :mod:`s5p_lockdown.batch.runner` – the job side (``python -m s5p_lockdown.batch.runner``).
- :mod:`s5p_lockdown.batch.preview` – :class:`~s5p_lockdown.batch.preview.PreviewMap`: the
  function previewed on a map for the visible area at screen resolution, then submitted over
  every file with the map handed to the monitor; :mod:`s5p_lockdown.batch.viewport` – the
  helpers a function calls to honour the preview's view (``preview_grid``,
  ``current_viewport``).

See :mod:`s5p_lockdown.batch.submit` for how the function reaches the execute side.
"""

from s5p_lockdown.batch.products import MOLECULES_PER_CM2, add_crs, write_grid
from s5p_lockdown.batch.submit import (
    STATES,
    BatchError,
    BatchFunctionError,
    BatchInputError,
    BatchJob,
    BatchStatus,
    FileStatus,
    prepare,
    resolve_inputs,
    submit,
)

__all__ = [
    "MOLECULES_PER_CM2",
    "STATES",
    "BatchError",
    "BatchFunctionError",
    "BatchInputError",
    "BatchJob",
    "BatchStatus",
    "FileStatus",
    "add_crs",
    "prepare",
    "resolve_inputs",
    "submit",
    "write_grid",
]
