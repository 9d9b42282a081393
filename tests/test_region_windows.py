"""Regional lockdown dates: the region-keyed table, region-dated windows with the country's
dates as the fallback, the workflow plan with a regions section, and regional scenarios."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pytest
import shapely
from snakemake.utils import validate

from s5p_lockdown.errors import ConfigError
from s5p_lockdown.lockdowns import load_lockdown_dates, load_region_lockdowns
from s5p_lockdown.plan import make_plan
from s5p_lockdown.resources import resource_path
from s5p_lockdown.synth.scenario import Scenario
from s5p_lockdown.windows import WindowSettings, country_windows, region_windows

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = WindowSettings(2020, (2019,), pre_days=7, post_days=14,
                          reference_start=date(2020, 3, 15), reference_end=date(2020, 3, 28))
ITALIAN_EXAMPLE = resource_path("lockdown_dates_regions_italy.csv")


def test_shipped_italian_example_dates():
    table = load_region_lockdowns(ITALIAN_EXAMPLE)
    assert table.loc["ITC4", "name"] == "Lombardia"
    assert table.loc["ITC4", "lockdown_start"] == pd.Timestamp("2020-03-08")
    # Lombardy's 12 provinces and the 14 other provinces of the decree of 8 March 2020
    assert (table.index.str.len() == 5).sum() == 12 + 14
    assert set(table["lockdown_start"]) == {pd.Timestamp("2020-03-08")}
    assert set(table["iso3"]) == {"ITA"}
    # the rest of Italy: the national row
    assert load_lockdown_dates().loc["ITA", "lockdown_start"] == pd.Timestamp("2020-03-10")


def test_region_windows_take_own_dates_else_the_country_s():
    countries = load_lockdown_dates().loc[["ITA", "AUT"]]
    windows = region_windows({"ITC4": "ITA", "ITI4": "ITA", "AT13": "AUT", "DE21": "DEU"},
                             load_region_lockdowns(ITALIAN_EXAMPLE), country_windows(countries, SETTINGS),
                             SETTINGS)
    assert list(windows["iso3"].unique()) == ["ITC4", "ITI4", "AT13"]  # DEU is not analysed
    def span(region, period, role="analysis"):
        row = windows[(windows["iso3"] == region) & (windows["period"] == period) & (windows["role"] == role)]
        assert len(row) == 1
        return row["start"].iloc[0], row["end"].iloc[0], row["dates_from"].iloc[0], row["country"].iloc[0]
    assert span("ITC4", "post") == (date(2020, 3, 8), date(2020, 3, 21), "region", "ITA")
    assert span("ITC4", "pre") == (date(2020, 3, 1), date(2020, 3, 7), "region", "ITA")
    assert span("ITC4", "post", "baseline")[:2] == (date(2019, 3, 8), date(2019, 3, 21))
    assert span("ITI4", "post") == (date(2020, 3, 10), date(2020, 3, 23), "country", "ITA")
    assert span("AT13", "post") == (date(2020, 3, 16), date(2020, 3, 29), "country", "AUT")


@pytest.mark.parametrize("row, message", [
    ("ITC4,ITA,Lombardia,2020-03-08,,regional,\nITC4,ITA,again,2020-03-09,,regional,",
     r"duplicate region code\(s\) \['ITC4'\]"),
    ("ITC4,ITA,Lombardia,2020-13-08,,regional,", "ITC4 has an invalid lockdown_start '2020-13-08'"),
    ("ITC4,ITA,Lombardia,,,regional,", "ITC4 has measure 'regional' but no lockdown_start"),
    (",ITA,Lombardia,2020-03-08,,regional,", "a row has no region id"),
])
def test_bad_regional_table_names_file_and_region(tmp_path, row, message):
    path = tmp_path / "regional.csv"
    path.write_text("region,iso3,name,lockdown_start,lockdown_end,measure,note\n" + row + "\n")
    with pytest.raises(ConfigError, match=f"regional lockdown dates table {path}.*{message}"):
        load_region_lockdowns(path)


# --- the workflow plan ------------------------------------------------------------------------
def _region_file(tmp_path) -> Path:
    """Two regions of northern Italy with NUTS ids (boxes, not the real outlines) and one in
    central Italy."""
    frame = geopandas.GeoDataFrame(
        {"NUTS_ID": ["ITC4", "ITH3", "ITI4"], "NAME_LATN": ["Lombardia", "Veneto", "Lazio"],
         "LEVL_CODE": [2, 2, 2]},
        geometry=[shapely.box(8.8, 45.0, 10.5, 46.0), shapely.box(11.0, 45.0, 12.5, 46.0),
                  shapely.box(12.0, 41.5, 13.5, 42.5)], crs="EPSG:4326").to_crs("EPSG:3035")
    path = tmp_path / "nuts.gpkg"
    frame.to_file(path, driver="GPKG")
    return path


def _plan(tmp_path, **overrides):
    config = {"results": str(tmp_path / "results"), "source": {"archive": str(tmp_path / "archive")},
              "countries": ["ITA", "AUT"], "windows": {"pre_days": 7, "post_days": 14,
                                                       "reference_start": "2020-03-15",
                                                       "reference_end": "2020-03-28"}, **overrides}
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
    return make_plan(config)


def test_plan_with_regions_needs_the_regional_days(tmp_path):
    without = _plan(tmp_path)
    assert without.region_sets == ["countries", "hotspots"] and without.region_file is None
    plan = _plan(tmp_path, regions={"file": str(_region_file(tmp_path)), "id": "NUTS_ID", "name": "NAME_LATN",
                                    "filter": "LEVL_CODE == 2", "lockdown_dates": str(ITALIAN_EXAMPLE)})
    assert plan.region_sets == ["countries", "hotspots", "regions"]
    assert list(plan.region_file.regions) == ["ITC4", "ITH3", "ITI4"]
    assert plan.region_file.country_of == {"ITC4": "ITA", "ITH3": "ITA", "ITI4": "ITA"}
    post = plan.region_windows[(plan.region_windows["period"] == "post")
                               & (plan.region_windows["role"] == "analysis")].set_index("iso3")
    assert post.loc["ITC4", "start"] == date(2020, 3, 8) and post.loc["ITC4", "dates_from"] == "region"
    # Veneto as a whole was not in the decree of 8 March: Italy's date
    assert post.loc["ITH3", "start"] == date(2020, 3, 10) and post.loc["ITH3", "dates_from"] == "country"
    # Lombardy's pre window starts on 1 March: a day (and ISO week) no country window needs
    assert date(2020, 3, 1) in plan.days and date(2020, 3, 1) not in without.days


def test_synthetic_archive_depends_on_regions_only_when_the_scenario_reduces_some(tmp_path):
    regions = {"file": str(_region_file(tmp_path)), "id": "NUTS_ID", "name": "NAME_LATN"}
    assert _plan(tmp_path, regions=regions).synthetic_regions is None
    dated = {**regions, "lockdown_dates": str(ITALIAN_EXAMPLE)}
    assert _plan(tmp_path, regions=dated).synthetic_regions == dated
    scenario = tmp_path / "scenario.csv"
    scenario.write_text("iso3,reduction,start,end,hotspot,region\nITA,0.3,2020-03-10,,,\n")
    assert _plan(tmp_path, regions=dated, synthetic={"scenario": str(scenario)}).synthetic_regions is None


def test_plan_regions_errors_name_the_key(tmp_path):
    path = str(_region_file(tmp_path))
    with pytest.raises(ConfigError, match=r"regions.file: none of the 3 regions .* lies in an analysed country"):
        _plan(tmp_path, countries=["AUT"], regions={"file": path, "id": "NUTS_ID", "name": "NAME_LATN"})
    from s5p_lockdown.regions import BoundaryFileError
    with pytest.raises(BoundaryFileError, match=r"no column 'NUTS' \(regions.id\)"):
        _plan(tmp_path, regions={"file": path, "id": "NUTS", "name": "NAME_LATN"})


# --- regional scenarios -----------------------------------------------------------------------
def test_scenario_region_rows_round_trip_and_take_the_stronger_measure(tmp_path):
    path = tmp_path / "scenario.csv"
    path.write_text("iso3,reduction,start,end,hotspot,region\n"
                    "ITA,0.3,2020-03-10,,,\n"
                    "ITA,0.15,2020-03-08,,,ITC4\n"
                    "AUT,0.4,2020-03-01,2020-03-05,,AT13\n")
    scenario = Scenario.read(path)
    assert list(scenario.regions.index) == ["ITC4", "AT13"]
    scenario.write(tmp_path / "again.csv")
    again = Scenario.read(tmp_path / "again.csv")
    pd.testing.assert_frame_equal(again.regions, scenario.regions)
    countries = np.array(["ITA", "ITA", "AUT", "AUT"])
    regions = np.array(["ITC4", "", "AT13", ""])
    np.testing.assert_allclose(scenario.reduction_of(countries, date(2020, 3, 8), regions), [0.15, 0, 0, 0])
    np.testing.assert_allclose(scenario.reduction_of(countries, date(2020, 3, 11), regions), [0.3, 0.3, 0, 0])
    np.testing.assert_allclose(scenario.reduction_of(countries, date(2020, 3, 3), regions), [0, 0, 0.4, 0])
    np.testing.assert_allclose(scenario.reduction_of(countries, date(2020, 3, 3)), [0, 0, 0, 0])


def test_default_scenario_takes_region_rows_from_the_regional_table():
    scenario = Scenario.default(region_table=ITALIAN_EXAMPLE)
    assert scenario.regions.loc["ITC4", "reduction"] == 0.15  # measure 'regional'
    assert scenario.regions.loc["ITC4", "start"] == pd.Timestamp("2020-03-08")
    assert scenario.regions.loc["ITC4", "iso3"] == "ITA"
    assert Scenario.default().regions.empty
