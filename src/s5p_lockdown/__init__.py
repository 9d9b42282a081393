"""s5p-lockdown: Sentinel-5P L2 NO2 lockdown analysis for European countries.

Modules, one concern each:

- :mod:`s5p_lockdown.filenames` – parse and build S5P product file names.
- :mod:`s5p_lockdown.io` – read L2 NO2 orbits into an :class:`xarray.Dataset`.
- :mod:`s5p_lockdown.synth` – generate synthetic L2 orbits in the real file structure.
- :mod:`s5p_lockdown.gridding` – HARP ``bin_spatial``-compatible area-weighted gridding.
"""

from functools import cache


@cache
def _installed_version() -> str:
    """The installed package's version; else ``$S5P_LOCKDOWN_VERSION`` (set by the workflow for
    its jobs, which on a pool without a shared filesystem import transferred sources), else
    ``0+unknown`` (a source tree that is not installed)."""
    import os
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("s5p-lockdown")
    except PackageNotFoundError:
        return os.environ.get("S5P_LOCKDOWN_VERSION", "0+unknown")


def __getattr__(name: str):
    # ``__version__`` is looked up on first use (PEP 562): importlib.metadata costs every
    # process that imports the package ~40 ms (s5p-lockdown grid, every Snakemake job)
    if name == "__version__":
        return _installed_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
