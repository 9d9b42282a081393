"""The workflow with a region file: region_stats.csv, a regional lockdown recovered in its
region and not in its neighbours, region-dated windows (slow: runs Snakemake end to end)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import shapely

from s5p_lockdown.regions import load_countries
from s5p_lockdown.synth.regions import voronoi_regions
from workflow_helpers import run_workflow, write_config

pytestmark = pytest.mark.slow

REDUCTION = 0.4
"""Injected in the one locked-down region, from its own date; nothing anywhere else."""


@pytest.fixture(scope="module")
def regions_run(tmp_path_factory):
    """Italy cut into 12 demo regions; the region with the most neighbours gets a regional
    lockdown (its own row of the regional table, 2020-03-08, two days before Italy's date) and
    the only injected reduction. Same weather every year: the expected change is the injected
    reduction inside the region and zero in its neighbours."""
    folder = tmp_path_factory.mktemp("regions_workflow")
    frame = voronoi_regions(load_countries(), n_regions=12, seed=2, iso3_list=["ITA"])
    frame.to_crs("EPSG:3035").to_file(folder / "regions.gpkg", driver="GPKG")
    geometries = dict(zip(frame["region_id"], frame.geometry))
    neighbours = {r: [o for o in geometries if o != r and shapely.intersects(g, geometries[o])]
                  for r, g in geometries.items()}
    locked = max(neighbours, key=lambda r: (len(neighbours[r]), geometries[r].area))
    (folder / "regional.csv").write_text(
        "region,iso3,name,lockdown_start,lockdown_end,measure,note\n"
        f"{locked},ITA,demo,2020-03-08,,regional,test region\n")
    (folder / "scenario.csv").write_text(
        "iso3,reduction,start,end,hotspot,region\n"
        "ITA,0,,,,\n"
        f"ITA,{REDUCTION},2020-03-08,,,{locked}\n")
    config = write_config(folder, {
        "synthetic": {"scenario": str(folder / "scenario.csv")},
        "grid": {"south": 36.0, "north": 48.0, "west": 6.0, "east": 19.0, "resolution": 0.2},
        "countries": ["ITA"],
        "regions": {"file": str(folder / "regions.gpkg"), "id": "region_id", "name": "name",
                    "lockdown_dates": str(folder / "regional.csv")},
    })
    run_workflow(config)
    return folder, locked, neighbours[locked]


def test_region_stats_have_every_region_with_its_dates(regions_run):
    folder, locked, _ = regions_run
    stats = pd.read_csv(folder / "results" / "stats" / "region_stats.csv").set_index("region")
    assert len(stats) == 12 and set(stats["iso3"]) == {"ITA"}
    assert list(stats.columns[:3]) == ["name", "iso3", "dates_from"]
    assert stats.loc[locked, "dates_from"] == "region" and stats.loc[locked, "post_start"] == "2020-03-08"
    others = stats.drop(index=locked)
    assert set(others["dates_from"]) == {"country"} and set(others["post_start"]) == {"2020-03-10"}
    assert (folder / "results" / "attribution" / "regions").is_dir()
    assert "Demo region" in (folder / "results" / "stats" / "regions.geojson").read_text()


def test_regional_reduction_is_recovered_in_its_region_not_its_neighbours(regions_run):
    folder, locked, neighbours = regions_run
    stats = pd.read_csv(folder / "results" / "stats" / "region_stats.csv").set_index("region")
    truth = pd.read_csv(folder / "archive" / "truth_daily.csv")
    assert set(truth.loc[truth["kind"] == "region", "iso3"]) == {locked}
    row = stats.loc[locked]
    assert row["status"] == "ok", row["reason"]
    # ~17 km pixels on 0.2 degree cells: a few pixels per cell straddle the region's edge
    assert row["change_post_vs_baseline"] == pytest.approx(-REDUCTION, abs=0.05)
    assert row["change_post_vs_baseline_low"] < -REDUCTION + 0.05 and row["significant_post_vs_baseline"]
    assert row["change_weather_adjusted"] == pytest.approx(-REDUCTION, abs=0.05)
    assert neighbours
    for region in neighbours:
        other = stats.loc[region]
        if other["status"] != "ok":  # a neighbour too small or cloudy to measure says why
            assert other["reason"]
            continue
        assert abs(other["change_post_vs_baseline"]) < 0.05, region
        assert other["change_post_vs_baseline_low"] < 0 < other["change_post_vs_baseline_high"], region
