"""Fractional masks of ~1,200 small regions (NUTS-3 scale) on the Europe grid at 0.1 and 0.05 degrees.

The regions are the demo Voronoi tessellation of the shipped countries
(:func:`s5p_lockdown.synth.regions.voronoi_regions`, 1,200 regions over the whole clipped
box, median ~1.3 square degrees: the count of NUTS-3, somewhat larger since they also tile
Turkey, Ukraine and western Russia), written as a GeoPackage and read back through
:func:`s5p_lockdown.region_files.read_region_file` as the workflow does. For each grid it
measures: reading the file, building the sparse masks (first run, nothing cached), loading them
from the cache (every later run), the number of (region, cell) entries, the cache file size and
the size the dense (region, lat, lon) float32 masks would have. Target: building within a minute.

Usage: ``python benchmarks/bench_region_masks.py [--regions 1200] [--seed 1]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely

from s5p_lockdown.gridding import GridSpec
from s5p_lockdown.region_files import RegionFileSpec, read_region_file
from s5p_lockdown.regions import load_countries, load_or_build_region_masks, mask_codes
from s5p_lockdown.synth.regions import voronoi_regions

EUROPE = (34.0, 72.0, -25.0, 45.0)
TARGET_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "regions.gpkg"
        frame = voronoi_regions(load_countries(), args.regions, seed=args.seed)
        frame.to_file(path, driver="GPKG")
        areas = shapely.area(frame.geometry.values)
        print(f"{len(frame)} regions, area median {np.median(areas):.3f} / max {areas.max():.2f} square degrees")
        started = time.perf_counter()
        regions = read_region_file(RegionFileSpec(str(path), "region_id", "name", country="iso3"))
        print(f"reading the GeoPackage: {time.perf_counter() - started:.2f} s")
        print(f"{'grid':>6} {'build s':>8} {'cached s':>9} {'entries':>9} {'cache MB':>9} {'dense MB':>9} {'target':>7}")
        for resolution in (0.1, 0.05):
            grid = GridSpec.from_bbox(*EUROPE, resolution)
            cache = Path(tmp) / f"masks_{resolution}"
            started = time.perf_counter()
            masks = load_or_build_region_masks(grid, cache, regions)
            build = time.perf_counter() - started
            started = time.perf_counter()
            load_or_build_region_masks(grid, cache, regions)
            cached = time.perf_counter() - started
            size = sum(f.stat().st_size for f in cache.iterdir()) / 1e6
            dense = len(mask_codes(masks)) * grid.shape[0] * grid.shape[1] * 4 / 1e6
            verdict = "ok" if build <= TARGET_SECONDS else "SLOW"
            print(f"{resolution:>6} {build:>8.1f} {cached:>9.2f} {masks.sizes['entry']:>9} {size:>9.1f} "
                  f"{dense:>9.0f} {verdict:>7}")


if __name__ == "__main__":
    main()
