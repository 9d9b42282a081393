#!/usr/bin/env python3
"""Build the demo region file and its regional lockdown table (maintainer tool).

Writes, under ``config/regions_demo/``:

* ``demo_regions.geojson``: **demo** regions, a Voronoi tessellation
  (:func:`s5p_lockdown.synth.regions.voronoi_regions`, seed 0) of the shipped Natural Earth
  countries Italy, Switzerland, Austria and Slovenia into about 40 regions, clipped to the
  countries, coordinates rounded to 1e-4 degree; properties ``region_id``, ``name``, ``iso3``.
  They are no real administrative units; their ids and names say "demo".
* ``lockdown_dates_regions.csv``: a regional lockdown table
  (:func:`s5p_lockdown.lockdowns.load_region_lockdowns`) giving the demo regions of northern
  Italy (a point inside them north of 44.7 N, west of 12.6 E: roughly where Lombardy and the 14
  provinces of the decree of 8 March 2020 lie) that decree's start, 2020-03-08; every other
  region takes its country's date from the shipped national table (Italy 2020-03-10).

Usage (from the repository root): ``.venv/bin/python workflow/scripts/make_demo_regions.py``.
The output is deterministic.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import shapely

from s5p_lockdown.regions import load_countries
from s5p_lockdown.synth.regions import voronoi_regions

OUT = Path("config/regions_demo")
COUNTRIES = ["ITA", "CHE", "AUT", "SVN"]
NORTH_OF, WEST_OF = 44.7, 12.6


def main() -> None:
    frame = voronoi_regions(load_countries(), n_regions=40, seed=0, iso3_list=COUNTRIES)
    frame["geometry"] = shapely.set_precision(frame.geometry.values, 1e-4)
    frame.to_file(OUT / "demo_regions.geojson", driver="GeoJSON", engine="pyogrio", COORDINATE_PRECISION=4)
    points = shapely.point_on_surface(frame.geometry.values)
    north = (frame["iso3"] == "ITA") & (shapely.get_y(points) > NORTH_OF) & (shapely.get_x(points) < WEST_OF)
    rows = frame[north]
    table = pd.DataFrame({
        "region": rows["region_id"], "iso3": "ITA", "name": rows["name"],
        "lockdown_start": "2020-03-08", "lockdown_end": "2020-05-04", "measure": "regional",
        "note": "demo region standing in for northern Italy under the DPCM of 8 March 2020",
    })
    table.to_csv(OUT / "lockdown_dates_regions.csv", index=False)
    print(f"{len(frame)} demo regions, {len(table)} with the regional start 2020-03-08")


if __name__ == "__main__":
    main()
