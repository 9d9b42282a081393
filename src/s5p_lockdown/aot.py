"""The numba functions of a gridding process compiled ahead of time, so it starts without numba.

Why. A process that grids one orbit at 0.1° spends ~0.3 s of its ~0.7 s in numba before any
pixel is binned: importing numba (~0.15 s) and loading its compiler on the first call of a
cached function (~0.17 s); HARP's whole process takes 0.72-0.83 s. Every Snakemake job that
grids or reads pays the same. The functions a serial gridding process calls (the area and point
binning of :mod:`s5p_lockdown.gridding.kernel`, the chunk helpers of the fast reader
:mod:`s5p_lockdown.hdf5_kernels`) are therefore also compiled by numba's own ahead-of-time
compiler (``numba.pycc``) into one extension module, which imports with numpy alone.

The two paths compute the same thing: the module is compiled from the same Python functions
(their ``py_func``) by the same numba and LLVM, without fast-math, so its results are
bit-identical to the JIT's (``tests/test_aot.py`` compares every exported function). The parallel
kernel (``--threads`` > 1) stays on the JIT: the AOT compiler has no threading layer.

Where and when. ``s5p-lockdown compile`` (run by ``make venv``) builds ``_s5p_aot_<key>`` into
the folder of :func:`module_dir` (the local pool's jobs import the same checkout with a copy of
the same Python build and the same packages, so they load the same module; the jobs of
``profiles/condor-transfer`` receive it with the sources); ``key`` is a digest of
the compiled sources (and of the module whose constants they use), the exported signatures and
the Python, numba and numpy versions, so a changed source or an upgraded package makes
:func:`load` return None (never stale code) and callers fall back to the JIT, which is only
slower to start; so does a module that cannot be loaded (logged). Building takes ~10 s. The
exported functions accept only the exact dtypes and C-contiguous arrays of their signatures
(numba.pycc checks little more than the item size): the callers pass such arrays.

``numba.pycc`` is marked "pending deprecation" by numba, which plans a successor; until then it
is the only ahead-of-time compiler of numba code, and the JIT fallback keeps this optional.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType

PACKAGE_DIR = Path(__file__).resolve().parent

#: Environment variable naming the folder of the compiled module (default: :func:`module_dir`).
DIR_VARIABLE = "S5P_LOCKDOWN_AOT_DIR"

_POLYGONS = ("{corner}[:, ::1], {corner}[:, ::1], i8[::1], f8[::1], f8[::1], f8[:, ::1], f8[:, ::1], "
             "i4[::1], f8[:, ::1], f8[:, ::1], i8[:, ::1], u1[::1]")
_STRIPES = ("i8[::1], i8[::1], i8[::1], f8[:, ::1], f8[:, ::1], i4[::1], f8[:, ::1], f8[:, ::1], "
            "i8[:, ::1], f8[::1], f8[::1], f8[:, ::1], f8[::1], f8[::1], f8[:, :, ::1], i4[:, ::1], "
            "f8[:, :, ::1], u1[::1]")
_POINTS = ("f8[::1], f8[::1], f8[::1], f8[::1], f8[:, ::1], f8[::1], f8[::1], f8[:, :, ::1], "
           "i4[:, ::1], f8[:, :, ::1], u1[::1]")

#: Exported name -> (module, function, signature). Arrays are C-contiguous (``[::1]``); the
#: callers pass such arrays and use the JIT for anything else. ``u1r`` is a read-only uint8
#: array (a chunk's bytes from ``np.frombuffer``).
EXPORTS: dict[str, tuple[str, str, str]] = {
    "prepare_polygons_f4": ("s5p_lockdown.gridding.kernel", "prepare_polygons",
                            f"void({_POLYGONS.format(corner='f4')})"),
    "prepare_polygons_f8": ("s5p_lockdown.gridding.kernel", "prepare_polygons",
                            f"void({_POLYGONS.format(corner='f8')})"),
    "assign_stripes": ("s5p_lockdown.gridding.kernel", "assign_stripes",
                       "UniTuple(i8[::1], 3)(i8[:, ::1], i8, i8)"),
    "bin_stripes_serial": ("s5p_lockdown.gridding.kernel", "bin_stripes_serial", f"void({_STRIPES})"),
    "bin_points": ("s5p_lockdown.gridding.kernel", "bin_points", f"void({_POINTS})"),
    "fletcher32": ("s5p_lockdown.hdf5_kernels", "fletcher32", "i8(u1r)"),
    "join_4_byte_items": ("s5p_lockdown.hdf5_kernels", "join_4_byte_items", "void(u1r, i8, i8, u4[::1])"),
    "join_items": ("s5p_lockdown.hdf5_kernels", "join_items", "void(u1r, i8, i8, i8, u1[::1])"),
}


#: Modules whose constants the exported functions use (numba freezes them into the code).
CONSTANTS_FROM = ("s5p_lockdown.gridding.schema",)

#: Builds kept per Python version (two venvs with other numpy or numba versions may share a
#: checkout and its ``__pycache__``); older ones are removed by :func:`build`.
KEEP_BUILDS = 4

log = logging.getLogger(__name__)


def _source_files() -> list[Path]:
    names = sorted({module for module, _, _ in EXPORTS.values()} | set(CONSTANTS_FROM))
    return [PACKAGE_DIR.joinpath(*name.split(".")[1:]).with_suffix(".py") for name in names]


@functools.cache
def module_key() -> str:
    """Digest of what the compiled module depends on: the sources of the exported functions,
    :data:`EXPORTS`, and the Python, numba and numpy versions (16 hex digits). Computed once
    per process (the sources it has loaded), without importing numba: its version is read
    from its ``_version.py``."""
    import numpy

    digest = hashlib.sha256()
    for path in _source_files():
        digest.update(path.read_bytes())
    digest.update(repr(sorted(EXPORTS.items())).encode())
    digest.update(sys.version.encode())
    digest.update(numpy.__version__.encode())
    numba = importlib.util.find_spec("numba")
    try:
        digest.update(Path(numba.origin).with_name("_version.py").read_bytes())
    except (AttributeError, OSError):  # not found where numba keeps it: never matches a build
        digest.update(os.urandom(16))
    return digest.hexdigest()[:16]


def module_dir() -> Path:
    """Folder of the compiled module: ``$S5P_LOCKDOWN_AOT_DIR`` if set, else the package's
    ``__pycache__`` (beside numba's own cache of the same functions)."""
    configured = os.environ.get(DIR_VARIABLE)
    return Path(configured) if configured else PACKAGE_DIR / "__pycache__"


def _module_name(key: str) -> str:
    return f"_s5p_aot_{key}"


def module_path(directory: Path | None = None) -> Path:
    """Where the compiled module for the current sources and versions is (or would be)."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return (directory or module_dir()) / (_module_name(module_key()) + suffix)


_loaded: dict[Path, ModuleType | None] = {}


def load(directory: Path | None = None) -> ModuleType | None:
    """The compiled module for the current sources and versions, or None when it has not been
    built (the callers then use numba's JIT). Loaded once per process."""
    path = module_path(directory)
    if path not in _loaded:
        module = None
        if path.exists():
            try:
                spec = importlib.util.spec_from_file_location(path.name.split(".")[0], path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            except (ImportError, OSError) as exc:  # e.g. a noexec mount, another C library
                log.warning("compiled kernels %s cannot be loaded (%s); using numba's JIT", path, exc)
                module = None
        _loaded[path] = module
    return _loaded[path]


def function(name: str):
    """The exported function ``name`` of :data:`EXPORTS`: compiled ahead of time when built,
    else numba's JIT of the same Python function (which imports numba)."""
    module = load()
    if module is not None:
        return getattr(module, name)
    import importlib

    source, function_name, _ = EXPORTS[name]
    return getattr(importlib.import_module(source), function_name)


class BuildError(RuntimeError):
    """The compiled module could not be built; the message ends with the compiler's last words."""


def build(directory: Path | None = None) -> Path:
    """Compile :data:`EXPORTS` into the module of :func:`module_path` (atomically: built in a
    temporary folder, then renamed into place); returns its path. Needs C and C++ compilers
    (numba.pycc probes both) and the Python headers. The compiler runs in a child process: it
    imports setuptools, which puts its vendored packages on ``sys.path``, and numba."""
    import subprocess

    target = module_path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".aot-build-") as tmp:
        done = subprocess.run([sys.executable, "-m", "s5p_lockdown.aot", tmp, target.name],
                              capture_output=True, text=True)
        built = Path(tmp) / target.name
        if done.returncode != 0 or not built.exists():
            words = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise BuildError(f"numba.pycc failed ({words})")
        module_key.cache_clear()  # the child compiled the sources on disk: still these?
        if module_path(directory) != target:
            raise BuildError("the sources changed while they were compiled; run it again")
        os.replace(built, target)
    # the most recent builds for this Python are kept, older ones are never loaded again
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    builds = sorted(target.parent.glob(f"{_module_name('*')}{suffix}"), key=lambda p: p.stat().st_mtime)
    for stale in builds[:-KEEP_BUILDS]:
        stale.unlink(missing_ok=True)
    return target


def copy_into(directory: Path) -> Path:
    """The module for the current sources and versions into ``directory`` (e.g. the
    ``__pycache__`` of a copy of the sources, as ``make venv`` leaves it in a clone): copied from
    :func:`module_dir` when built there, else built in ``directory``; returns its path."""
    import shutil

    built = module_path()
    if not built.exists():
        return build(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(built, directory))


def _compile(folder: Path, filename: str) -> None:
    """numba.pycc of :data:`EXPORTS` into ``folder/filename``."""
    import importlib

    from numba import types

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba.pycc's pending-deprecation notice (see above)
        from numba.pycc import CC

    compiler = CC(filename.split(".")[0])
    compiler.output_dir = str(folder)
    compiler.verbose = False
    # signature strings in numba's notation; "u1r" (read-only uint8 array) has no short name
    namespace = {**vars(types), "u1r": types.Array(types.uint8, 1, "C", readonly=True)}
    for name, (module, function, signature) in EXPORTS.items():
        py_func = getattr(importlib.import_module(module), function).py_func
        compiler.export(name, eval(signature, namespace))(py_func)  # noqa: S307 (constants above)
    logging.disable(logging.INFO)  # setuptools logs every compiler command at INFO
    compiler.compile()


if __name__ == "__main__":  # the child process of build(): folder, file name
    _compile(Path(sys.argv[1]), sys.argv[2])
