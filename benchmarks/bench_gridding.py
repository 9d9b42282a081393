"""Benchmark of the area-weighted gridder (issue #4). Prints figures; asserts nothing.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_gridding.py [--quick] [--reference-max 300000]

For a synthetic S5P orbit segment over Europe (700 scanlines × 450 ground pixels = 315,000
pixels with bounds; 5.5 km along track, 3.5 km across track at nadir widening towards the swath
edges, rotated with the ground track, corners shared between neighbours) it reports, on the
Europe grids (34–72°N, 25°W–45°E) at 0.1°, 0.05° and 0.01°:

* binning throughput (pixels/s) with 1 and 2 numba threads (best of a few runs, JIT cached);
* peak memory during binning above the accumulator arrays, measured in a fresh process from the
  kernel's peak resident set size (``VmHWM`` reset through ``/proc/self/clear_refs``);
* time scaling with 1×, 2× and 4× the pixels (the segment repeated with small longitude shifts,
  as several overlapping orbits in a composite) and with grid extent (Europe vs global 0.1°);
* a simple vectorised NumPy implementation of the same exact clipping, side by side, with the
  largest difference of its weights from the kernel's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from s5p_lockdown.gridding import GridAccumulator, GridSpec

EUROPE = (34.0, 72.0, -25.0, 45.0)
KM_PER_DEG = 111.32


# --- synthetic orbit segment ------------------------------------------------------------------
def synthetic_segment(
    n_scan: int = 700,
    n_pixel: int = 450,
    start: tuple[float, float] = (36.0, 12.0),
    heading_deg: float = -12.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of an orbit segment: ``(values, uncertainty, lat_bounds, lon_bounds)``.

    Corners lie on a (n_scan+1) × (n_pixel+1) mesh in a local east/north km plane around the
    ground track (along track 5.5 km per scanline, across track 3.5 km at nadir widening
    quadratically to about 6.9 km at the edges, swath ≈ 2,600 km), converted to degrees with a
    flat-earth approximation. Pixel corner order goes around the pixel. Values ~ 1e-4 mol m-2.
    """
    s = np.linspace(-1.0, 1.0, n_pixel)
    widths = 3.5 * (1.0 + 0.95 * s**2)
    across = np.concatenate([[0.0], np.cumsum(widths)])
    across -= across[-1] / 2
    along = 5.5 * np.arange(n_scan + 1)
    heading = np.radians(heading_deg)
    d_east, d_north = np.sin(heading), np.cos(heading)
    east = along[:, None] * d_east + across[None, :] * d_north
    north = along[:, None] * d_north - across[None, :] * d_east
    lat = start[0] + north / KM_PER_DEG
    lon = start[1] + east / (KM_PER_DEG * np.cos(np.radians(lat)))
    lat_b = np.stack([lat[:-1, :-1], lat[:-1, 1:], lat[1:, 1:], lat[1:, :-1]], axis=-1)
    lon_b = np.stack([lon[:-1, :-1], lon[:-1, 1:], lon[1:, 1:], lon[1:, :-1]], axis=-1)
    rng = np.random.default_rng(seed)
    values = rng.lognormal(np.log(5e-5), 0.8, size=(n_scan, n_pixel))
    uncertainty = np.full_like(values, 1.5e-5)
    return (
        values.astype(np.float32),
        uncertainty.astype(np.float32),
        lat_b.astype(np.float32),
        lon_b.astype(np.float32),
    )


def repeated(data, times: int):
    """The segment ``times`` times, each copy shifted 0.37° further east (overlapping orbits)."""
    values, unc, lat_b, lon_b = data
    return (
        np.concatenate([values] * times),
        np.concatenate([unc] * times),
        np.concatenate([lat_b] * times),
        np.concatenate([lon_b + np.float32(0.37 * k) for k in range(times)]),
    )


def europe(resolution: float) -> GridSpec:
    return GridSpec.from_bbox(*EUROPE, resolution)


# --- simple vectorised reference -----------------------------------------------------------------
def _clip_band(x, y, axis_x: bool, low: np.ndarray, high: np.ndarray):
    """Clip rings (rows of x, y) to ``low <= coord <= high`` per row, vectorised: insert the
    crossings of both lines on every edge, then clamp. The clamped ring has the exact clipped area
    (outside parts collapse onto the lines and contribute nothing to the shoelace sum)."""
    c = x if axis_x else y
    o = y if axis_x else x
    c2, o2 = np.roll(c, -1, axis=1), np.roll(o, -1, axis=1)
    pieces_c, pieces_o = [c], [o]
    for line in (low, high):
        line = line[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (line - c) / (c2 - c)
        t = np.where((t > 0) & (t < 1), t, 0.0)
        pieces_c.append(c + t * (c2 - c))
        pieces_o.append(o + t * (o2 - o))
    # order the two crossings along the edge
    swap = (pieces_c[1] - c) * (c2 - c) > (pieces_c[2] - c) * (c2 - c)
    first_c = np.where(swap, pieces_c[2], pieces_c[1])
    first_o = np.where(swap, pieces_o[2], pieces_o[1])
    second_c = np.where(swap, pieces_c[1], pieces_c[2])
    second_o = np.where(swap, pieces_o[1], pieces_o[2])
    cc = np.stack([c, first_c, second_c], axis=2).reshape(c.shape[0], -1)
    oo = np.stack([o, first_o, second_o], axis=2).reshape(c.shape[0], -1)
    cc = np.clip(cc, low[:, None], high[:, None])
    return (cc, oo) if axis_x else (oo, cc)


def reference_bin(grid: GridSpec, values, lat_b, lon_b, chunk: int = 20_000) -> np.ndarray:
    """Σ w per cell by a plain vectorised NumPy implementation (no antimeridian handling):
    every (pixel, cell in its bounding box) pair is clipped with array operations."""
    lat_e, lon_e = grid.lat_edges, grid.lon_edges
    n_lat, n_lon = grid.shape
    weight = np.zeros(n_lat * n_lon)
    lat_b = lat_b.reshape(-1, 4).astype(np.float64)
    lon_b = lon_b.reshape(-1, 4).astype(np.float64)
    r0 = np.clip(np.searchsorted(lat_e, lat_b.min(1), "right") - 1, 0, n_lat - 1)
    r1 = np.clip(np.searchsorted(lat_e, lat_b.max(1), "left") - 1, 0, n_lat - 1)
    c0 = np.clip(np.searchsorted(lon_e, lon_b.min(1), "right") - 1, 0, n_lon - 1)
    c1 = np.clip(np.searchsorted(lon_e, lon_b.max(1), "left") - 1, 0, n_lon - 1)
    n_rows, n_cols = r1 - r0 + 1, c1 - c0 + 1
    n_pairs = n_rows * n_cols
    pixel = np.repeat(np.arange(lat_b.shape[0]), n_pairs)
    offset = np.arange(pixel.size) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
    rows = r0[pixel] + offset // n_cols[pixel]
    cols = c0[pixel] + offset % n_cols[pixel]
    for s in range(0, pixel.size, chunk):
        p, r, c = pixel[s : s + chunk], rows[s : s + chunk], cols[s : s + chunk]
        ox, oy = lon_e[c], lat_e[r]  # local origin per pair, for precision
        x, y = lon_b[p] - ox[:, None], lat_b[p] - oy[:, None]
        x, y = _clip_band(x, y, False, np.zeros_like(oy), lat_e[r + 1] - oy)
        x, y = _clip_band(x, y, True, np.zeros_like(ox), lon_e[c + 1] - ox)
        area = 0.5 * np.abs(np.sum(x * np.roll(y, -1, 1) - np.roll(x, -1, 1) * y, axis=1))
        cell_area = (lat_e[r + 1] - lat_e[r]) * (lon_e[c + 1] - lon_e[c])
        np.add.at(weight, r * n_lon + c, area / cell_area)
    return weight.reshape(n_lat, n_lon)


# --- measurements -------------------------------------------------------------------------------
def warm_accumulator(grid: GridSpec, threads: int) -> GridAccumulator:
    """An accumulator whose pages are already resident, like one that has taken earlier orbits."""
    acc = GridAccumulator(grid, threads=threads)
    acc.sums.fill(0.0)
    acc.pixel_count.fill(0)
    return acc


def time_binning(grid: GridSpec, data, threads: int, repeats: int = 3) -> float:
    """Best wall time (s) of binning ``data`` into a warm accumulator."""
    acc = warm_accumulator(grid, threads)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        acc.add_pixels(*data)
        best = min(best, time.perf_counter() - t0)
    return best


def time_first_orbit(grid: GridSpec, data, threads: int) -> float:
    """Wall time (s) of allocating a fresh accumulator and binning ``data`` into it: includes the
    operating system's first-touch page faults of the accumulator's memory."""
    t0 = time.perf_counter()
    GridAccumulator(grid, threads=threads).add_pixels(*data)
    return time.perf_counter() - t0


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def memory_probe(resolution: float, threads: int) -> dict:
    """Run in a fresh process: peak RSS growth during binning above the touched accumulator."""
    data = synthetic_segment()
    GridAccumulator(europe(1.0), threads=threads).add_pixels(*synthetic_segment(4, 8))  # JIT load
    acc = warm_accumulator(europe(resolution), threads)  # resident before measuring
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM)
    before = _status_kib("VmRSS")
    acc.add_pixels(*data)
    peak = _status_kib("VmHWM")
    return {"accumulator_mb": acc.nbytes / 2**20, "extra_mb": (peak - before) / 1024}


def measure_memory(resolution: float, threads: int) -> dict:
    code = (
        "import json, sys; sys.path.insert(0, 'benchmarks'); import bench_gridding as b; "
        f"print(json.dumps(b.memory_probe({resolution!r}, {threads})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no 4x scaling")
    parser.add_argument(
        "--reference-max", type=int, default=315_000,
        help="pixels given to the vectorised reference (it is slow at 0.01 degrees)",
    )
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    data = synthetic_segment()
    n = data[0].size
    print(f"synthetic segment: {n:,} pixels with bounds (700 x 450)")
    GridAccumulator(europe(1.0), threads=1).add_pixels(*synthetic_segment(4, 8))  # JIT load
    GridAccumulator(europe(1.0), threads=2).add_pixels(*synthetic_segment(4, 8))

    print("\n== binning throughput into a warm accumulator, and memory (Europe 34-72N 25W-45E) ==")
    print(f"{'grid':>7} {'cells':>11} {'1 thread':>14} {'2 threads':>14} {'fresh acc. 1t':>14} "
          f"{'accum MB':>9} {'extra MB 1t/2t':>15} {'extra %':>8}")
    for res in (0.1, 0.05, 0.01):
        grid = europe(res)
        t1 = time_binning(grid, data, 1, repeats)
        t2 = time_binning(grid, data, 2, repeats)
        t_fresh = time_first_orbit(grid, data, 1)
        m1, m2 = measure_memory(res, 1), measure_memory(res, 2)
        cells = grid.shape[0] * grid.shape[1]
        print(
            f"{res:>6}° {cells:>11,} {n / t1 / 1e6:>9.2f} Mpx/s {n / t2 / 1e6:>9.2f} Mpx/s "
            f"{t_fresh:>12.3f} s {m1['accumulator_mb']:>9.1f} "
            f"{m1['extra_mb']:>7.1f}/{m2['extra_mb']:<7.1f} "
            f"{100 * max(m1['extra_mb'], m2['extra_mb']) / m1['accumulator_mb']:>7.1f}%"
        )
    print("(fresh acc. = allocate the accumulator and bin the segment into it, including the OS's "
          "first-touch page faults)")

    print("\n== scaling with pixels (1 thread; segment repeated with 0.37 deg shifts) ==")
    for res in (0.1, 0.01):
        grid = europe(res)
        base = None
        for times in (1, 2) if args.quick else (1, 2, 4):
            t = time_binning(grid, repeated(data, times), 1, repeats)
            base = base or t
            print(f"{res:>6}° {times}x = {times * n:>9,} px: {t:7.3f} s  ({t / base:4.2f}x time)")

    print("\n== scaling with grid extent at fixed pixel size (0.1 deg, 1 thread) ==")
    for name, grid in (("Europe", europe(0.1)), ("global", GridSpec.from_bbox(-90, 90, -180, 180, 0.1))):
        t = time_binning(grid, data, 1, repeats)
        print(f"{name:>7} {grid.shape[0]}x{grid.shape[1]}: {t:7.3f} s  {n / t / 1e6:6.2f} Mpx/s")

    print("\n== vectorised NumPy reference vs kernel (1 thread, same pixels) ==")
    sub = tuple(a[: max(1, args.reference_max // 450)] for a in data)
    n_sub = sub[0].size
    for res in (0.1, 0.05, 0.01):
        grid = europe(res)
        acc = warm_accumulator(grid, 1)
        t0 = time.perf_counter()
        acc.add_pixels(*sub)
        t_kernel = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = reference_bin(grid, *sub[:1], sub[2], sub[3])
        t_ref = time.perf_counter() - t0
        diff = np.max(np.abs(ref - acc.sums[..., 0]))
        print(
            f"{res:>6}° {n_sub:,} px: kernel {t_kernel:7.3f} s, reference {t_ref:7.2f} s, "
            f"speed-up {t_ref / t_kernel:6.1f}x, max |weight difference| {diff:.1e}"
        )


if __name__ == "__main__":
    main()
