"""s5p-lockdown: Sentinel-5P L2 NO2 lockdown analysis for European countries.

Modules, one concern each:

- :mod:`s5p_lockdown.filenames` – parse and build S5P product file names.
- :mod:`s5p_lockdown.io` – read L2 NO2 orbits into an :class:`xarray.Dataset`.
- :mod:`s5p_lockdown.synth` – generate synthetic L2 orbits in the real file structure.
- :mod:`s5p_lockdown.gridding` – HARP ``bin_spatial``-compatible area-weighted gridding.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("s5p-lockdown")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
