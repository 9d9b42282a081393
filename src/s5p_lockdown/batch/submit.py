"""Submit a Python function over many input files as HTCondor jobs, and follow the batch.

``submit(f, inputs, output_dir)`` runs ``f(input_path, output_path, **params)`` once per input
file, one HTCondor job per file (or per ``files_per_job`` files), through the ``htcondor2``
Python bindings (one ``Schedd.submit`` of a ``Submit`` description with item data: one cluster,
one proc per job). It returns a :class:`BatchJob`; ``BatchJob.attach(cluster_id)`` re-attaches
to it later from any process that can reach the schedd.

Execute side (shared filesystem, no file transfer):

* jobs run ``<python> -m s5p_lockdown.batch.runner BATCH_DIR JOB INDEX...`` with the
  submitter's own interpreter (``sys.executable``) unless ``python=`` says otherwise: that
  interpreter, the input files, ``output_dir`` and the batch directory must exist at the same
  paths on the execute machines (on this project's local pool: anything under a bind-mounted
  work directory, run by the job user uid 4242);
* the function is serialised with cloudpickle together with its closure and ``params``.
  Functions defined in a notebook or script (``__main__``) travel by value; functions and
  objects from importable modules travel *by reference* and their modules must be importable
  in the job: install them into the job's environment (here: the venv at ``/opt/htc-venv``
  with the project installed editable), or put them on a shared path and pass
  ``environment={"PYTHONPATH": "/shared/path"}``, or call
  ``cloudpickle.register_pickle_by_value(module)`` before submitting to ship the module's code
  inside the pickle.  A module the function uses that the job's interpreter cannot import (one
  beside the user's script or notebook, found through its folder on ``sys.path``) is detected
  at submit time (:func:`modules_jobs_cannot_import`): nothing is submitted, and the error
  names the module, its file and these three ways out;
* jobs start with an empty environment except ``environment`` and single-threaded
  ``OMP_NUM_THREADS`` / ``NUMBA_NUM_THREADS`` = ``request_cpus``.

Errors raised before anything is submitted: :class:`BatchInputError` (no input, missing input
files, two inputs mapped to one output) and :class:`BatchFunctionError` (not callable, does not
accept ``(input_path, output_path, **params)``, cannot be serialised, uses a module the jobs
cannot import).

A fixed function for the files that failed: ``job.retry_failed(function=fixed)`` pickles
``fixed`` with the batch's parameters into a file of its own (``function-<attempt>.pkl``) and
resubmits only the failed, removed or held files as a new cluster running it; files of earlier
attempts keep the function they ran with (their jobs name their pickle).

States of an input file: ``idle``, ``running``, ``held`` (HTCondor put the job on hold; the
hold reason is shown), ``done``, ``failed`` (the function raised, or the job died without a
result), ``removed`` and ``skipped`` (its output existed when the batch was submitted).
"""

from __future__ import annotations

import glob
import importlib.util
import inspect
import json
import linecache
import os
import pickletools
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cloudpickle
import htcondor2

from s5p_lockdown.batch.layout import MANIFEST_VERSION, BatchLayout
from s5p_lockdown.condor import local_schedd
from s5p_lockdown.errors import S5PLockdownError
from s5p_lockdown.software import require_same_software

STATES = ("idle", "running", "held", "done", "failed", "removed", "skipped")
#: States from which a file will not move on its own (``held`` waits for the user).
STOPPED = frozenset({"held", "done", "failed", "removed", "skipped"})
#: Job attribute naming the batch directory (used to re-attach from a cluster id).
BATCH_DIR_ATTR = "S5PBatchDir"


class BatchError(S5PLockdownError):
    """Base class of batch errors."""


class BatchInputError(BatchError):
    """The input list is empty, names files that do not exist, or maps two inputs to one
    output."""


class BatchFunctionError(BatchError):
    """The function cannot be called as ``f(input_path, output_path, **params)`` or cannot be
    serialised."""


# --------------------------------------------------------------------------------------------
# Validation (before anything is submitted)
# --------------------------------------------------------------------------------------------
def resolve_inputs(inputs: str | Path | Iterable[str | Path]) -> list[Path]:
    """Absolute input paths, in the given order without duplicates.

    ``inputs`` is a path, a glob pattern (``*``, ``?``, ``[``; ``**`` recurses) or an iterable
    of them. A pattern matching nothing or a path that does not exist raises
    :class:`BatchInputError` listing them all.
    """
    items = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    found: dict[Path, None] = {}
    missing = []
    for item in items:
        text = str(item)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                missing.append(f"{text} (pattern matches no file)")
            found.update(dict.fromkeys(Path(m).resolve() for m in matches))
        elif Path(text).is_file():
            found[Path(text).resolve()] = None
        else:
            missing.append(text)
    if missing:
        shown = "\n  ".join(missing[:20]) + ("\n  ..." if len(missing) > 20 else "")
        raise BatchInputError(
            f"{len(missing)} input(s) do not exist; nothing submitted:\n  {shown}")
    if not found:
        raise BatchInputError("no input files given; nothing submitted")
    return list(found)


def output_paths(inputs: list[Path], output_dir: Path, output_name: str) -> list[Path]:
    """Output path of each input: ``output_dir / output_name.format(stem=, name=, index=)``."""
    outputs = [
        (output_dir / output_name.format(stem=p.stem, name=p.name, index=i)).resolve()
        for i, p in enumerate(inputs)
    ]
    seen: dict[Path, Path] = {}
    for source, out in zip(inputs, outputs, strict=True):
        if out in seen:
            raise BatchInputError(
                f"{seen[out].name} and {source.name} would both write {out}; "
                "choose an output_name with {index} or {name}"
            )
        seen[out] = source
    return outputs


def serialise_function(function: Callable, params: dict) -> bytes:
    """cloudpickle of ``(function, params)``; raises :class:`BatchFunctionError` if the function
    cannot be called as ``function(input_path, output_path, **params)`` or pickled."""
    if not callable(function):
        raise BatchFunctionError(f"{function!r} is not callable")
    try:
        inspect.signature(function).bind("input_path", "output_path", **params)
    except TypeError as exc:
        raise BatchFunctionError(
            f"{_qualname(function)} cannot be called as f(input_path, output_path, "
            f"**{sorted(params)}): {exc}"
        ) from None
    except ValueError:  # no signature (some builtins): let the call itself decide
        pass
    try:
        return cloudpickle.dumps((function, params))
    except Exception as exc:  # pickling raises TypeError, PicklingError, AttributeError, ...
        raise BatchFunctionError(
            f"cannot serialise {_qualname(function)} with its closure and parameters "
            f"(cloudpickle: {type(exc).__name__}: {exc}); nothing submitted. Move objects such "
            "as open files, locks or connections out of the function and create them inside it."
        ) from exc


def function_source(function: Callable) -> dict | None:
    """The text of the file or notebook cell that defines ``function`` (``{"file": name,
    "lines": [...]}``), or None when Python has none (a builtin, code typed at a bare REPL).
    cloudpickle names the code it ships by value ``<dynamic-code>`` (it drops file names for a
    deterministic pickle), so a job's traceback would show no source line; the runner registers
    these lines with :mod:`linecache` under that name (line numbers are the original ones)."""
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    lines = linecache.getlines(code.co_filename)
    return {"file": code.co_filename, "lines": lines} if lines else None


def _pickled_names(pickled: bytes) -> set[str]:
    """The identifiers among the strings of a pickle: the modules and names of everything it
    refers to by reference, and the names in the code of functions shipped by value (an
    ``import x`` in a function's body leaves ``x`` there)."""
    return {arg for _, arg, _ in pickletools.genops(pickled)
            if isinstance(arg, str) and arg.isidentifier()}


def _job_sys_path(python: str, environment: dict[str, str]) -> list[Path] | None:
    """``sys.path`` of ``python`` started as the batch's jobs start it (only ``environment``,
    not the submitting one), without its working directory (the job's is the batch folder);
    None when that interpreter cannot be run here (its jobs will say why)."""
    code = "import json, sys; print(json.dumps(sys.path))"
    try:
        proc = subprocess.run([python, "-c", code], env=environment, cwd="/",
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return [Path(p) for p in json.loads(proc.stdout.splitlines()[-1]) if p]


def modules_jobs_cannot_import(pickled: bytes, python: str,
                               environment: dict[str, str]) -> dict[str, str]:
    """Module name -> file of each module the pickled function refers to (by reference, or by
    an ``import`` in its body) that the jobs' interpreter ``python`` with ``environment``
    cannot import: it lies in none of that interpreter's ``sys.path`` folders, typically a
    module beside the user's script or notebook.  ``__main__`` and the modules registered with
    ``cloudpickle.register_pickle_by_value`` travel inside the pickle and are left out.

    A name that is a module only for the submitting process counts: a string of the function
    equal to the name of a module beside the script is taken for a use of it."""
    # __main__ (the script or notebook itself) and registered modules travel by value
    by_value = {"__main__"} | {name.split(".")[0]
                               for name in cloudpickle.list_registry_pickle_by_value()}
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    candidates = {}
    for name in sorted(_pickled_names(pickled) - by_value - set(sys.builtin_module_names)):
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None) if module is not None else None
        if module is None:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                continue
            origin = spec.origin if spec is not None and spec.has_location else None
        if origin is None:
            continue
        path = Path(origin).resolve()
        if not any(path.is_relative_to(p) for p in prefixes):  # not the interpreter's own
            candidates[name] = path
    if not candidates:
        return {}
    job_path = _job_sys_path(python, environment)
    if job_path is None:
        return {}
    job_path = [p.resolve() for p in job_path]
    return {name: str(path) for name, path in candidates.items()
            if not any(path.is_relative_to(p) for p in job_path)}


def refuse_unimportable_modules(function: Callable, pickled: bytes, python: str,
                                environment: dict[str, str]) -> None:
    """Raise :class:`BatchFunctionError` naming the modules the jobs could not import
    (:func:`modules_jobs_cannot_import`) and what to do about them."""
    missing = modules_jobs_cannot_import(pickled, python, environment)
    if missing:
        listed = ", ".join(f"{name} ({path})" for name, path in missing.items())
        first = next(iter(missing))
        raise BatchFunctionError(
            f"{_qualname(function)} uses {listed}, which the jobs cannot import: "
            f"{'it lies' if len(missing) == 1 else 'they lie'} beside your script, outside "
            f"the jobs' Python ({python}); nothing submitted. Install it into that environment, "
            "or put it on a path the execute nodes share and pass environment={'PYTHONPATH': "
            "that path}, or call cloudpickle.register_pickle_by_value("
            f"{first}) before submitting (its code then travels with the function)."
        )


def _qualname(function: Callable) -> str:
    module = getattr(function, "__module__", None) or "?"
    return f"{module}.{getattr(function, '__qualname__', repr(function))}"


def _quote_arg(text: str) -> str:
    """One argument in HTCondor's new ``arguments``/``environment`` syntax."""
    return "'" + text.replace("'", "''").replace('"', '""') + "'"


# --------------------------------------------------------------------------------------------
# Submission
# --------------------------------------------------------------------------------------------
def prepare(
    function: Callable,
    inputs: str | Path | Iterable[str | Path],
    output_dir: str | Path,
    *,
    params: dict | None = None,
    output_name: str = "{stem}.nc",
    files_per_job: int = 1,
    overwrite: bool = False,
    batch_dir: str | Path | None = None,
    name: str | None = None,
    request_cpus: int = 1,
    request_memory_mb: int = 1024,
    environment: dict[str, str] | None = None,
    python: str | None = None,
) -> BatchLayout:
    """Validate everything and write the batch directory (manifest, function pickle) without
    submitting; :func:`submit` takes the same arguments. Raises before writing anything if the
    inputs or the function are unusable."""
    params = dict(params or {})
    sources = resolve_inputs(inputs)
    output_dir = Path(output_dir).resolve()
    outputs = output_paths(sources, output_dir, output_name)
    pickled = serialise_function(function, params)
    if files_per_job < 1:
        raise ValueError(f"files_per_job must be >= 1, got {files_per_job}")
    threads = str(request_cpus)
    env = {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": threads, "NUMBA_NUM_THREADS": threads,
           **(environment or {})}
    refuse_unimportable_modules(function, pickled, python or sys.executable, env)
    name = name or re.sub(r"[^A-Za-z0-9_.-]+", "_", getattr(function, "__name__", "batch"))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    skipped = [] if overwrite else [i for i, p in enumerate(outputs) if p.exists()]
    # nothing to run (every output exists): each such rerun rewrites one folder per name
    folder = f"{name}-all-skipped" if len(skipped) == len(outputs) else f"{name}-{stamp}"
    layout = BatchLayout(Path(batch_dir or output_dir / ".batch" / folder).resolve())
    output_dir.mkdir(mode=0o777, parents=True, exist_ok=True)
    layout.create()
    layout.function.write_bytes(pickled)
    description = {
        "universe": "vanilla",
        "executable": python or sys.executable,
        "arguments": '"' + " ".join([
            "-m", "s5p_lockdown.batch.runner", _quote_arg(str(layout.root)),
            "$(ClusterId).$(ProcId)", "$(indices)",
        ]) + '"',
        "initialdir": str(layout.root),
        "log": str(layout.events),
        "output": str(layout.logs / "$(ClusterId).$(ProcId).out"),
        "error": str(layout.logs / "$(ClusterId).$(ProcId).err"),
        "should_transfer_files": "NO",
        "transfer_executable": "false",
        "getenv": "false",
        "environment": '"' + " ".join(f"{k}={_quote_arg(v)}" for k, v in env.items()) + '"',
        "request_cpus": threads,
        "request_memory": f"{int(request_memory_mb)}MB",
        "request_disk": "100MB",
        "batch_name": name,
        f"My.{BATCH_DIR_ATTR}": json.dumps(str(layout.root)),
    }
    layout.write_manifest({
        "version": MANIFEST_VERSION,
        "name": name,
        "function": _qualname(function),
        "function_source": function_source(function),
        "parameters": json.loads(json.dumps(params, default=repr)),  # repr() if not JSON
        "created": stamp,
        "output_dir": str(output_dir),
        "inputs": [str(p) for p in sources],
        "outputs": [str(p) for p in outputs],
        "skipped": skipped,
        "files_per_job": files_per_job,
        "submit": description,
        "environment": env,
        "attempts": [],
    })
    return layout


def submit(
    function: Callable,
    inputs: str | Path | Iterable[str | Path],
    output_dir: str | Path,
    *,
    schedd: htcondor2.Schedd | None = None,
    **options,
) -> BatchJob:
    """Run ``function(input_path, output_path, **params)`` on every input file as HTCondor jobs.

    Parameters
    ----------
    function
        Any picklable callable (cloudpickle: lambdas, closures and notebook functions work).
        It must write ``output_path`` (a temporary name with the final suffix; the runner
        renames it when the function returns). Use :func:`s5p_lockdown.batch.write_grid` for
        netCDF grids with CRS and provenance.
    inputs
        Paths, glob patterns, or a list of them (see :func:`resolve_inputs`).
    output_dir
        Where outputs go, named ``output_name.format(stem=, name=, index=)`` (default
        ``"{stem}.nc"``).
    schedd
        The schedd to submit to (default: the local one, :func:`s5p_lockdown.condor.local_schedd`).
    **options
        ``params`` (dict of keyword arguments for ``function``), ``output_name``,
        ``files_per_job`` (default 1), ``overwrite`` (default False: inputs whose output
        exists are ``skipped``), ``batch_dir``, ``name`` (the ``JobBatchName``),
        ``request_cpus``, ``request_memory_mb``, ``environment`` (dict for the jobs),
        ``python`` (job interpreter, default ``sys.executable``); see :func:`prepare`.

    Returns the :class:`BatchJob`. When every output already exists nothing is submitted and
    every file is ``skipped``.
    """
    job = BatchJob(prepare(function, inputs, output_dir, **options).root, schedd=schedd)
    job.submit_pending()
    return job


# --------------------------------------------------------------------------------------------
# Following a batch
# --------------------------------------------------------------------------------------------
@dataclass
class FileStatus:
    """State of one input file (its latest attempt)."""

    index: int
    input: Path
    output: Path
    state: str
    job: str = ""
    exit_code: int | None = None
    message: str = ""
    """Hold reason, or the error (last line of the traceback) of a failed file."""
    seconds: float | None = None
    """Run time of the function (from the runner's record)."""


@dataclass
class JobInfo:
    """One HTCondor job, from the event log."""

    state: str = "idle"
    exit_code: int | None = None
    hold_reason: str = ""
    host: str = ""
    submitted: float | None = None
    started: float | None = None
    ended: float | None = None


@dataclass
class BatchStatus:
    """Snapshot of a batch: per-file states and counts per state (all of :data:`STATES`)."""

    files: list[FileStatus]
    active_jobs: int = 0
    """Jobs of the latest attempts still idle or running (a job may still be finishing after
    its files' results are written)."""
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.counts = {s: sum(f.state == s for f in self.files) for s in STATES}

    @property
    def finished(self) -> bool:
        """No file and no job is idle or running (held files wait for the user)."""
        return self.counts["idle"] == self.counts["running"] == self.active_jobs == 0

    def __str__(self) -> str:
        return ", ".join(f"{n} {s}" for s, n in self.counts.items() if n) or "no files"


class BatchJob:
    """Handle on a submitted batch (see the module docstring); cheap to create, state on disk.

    ``BatchJob(batch_dir)`` opens a batch directory; :meth:`attach` finds it from a cluster id.
    """

    def __init__(self, batch_dir: str | Path, *, schedd: htcondor2.Schedd | None = None):
        self.layout = BatchLayout(Path(batch_dir).resolve())
        self.manifest = self.layout.read_manifest()
        self._schedd = schedd
        self._events: htcondor2.JobEventLog | None = None
        self._jobs: dict[str, JobInfo] = {}

    @classmethod
    def attach(cls, cluster_id: int, *, schedd: htcondor2.Schedd | None = None) -> BatchJob:
        """The batch that cluster ``cluster_id`` (any of its attempts) belongs to, looked up in
        the schedd's queue and then its history."""
        schedd = schedd or local_schedd()
        constraint = f"ClusterId == {int(cluster_id)}"
        ads = schedd.query(constraint=constraint, projection=[BATCH_DIR_ATTR], limit=1)
        if not ads:
            ads = list(schedd.history(constraint, projection=[BATCH_DIR_ATTR], match=1))
        if not ads:
            raise BatchError(f"no job of cluster {cluster_id} in the queue or the history")
        if BATCH_DIR_ATTR not in ads[0]:
            raise BatchError(f"cluster {cluster_id} was not submitted by s5p_lockdown.batch")
        return cls(ads[0][BATCH_DIR_ATTR], schedd=schedd)

    def __repr__(self) -> str:
        return (f"<BatchJob {self.name!r} clusters {self.cluster_ids} "
                f"({len(self.inputs)} files) in {self.layout.root}>")

    # --- properties ------------------------------------------------------------------------
    @property
    def schedd(self) -> htcondor2.Schedd:
        if self._schedd is None:
            self._schedd = local_schedd()
        return self._schedd

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def inputs(self) -> list[Path]:
        return [Path(p) for p in self.manifest["inputs"]]

    @property
    def output_paths(self) -> list[Path]:
        """The output path of every input (whether it exists yet or not)."""
        return [Path(p) for p in self.manifest["outputs"]]

    @property
    def cluster_ids(self) -> list[int]:
        """Clusters of the batch: the first submission, then one per retry."""
        return [a["cluster"] for a in self.manifest["attempts"]]

    @property
    def cluster_id(self) -> int | None:
        """The first cluster (None if every output existed and nothing was submitted)."""
        return self.cluster_ids[0] if self.cluster_ids else None

    @property
    def submit_seconds(self) -> list[float]:
        """Wall time of each ``Schedd.submit`` call (one per attempt)."""
        return [a["seconds"] for a in self.manifest["attempts"]]

    # --- submission ------------------------------------------------------------------------
    def submit_pending(self, indices: list[int] | None = None,
                       function_file: str | None = None) -> int | None:
        """Submit ``indices`` (default: every file not skipped) as one new cluster, chunked by
        ``files_per_job``; returns the cluster id, or None when there is nothing to submit.
        ``function_file``: the jobs run the function of that pickle in the batch folder (one
        written by :meth:`retry_failed`) instead of the batch's own."""
        if indices is None:
            skipped = set(self.manifest["skipped"])
            indices = [i for i in range(len(self.inputs)) if i not in skipped]
        if not indices:
            return None
        size = self.manifest["files_per_job"]
        chunks = [indices[i : i + size] for i in range(0, len(indices), size)]
        require_same_software()  # the jobs run this interpreter (unless python= says otherwise)
        settings = dict(self.manifest["submit"])
        if function_file is not None:  # runner option before its positional arguments
            settings["arguments"] = settings["arguments"].replace(
                "-m s5p_lockdown.batch.runner ",
                f"-m s5p_lockdown.batch.runner --function {_quote_arg(function_file)} ", 1)
        description = htcondor2.Submit(settings)
        items = [{"indices": " ".join(map(str, chunk))} for chunk in chunks]
        start = time.perf_counter()
        result = self.schedd.submit(description, itemdata=iter(items))
        seconds = time.perf_counter() - start
        cluster, first = result.cluster(), result.first_proc()
        self.manifest["attempts"].append({
            "cluster": cluster,
            "submitted": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seconds": round(seconds, 4),
            "jobs": {f"{cluster}.{first + k}": chunk for k, chunk in enumerate(chunks)},
            **({"function_file": function_file} if function_file is not None else {}),
        })
        self.layout.write_manifest(self.manifest)
        return cluster

    # --- status ----------------------------------------------------------------------------
    def _read_events(self) -> dict[str, JobInfo]:
        """Job states from the batch's event log, read incrementally."""
        if self._events is None:
            if not self.layout.events.exists():
                return self._jobs
            self._events = htcondor2.JobEventLog(str(self.layout.events))
        kinds = htcondor2.JobEventType
        for event in self._events.events(stop_after=0):
            info = self._jobs.setdefault(f"{event.cluster}.{event.proc}", JobInfo())
            kind = event.type
            if kind == kinds.SUBMIT:
                info.submitted = event.timestamp
            elif kind == kinds.EXECUTE:
                info.state, info.started = "running", event.timestamp
                info.host = str(event.get("ExecuteHost", ""))
            elif kind in (kinds.JOB_EVICTED, kinds.JOB_RELEASED):
                info.state = "idle"
            elif kind == kinds.JOB_HELD:
                info.state, info.hold_reason = "held", str(event.get("HoldReason", ""))
            elif kind == kinds.JOB_ABORTED:
                info.state, info.ended = "removed", event.timestamp
            elif kind == kinds.JOB_TERMINATED:
                info.state, info.ended = "completed", event.timestamp
                if event.get("TerminatedNormally", False):
                    info.exit_code = int(event["ReturnValue"])
                else:
                    info.exit_code = -int(event.get("TerminatedBySignal", 0))
        return self._jobs

    def jobs(self) -> dict[str, JobInfo]:
        """Every job of the batch (``"cluster.proc"`` → :class:`JobInfo`), all attempts."""
        infos = self._read_events()
        return {job: infos.get(job, JobInfo())
                for attempt in self.manifest["attempts"] for job in attempt["jobs"]}

    def _latest_jobs(self) -> dict[int, str]:
        """Input index → the job of its latest attempt."""
        latest = {}
        for attempt in self.manifest["attempts"]:
            for job, indices in attempt["jobs"].items():
                latest.update(dict.fromkeys(indices, job))
        return latest

    def status(self) -> BatchStatus:
        """Per-file states (see the module docstring) and counts per state."""
        self.manifest = self.layout.read_manifest()  # another handle may have retried
        jobs = self.jobs()
        latest = self._latest_jobs()
        skipped = set(self.manifest["skipped"])
        files = []
        for index, (source, output) in enumerate(zip(self.inputs, self.output_paths, strict=True)):
            status = FileStatus(index, source, output, "idle")
            if index in latest:
                status.job = latest[index]
                self._file_state(status, jobs[status.job], self.layout.read_result(index))
            elif index in skipped:
                status.state = "skipped"
            files.append(status)
        active = sum(jobs[job].state in ("idle", "running") for job in set(latest.values()))
        return BatchStatus(files, active)

    @staticmethod
    def _file_state(status: FileStatus, info: JobInfo, record: dict | None) -> None:
        if record is not None and record.get("job") != status.job:
            record = None  # from an earlier attempt
        status.exit_code = info.exit_code
        if record is not None:
            status.seconds = record.get("seconds")
            status.message = record.get("error", "")
        if record is not None and info.state in ("running", "removed", "completed"):
            status.state = record["state"]  # a file of a chunk may finish before its job
        elif info.state == "completed":
            status.state = "failed"
            status.message = (f"job exited with status {info.exit_code} without a result "
                              "record; see logs()")
        elif info.state == "held":
            status.state, status.message = "held", info.hold_reason
        else:
            status.state = info.state

    def wait(self, timeout: float | None = None, interval: float = 2.0,
             callback: Callable[[BatchStatus], None] | None = None) -> BatchStatus:
        """Poll until no file is idle or running; returns the final status. Raises
        :class:`TimeoutError` after ``timeout`` seconds. ``callback(status)`` after each poll."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status()
            if callback is not None:
                callback(status)
            if status.finished:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"batch {self.name} not finished after {timeout} s: {status}")
            time.sleep(interval)

    def outputs(self) -> list[Path]:
        """Outputs that exist now (done or skipped files), in input order."""
        return [f.output for f in self.status().files
                if f.state in ("done", "skipped") and f.output.exists()]

    def _index(self, file: int | str | Path) -> int:
        if isinstance(file, int):
            if not 0 <= file < len(self.inputs):
                raise IndexError(f"batch has {len(self.inputs)} files, no index {file}")
            return file
        for index, source in enumerate(self.inputs):
            if Path(file) == source or str(file) == source.name:
                return index
        raise KeyError(f"{file} is not an input of batch {self.name}")

    def logs(self, file: int | str | Path) -> str:
        """Everything known about one input file (index, path or file name): state, job, hold
        reason, the function's traceback and the job's stdout and stderr."""
        index = self._index(file)
        status = self.status().files[index]
        lines = [
            f"input:  {status.input}",
            f"output: {status.output}",
            f"state:  {status.state}" + (f"  (job {status.job}, exit code {status.exit_code})"
                                         if status.job else ""),
        ]
        if status.message:
            lines.append(f"message: {status.message}")
        record = self.layout.read_result(index)
        if record and record.get("job") == status.job and record.get("traceback"):
            lines += ["--- traceback ---", record["traceback"].rstrip()]
        for stream in ("out", "err") if status.job else ():
            path = self.layout.job_output(status.job, stream)
            text = path.read_text(errors="replace").rstrip() if path.exists() else "(none yet)"
            lines += [f"--- std{stream} ({path.name}) ---", text]
        return "\n".join(lines)

    # --- actions ---------------------------------------------------------------------------
    def _constraint(self) -> str:
        return " || ".join(f"ClusterId == {c}" for c in self.cluster_ids) or "false"

    def remove(self) -> int:
        """Remove the batch's jobs that are still in the queue; returns how many."""
        if not self.cluster_ids:
            return 0
        ad = self.schedd.act(htcondor2.JobAction.Remove, self._constraint(),
                             reason="removed by s5p_lockdown.batch")
        return int(ad.get("TotalSuccess", 0))

    def retry_failed(self, function: Callable | None = None) -> int | None:
        """Resubmit files that failed, were removed or are held (held jobs are removed first)
        as a new cluster; returns its id, or None if there is nothing to retry.

        ``function``: a fixed function to run on them instead of the batch's (the batch's
        parameters are kept; checked and pickled as by :func:`submit`, into
        ``function-<attempt>.pkl``; the manifest records its name and source under
        ``functions``, and the outputs' provenance names it)."""
        status = self.status()
        retry = [f.index for f in status.files if f.state in ("failed", "removed", "held")]
        function_file = None
        if retry and function is not None:
            function_file = self._write_function(function)
        held = sorted({f.job for f in status.files if f.state == "held"})
        if held:
            self.schedd.act(htcondor2.JobAction.Remove, held,
                            reason="resubmitted by s5p_lockdown.batch retry_failed")
        return self.submit_pending(retry, function_file=function_file)

    def _write_function(self, function: Callable) -> str:
        """Check and pickle ``function`` with the batch's parameters for the next attempt;
        returns the pickle's file name in the batch folder."""
        try:
            _, params = cloudpickle.loads(self.layout.function.read_bytes())
        except Exception as exc:
            raise BatchFunctionError(
                f"cannot read the batch's parameters from {self.layout.function} "
                f"({type(exc).__name__}: {exc}); submit the fixed function as a new batch"
            ) from exc
        pickled = serialise_function(function, params)
        refuse_unimportable_modules(function, pickled, self.manifest["submit"]["executable"],
                                    self.manifest.get("environment", {}))
        path = self.layout.function_of_attempt(len(self.manifest["attempts"]) + 1)
        path.write_bytes(pickled)
        self.manifest.setdefault("functions", {})[path.name] = {
            "function": _qualname(function), "function_source": function_source(function)}
        self.layout.write_manifest(self.manifest)
        return path.name
