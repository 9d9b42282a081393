"""Benchmark: reading the European part of a full-size orbit versus the whole orbit.

Writes one synthetic full orbit (4,172 scanlines x 450 ground pixels, every variable and group a
real file has, deflate-compressed like real files), then reads it in fresh subprocesses:

- ``europe``: ``read_l2(path, bbox=(30, 72, -25, 45))`` (only the overlapping scanlines);
- ``whole``: ``read_l2(path)``.

Each case runs ``--repeat`` times; the best wall time and the peak resident memory of the
subprocess are printed side by side with their ratio. Target (issue #3): Europe in <= 1 s.

Usage: ``python benchmarks/bench_reader.py [--workdir DIR] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

EUROPE = (30.0, 72.0, -25.0, 45.0)

CHILD = """
import json, sys, time
from s5p_lockdown.io import read_l2
box = json.loads(sys.argv[2])
start = time.perf_counter()
ds = read_l2(sys.argv[1], bbox=tuple(box) if box else None)
ds.load()
elapsed = time.perf_counter() - start
# VmHWM is this process's own peak (ru_maxrss would include the parent's at fork time)
hwm_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"seconds": elapsed, "pixels": int(ds.sizes["scanline"] * ds.sizes["ground_pixel"]),
                  "peak_rss_mb": hwm_kb / 1024}))
"""


def write_full_orbit(folder: Path) -> Path:
    from s5p_lockdown.synth.archive import ArchiveGenerator, SynthSettings
    from s5p_lockdown.synth.orbit import orbits_crossing_day, swath
    from s5p_lockdown.synth.writer import product_name, write_orbit

    day = date(2020, 3, 25)
    generator = ArchiveGenerator(SynthSettings(seed=0))
    orbit = orbits_crossing_day(day)[8]  # crosses central Europe
    geometry = swath(orbit, day, lat_band=None, n_scanlines=4172)
    fields = generator.orbit_fields(geometry, day, orbit, generator.model.weather(day))
    return write_orbit(folder, geometry, fields, product_name(geometry, orbit))


def run_case(path: Path, box) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), json.dumps(box)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        started = time.perf_counter()
        path = write_full_orbit(Path(tmp))
        print(f"wrote {path.name}: {path.stat().st_size / 1e6:.0f} MB in "
              f"{time.perf_counter() - started:.1f} s")
        results = {}
        for case, box in (("europe", EUROPE), ("whole", None)):
            runs = [run_case(path, box) for _ in range(args.repeat)]
            results[case] = min(runs, key=lambda r: r["seconds"])
        print(f"{'case':8} {'pixels':>10} {'best s':>8} {'peak RSS MB':>12}")
        for case, r in results.items():
            print(f"{case:8} {r['pixels']:>10} {r['seconds']:>8.3f} {r['peak_rss_mb']:>12.0f}")
        ratio = results["whole"]["seconds"] / results["europe"]["seconds"]
        print(f"europe is {ratio:.1f}x faster than the whole orbit; "
              f"target europe <= 1 s: {'met' if results['europe']['seconds'] <= 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
