"""On-disk layout of one batch: the files shared by the submitter, the jobs and the GUI.

A batch directory (default ``<output_dir>/.batch/<name>-<UTC time>``, or
``<name>-all-skipped`` when every output exists already, rewritten by each such rerun) holds::

    manifest.json       inputs, outputs, parameters, the function's source text (for tracebacks),
                        submit description, attempts (clusters)
    function.pkl        cloudpickle of (function, params)
    function-N.pkl      the same for a fixed function given to retry_failed (attempt N)
    events.log          HTCondor job event log of every cluster of the batch
    logs/C.P.out, .err  stdout / stderr of job C.P
    results/I.json      result record of input file I, written by the runner

Everything is plain JSON or text, so a batch can be inspected (and re-attached) without the
process that submitted it. The job user must be able to write the directory: on a shared
filesystem pool the submitter and the jobs run as the same user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from s5p_lockdown.outputs import write_json

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class BatchLayout:
    """Paths inside a batch directory."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def function(self) -> Path:
        return self.root / "function.pkl"

    def function_of_attempt(self, attempt: int) -> Path:
        """The pickle of a fixed function first run by ``attempt`` (1 = the first submission,
        whose pickle is :attr:`function`)."""
        return self.function if attempt == 1 else self.root / f"function-{attempt}.pkl"

    @property
    def events(self) -> Path:
        return self.root / "events.log"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def results(self) -> Path:
        return self.root / "results"

    def job_output(self, job: str, stream: str) -> Path:
        """``stream`` (``out`` or ``err``) of job ``job`` (``"cluster.proc"``)."""
        return self.logs / f"{job}.{stream}"

    def result(self, index: int) -> Path:
        return self.results / f"{index}.json"

    # --- manifest ------------------------------------------------------------------------------
    def create(self) -> None:
        for folder in (self.root, self.logs, self.results):
            folder.mkdir(mode=0o777, parents=True, exist_ok=True)

    def read_manifest(self) -> dict:
        try:
            manifest = json.loads(self.manifest.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{self.root}: not a batch directory (no manifest.json)") from None
        if manifest.get("version") != MANIFEST_VERSION:
            raise ValueError(
                f"{self.manifest}: unsupported manifest version {manifest.get('version')!r}")
        return manifest

    def write_manifest(self, manifest: dict) -> None:
        write_json(manifest, self.manifest)

    # --- per-file results --------------------------------------------------------------------
    def read_result(self, index: int) -> dict | None:
        """The runner's record for input ``index``, or None if there is none (yet)."""
        try:
            return json.loads(self.result(index).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def write_result(self, index: int, record: dict) -> None:
        write_json(record, self.result(index))
