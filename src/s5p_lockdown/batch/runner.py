"""Job side of a batch: ``python -m s5p_lockdown.batch.runner [--function FILE] BATCH_DIR JOB
INDEX...``.

For each input index the runner calls the user's ``function(input_path, tmp_path, **params)``
with a temporary output path beside the final one, stamps batch provenance into a netCDF
result, renames it to the output path (atomic: an output either exists complete or not at
all) and writes ``results/INDEX.json``. An exception in the function is caught: its traceback
goes to the job's stderr and to the record, the remaining files of the job still run, and the
job exits with status 1 so HTCondor reports it as failed. ``JOB`` (``cluster.proc``, or any
label when run by hand) is recorded so the monitor matches records to attempts.
``--function FILE``: the pickle of a fixed function in the batch folder (written by
``BatchJob.retry_failed(function=...)``) instead of the batch's ``function.pkl``.

Run the same command by hand to debug a file: ``python -m s5p_lockdown.batch.runner
<batch dir> local 3``.
"""

from __future__ import annotations

import argparse
import json
import linecache
import os
import socket
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import cloudpickle
import netCDF4

from s5p_lockdown import __version__
from s5p_lockdown.batch.layout import BatchLayout
from s5p_lockdown.io import HDF5_SIGNATURE


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_netcdf4(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(8) == HDF5_SIGNATURE


def stamp_provenance(path: Path, attrs: dict[str, str]) -> None:
    """Add ``attrs`` as global attributes of a netCDF-4 file (existing ones are kept,
    ``date_created`` and ``software`` are only added when missing)."""
    with netCDF4.Dataset(path, "a") as nc:
        for key, value in attrs.items():
            if key in ("date_created", "software") and key in nc.ncattrs():
                continue
            nc.setncattr(key, value)


def run_one(layout: BatchLayout, manifest: dict, function, params: dict, job: str,
            index: int, name: str | None = None) -> bool:
    """Process input ``index``; returns True on success. Never raises for a user error.
    ``name``: the function's name for the output's provenance (default: the batch's)."""
    source = Path(manifest["inputs"][index])
    output = Path(manifest["outputs"][index])
    tmp = output.with_name(f".{output.stem}.part-{os.getpid()}{output.suffix}")
    record = {
        "index": index, "input": str(source), "output": str(output), "job": job,
        "host": os.environ.get("_CONDOR_SLOT", "") + "@" + socket.gethostname(),
        "started": _now(),
    }
    start = time.perf_counter()
    print(f"[{record['started']}] {source.name} -> {output.name}", flush=True)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        function(str(source), str(tmp), **params)
        if not tmp.exists():
            raise RuntimeError(f"{name or manifest['function']} returned without writing "
                               "output_path")
        if _is_netcdf4(tmp):
            stamp_provenance(tmp, {
                "software": f"s5p-lockdown {__version__}",
                "date_created": _now(),
                "batch_function": name or manifest["function"],
                "batch_parameters": json.dumps(manifest["parameters"], sort_keys=True),
                "batch_input": source.name,
                "batch_job": job,
            })
        os.replace(tmp, output)
    except Exception as exc:
        text = traceback.format_exc()
        print(f"FAILED {source.name}:\n{text}", file=sys.stderr, flush=True)
        record.update(state="failed", error=f"{type(exc).__name__}: {exc}", traceback=text)
    else:
        record.update(state="done")
    finally:
        tmp.unlink(missing_ok=True)
    record.update(finished=_now(), seconds=round(time.perf_counter() - start, 3))
    layout.write_result(index, record)
    return record["state"] == "done"


#: the file name cloudpickle gives the code of a function it ships by value
DYNAMIC_CODE = "<dynamic-code>"


def register_function_source(source: dict | None) -> None:
    """Make tracebacks through the user's function show its source lines: the text of the
    file or cell that defined it (manifest ``function_source``, see
    :func:`s5p_lockdown.batch.submit.function_source`) registered with :mod:`linecache` as
    ``<dynamic-code>``, the name cloudpickle gives code it ships by value (no modification
    time: never invalidated)."""
    if source:
        lines = source["lines"]
        linecache.cache[DYNAMIC_CODE] = (sum(map(len, lines)), None, lines, source["file"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s5p_lockdown.batch.runner",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--function", default=None,
                        help="pickle of a fixed function in the batch folder (a retry's)")
    parser.add_argument("batch_dir", type=Path)
    parser.add_argument("job", help="job label recorded in the results, e.g. 12.3")
    parser.add_argument("indices", type=int, nargs="+", help="input file indices")
    args = parser.parse_args(argv)
    layout = BatchLayout(args.batch_dir)
    manifest = layout.read_manifest()
    try:
        pickle_path = layout.root / args.function if args.function else layout.function
        function, params = cloudpickle.loads(pickle_path.read_bytes())
    except Exception as exc:
        # e.g. a module the function refers to is not importable here: fail every file clearly
        text = traceback.format_exc()
        print(f"cannot load the batch function:\n{text}", file=sys.stderr, flush=True)
        for index in args.indices:
            layout.write_result(index, {
                "index": index, "input": manifest["inputs"][index],
                "output": manifest["outputs"][index], "job": args.job, "state": "failed",
                "error": f"cannot load the function: {type(exc).__name__}: {exc}",
                "traceback": text, "finished": _now(),
            })
        return 1
    about = manifest.get("functions", {}).get(args.function, manifest)
    register_function_source(about.get("function_source"))
    results = [run_one(layout, manifest, function, params, args.job, i, about["function"])
               for i in args.indices]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
