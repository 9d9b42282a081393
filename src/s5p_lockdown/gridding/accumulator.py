"""Streaming, mergeable accumulator of area-weighted sums on a :class:`GridSpec`.

Add orbits one at a time (memory does not grow with the number of orbits), merge accumulators of
the same grid (orbits → day → period), then :meth:`GridAccumulator.finalize` to the L3 Dataset
described in :mod:`s5p_lockdown.gridding.schema`.

State, all float64 sums so that merging is exact addition:

* ``sums[..., 0]`` = Σ w, ``sums[..., 1]`` = Σ w·x, ``sums[..., 2]`` = Σ (w·σ)², ``sums[..., 3]``
  = Σ w·σ, shape (latitude, longitude, 4), where x is the value (mol m-2), σ its 1-sigma
  uncertainty (mol m-2, the S5P precision) and w the overlap area / cell area (planar degrees;
  1 per point in point binning). Finalised to ``*_uncertainty`` = Σ w·σ / Σ w (HARP's linear
  average) and ``*_uncertainty_random`` = sqrt(Σ (w·σ)²) / Σ w (HARP's uncorrelated rule);
* ``pixel_count`` (int32): pixels with a positive overlap per cell;
* ``count``: pixels with a candidate cell in the grid, ``time_start``/``time_stop`` and the
  source file names;
* ``companion_sums[..., 2j]`` = Σ w and ``[..., 2j + 1]`` = Σ w·x of companion variable j
  (``companions``, e.g. wind speed): binned in the same pass over the pixels of the main
  variable, with the same weights, leaving out pixels whose companion value is NaN, infinite or
  fill (|x| ≥ 1e30). Finalised to the area-weighted mean of each companion (NaN where none).

Composite weighting (``weighting``):

* ``"weight"`` – merging adds the sums, so a composite equals binning all pixels at once, for
  the value and both uncertainties (each day weighted by its Σ w). HARP's ``bin()`` of daily
  grids differs here: it combines any uncertainty as uncorrelated, so a merged HARP
  ``*_uncertainty`` is no longer the linear average of the pixels (HARP issue #302); ours stays
  what binning all the pixels at once gives;
* ``"equal"`` – every input counts the same in each cell where it has data: the composite is the
  mean of the inputs' cell means, ``*_uncertainty`` the mean of their ``*_uncertainty`` (linear,
  as HARP's binning) and ``*_uncertainty_random`` sqrt(Σ σ_d²)/N (inputs taken as independent);
  ``weight`` is the number of inputs with data. Built with :meth:`GridAccumulator.normalized`
  or :func:`composite`.

The deliberate differences from HARP are listed in :mod:`s5p_lockdown.gridding.kernel`.
"""

from __future__ import annotations

import contextlib
import mmap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from s5p_lockdown import aot
from s5p_lockdown.gridding import schema
from s5p_lockdown.gridding.grid import GridSpec, same_grid
from s5p_lockdown.gridding.l3_file import CHUNK, COMPRESSION_LEVEL, write_l3
from s5p_lockdown.outputs import write_atomically

if TYPE_CHECKING:  # annotations only: xarray is imported where a Dataset is made or read, so
    # that gridding an orbit into a file (s5p-lockdown grid, the daily jobs) does not pay ~0.5 s
    import xarray as xr

    from s5p_lockdown.io import L2Arrays

#: Pixels processed per kernel call: bounds the working memory (≈ 150 bytes per pixel).
CHUNK_SIZE = 1 << 16
#: Stripes per thread in parallel binning (load balancing; results do not depend on it).
_STRIPES_PER_THREAD = 4

L2_VALUE = "nitrogendioxide_tropospheric_column"
L2_PRECISION = "nitrogendioxide_tropospheric_column_precision"


def small_page_zeros(shape: tuple[int, ...], dtype) -> np.ndarray:
    """``np.zeros(shape, dtype)`` in anonymous memory kept out of transparent huge pages.

    Why not ``np.zeros``: numpy asks the kernel for huge pages on large arrays, so every 2 MB
    region the binning touches is zeroed and mapped whole, with the kernel compacting memory
    to find one. Measured on a 0.01° Europe grid (0.85 GB of sums, one orbit touching about
    half the cells, whole ``s5p-lockdown grid`` process): peak RSS 936 MB and 0.2-1.4 s of
    system time varying run to run (wall 1.8-2.8 s), against 553-560 MB and a steady 0.4-0.6 s
    (wall 1.92-1.96 s) with 4 kB pages, which are mapped only where written.
    """
    count = int(np.prod(shape, dtype=np.int64))
    nbytes = count * np.dtype(dtype).itemsize
    if nbytes < mmap.PAGESIZE or not hasattr(mmap, "MADV_NOHUGEPAGE"):  # not Linux: plain
        return np.zeros(shape, dtype)
    # private: a shared anonymous map is backed by shmem, whose pages fill in when read
    memory = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE)
    memory.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(memory, dtype, count).reshape(shape)


@contextlib.contextmanager
def numba_threads(threads: int | None) -> Iterator[int]:
    """Temporarily use ``threads`` numba threads (None: numba's current setting)."""
    import numba

    previous = numba.get_num_threads()
    wanted = previous if threads is None else int(threads)
    wanted = max(1, min(wanted, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        numba.set_num_threads(previous)


def _usable(values: np.ndarray, uncertainty: np.ndarray) -> np.ndarray:
    """Pixels with a finite, non-fill value and uncertainty."""
    with np.errstate(invalid="ignore"):
        return (
            np.isfinite(values)
            & np.isfinite(uncertainty)
            & (np.abs(values) < schema.FILL_THRESHOLD)
            & (np.abs(uncertainty) < schema.FILL_THRESHOLD)
        )


def usable_pixels(ds: xr.Dataset | L2Arrays, qa_threshold: float | None = 0.75) -> np.ndarray:
    """Boolean (scanline, ground_pixel): the pixels of an L2 orbit (as read by
    :func:`s5p_lockdown.io.read_l2` or :func:`~s5p_lockdown.io.read_l2_arrays`) that are binned:
    ``qa_value > qa_threshold`` (no qa filter when None) and a finite, non-fill column and
    precision."""
    usable = _usable(np.asarray(ds[L2_VALUE]), np.asarray(ds[L2_PRECISION]))
    if qa_threshold is not None:
        with np.errstate(invalid="ignore"):
            usable &= np.asarray(ds["qa_value"]) > qa_threshold
    return usable


def _per_weight(total: np.ndarray, weight: np.ndarray, empty: float) -> np.ndarray:
    """``total / weight`` where ``weight > 0``, ``empty`` elsewhere (no division by zero), in
    one new array (no grid-sized temporaries besides the mask: finalising a 0.01° grid)."""
    return np.divide(total, weight, out=np.full(np.shape(total), empty), where=weight > 0)


def _add_counts(a: np.ndarray | int, b: np.ndarray | int):
    """Sum of counts where -1 means unknown (unknown + anything = unknown)."""
    total = np.asarray(a) + np.asarray(b)
    return np.where((np.asarray(a) < 0) | (np.asarray(b) < 0), -1, total).astype(np.int32)


def _float_rows(bounds: np.ndarray, n_corners: int, dtype) -> np.ndarray:
    """Bounds as a C-contiguous (n, k) ``dtype`` (float32 or float64) array, without copying
    when possible."""
    return np.ascontiguousarray(bounds, dtype).reshape(-1, n_corners)


class _Workspace:
    """Per-call scratch arrays of the area-binning kernel, reused for every chunk."""

    def __init__(self, size: int, n_corners: int):
        self.poly_x = np.empty((size, n_corners + 3))
        self.poly_y = np.empty((size, n_corners + 3))
        self.poly_n = np.empty(size, np.int32)
        self.origin = np.empty((size, 2))
        self.extent = np.empty((size, 2))
        self.rows = np.empty((size, 2), np.int64)
        self.counted = np.empty(size, np.uint8)

    def view(self, n: int) -> _Workspace:
        """The first ``n`` rows of every array."""
        part = object.__new__(_Workspace)
        part.__dict__.update({name: array[:n] for name, array in self.__dict__.items()})
        return part


class GridAccumulator:
    """Area-weighted sums of one variable on a grid, with HARP ``bin_spatial`` semantics.

    Parameters
    ----------
    grid
        The target grid.
    threads
        Threads for area binning: 1 (default) runs the serial kernel, compiled ahead of time
        when built (:mod:`s5p_lockdown.aot`: the process need not import numba); more, or None
        for numba's default (normally all cores), run numba's parallel kernel. The result is
        bit-identical for any number of threads. On 2 cores the parallel kernel was slower
        than the serial one even at 0.01° (binning there is bound by the memory of the sums).
    weighting
        ``"weight"`` or ``"equal"``; see the module docstring. Only accumulators with the same
        weighting can be merged.
    companions
        Names of variables to bin alongside, with the same weights (see the module docstring);
        their values are passed to :meth:`add_pixels` / :meth:`add_dataset`.
    """

    def __init__(self, grid: GridSpec, *, threads: int | None = 1, weighting: str = "weight",
                 companions: Sequence[str] = ()):
        if weighting not in schema.WEIGHTINGS:
            raise ValueError(f"weighting must be one of {schema.WEIGHTINGS}, got {weighting!r}")
        self.grid = grid
        self.threads = threads
        self.weighting = weighting
        self.companions = tuple(companions)
        clashes = set(self.companions) & set(schema.RESERVED_NAMES)
        if clashes or len(set(self.companions)) != len(self.companions):
            raise ValueError(
                f"companion names must be distinct and not L3 variable names: {list(self.companions)}"
            )
        n_lat, n_lon = grid.shape
        self.sums = small_page_zeros((n_lat, n_lon, 4), np.float64)
        self.pixel_count = small_page_zeros((n_lat, n_lon), np.int32)
        self.companion_sums = small_page_zeros((n_lat, n_lon, 2 * len(self.companions)), np.float64)
        self.count = 0
        self.time_start: np.datetime64 | None = None
        self.time_stop: np.datetime64 | None = None
        self.sources: list[str] = []
        self._lat_edges = grid.lat_edges
        self._lon_edges = grid.lon_edges

    def __repr__(self) -> str:
        return (
            f"GridAccumulator({self.grid}, weighting={self.weighting!r}, count={self.count}, "
            f"sources={len(self.sources)})"
        )

    @property
    def nbytes(self) -> int:
        """Memory of the accumulator arrays in bytes."""
        return self.sums.nbytes + self.pixel_count.nbytes + self.companion_sums.nbytes

    # --- adding data ---------------------------------------------------------------------------
    def add_pixels(
        self,
        values: np.ndarray,
        uncertainty: np.ndarray,
        lat_bounds: np.ndarray,
        lon_bounds: np.ndarray,
        *,
        time: np.ndarray | None = None,
        source: str | None = None,
        companions: Mapping[str, np.ndarray] | None = None,
    ) -> int:
        """Area-bin pixels given by their corners; returns how many count (HARP ``count``).

        Parameters
        ----------
        values, uncertainty
            Any shape (n pixels in total): value x and its 1-sigma uncertainty σ (e.g. mol m-2).
            Pixels where either is NaN or fill (|v| ≥ 1e30) are ignored.
        lat_bounds, lon_bounds
            Shape ``values.shape + (k,)``, k ≥ 2 corners in degrees, in order around the pixel
            (either orientation). Longitudes may be in any ±360 representation.
        time
            Optional datetime64 per pixel (broadcastable to ``values``), for the time range.
        source
            Optional input file name, recorded in ``source_product``.
        companions
            Values of (some of) the accumulator's companion variables, each shaped like
            ``values``; a companion left out, or NaN/infinite/fill, adds nothing for those pixels.
        """
        shape = np.shape(values)
        values = np.asarray(values, np.float64).ravel()
        uncertainty = np.asarray(uncertainty, np.float64).ravel()
        companion_values = self._companion_matrix(companions, values.size)
        lat_bounds = np.asarray(lat_bounds)
        lon_bounds = np.asarray(lon_bounds)
        n_corners = lat_bounds.shape[-1] if lat_bounds.ndim else 0
        if (
            uncertainty.size != values.size
            or lat_bounds.shape != lon_bounds.shape
            or n_corners < 2
            or lat_bounds.size != values.size * n_corners
        ):
            raise ValueError(
                f"add_pixels: values {values.shape}, uncertainty {uncertainty.shape}, "
                f"lat_bounds {lat_bounds.shape} and lon_bounds {lon_bounds.shape} do not match "
                "(bounds need a trailing corner axis of length >= 2)"
            )
        # one float type for both (the kernel takes float32 or float64 corners, not a mix)
        corners = np.float32 if lat_bounds.dtype == lon_bounds.dtype == np.float32 else np.float64
        lat_bounds = _float_rows(lat_bounds, n_corners, corners)
        lon_bounds = _float_rows(lon_bounds, n_corners, corners)
        selected = np.flatnonzero(_usable(values, uncertainty))
        counted = np.zeros(values.size, bool)
        workspace = _Workspace(min(selected.size, CHUNK_SIZE), n_corners)
        for start in range(0, selected.size, CHUNK_SIZE):
            ids = selected[start : start + CHUNK_SIZE]
            counted[ids] = self._bin_polygons(
                values[ids], uncertainty[ids], companion_values[ids], lat_bounds, lon_bounds, ids,
                workspace,
            )
        return self._record(counted.reshape(shape), time, source)

    def _companion_matrix(self, companions: Mapping[str, np.ndarray] | None, size: int) -> np.ndarray:
        """(pixels, companions) float64 values, NaN for companions not given."""
        given = dict(companions or {})
        unknown = set(given) - set(self.companions)
        if unknown:
            raise ValueError(
                f"unknown companion variable(s) {sorted(unknown)}; this accumulator bins "
                f"{list(self.companions)}"
            )
        matrix = np.full((size, len(self.companions)), np.nan)
        for j, name in enumerate(self.companions):
            if name in given:
                column = np.asarray(given[name], np.float64).ravel()
                if column.size != size:
                    raise ValueError(f"companion {name!r} has {column.size} values, expected {size}")
                matrix[:, j] = column
        return matrix

    def _bin_polygons(self, values, sigmas, companions, lat_bounds, lon_bounds, ids,
                      workspace) -> np.ndarray:
        """Bin pixels ``ids`` (one chunk); returns a boolean mask of the pixels that count."""
        ws = workspace.view(ids.size)
        n_lat = self.grid.shape[0]
        polygon_args = (lat_bounds, lon_bounds, ids, self._lat_edges, self._lon_edges, ws.poly_x,
                        ws.poly_y, ws.poly_n, ws.origin, ws.extent, ws.rows, ws.counted)

        def bin_args(stripes):
            return (*stripes, ws.poly_x, ws.poly_y, ws.poly_n, ws.origin, ws.extent, ws.rows,
                    values, sigmas, companions, self._lat_edges, self._lon_edges, self.sums,
                    self.pixel_count, self.companion_sums, ws.counted)

        compiled = aot.load() if self.threads == 1 else None
        if compiled is not None:  # no numba in this process (see s5p_lockdown.aot)
            corners = "f4" if lat_bounds.dtype == np.float32 else "f8"
            getattr(compiled, f"prepare_polygons_{corners}")(*polygon_args)
            compiled.bin_stripes_serial(*bin_args(compiled.assign_stripes(ws.rows, n_lat, 1)))
        else:
            import numba

            from s5p_lockdown.gridding import kernel

            with numba_threads(self.threads) as threads:
                kernel.prepare_polygons(*polygon_args)
                n_stripes = 1 if threads == 1 else _STRIPES_PER_THREAD * threads
                args = bin_args(kernel.assign_stripes(ws.rows, n_lat, n_stripes))
                if threads == 1:
                    kernel.bin_stripes_serial(*args)
                else:
                    with numba.parallel_chunksize(1):
                        kernel.bin_stripes_parallel(*args)
        return ws.counted.astype(bool)

    def add_points(
        self,
        values: np.ndarray,
        uncertainty: np.ndarray,
        latitude: np.ndarray,
        longitude: np.ndarray,
        *,
        time: np.ndarray | None = None,
        source: str | None = None,
        companions: Mapping[str, np.ndarray] | None = None,
    ) -> int:
        """Point-bin pixels by their centre (HARP without bounds); returns how many are in the grid.

        Each point adds weight 1 to the cell ``[edge[i], edge[i+1])`` containing it, so a cell's
        value is the plain mean, its uncertainty the mean σ and its random uncertainty
        sqrt(Σ σ²)/N. Arguments as in :meth:`add_pixels`, with centre ``latitude``/``longitude``
        (degrees) instead of bounds.
        """
        shape = np.shape(values)
        values = np.asarray(values, np.float64).ravel()
        uncertainty = np.asarray(uncertainty, np.float64).ravel()
        latitude = np.asarray(latitude, np.float64).ravel()
        longitude = np.asarray(longitude, np.float64).ravel()
        if not values.size == uncertainty.size == latitude.size == longitude.size:
            raise ValueError(
                f"add_points: values {values.shape}, uncertainty {uncertainty.shape}, latitude "
                f"{latitude.shape} and longitude {longitude.shape} must have the same size"
            )
        ids = np.flatnonzero(_usable(values, uncertainty))
        binned = np.zeros(ids.size, np.uint8)
        companion_values = self._companion_matrix(companions, values.size)
        bin_points = aot.function("bin_points")
        bin_points(
            latitude[ids], longitude[ids], values[ids], uncertainty[ids], companion_values[ids],
            self._lat_edges, self._lon_edges, self.sums, self.pixel_count, self.companion_sums,
            binned,
        )
        counted = np.zeros(values.size, bool)
        counted[ids] = binned.astype(bool)
        return self._record(counted.reshape(shape), time, source)

    def _record(self, counted: np.ndarray, time: np.ndarray | None, source: str | None) -> int:
        """Update count, time range and sources after binning; returns the pixels counted."""
        n_counted = int(counted.sum())
        self.count = int(_add_counts(self.count, n_counted))
        if time is not None and n_counted:
            times = np.broadcast_to(np.asarray(time, "datetime64[ns]"), counted.shape)
            times = times[counted]
            times = times[~np.isnat(times)]
            if times.size:
                self._extend_time(times.min(), times.max())
        if source is not None and source not in self.sources:
            self.sources.append(source)
        return n_counted

    def _extend_time(self, start: np.datetime64 | None, stop: np.datetime64 | None) -> None:
        if start is not None and not np.isnat(start):
            self.time_start = start if self.time_start is None else min(self.time_start, start)
        if stop is not None and not np.isnat(stop):
            self.time_stop = stop if self.time_stop is None else max(self.time_stop, stop)

    def add_dataset(
        self,
        ds: xr.Dataset | L2Arrays,
        qa_threshold: float | None = 0.75,
        *,
        point: bool = False,
        companions: Mapping[str, np.ndarray] | None = None,
    ) -> int:
        """Bin an L2 orbit as returned by :func:`s5p_lockdown.io.read_l2` or
        :func:`~s5p_lockdown.io.read_l2_arrays`.

        Uses ``nitrogendioxide_tropospheric_column`` and its ``_precision`` (mol m-2); pixels
        with ``qa_value <= qa_threshold`` (HARP's ``validity>75`` for 0.75) or a NaN column are
        left out. Area binning with ``latitude_bounds``/``longitude_bounds`` unless ``point`` is
        true or the bounds are absent, then point binning of ``latitude``/``longitude``.
        ``companions`` as in :meth:`add_pixels` (arrays shaped like the column). Returns the
        number of pixels counted; an orbit without usable pixels adds nothing.
        """
        uncertainty = np.asarray(ds[L2_PRECISION])
        values = np.where(usable_pixels(ds, qa_threshold), np.asarray(ds[L2_VALUE]), np.nan)
        time = None
        if "time" in ds and np.ndim(ds["time"]) == 1 and np.size(ds["time"]) == values.shape[0]:
            time = np.asarray(ds["time"])[:, None]  # one time per scanline
        source = ds.attrs.get("source_file")
        if not point and "latitude_bounds" in ds and "longitude_bounds" in ds:
            return self.add_pixels(
                values, uncertainty, np.asarray(ds["latitude_bounds"]),
                np.asarray(ds["longitude_bounds"]), time=time, source=source,
                companions=companions,
            )
        return self.add_points(
            values, uncertainty, np.asarray(ds["latitude"]), np.asarray(ds["longitude"]),
            time=time, source=source, companions=companions,
        )

    # --- combining -----------------------------------------------------------------------------
    def copy(self) -> GridAccumulator:
        """An independent copy."""
        new = GridAccumulator(self.grid, threads=self.threads, weighting=self.weighting,
                              companions=self.companions)
        new.sums[...] = self.sums
        new.pixel_count[...] = self.pixel_count
        new.companion_sums[...] = self.companion_sums
        new.count = self.count
        new.time_start, new.time_stop = self.time_start, self.time_stop
        new.sources = list(self.sources)
        return new

    def merge(self, other: GridAccumulator) -> GridAccumulator:
        """Add ``other``'s sums to this accumulator in place (exact addition); returns self."""
        if not same_grid(other.grid, self.grid):
            raise ValueError(
                f"cannot merge accumulators on different grids: {self.grid} and {other.grid}"
            )
        if other.weighting != self.weighting:
            raise ValueError(
                f"cannot merge a {other.weighting!r}-weighted accumulator into a "
                f"{self.weighting!r}-weighted one; use composite() or normalized()"
            )
        if other.companions != self.companions:
            raise ValueError(
                f"cannot merge accumulators of different companion variables: "
                f"{list(other.companions)} into {list(self.companions)}"
            )
        self.sums += other.sums
        self.companion_sums += other.companion_sums
        self.pixel_count[...] = _add_counts(self.pixel_count, other.pixel_count)
        self.count = int(_add_counts(self.count, other.count))
        self._extend_time(other.time_start, other.time_stop)
        self.sources.extend(s for s in other.sources if s not in self.sources)
        return self

    def normalized(self) -> GridAccumulator:
        """This composite as one equally weighted input: in each cell with data, Σ w = 1,
        Σ w·x = mean, Σ (w·σ)² = random uncertainty² and Σ w·σ = uncertainty. Merging normalized
        accumulators gives the mean of their means (``weighting="equal"``)."""
        new = self.copy()
        new.weighting = "equal"
        weight = self.sums[..., 0]
        has_data = weight > 0
        safe = np.where(has_data, weight, 1.0)
        new.sums[..., 0] = has_data
        new.sums[..., 1] = np.where(has_data, self.sums[..., 1] / safe, 0.0)
        new.sums[..., 2] = np.where(has_data, self.sums[..., 2] / (safe * safe), 0.0)
        new.sums[..., 3] = np.where(has_data, self.sums[..., 3] / safe, 0.0)
        companion_weight = self.companion_sums[..., 0::2]
        new.companion_sums[..., 0::2] = companion_weight > 0
        new.companion_sums[..., 1::2] = _per_weight(
            self.companion_sums[..., 1::2], companion_weight, 0.0
        )
        return new

    # --- output ------------------------------------------------------------------------------
    def l3_variables(self) -> list[schema.L3Variable]:
        """The L3 schema's variables (then the companions' means), the grids given as functions
        of latitude rows computed from the sums on demand (no grid-sized copies kept)."""
        sums = self.sums

        def mean_of(k: int, root: bool = False):
            def block(rows: slice, columns: slice) -> np.ndarray:
                total = np.sqrt(sums[rows, columns, k]) if root else sums[rows, columns, k]
                return _per_weight(total, sums[rows, columns, 0], np.nan)
            return block

        variables = schema.l3_variables(
            self.grid,
            value=mean_of(1),
            uncertainty=mean_of(3),
            uncertainty_random=mean_of(2, root=True),
            weight=lambda rows, columns: sums[rows, columns, 0],
            pixel_count=lambda rows, columns: self.pixel_count[rows, columns],
            count=self.count,
            time_start=self.time_start,
            time_stop=self.time_stop,
        )
        for j, name in enumerate(self.companions):
            def companion_mean(rows: slice, columns: slice, j=j) -> np.ndarray:
                part = self.companion_sums[rows, columns]
                return _per_weight(part[..., 2 * j + 1], part[..., 2 * j], np.nan)
            variables.append(schema.grid_variable(self.grid, name, companion_mean, {
                "long_name": f"{name}, weighted mean over the binned pixels",
            }))
        return variables

    def l3_attributes(self, history: str = "") -> dict:
        """The L3 schema's global attributes of this accumulator."""
        return schema.l3_attributes(self.grid, self.sources, self.weighting, history)

    def finalize(self, history: str = "") -> xr.Dataset:
        """The L3 Dataset (schema in :mod:`s5p_lockdown.gridding.schema`); NaN where no data."""
        return schema.to_dataset(self.l3_variables(), self.l3_attributes(history))

    def to_netcdf(self, path: str | Path, history: str = "", *, attrs: Mapping | None = None,
                  variable_attrs: Mapping[str, Mapping] | None = None) -> Path:
        """Write the L3 grid (:meth:`finalize`'s content) to a netCDF-4 file atomically, band by
        band with netCDF4 (:mod:`.l3_file`: no xarray, no grid-sized temporaries); ``attrs``
        are added to the global attributes and ``variable_attrs[name]`` to variable ``name``'s.
        Returns the path."""
        variables = self.l3_variables()
        for var in variables:
            var.attrs.update((variable_attrs or {}).get(var.name, {}))
        global_attrs = {**self.l3_attributes(history), **(attrs or {})}
        return write_atomically(path, lambda tmp: write_l3(tmp, variables, global_attrs, self.occupied))

    def occupied(self, rows: slice, columns: slice) -> np.ndarray:
        """Boolean block of the grid: cells with data (a weight or a pixel count; every other
        cell's mean is NaN and its weight and count 0)."""
        return (self.sums[rows, columns, 0] > 0) | (self.pixel_count[rows, columns] != 0)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, *, threads: int | None = None) -> GridAccumulator:
        """Rebuild sums from a Dataset in the L3 schema (ours, or HARP L3 read by
        :func:`s5p_lockdown.gridding.harp_l3.read_l3`), summing over its time axis.

        Exact up to rounding of Σ w·x = mean·Σ w (and Σ w·σ, Σ (w·σ)² likewise). A cell with a
        NaN uncertainty (of either kind) but data keeps an unknown (NaN) uncertainty of that kind
        through later merges. Companion variables are not rebuilt (their own weights are not
        stored in the Dataset). ValueError if a schema variable is missing.
        """
        missing = [name for name in (schema.VALUE, schema.UNCERTAINTY, schema.UNCERTAINTY_RANDOM,
                                     schema.WEIGHT, schema.PIXEL_COUNT, schema.COUNT)
                   if name not in ds.variables]
        if missing:
            raise ValueError(
                f"not an L3 grid in this package's schema: no variable(s) {missing} (grids written "
                f"before {schema.UNCERTAINTY_RANDOM} existed used {schema.UNCERTAINTY} for it: "
                "grid them again; read HARP files with read_l3)"
            )
        from s5p_lockdown.gridding.harp_l3 import grid_from_dataset

        grid = grid_from_dataset(ds)
        acc = cls(grid, threads=threads, weighting=ds.attrs.get("weighting", "weight"))
        weight = np.nan_to_num(ds[schema.WEIGHT].values.astype(np.float64), nan=0.0)
        value = ds[schema.VALUE].values.astype(np.float64)
        uncertainty = ds[schema.UNCERTAINTY].values.astype(np.float64)
        uncertainty_random = ds[schema.UNCERTAINTY_RANDOM].values.astype(np.float64)
        has_data = (weight > 0) & np.isfinite(value)
        acc.sums[..., 0] = np.where(has_data, weight, 0.0).sum(axis=0)
        acc.sums[..., 1] = np.where(has_data, weight * value, 0.0).sum(axis=0)
        acc.sums[..., 2] = np.where(has_data, (weight * uncertainty_random) ** 2, 0.0).sum(axis=0)
        acc.sums[..., 3] = np.where(has_data, weight * uncertainty, 0.0).sum(axis=0)
        pixel_count = ds[schema.PIXEL_COUNT].values
        acc.pixel_count[...] = np.where((pixel_count < 0).any(axis=0), -1, pixel_count.sum(axis=0))
        counts = ds[schema.COUNT].values
        acc.count = -1 if (counts < 0).any() else int(counts.sum())
        for name, pick in (("datetime_start", np.min), ("datetime_stop", np.max)):
            if name in ds:
                times = ds[name].values.astype("datetime64[ns]")
                times = times[~np.isnat(times)]
                if times.size:
                    acc._extend_time(*(2 * [pick(times)]))
        sources = ds.attrs.get("source_product", "")
        acc.sources = [s.strip() for s in str(sources).split(",") if s.strip()]
        return acc


def composite(
    accumulators: Iterable[GridAccumulator], weighting: str = "weight"
) -> GridAccumulator:
    """Merge accumulators of one grid into a new one (the inputs are left unchanged).

    ``weighting="weight"``: exact merge of the sums (each input weighted by its Σ w, same as
    binning all pixels together). ``weighting="equal"``: each input counts once per cell where it
    has data (mean of the inputs' means; e.g. a period composite where each day counts the same).
    """
    if weighting not in schema.WEIGHTINGS:
        raise ValueError(f"weighting must be one of {schema.WEIGHTINGS}, got {weighting!r}")
    result: GridAccumulator | None = None
    for acc in accumulators:
        part = acc.normalized() if weighting == "equal" else acc
        result = part.copy() if result is None else result.merge(part)
    if result is None:
        raise ValueError("composite: no accumulators given")
    return result


def write_netcdf(ds: xr.Dataset, path: str | Path) -> Path:
    """Write an L3 Dataset (or any gridded Dataset) with xarray as compressed netCDF-4, with the
    chunks and deflate level of :mod:`.l3_file` plus byte shuffle (float64 kept): its 3-D
    variables (time, latitude, longitude) and 2-D grids (latitude, longitude). Gridding an accumulator straight
    into a file is faster with :meth:`GridAccumulator.to_netcdf`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    encoding: dict[str, dict] = {}
    for name, var in ds.variables.items():
        enc: dict = {}
        if var.ndim == 3:
            enc.update(zlib=True, complevel=COMPRESSION_LEVEL, shuffle=True,
                       chunksizes=(1, *_chunks(var.shape[1:])))
        elif var.dims == ("latitude", "longitude"):
            enc.update(zlib=True, complevel=COMPRESSION_LEVEL, shuffle=True,
                       chunksizes=_chunks(var.shape))
        if name in ("latitude", "longitude", schema.COUNT) or name.endswith("_bounds"):
            enc["_FillValue"] = None
        if np.issubdtype(var.dtype, np.datetime64):
            enc.update(units="seconds since 2010-01-01", dtype="float64")
        encoding[str(name)] = enc
    ds.to_netcdf(path, format="NETCDF4", encoding=encoding)
    return path


def _chunks(shape: Sequence[int]) -> tuple[int, ...]:
    """netCDF chunk shape of :data:`~.l3_file.CHUNK` × :data:`~.l3_file.CHUNK` cells, within
    ``shape``."""
    return tuple(min(CHUNK, n) for n in shape)
