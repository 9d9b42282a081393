"""Benchmark: the batch preview of one full-resolution orbit over country-sized views.

Generates one day of synthetic orbits at full resolution (450 pixels across track, native
scanlines; ``s5p-lockdown synth --across-track-step 1 --along-track-step 1``), picks the orbit
over central Europe, and drives a :class:`s5p_lockdown.batch.preview.PreviewMap` as a browser
does: each view is set as the map's bounds and pixel bounds in one state update (what
jupyter-leaflet sends on Leaflet's ``moveend``/``zoomend``, when a pan or zoom has stopped),
and the time until the new preview is drawn (its PNG overlay on the map) is measured, the
debounce included. The previewed function is the documented pattern (qa filter,
``read_l2`` of the visible scanlines, area-weighted binning onto ``preview_grid`` of a 0.02°
Europe grid, ``write_grid``), so the preview's cells are about two screen pixels, never finer
than 0.02°.

Views (a 1000 × 520 px map in EPSG:4326): Germany, France, Italy, Poland at Leaflet zoom 6
(about 11° across, 0.022° cells) and central Europe at zoom 5 (22° across, 0.044° cells); then
a parameter change (qa threshold) and the same views with three orbits previewed at once.

Target (issue #20): a preview of one full-resolution orbit over a country-sized view in ≤ 1 s
after the map stops moving. Printed: per view the cells, the cell size, the function's own
time and the time after the map stopped (``2 px``: the cell size two screen pixels
give; ``cell``: the one used, never finer than the function's 0.02°); the median and the
maximum against the target.

Usage: ``python benchmarks/bench_preview.py [--archive DIR] [--repeat 3]`` (default: a
temporary archive, generated in ~15 s).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from s5p_lockdown.batch import write_grid
from s5p_lockdown.batch.preview import PreviewMap
from s5p_lockdown.batch.viewport import preview_grid
from s5p_lockdown.gridding import GridAccumulator, GridSpec
from s5p_lockdown.io import read_l2
from s5p_lockdown.synth.archive import ArchiveGenerator, SynthSettings

TARGET_SECONDS = 1.0
MAP_WIDTH, MAP_HEIGHT = 1000, 520  # pixels
EUROPE = (35.0, 62.0, -12.0, 32.0)  # south, north, west, east
VIEWS = {  # name: (centre latitude, centre longitude, Leaflet zoom)
    "Germany z6": (51.0, 10.5, 6), "France z6": (46.5, 2.5, 6), "Italy z6": (42.5, 12.5, 6),
    "Poland z6": (52.0, 19.0, 6), "central Europe z5": (49.0, 10.0, 5),
}


def no2(input_path, output_path, *, qa_threshold=0.75, resolution=0.02):
    """Tropospheric NO2 (mol m-2) of one orbit, area-weighted on a `resolution` grid over
    Europe; under a preview only the visible cells at the preview's resolution."""
    grid = preview_grid(GridSpec.from_bbox(*EUROPE, resolution))
    accumulator = GridAccumulator(grid, threads=1)
    accumulator.add_dataset(read_l2(input_path, bbox=grid.bounds), qa_threshold)
    write_grid(accumulator.finalize(), output_path, inputs=[input_path])


def map_state(lat: float, lon: float, zoom: int) -> dict[str, float]:
    """The traits a browser sends for a MAP_WIDTH × MAP_HEIGHT map in EPSG:4326 (Leaflet:
    256·2^zoom pixels per 180 degrees)."""
    degrees_per_pixel = 180.0 / (256 * 2**zoom)
    half_width, half_height = MAP_WIDTH / 2 * degrees_per_pixel, MAP_HEIGHT / 2 * degrees_per_pixel
    return {"south": lat - half_height, "north": lat + half_height, "west": lon - half_width,
            "east": lon + half_width, "left": 0.0, "right": float(MAP_WIDTH), "top": 0.0,
            "bottom": float(MAP_HEIGHT)}


def move_and_wait(preview: PreviewMap, state: dict[str, float]) -> float:
    """Set the map's state as one browser update; seconds until the new preview is drawn."""
    before = preview.current
    start = time.perf_counter()
    preview.map.set_state(state)  # what a message from the browser's map does
    preview.wait_idle()
    seconds = time.perf_counter() - start
    if preview.current is before:
        raise RuntimeError(f"no new preview drawn for {state}: {preview.errors[-1:]}")
    return seconds


def orbits(archive: Path) -> list[Path]:
    files = sorted(archive.glob("**/S5P_*.nc"))
    if not files:
        print(f"generating one day of full-resolution orbits in {archive} ...", flush=True)
        files = sorted(ArchiveGenerator(SynthSettings(seed=1)).generate(
            archive, [date(2020, 3, 25)]))
    return files


def over_germany(files: list[Path]) -> list[Path]:
    """The files, most valid pixels over Germany first."""
    def valid(path):
        ds = read_l2(path, bbox=(47.0, 55.0, 6.0, 15.0), qa_threshold=0.75)
        return int(np.isfinite(ds["nitrogendioxide_tropospheric_column"].values).sum())
    return sorted(files, key=valid, reverse=True)


def run(preview: PreviewMap, label: str, repeat: int) -> list[float]:
    times = []
    print(f"\n{label}")
    print(f"{'view':<20} {'cells':>9} {'2 px':>7} {'cell':>7} {'function+draw':>14} "
          f"{'after stop':>11}")
    for _ in range(repeat):
        for name, (lat, lon, zoom) in VIEWS.items():
            seconds = move_and_wait(preview, map_state(lat, lon, zoom))
            times.append(seconds)
            current = preview.current
            rows, columns = current.image.values.shape
            (south, _), (north, _) = current.image.bounds
            print(f"{name:<20} {rows:>4}×{columns:<4} {current.viewport.resolution:>6.3f}° "
                  f"{(north - south) / rows:>6.3f}° {current.seconds:>12.3f} s "
                  f"{seconds:>9.3f} s")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, help="folder of full-resolution orbits")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = over_germany(orbits(args.archive or Path(tmp) / "archive"))
        with read_l2(files[0]) as ds:
            print(f"orbit {files[0].name}: {ds.sizes['scanline']} scanlines × "
                  f"{ds.sizes['ground_pixel']} pixels")
        preview = PreviewMap(no2, files, Path(tmp) / "out", preview=[0],
                             controls={"qa_threshold": (0.0, 1.0, 0.05)},
                             params={"resolution": 0.02})
        try:
            cold = move_and_wait(preview, map_state(45.0, 5.0, 5))  # not one of VIEWS
            print(f"first preview (cold: imports, numba compilation or cache): {cold:.3f} s")
            single = run(preview, "one full-resolution orbit", args.repeat)
            start = time.perf_counter()
            preview.controls["qa_threshold"].value = 0.5
            preview.wait_idle()
            parameter = time.perf_counter() - start
            print(f"\nparameter change (qa_threshold 0.75 -> 0.5), Poland: {parameter:.3f} s")
            preview.file_select.value = (0, 1, 2)
            preview.wait_idle()
            three = run(preview, "three orbits at once", 1)
        finally:
            preview.close()
    print(f"\ndebounce {preview.debounce} s included in every 'after stop' time")
    for label, times in (("one orbit", single), ("three orbits", three)):
        print(f"{label}: median {statistics.median(times):.3f} s, max {max(times):.3f} s "
              f"after the map stops (target {TARGET_SECONDS} s: max is "
              f"{max(times) / TARGET_SECONDS:.2f} × target)")
    print(f"parameter change: {parameter:.3f} s ({parameter / TARGET_SECONDS:.2f} × target)")


if __name__ == "__main__":
    main()
