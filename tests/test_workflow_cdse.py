"""The workflow with the ``cdse`` source, end to end against a local fake CDSE server."""

from __future__ import annotations

import io
import zipfile
from datetime import date, timedelta

import pandas as pd
import pytest

from click.testing import CliRunner

from cdse_fake_server import FakeCdse
from s5p_lockdown.cli.acquire_cmd import acquire
from s5p_lockdown.synth.archive import ArchiveGenerator, SynthSettings
from workflow_helpers import ROOT, run_workflow, write_config

pytestmark = pytest.mark.slow

# France only, 2-day pre and 3-day post windows: the workflow needs ISO weeks 11-12 of 2019
# and 2020.
DAYS = [date(y, 3, 11) + timedelta(days=i) for y in (2019,) for i in range(14)] + [
    date(2020, 3, 9) + timedelta(days=i) for i in range(14)
]


@pytest.fixture(scope="module")
def served_orbits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cdse_products")
    generator = ArchiveGenerator(SynthSettings(across_track_step=45, along_track_step=30, lat_band=(40, 52),
                                               same_weather_every_year=True))
    return [path for day in DAYS for path in generator.write_day(folder, day)]


def _zipped(path) -> bytes:
    """A product as CDSE delivered S5P until late 2024: a zip of the .nc and a .cdl."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.write(path, path.name)
        zipped.writestr(path.with_suffix(".cdl").name, "netcdf S5P {\n}\n")
    return buffer.getvalue()


def test_workflow_downloads_then_analyses(tmp_path, served_orbits):
    """The dry run through the workflow's configuration announces what the workflow then
    downloads: plain .nc and zipped deliveries, some without a catalogue size, with a
    ~/.netrc entry for the server's host (which must not replace the token)."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password s3cret\n")
    netrc.chmod(0o600)
    with FakeCdse() as server:
        for i, path in enumerate(served_orbits):
            product = server.add(path.name, _zipped(path) if i % 2 else path.read_bytes())
            if i % 5 == 0:
                product.listed_size = None
        config = write_config(tmp_path, {
            "source": {"kind": "cdse", "archive": str(tmp_path / "archive"),
                       "cdse": {"base_url": server.base_url, "retry_base_delay": 0, "jobs": 2}},
            "countries": ["FRA"],
            "grid": {"south": 40.0, "north": 52.0, "west": -5.0, "east": 10.0, "resolution": 0.5},
            "windows": {"pre_days": 2, "post_days": 3, "reference_start": "2020-03-17",
                        "reference_end": "2020-03-19"},
            "stats": {"min_days": 1, "bootstrap": 200},
        })
        dry = CliRunner().invoke(acquire, ["--config", str(config), "--workflow-dir", str(ROOT),
                                           "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert server.requests("download") == []
        env = {"CDSE_USERNAME": server.username, "CDSE_PASSWORD": server.password,
               "NETRC": str(netrc)}
        result = run_workflow(config, env=env)
        downloads = server.requests("download")
    count = len(served_orbits)
    assert f"found {count} products ({count} orbits): 0 already in" in dry.output
    assert {e["auth"] for e in downloads} == {"Bearer"}
    downloads = len(downloads)
    assert "Downloading the orbits of 2020-W12" in result.stdout + result.stderr
    archived = sorted((tmp_path / "archive").glob("20*/*/*/S5P_*.nc"))
    assert len(archived) == len(served_orbits) == downloads
    assert (tmp_path / "archive" / "2020" / "03" / "17").is_dir()
    stats = pd.read_csv(tmp_path / "results" / "stats" / "country_stats.csv").set_index("iso3")
    assert stats.loc["FRA", "days_post_analysis"] >= 1
    assert stats.loc["FRA", "change_post_vs_baseline"] < 0  # the synthetic lockdown is visible
    rerun = run_workflow(config, args=["-n"], env=env)  # the server is gone: nothing to fetch
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
    assert not list((tmp_path / "archive").rglob("*.part"))


def test_missing_credentials_stop_the_fetch_job_clearly(tmp_path, served_orbits):
    with FakeCdse() as server:
        for path in served_orbits[:3]:
            server.add_file(path)
        config = write_config(tmp_path, {
            "source": {"kind": "cdse", "archive": str(tmp_path / "archive"),
                       "cdse": {"base_url": server.base_url, "retry_base_delay": 0}},
            "countries": ["FRA"],
            "windows": {"pre_days": 2, "post_days": 3, "reference_start": "2020-03-17",
                        "reference_end": "2020-03-19"},
        })
        result = run_workflow(config, check=False, env={"CDSE_USERNAME": "", "CDSE_PASSWORD": "", "HOME": str(tmp_path)})
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "no CDSE credentials: set CDSE_USERNAME and CDSE_PASSWORD" in text, text[-3000:]
    assert not list((tmp_path / "archive").rglob("*.nc"))
