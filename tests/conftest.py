"""Shared fixtures: small synthetic archives generated once per test session."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from s5p_lockdown.synth.archive import ArchiveGenerator, SynthSettings

DATA = Path(__file__).parent / "data"
STRIPPED_REAL_FILE = (
    DATA / "s5p_l2_stripped"
    / "S5P_OFFL_L2__NO2____20200303T013547_20200303T031717_12367_01_010302_20200306T053815.nc"
)
DEMO_STEPS = {"across_track_step": 10, "along_track_step": 6}


@pytest.fixture(scope="session", autouse=True)
def dashboard_maps_cache(tmp_path_factory):
    """The dashboard's maps cache (s5p_lockdown.dashboard.data.maps_cache_dir) in a folder of
    the session, for every dashboard and server the tests start: nothing left in the user's
    cache, no map read from an earlier session's cache."""
    import os

    saved = os.environ.get("S5P_DASHBOARD_CACHE")
    os.environ["S5P_DASHBOARD_CACHE"] = str(tmp_path_factory.mktemp("dashboard-cache"))
    yield
    if saved is None:
        os.environ.pop("S5P_DASHBOARD_CACHE", None)
    else:
        os.environ["S5P_DASHBOARD_CACHE"] = saved


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory) -> Path:
    """One day in 2019 and the same day in 2020 with identical weather, demo-sized pixels."""
    root = tmp_path_factory.mktemp("archive")
    settings = SynthSettings(seed=1, same_weather_every_year=True, **DEMO_STEPS)
    ArchiveGenerator(settings).generate(root, [date(2019, 3, 25), date(2020, 3, 25)])
    return root


@pytest.fixture(scope="session")
def orbit_file(small_archive) -> Path:
    """A synthetic 2020 orbit over central Europe."""
    files = sorted((small_archive / "2020" / "03" / "25").glob("S5P_*.nc"))
    return files[len(files) // 2]


@pytest.fixture(scope="session")
def workflow_run(tmp_path_factory):
    """The workflow run end to end once on a small synthetic archive (see
    ``workflow_helpers.SMALL_CONFIG``); yields the folder holding ``config.yaml``,
    ``results/`` and ``archive/``."""
    from workflow_helpers import run_workflow, write_config

    folder = tmp_path_factory.mktemp("workflow")
    run_workflow(write_config(folder))
    return folder
