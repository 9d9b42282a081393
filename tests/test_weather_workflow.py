"""Weather adjustment end to end: a lockdown year systematically windier than the baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workflow_helpers import run_workflow, write_config

pytestmark = pytest.mark.slow

COUNTRIES = ["ITA", "ESP", "DEU", "POL", "ROU"]  # 30 % injected in each


@pytest.fixture(scope="module")
def windy_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("windy")
    run_workflow(write_config(folder, {
        "synthetic": {"seed": 5, "same_weather_every_year": False, "wind_scale": {2020: 1.3}},
        "countries": COUNTRIES + ["SWE"],
    }))
    return pd.read_csv(folder / "results" / "stats" / "country_stats.csv").set_index("iso3")


def test_raw_change_is_biased_by_wind_and_adjustment_removes_most_of_it(windy_run):
    stats = windy_run.loc[COUNTRIES]
    assert (stats["wind_post_analysis"] / stats["wind_post_baseline"]).mean() > 1.15
    raw_error = stats["change_post_vs_baseline"] + 0.3
    adjusted_error = stats["change_weather_adjusted"] + 0.3
    # windier 2020 dilutes plumes: the raw change overstates the drop...
    assert raw_error.mean() < -0.02
    # ...the wind model recovers the injected -30 % on average within 5 points, better than raw
    assert abs(adjusted_error.mean()) < 0.05
    assert np.abs(adjusted_error).mean() < np.abs(raw_error).mean()
    inside = (stats["change_weather_adjusted_low"] <= -0.3) & (-0.3 <= stats["change_weather_adjusted_high"])
    assert inside.sum() >= 4  # the injected value lies in (almost) every 95 % interval
    assert stats["weather_adjustment"].str.startswith("wind model fitted").all()
