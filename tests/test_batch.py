"""Tests of s5p_lockdown.batch: validation, runner, rendering, and batches on the real pool.

The pool tests (``slow``) run a small driver script *inside* the pool as the job user (where the
htcondor bindings reach the schedd) with ``condor_pool.run``; the driver uses
``s5p_lockdown.batch`` and prints one JSON line that the test checks. They print the measured
submission overhead per job (run pytest with ``-s`` to see it).
"""

from __future__ import annotations

import base64
import html
import json
import shutil
import struct
import textwrap
import threading
import zlib
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from condor_fixtures import PROJECT_DIR, condor_pool, condor_workdir  # noqa: F401

from s5p_lockdown.batch import (
    BatchFunctionError,
    BatchInputError,
    prepare,
    runner,
    submit,
    write_grid,
)
from s5p_lockdown.batch.render import colorize, png_data_url, read_grid
from s5p_lockdown.gridding import GridAccumulator, GridSpec
from s5p_lockdown.gridding.l3_file import COMPRESSION_LEVEL
from s5p_lockdown.synth.archive import ArchiveGenerator, SynthSettings

NOTEBOOK = PROJECT_DIR / "dashboards" / "batch_example.ipynb"
#: the jobs' environment for functions of this module (``tiny_grid``): they travel by reference,
#: so the jobs must find the module (else submit refuses them)
TESTS_ON_PATH = {"PYTHONPATH": str(Path(__file__).resolve().parent)}
DEMO = {"across_track_step": 10, "along_track_step": 6, "lat_band": (40.0, 60.0)}


def tiny_grid(input_path, output_path, *, fail_on=None, scale=1.0):
    """A small gridding function (module level: pickled by reference, importable in-process)."""
    if fail_on and fail_on in Path(input_path).name:
        raise ValueError(f"cannot handle {Path(input_path).name}")
    grid = GridSpec.from_bbox(0.0, 1.0, 0.0, 2.0, 0.5)
    acc = GridAccumulator(grid, threads=1)
    acc.add_points(np.array([1.0, 3.0]) * scale, np.array([0.1, 0.1]),
                   np.array([0.25, 0.75]), np.array([0.25, 1.75]))
    write_grid(acc.finalize(), output_path, inputs=[input_path])


def make_inputs(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"file{i}.dat" for i in range(n)]
    for p in paths:
        p.write_text("input\n")
    return paths


# --------------------------------------------------------------------------------------------
# Before submission: clear errors, nothing written
# --------------------------------------------------------------------------------------------
def test_missing_inputs_fail_before_submission(tmp_path):
    make_inputs(tmp_path / "in", 1)
    with pytest.raises(BatchInputError) as err:
        submit(tiny_grid, [tmp_path / "in" / "file0.dat", tmp_path / "in" / "nope.nc",
                           str(tmp_path / "none" / "*.nc")], tmp_path / "out")
    assert "2 input(s) do not exist" in str(err.value)
    assert "nope.nc" in str(err.value) and "pattern matches no file" in str(err.value)
    assert not (tmp_path / "out").exists()
    with pytest.raises(BatchInputError, match="no input files"):
        submit(tiny_grid, [], tmp_path / "out")


def test_outputs_must_be_distinct(tmp_path):
    a, b = make_inputs(tmp_path / "a", 1)[0], make_inputs(tmp_path / "b", 1)[0]
    with pytest.raises(BatchInputError, match="would both write"):
        prepare(tiny_grid, [a, b], tmp_path / "out")
    layout = prepare(tiny_grid, [a, b], tmp_path / "out", output_name="{index}-{stem}.nc",
                     environment=TESTS_ON_PATH)
    assert [Path(p).name for p in layout.read_manifest()["outputs"]] == ["0-file0.nc", "1-file0.nc"]


def test_unusable_function_fails_before_submission(tmp_path):
    inputs = make_inputs(tmp_path / "in", 2)
    lock = threading.Lock()

    def holds_a_lock(input_path, output_path):
        with lock:
            Path(output_path).write_text("x")

    with pytest.raises(BatchFunctionError, match="cannot serialise .*holds_a_lock.*lock"):
        submit(holds_a_lock, inputs, tmp_path / "out")
    with pytest.raises(BatchFunctionError, match="cannot be called as f"):
        submit(lambda path: None, inputs, tmp_path / "out")
    with pytest.raises(BatchFunctionError, match="cannot be called as f"):
        submit(tiny_grid, inputs, tmp_path / "out", params={"unknown": 1})
    with pytest.raises(BatchFunctionError, match="not callable"):
        submit(42, inputs, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# The job side, run in-process
# --------------------------------------------------------------------------------------------
def test_runner_writes_atomically_with_provenance_and_records_failures(tmp_path):
    inputs = make_inputs(tmp_path / "in", 3)
    layout = prepare(tiny_grid, inputs, tmp_path / "out",
                     params={"fail_on": "file1", "scale": 2.0}, environment=TESTS_ON_PATH)
    assert runner.main([str(layout.root), "local", "0", "1", "2"]) == 1
    records = [layout.read_result(i) for i in range(3)]
    assert [r["state"] for r in records] == ["done", "failed", "done"]
    assert records[1]["error"] == "ValueError: cannot handle file1.dat"
    assert "Traceback" in records[1]["traceback"] and "tiny_grid" in records[1]["traceback"]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [".batch", "file0.nc", "file2.nc"]
    with xr.open_dataset(out / "file0.nc") as ds:
        assert ds.attrs["batch_function"] == "test_batch.tiny_grid"
        assert json.loads(ds.attrs["batch_parameters"]) == {"fail_on": "file1", "scale": 2.0}
        assert ds.attrs["batch_input"] == "file0.dat" and ds.attrs["batch_job"] == "local"
        assert ds["crs"].attrs["epsg_code"] == "EPSG:4326"
        value = ds["tropospheric_NO2_column_number_density"]
        assert value.attrs["grid_mapping"] == "crs"
        np.testing.assert_array_equal(value.values[0], [[2.0, np.nan, np.nan, np.nan],
                                                        [np.nan, np.nan, np.nan, 6.0]])


def test_job_traceback_shows_the_source_line_of_a_function_shipped_by_value(tmp_path,
                                                                            monkeypatch):
    """A function from the user's own script travels by value (cloudpickle names its code
    ``<dynamic-code>``); the job's traceback still shows the failing line of the user's source,
    in a fresh process that has never seen the script."""
    import importlib.util
    import subprocess
    import sys

    import cloudpickle

    script = tmp_path / "user_script.py"
    script.write_text("def convert(input_path, output_path):\n"
                      "    factor = 2\n"
                      "    raise ValueError('bad orbit ' + str(factor))  # the user's line\n")
    spec = importlib.util.spec_from_file_location("user_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "user_script", module)
    cloudpickle.register_pickle_by_value(module)
    try:
        layout = prepare(module.convert, make_inputs(tmp_path / "in", 1), tmp_path / "out")
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    script.unlink()  # the job has only the batch folder
    proc = subprocess.run([sys.executable, "-m", "s5p_lockdown.batch.runner", str(layout.root),
                           "local", "0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    trace = layout.read_result(0)["traceback"]
    assert 'File "<dynamic-code>", line 3, in convert' in trace, trace
    assert "raise ValueError('bad orbit ' + str(factor))  # the user's line" in trace, trace
    assert trace in proc.stderr


def test_function_using_a_module_beside_the_script_is_refused(tmp_path, monkeypatch):
    """A module found through the user's script folder on ``sys.path`` (the notebook's or
    script's own) is not importable in the jobs: a function that uses it (from such a module, by
    a global, or by an import in its body) is refused before anything is written, naming the
    module and its file; the documented ways out are accepted."""
    import importlib
    import sys

    import cloudpickle

    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "helper.py").write_text("def double(x):\n    return 2 * x\n")
    (scripts / "lazy_helper.py").write_text("FACTOR = 3\n")
    (scripts / "user_script.py").write_text(
        "import helper\n\n"
        "def convert(input_path, output_path):\n"
        "    open(output_path, 'w').write(str(helper.double(1)))\n\n"
        "def convert_lazily(input_path, output_path):\n"
        "    import lazy_helper\n"
        "    open(output_path, 'w').write(str(lazy_helper.FACTOR))\n")
    monkeypatch.syspath_prepend(str(scripts))
    for name in ("helper", "lazy_helper", "user_script"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    user_script = importlib.import_module("user_script")
    inputs = make_inputs(tmp_path / "in", 1)
    out = tmp_path / "out"

    # by reference: the script's own module
    with pytest.raises(BatchFunctionError, match=r"user_script\.convert uses user_script \(" +
                       str(scripts / "user_script.py") + r"\), which the jobs cannot import"):
        prepare(user_script.convert, inputs, out)
    cloudpickle.register_pickle_by_value(user_script)  # the script's code travels, not helper
    try:
        with pytest.raises(BatchFunctionError,
                           match=r"uses helper \(.*helper\.py\).*register_pickle_by_value\(helper\)"):
            prepare(user_script.convert, inputs, out)
        with pytest.raises(BatchFunctionError, match=r"uses lazy_helper \(.*lazy_helper\.py\)"):
            prepare(user_script.convert_lazily, inputs, out)
        assert not out.exists()
        # ways out: the module on the jobs' PYTHONPATH, or shipped by value
        layout = prepare(user_script.convert, inputs, out,
                         environment={"PYTHONPATH": str(scripts)})
        assert layout.function.is_file()
        helper = sys.modules["helper"]
        cloudpickle.register_pickle_by_value(helper)
        try:
            prepare(user_script.convert, inputs, out, overwrite=True)
        finally:
            cloudpickle.unregister_pickle_by_value(helper)
    finally:
        cloudpickle.unregister_pickle_by_value(user_script)


def test_runner_runs_the_fixed_function_of_a_retry(tmp_path):
    """``--function FILE`` (what a retry with a fixed function submits): the job runs that
    pickle, with the batch's parameters, and the output's provenance names it."""
    import cloudpickle

    inputs = make_inputs(tmp_path / "in", 2)
    layout = prepare(tiny_grid, inputs, tmp_path / "out",
                     params={"fail_on": "file1", "scale": 2.0}, environment=TESTS_ON_PATH)
    assert runner.main([str(layout.root), "1.0", "0", "1"]) == 1
    assert layout.read_result(1)["state"] == "failed"

    def fixed_grid(input_path, output_path, *, fail_on=None, scale=1.0):
        return tiny_grid(input_path, output_path, fail_on=None, scale=scale)

    params = cloudpickle.loads(layout.function.read_bytes())[1]
    layout.function_of_attempt(2).write_bytes(cloudpickle.dumps((fixed_grid, params)))
    manifest = layout.read_manifest()
    manifest["functions"] = {"function-2.pkl": {"function": "test_batch.fixed_grid",
                                                "function_source": None}}
    layout.write_manifest(manifest)
    assert runner.main(["--function", "function-2.pkl", str(layout.root), "2.0", "1"]) == 0
    assert layout.read_result(1)["state"] == "done" and layout.read_result(1)["job"] == "2.0"
    with xr.open_dataset(tmp_path / "out" / "file1.nc") as ds:
        assert ds.attrs["batch_function"] == "test_batch.fixed_grid"
        assert json.loads(ds.attrs["batch_parameters"]) == {"fail_on": "file1", "scale": 2.0}
    with xr.open_dataset(tmp_path / "out" / "file0.nc") as ds:
        assert ds.attrs["batch_function"] == "test_batch.tiny_grid"


def test_prepare_skips_existing_outputs_unless_overwrite(tmp_path):
    inputs = make_inputs(tmp_path / "in", 2)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "file1.nc").write_text("already there")
    assert prepare(tiny_grid, inputs, tmp_path / "out",
                   environment=TESTS_ON_PATH).read_manifest()["skipped"] == [1]
    layout = prepare(tiny_grid, inputs, tmp_path / "out", overwrite=True,
                     environment=TESTS_ON_PATH)
    assert layout.read_manifest()["skipped"] == []
    # reruns with nothing to run rewrite one folder instead of leaving one each
    (tmp_path / "out" / "file0.nc").write_text("already there")
    first = prepare(tiny_grid, inputs, tmp_path / "out", environment=TESTS_ON_PATH)
    again = prepare(tiny_grid, inputs, tmp_path / "out", environment=TESTS_ON_PATH)
    assert first.root == again.root and again.read_manifest()["skipped"] == [0, 1]
    assert len(list((tmp_path / "out" / ".batch").iterdir())) == 3  # 2 with work + that one


# --------------------------------------------------------------------------------------------
# Rendering for the map
# --------------------------------------------------------------------------------------------
def _decode_png(url: str) -> np.ndarray:
    data = base64.b64decode(url.removeprefix("data:image/png;base64,"))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + 4 * width)
    assert (raw[:, 0] == 0).all()  # filter type "none" on every row
    return raw[:, 1:].reshape(height, width, 4)


def test_grid_image_is_north_up_with_transparent_gaps(tmp_path):
    tiny_grid("x", tmp_path / "g.nc")
    grid = read_grid(tmp_path / "g.nc")
    assert grid.variable == "tropospheric_NO2_column_number_density"
    assert grid.bounds == ((0.0, 0.0), (1.0, 2.0))
    # row 0 is the northern row (latitude 0.5-1), where the value 3 sits in the last column
    np.testing.assert_array_equal(grid.values, [[np.nan, np.nan, np.nan, 3.0],
                                                [1.0, np.nan, np.nan, np.nan]])
    image = _decode_png(grid.png_data_url(1.0, 3.0))
    assert image.shape == (2, 4, 4)
    assert image[0, 3].tolist() == [0xFD, 0xE7, 0x25, 255]  # top of the colour scale
    assert image[1, 0].tolist() == [0x44, 0x01, 0x54, 255]  # bottom of the colour scale
    assert image[0, 0, 3] == 0 and image[1, 1, 3] == 0
    assert grid.value_range() == pytest.approx((1.04, 2.96))
    assert colorize(np.array([[0.5, 9.0]]), 1.0, 3.0)[0, :, 3].tolist() == [255, 255]
    assert png_data_url(np.zeros((1, 1, 4), np.uint8)).startswith("data:image/png;base64,")


# --------------------------------------------------------------------------------------------
def test_write_grid_compresses_2d_grids(tmp_path):
    """A grid without its time dimension is written compressed like a 3-D one."""
    grid = GridSpec.from_bbox(0.0, 10.0, 0.0, 10.0, 0.1)
    acc = GridAccumulator(grid, threads=1)
    acc.add_points(np.array([1.0]), np.array([0.1]), np.array([5.0]), np.array([5.0]))
    ds = acc.finalize().isel(time=0)
    write_grid(ds, tmp_path / "grid2d.nc")
    with xr.open_dataset(tmp_path / "grid2d.nc") as out:
        grids = [v for v in out.data_vars.values() if v.dims == ("latitude", "longitude")]
        assert grids and all(v.encoding.get("zlib") and v.encoding["complevel"] == COMPRESSION_LEVEL
                             for v in grids), {v.name: v.encoding for v in grids}
        np.testing.assert_array_equal(out[grids[0].name].values, ds[grids[0].name].values)


# On the real pool
# --------------------------------------------------------------------------------------------
NO2_MODULE = '''
"""Batch function used by the pool tests (imported by reference: on PYTHONPATH in the jobs)."""
from s5p_lockdown.batch import MOLECULES_PER_CM2, write_grid
from s5p_lockdown.gridding import GridAccumulator, GridSpec
from s5p_lockdown.gridding.schema import VALUE
from s5p_lockdown.io import read_l2


def no2_grid(input_path, output_path, *, box, resolution=0.05, qa_threshold=0.75):
    """qa filter, area-weighted 0.05 degree grid over box, molecules cm-2."""
    grid = GridSpec.from_bbox(*box, resolution)
    acc = GridAccumulator(grid, threads=1)
    acc.add_dataset(read_l2(input_path, bbox=grid.bounds), qa_threshold)
    ds = acc.finalize()
    ds[VALUE] = ds[VALUE] * MOLECULES_PER_CM2
    ds[VALUE].attrs["units"] = "molecules cm-2"
    write_grid(ds, output_path, config={"box": box}, inputs=[input_path])
'''


def run_driver(pool, workdir: Path, code: str, timeout: float = 600) -> dict:
    """Run ``code`` with the pool's Python as the job user in ``workdir``; returns the JSON it
    prints on its last line."""
    (workdir / "driver.py").write_text(textwrap.dedent(code))
    proc = pool.run("python", "driver.py", cwd=workdir, timeout=timeout)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def pool_archive(condor_workdir) -> list[Path]:
    """Four tiny synthetic L2 orbits (one day) in the pool work directory."""
    files = ArchiveGenerator(SynthSettings(seed=3, **DEMO)).generate(
        condor_workdir / "archive", [date(2020, 3, 25)])
    assert len(files) == 4
    return sorted(files)


def _data(ds: xr.Dataset) -> dict[str, np.ndarray]:
    return {name: ds[name].values for name in ds.data_vars}


@pytest.mark.slow
def test_batch_on_pool_equals_local_run(condor_pool, condor_workdir, pool_archive):
    (condor_workdir / "no2func.py").write_text(NO2_MODULE)
    result = run_driver(condor_pool, condor_workdir, f"""
        import json, sys, time
        sys.path.insert(0, {str(condor_workdir)!r})
        from no2func import no2_grid
        from s5p_lockdown.batch import BatchJob, submit

        params = {{"box": [47.0, 55.0, 5.0, 15.0]}}
        env = {{"PYTHONPATH": {str(condor_workdir)!r}}}
        t0 = time.monotonic()
        job = submit(no2_grid, "archive/**/*.nc", "out", params=params, environment=env)
        submitted = time.monotonic() - t0
        status = job.wait(timeout=300, interval=1)
        wall = time.monotonic() - t0
        jobs = job.jobs()
        for path in job.inputs:                      # the same function, run locally
            no2_grid(str(path), "local/" + path.stem + ".nc", **params)
        again = submit(no2_grid, "archive/**/*.nc", "out", params=params, environment=env)
        chunked = submit(no2_grid, "archive/**/*.nc", "out", params=params, environment=env,
                         overwrite=True, files_per_job=2)
        chunked_status = chunked.wait(timeout=300, interval=1)
        attached = BatchJob.attach(job.cluster_id)
        print(json.dumps({{
            "cluster": job.cluster_id, "counts": status.counts,
            "outputs": [str(p) for p in job.outputs()],
            "submit_seconds": job.submit_seconds[0], "submit_call": submitted, "wall": wall,
            "queue_wait": [j.started - j.submitted for j in jobs.values()],
            "rerun_clusters": again.cluster_ids, "rerun_counts": again.status().counts,
            "chunked_jobs": len(chunked.jobs()), "chunked_counts": chunked_status.counts,
            "attached_dir": str(attached.layout.root), "batch_dir": str(job.layout.root),
            "attached_counts": attached.status().counts,
        }}))
    """)
    per_job = result["submit_seconds"] / 4
    print(f"\npool batch of 4 jobs: Schedd.submit {result['submit_seconds'] * 1000:.1f} ms "
          f"({per_job * 1000:.2f} ms per job; submit() incl. validation and pickling "
          f"{result['submit_call'] * 1000:.0f} ms), queue wait per job "
          f"{min(result['queue_wait']):.0f}-{max(result['queue_wait']):.0f} s, "
          f"submit to all done {result['wall']:.1f} s")
    assert result["counts"]["done"] == 4 and sum(result["counts"].values()) == 4
    assert len(result["outputs"]) == 4
    for output in map(Path, result["outputs"]):
        local = condor_workdir / "local" / output.name
        with xr.open_dataset(output) as pooled, xr.open_dataset(local) as reference:
            assert _data(pooled).keys() == _data(reference).keys()
            for name, values in _data(pooled).items():
                np.testing.assert_array_equal(values, reference[name].values, err_msg=name)
            assert pooled.attrs["batch_function"] == "no2func.no2_grid"
            assert pooled.attrs["batch_input"] == output.name
            assert pooled["crs"].attrs["epsg_code"] == "EPSG:4326"
            assert pooled["tropospheric_NO2_column_number_density"].attrs["units"] == \
                "molecules cm-2"
    assert any(np.isfinite(xr.open_dataset(p)["tropospheric_NO2_column_number_density"]).any()
               for p in map(Path, result["outputs"]))
    # the jobs really ran on the pool, as the job user, and succeeded
    rows = condor_pool.history(f"ClusterId == {result['cluster']}", "Owner", "JobStatus",
                               "ExitCode")
    assert rows == [["htcuser", "4", "0"]] * 4
    # a rerun skips existing outputs; overwrite resubmits, here 2 files per job
    assert result["rerun_clusters"] == [] and result["rerun_counts"]["skipped"] == 4
    assert result["chunked_jobs"] == 2 and result["chunked_counts"]["done"] == 4
    assert result["attached_dir"] == result["batch_dir"]
    assert result["attached_counts"]["done"] == 4


@pytest.mark.slow
def test_failures_holds_and_removal_on_pool(condor_pool, condor_workdir, pool_archive):
    failing = pool_archive[1].name
    result = run_driver(condor_pool, condor_workdir, f"""
        import json, time
        from pathlib import Path
        from s5p_lockdown.batch import submit
        from s5p_lockdown.batch.gui import BatchMonitor

        def parse(input_path, output_path, *, bad):
            from s5p_lockdown.io import read_l2
            ds = read_l2(input_path)
            if Path(input_path).name == bad:
                raise ValueError("orbit " + str(ds.attrs["orbit"]) + " is bad")
            ds[["qa_value"]].to_netcdf(output_path)

        job = submit(parse, "archive/**/*.nc", "out", params={{"bad": {failing!r}}})
        status = job.wait(timeout=300, interval=1)
        failed_logs = job.logs({failing!r})
        monitor = BatchMonitor(job)
        table, log_view = monitor.table.value, monitor.log_view.value
        monitor.retry_button.click()
        retry_message = monitor.message.value
        retried = job.wait(timeout=300, interval=1)

        def parse_fixed(input_path, output_path, *, bad):
            from s5p_lockdown.io import read_l2
            read_l2(input_path)[["qa_value"]].to_netcdf(output_path)

        monitor.retry_failed(function=parse_fixed)  # the fix, for the failed file only
        fixed = job.wait(timeout=300, interval=1)
        fixed_table = monitor.table.value
        import netCDF4
        with netCDF4.Dataset("out/" + Path({failing!r}).stem + ".nc") as nc:
            fixed_provenance = [nc.batch_function, nc.batch_job]
        with netCDF4.Dataset("out/" + Path({pool_archive[0].name!r}).stem + ".nc") as nc:
            first_provenance = [nc.batch_function, nc.batch_job]

        def nap(input_path, output_path):
            time.sleep(300)

        running = submit(nap, "archive/**/*.nc", "out-nap", files_per_job=4)
        deadline = time.monotonic() + 120
        while running.status().counts["running"] == 0 and time.monotonic() < deadline:
            time.sleep(1)
        was_running = running.status().counts["running"]
        removed = running.remove()
        removed_status = running.wait(timeout=120, interval=1)

        held = submit(parse, "archive/**/*.nc", "out-held", params={{"bad": ""}},
                      python="/nonexistent/python", files_per_job=4)
        deadline = time.monotonic() + 120
        while held.status().counts["held"] == 0 and time.monotonic() < deadline:
            time.sleep(1)
        held_status = held.status()
        held_monitor = BatchMonitor(held)
        held.remove()
        print(json.dumps({{
            "counts": status.counts,
            "failed": [f.input.name for f in status.files if f.state == "failed"],
            "message": [f.message for f in status.files if f.state == "failed"],
            "logs": failed_logs, "table": table, "log_view": log_view,
            "retry_message": retry_message, "clusters": job.cluster_ids,
            "retried_counts": retried.counts, "layers": len(monitor.layers),
            "fixed_message": monitor.message.value, "fixed_counts": fixed.counts,
            "fixed_table": fixed_table,
            "fixed_provenance": fixed_provenance, "first_provenance": first_provenance,
            "attempts": [a.get("function_file") for a in job.manifest["attempts"]],
            "not_drawn": list(monitor.not_drawn.values()),
            "was_running": was_running, "removed": removed,
            "removed_counts": removed_status.counts,
            "held_counts": held_status.counts, "held_message": held_status.files[0].message,
            "held_table": held_monitor.table.value,
        }}))
    """)
    assert result["counts"]["done"] == 3 and result["counts"]["failed"] == 1
    assert result["failed"] == [failing]
    assert result["message"][0].startswith("ValueError: orbit ")
    for text in (result["logs"], result["log_view"]):
        assert "Traceback (most recent call last)" in text
        assert "ValueError: orbit" in text and "is bad" in text
        assert "exit code 1" in text
    assert "failed" in result["table"] and "ValueError: orbit" in result["table"]
    # these outputs are not grids: the map skips them and says why
    assert result["layers"] == 0 and len(result["not_drawn"]) == 3
    assert "no data variable with latitude and longitude" in result["not_drawn"][0]
    # retry resubmits only the failed file, which fails again
    assert result["retry_message"] == f"resubmitted as cluster {result['clusters'][1]}"
    assert result["retried_counts"]["done"] == 3 and result["retried_counts"]["failed"] == 1
    # a retry with a fixed function: only the failed file again, in a third cluster, with the
    # fixed function (its own pickle); the monitor shows the attempt and the file done
    assert len(result["clusters"]) == 3
    assert result["fixed_message"] == \
        f"resubmitted as cluster {result['clusters'][2]} with parse_fixed"
    assert result["fixed_counts"]["done"] == 4 and result["fixed_counts"]["failed"] == 0
    assert result["attempts"] == [None, None, "function-3.pkl"]
    assert result["fixed_provenance"] == ["__main__.parse_fixed", f"{result['clusters'][2]}.0"]
    assert result["first_provenance"][0] == "__main__.parse"
    assert "ValueError: orbit" not in result["fixed_table"]
    assert result["was_running"] == 4 and result["removed"] == 1
    assert result["removed_counts"]["removed"] == 4
    assert result["held_counts"]["held"] == 4
    assert "Failed to execute '/nonexistent/python'" in result["held_message"]
    assert html.escape(result["held_message"]) in result["held_table"]


@pytest.mark.slow
def test_example_notebook(condor_pool, condor_workdir, pool_archive):
    notebook = condor_workdir / NOTEBOOK.name
    shutil.copy(NOTEBOOK, notebook)
    out = condor_workdir / "out"
    result = run_driver(condor_pool, condor_workdir, f"""
        import json, os, time
        import nbformat
        from nbclient import NotebookClient

        os.environ.update(S5P_BATCH_ARCHIVE={str(condor_workdir / "archive")!r},
                          S5P_BATCH_OUTPUT={str(out)!r}, S5P_BATCH_TIMEOUT="300")
        nb = nbformat.read({str(notebook)!r}, as_version=4)
        t0 = time.monotonic()
        try:
            NotebookClient(nb, timeout=600, kernel_name="python3",
                           resources={{"metadata": {{"path": {str(condor_workdir)!r}}}}}).execute()
        finally:
            nbformat.write(nb, "executed.ipynb")
        last = nb.cells[-1].outputs[0]["text"].strip().splitlines()[-1]
        print(json.dumps({{"summary": json.loads(last), "seconds": time.monotonic() - t0}}))
    """)
    summary = result["summary"]
    print(f"\nexample notebook executed in {result['seconds']:.1f} s")
    assert summary["counts"]["done"] == 4
    assert sorted(Path(p).name for p in summary["outputs"]) == \
        sorted(p.stem + ".nc" for p in pool_archive)
    assert summary["map_layers"] == 4 and summary["colorbar"]
    assert summary["retry_message"] == "nothing to retry"
    with xr.open_dataset(summary["outputs"][0]) as ds:
        assert ds["tropospheric_NO2_column_number_density"].attrs["units"] == "molecules cm-2"
        assert ds.attrs["harp_operation"].startswith("bin_spatial(")
        assert ds.attrs["batch_function"] == "__main__.no2_over_country"
