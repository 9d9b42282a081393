"""The kernels compiled ahead of time (:mod:`s5p_lockdown.aot`): the same results as numba's JIT,
bit for bit, for every exported function; never used when stale; and a gridding process that
does not import numba."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from s5p_lockdown import aot
from s5p_lockdown.cli import cli
from s5p_lockdown.gridding import GridAccumulator, GridSpec
from s5p_lockdown.io import read_l2_arrays

L2 = sorted((Path(__file__).parent / "data" / "harp_reference" / "l2").glob("*.nc"))


@pytest.fixture(scope="module")
def compiled_dir(tmp_path_factory) -> Path:
    """A folder holding the module built from the current sources (built once here: the test
    does not depend on `make venv` having built the package's own)."""
    folder = tmp_path_factory.mktemp("aot")
    aot.build(folder)
    return folder


@pytest.fixture
def use_compiled(compiled_dir, monkeypatch):
    """Switch this process between the compiled module (True) and numba's JIT (False)."""
    module = aot.load(compiled_dir)
    assert module is not None

    def switch(compiled: bool) -> None:
        monkeypatch.setattr(aot, "load", lambda directory=None: module if compiled else None)

    return switch


def _grid_file(path: Path, grid: GridSpec, *, point: bool = False, float32: bool = True,
               threads: int = 1) -> GridAccumulator:
    """Bin the file's pixels with qa_value > 0.5, with the wind speed as a companion; corners
    as stored (float32) or as float64."""
    data = read_l2_arrays(path, bbox=grid.bounds).variables
    keep = data["qa_value"] > 0.5
    corners = {name: np.asarray(data[name], np.float32 if float32 else np.float64)[keep]
               for name in ("latitude_bounds", "longitude_bounds")}
    values = data["nitrogendioxide_tropospheric_column"][keep]
    sigmas = data["nitrogendioxide_tropospheric_column_precision"][keep]
    wind = {"wind_speed": np.hypot(data["eastward_wind"], data["northward_wind"])[keep]}
    accumulator = GridAccumulator(grid, threads=threads, companions=("wind_speed",))
    if point:
        accumulator.add_points(values, sigmas, data["latitude"][keep], data["longitude"][keep],
                               companions=wind)
    else:
        accumulator.add_pixels(values, sigmas, corners["latitude_bounds"],
                               corners["longitude_bounds"], companions=wind)
    return accumulator


def _assert_same_sums(a: GridAccumulator, b: GridAccumulator) -> None:
    assert a.count == b.count > 0
    np.testing.assert_array_equal(a.sums, b.sums)
    np.testing.assert_array_equal(a.pixel_count, b.pixel_count)
    np.testing.assert_array_equal(a.companion_sums, b.companion_sums)


@pytest.mark.parametrize("path,spec,point,float32", [
    (L2[1], "41,40,0.2,71,3,0.2", False, True),       # float32 corners, as in the files
    (L2[1], "41,40,0.2,71,3,0.2", False, False),      # float64 corners
    (L2[1], "101,44,0.02,151,8,0.02", False, True),   # fine grid: many cells per pixel
    (L2[0], "101,40,0.1,201,170,0.1", False, True),   # across the antimeridian
    (L2[1], "41,40,0.2,71,3,0.2", True, False),       # point binning
], ids=["f4", "f8", "fine", "antimeridian", "point"])
def test_compiled_binning_equals_the_jit_bit_for_bit(use_compiled, path, spec, point, float32):
    grid = GridSpec.from_harp(spec)
    use_compiled(True)
    compiled = _grid_file(path, grid, point=point, float32=float32)
    use_compiled(False)
    jit = _grid_file(path, grid, point=point, float32=float32)
    _assert_same_sums(compiled, jit)
    # and the JIT's parallel kernel, which is never compiled ahead of time
    _assert_same_sums(compiled, _grid_file(path, grid, point=point, float32=float32, threads=2))


def test_compiled_reader_helpers_equal_the_jit(compiled_dir):
    from s5p_lockdown import hdf5_kernels

    module = aot.load(compiled_dir)
    rng = np.random.default_rng(5)
    for size in (0, 1, 2, 719, 720, 721, 5000):
        data = rng.integers(0, 256, size, dtype=np.uint8)
        readonly = np.frombuffer(data.tobytes(), np.uint8)
        assert module.fletcher32(readonly) == hdf5_kernels.fletcher32(readonly)
    src = np.frombuffer(rng.integers(0, 256, 8 * 300, dtype=np.uint8).tobytes(), np.uint8)
    for first in (0, 7):
        ours, theirs = np.zeros(4 * 250, np.uint8), np.zeros(4 * 250, np.uint8)
        module.join_4_byte_items(src[:1200], 300, first, ours.view(np.uint32))
        hdf5_kernels.join_4_byte_items(src[:1200], 300, first, theirs.view(np.uint32))
        np.testing.assert_array_equal(ours, theirs)
        ours, theirs = np.zeros(8 * 250, np.uint8), np.zeros(8 * 250, np.uint8)
        module.join_items(src, 8, 300, first, ours)
        hdf5_kernels.join_items(src, 8, 300, first, theirs)
        np.testing.assert_array_equal(ours, theirs)


def test_reading_through_the_compiled_helpers_equals_the_jit(use_compiled):
    use_compiled(True)
    compiled = read_l2_arrays(L2[0]).variables
    use_compiled(False)
    jit = read_l2_arrays(L2[0]).variables
    assert compiled.keys() == jit.keys()
    for name in compiled:
        np.testing.assert_array_equal(compiled[name], jit[name])


def test_a_changed_source_or_version_is_never_loaded(compiled_dir, monkeypatch, tmp_path):
    assert aot.load(compiled_dir) is not None
    key = aot.module_key()
    sources = aot._source_files()
    changed = tmp_path / "kernel.py"
    changed.write_text(sources[0].read_text() + "\n# changed\n")
    try:
        monkeypatch.setattr(aot, "_source_files", lambda: [changed, *sources[1:]])
        aot.module_key.cache_clear()
        assert aot.module_key() != key
        assert aot.load(compiled_dir) is None
        monkeypatch.undo()
        monkeypatch.setattr(aot.sys, "version", sys.version + " (another build)")
        aot.module_key.cache_clear()
        assert aot.module_key() != key
        assert aot.load(compiled_dir) is None
    finally:
        monkeypatch.undo()
        aot.module_key.cache_clear()
    assert aot.module_key() == key


def test_compile_command_builds_once_and_reports(monkeypatch, tmp_path):
    monkeypatch.setenv(aot.DIR_VARIABLE, str(tmp_path))
    runner = CliRunner()
    missing = runner.invoke(cli, ["compile", "--check"])
    assert missing.exit_code == 1
    assert "not built" in missing.output
    monkeypatch.setattr(aot, "build", lambda directory=None: (_ for _ in ()).throw(
        FileNotFoundError("gcc: not found")))
    from s5p_lockdown.errors import S5PLockdownError

    failed = runner.invoke(cli, ["compile"])
    assert isinstance(failed.exception, S5PLockdownError)
    assert "gcc: not found" in str(failed.exception) and "JIT is used" in str(failed.exception)
    monkeypatch.undo()
    monkeypatch.setenv(aot.DIR_VARIABLE, str(tmp_path))
    import importlib.machinery

    import os

    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    earlier = []  # builds for older sources or other package versions, oldest first
    for age in range(aot.KEEP_BUILDS + 1):
        earlier.append(tmp_path / f"_s5p_aot_{age:016x}{suffix}")
        earlier[-1].write_bytes(b"")
        os.utime(earlier[-1], (1e9 - age * 100, 1e9 - age * 100))
    other_python = tmp_path / "_s5p_aot_0123456789abcdef.cpython-399-x86_64-linux-gnu.so"
    other_python.write_bytes(b"")
    built = runner.invoke(cli, ["compile"])
    assert built.exit_code == 0, built.output
    assert aot.module_path().exists() and other_python.exists()
    # the new build and the most recent earlier ones are kept
    assert [p.exists() for p in earlier] == [True] * (aot.KEEP_BUILDS - 1) + [False, False]
    again = runner.invoke(cli, ["compile"])
    assert "up to date" in again.output


def test_a_gridding_process_with_the_compiled_module_does_not_import_numba(compiled_dir, tmp_path):
    """The point of it all: `s5p-lockdown grid` (one thread, the default) in a fresh process
    loads the compiled module and never imports numba; the same file without the module (the
    JIT fallback) is identical."""
    script = (
        "import sys\n"
        "from s5p_lockdown.cli import main\n"
        "sys.argv = ['s5p-lockdown', 'grid', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('numba imported' if 'numba' in sys.modules else 'no numba')\n"
    )
    args = [str(L2[1]), "--bin-spatial", "181,-30,0.2,201,-10,0.2"]
    outputs = {}
    for name, folder in (("compiled", compiled_dir), ("jit", tmp_path / "empty")):
        out = tmp_path / f"{name}.nc"
        env = {"PATH": "/usr/bin:/bin", aot.DIR_VARIABLE: str(folder)}
        done = subprocess.run([sys.executable, "-c", script, *args, "-o", str(out)], env=env,
                              capture_output=True, text=True, check=True)
        outputs[name] = (done.stdout.strip(), out)
    assert outputs["compiled"][0] == "no numba"
    assert outputs["jit"][0] == "numba imported"
    import netCDF4

    with netCDF4.Dataset(outputs["compiled"][1]) as a, netCDF4.Dataset(outputs["jit"][1]) as b:
        assert a.variables.keys() == b.variables.keys()
        for name in a.variables:
            np.testing.assert_array_equal(a[name][:], b[name][:])


def test_the_workflows_gridding_and_attribution_reads_do_not_import_numba(compiled_dir, orbit_file,
                                                                          tmp_path):
    """What a workflow job runs per orbit with the default one thread: the daily grid
    (``daily.grid_day``, with wind) and the attribution's read of pixel centres, in a fresh
    process with the compiled module: numba is never imported."""
    script = (
        "import sys\n"
        "from datetime import date\n"
        "from s5p_lockdown.attribution import _orbit_pixels\n"
        "from s5p_lockdown.daily import grid_day\n"
        "from s5p_lockdown.gridding import GridSpec\n"
        "grid = GridSpec.from_harp('61,40,0.25,101,-5,0.25')\n"
        "grid_day([sys.argv[1]], date(2020, 3, 25), grid, sys.argv[2])\n"
        "assert _orbit_pixels(sys.argv[1], grid, 0.75)['no2'].size > 0\n"
        "print('numba imported' if 'numba' in sys.modules else 'no numba')\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(orbit_file), str(tmp_path / "day.nc")],
                          env={"PATH": "/usr/bin:/bin", aot.DIR_VARIABLE: str(compiled_dir)},
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "no numba"
    assert (tmp_path / "day.nc").exists()


def test_mixed_corner_types_and_integer_grids_bin_as_with_the_jit(use_compiled):
    """Inputs the JIT accepted whatever their types: float32 latitudes with float64 longitudes,
    and a grid given in integers (its edges are float64 whatever the fields' types)."""
    data = read_l2_arrays(L2[1], bbox=(40.0, 48.0, 3.0, 17.0)).variables
    keep = data["qa_value"] > 0.5
    values = data["nitrogendioxide_tropospheric_column"][keep]
    sigmas = data["nitrogendioxide_tropospheric_column_precision"][keep]
    lat = np.asarray(data["latitude_bounds"], np.float32)[keep]
    lon = np.asarray(data["longitude_bounds"], np.float64)[keep]
    grid = GridSpec(9, 40, 1, 15, 3, 1)  # integer fields
    assert grid.lat_edges.dtype == grid.lon_edges.dtype == np.float64
    results = {}
    for compiled in (True, False):
        use_compiled(compiled)
        accumulator = GridAccumulator(grid)
        accumulator.add_pixels(values, sigmas, lat, lon)
        accumulator.add_points(values, sigmas, data["latitude"][keep], data["longitude"][keep])
        results[compiled] = accumulator
    _assert_same_sums(results[True], results[False])


def test_the_module_of_the_kernels_constants_is_part_of_the_key():
    """numba freezes the kernel's constants (the fill threshold of gridding/schema.py) into the
    compiled code: a change there must give another key."""
    assert any(p.name == "schema.py" and p.parent.name == "gridding" for p in aot._source_files())


def test_a_module_that_cannot_be_loaded_falls_back_to_the_jit(tmp_path, caplog):
    broken = aot.module_path(tmp_path)
    broken.write_bytes(b"not a shared object")
    with caplog.at_level("WARNING"):
        assert aot.load(tmp_path) is None
    assert "cannot be loaded" in caplog.text and "JIT" in caplog.text


def test_compile_into_a_read_only_folder_says_which_setting_to_change(monkeypatch, tmp_path):
    monkeypatch.setenv(aot.DIR_VARIABLE, str(tmp_path))

    def refuse(directory=None):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(aot, "build", refuse)
    failed = CliRunner().invoke(cli, ["compile"])
    message = str(failed.exception)
    assert "Permission denied" in message and aot.DIR_VARIABLE in message and "JIT" in message


def test_copy_into_a_copy_of_the_sources(compiled_dir, monkeypatch, tmp_path):
    """What a clone's make venv leaves beside its sources: the checkout's build copied when
    there is one, built in place otherwise."""
    monkeypatch.setenv(aot.DIR_VARIABLE, str(compiled_dir))
    copied = aot.copy_into(tmp_path / "copy" / "__pycache__")
    assert copied == aot.module_path(tmp_path / "copy" / "__pycache__")
    assert copied.read_bytes() == aot.module_path().read_bytes()
    monkeypatch.setenv(aot.DIR_VARIABLE, str(tmp_path / "nothing built"))
    built = []
    monkeypatch.setattr(aot, "build", lambda directory=None: built.append(directory) or directory)
    aot.copy_into(tmp_path / "other")
    assert built == [tmp_path / "other"]
