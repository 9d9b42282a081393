"""Acquisition from CDSE against a local fake server (tests/cdse_fake_server.py)."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import zipfile
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from cdse_fake_server import FakeCdse, Fault
from s5p_lockdown.acquire import (
    AcquireSettings, ArchiveWriteError, AuthenticationError, Credentials, CredentialsError,
    DownloadError, Endpoints, RetryPolicy, TransferError, bbox_polygon, country_polygon, download,
    fetch_for_days, find_products, load_credentials, plan_downloads,
)
from s5p_lockdown.acquire.auth import TokenManager
from s5p_lockdown.acquire.http import CdseSession
from s5p_lockdown.acquire.store import MANIFEST_NAME, STAGING_DIR
from s5p_lockdown.cli.acquire_cmd import acquire
from s5p_lockdown.errors import ConfigError
from s5p_lockdown.filenames import ProductName
from s5p_lockdown.synth.archive import ArchiveGenerator, SynthSettings

DAY = date(2020, 3, 25)
BBOX = (40.0, 50.0, -10.0, 30.0)
GOOD = Credentials("alice", "s3cret", "test")


@pytest.fixture(scope="module")
def l2_files(tmp_path_factory) -> list[Path]:
    """The four tiny synthetic orbits of DAY (~480 kB each)."""
    root = tmp_path_factory.mktemp("l2")
    settings = SynthSettings(across_track_step=45, along_track_step=30, lat_band=(40, 50))
    return sorted(ArchiveGenerator(settings).write_day(root, DAY))


@pytest.fixture
def server(l2_files):
    with FakeCdse() as fake:
        for path in l2_files:
            fake.add_file(path)
        yield fake


@pytest.fixture
def settings(server) -> AcquireSettings:
    return AcquireSettings(
        jobs=2, endpoints=Endpoints.from_urls(server.base_url), timeout=10,
        retry=RetryPolicy(attempts=3, base_delay=0, max_delay=0),
    )


def _archive_files(archive: Path) -> list[Path]:
    return sorted(p for p in archive.rglob("*") if p.is_file() and STAGING_DIR not in p.parts
                  and p.suffix == ".nc")


def _staged(archive: Path) -> list[Path]:
    staging = archive / STAGING_DIR
    return sorted(staging.iterdir()) if staging.exists() else []


def _one(server, l2_files, settings):
    """Download the first product; returns (its catalogue entry, the fake product)."""
    [product] = [p for p in find_products(DAY, DAY, bbox_polygon(BBOX), settings)
                 if p.name == l2_files[0].name]
    fake = next(p for p in server.products.values() if p.name == product.name)
    return product, fake


# --- search ---------------------------------------------------------------------------------
def test_search_follows_pages_and_builds_the_filter(server, settings, l2_files):
    products = find_products(DAY, DAY, bbox_polygon(BBOX), settings)
    assert [p.name for p in products] == [p.name for p in l2_files]
    assert all(p.size == f.stat().st_size and len(p.md5) == 32 for p, f in zip(products, l2_files))
    searches = server.requests("search")
    assert len(searches) == 2  # 4 products, pages of 2
    assert searches[1]["query"]["$skip"] == "2"
    text = searches[0]["query"]["$filter"]
    box = "POLYGON((30 40, 30 50, -10 50, -10 40, 30 40))"
    assert f"OData.CSC.Intersects(area=geography'SRID=4326;{box}')" in text
    assert "ContentDate/Start ge 2020-03-24T22:00:00.000Z" in text
    assert "startswith(Name,'S5P_OFFL_')" in text and "'L2__NO2___'" in text
    assert find_products(date(2020, 3, 26), date(2020, 3, 27), bbox_polygon(BBOX), settings) == []


def test_one_product_per_orbit_by_stream_then_version_then_production(server, settings):
    stem = "S5P_{}_L2__NO2____20200326T100000_20200326T114000_12700_01_{}_{}"
    names = {
        "offl": stem.format("OFFL", "020400", "20200330T000000"),
        "rpro_old": stem.format("RPRO", "020301", "20210101T000000"),
        "rpro_new_version": stem.format("RPRO", "020400", "20220101T000000"),
        "rpro_newest": stem.format("RPRO", "020400", "20220202T000000"),
    }
    for name in names.values():
        server.add(name + ".nc", b"x")
    day = date(2020, 3, 26)
    pick = lambda s: [p.name for p in find_products(day, day, bbox_polygon(BBOX), s)]
    assert pick(settings) == [names["rpro_newest"] + ".nc"]
    assert pick(replace(settings, streams=("OFFL", "RPRO"))) == [names["offl"] + ".nc"]
    assert pick(replace(settings, processor_version="2.3.1")) == [names["rpro_old"] + ".nc"]
    assert "contains(Name,'_020301_')" in server.requests("search")[-1]["query"]["$filter"]


def test_country_polygon_covers_the_country_with_few_points():
    from s5p_lockdown.regions import load_countries

    polygon = country_polygon("ita")
    assert polygon.covers(load_countries()["ITA"].geometry)
    assert len(polygon.exterior.coords) < 60
    with pytest.raises(ConfigError, match="unknown ISO3 code 'XXX'"):
        country_polygon("XXX")
    with pytest.raises(ConfigError, match="south < north"):
        bbox_polygon((50, 40, 0, 10))


# --- download -------------------------------------------------------------------------------
def test_download_places_verifies_and_records(server, settings, l2_files, tmp_path):
    # download host != catalogue host, redirect between them: Authorization must survive
    url = f"http://localhost:{server.port}/odata/v1"
    settings = replace(settings, endpoints=replace(settings.endpoints, download=url))
    server.redirect_host = "127.0.0.1"
    archive = tmp_path / "archive"
    products = find_products(DAY, DAY, bbox_polygon(BBOX), settings)
    progress = io.StringIO()
    paths = download(products, archive, settings, GOOD, progress=progress)
    assert paths == [archive / "2020/03/25" / f.name for f in l2_files]
    assert all(p.read_bytes() == f.read_bytes() for p, f in zip(paths, l2_files))
    hops = sorted((e["host"], e["status"]) for e in server.requests("download"))
    assert hops == [("127.0.0.1", 200)] * 4 + [("localhost", 302)] * 4
    assert [e["grant"] for e in server.requests("token")] == ["password"]
    assert "of 1.8 MiB (100 %)" in progress.getvalue() and "ETA" in progress.getvalue()
    manifest = json.loads((archive / MANIFEST_NAME).read_text())
    assert [e["name"] for e in manifest] == [f.name for f in l2_files]
    assert manifest[0]["md5"] == hashlib.md5(l2_files[0].read_bytes()).hexdigest()
    assert manifest[0]["path"] == f"2020/03/25/{l2_files[0].name}"
    # staging left empty but in place: a concurrent acquisition may be about to write there
    assert (archive / STAGING_DIR).is_dir() and _staged(archive) == []
    assert plan_downloads(products, archive).download == []


def test_authorization_is_kept_on_redirects_within_cdse_only():
    session = CdseSession({"127.0.0.1"})
    zipper = "https://zipper.dataspace.copernicus.eu/odata/v1/Products(x)/$value"
    assert not session.should_strip_auth(zipper, "https://download.dataspace.copernicus.eu/x")
    assert not session.should_strip_auth("http://localhost/x", "http://127.0.0.1/y")
    assert session.should_strip_auth(zipper, "https://elsewhere.example.org/x")


def test_fetch_for_days_skips_files_already_in_a_local_archive(server, l2_files, tmp_path):
    archive = tmp_path / "shared"
    (archive / "flat").mkdir(parents=True)
    for path in l2_files[:2]:
        shutil.copy(path, archive / "flat" / path.name)
    settings = {"base_url": server.base_url, "retry_base_delay": 0, "jobs": 2, "kind": "cdse"}
    paths = fetch_for_days([DAY], BBOX, archive, settings | {"netrc": _netrc(tmp_path)})
    assert paths == [archive / "flat" / f.name for f in l2_files[:2]] + [
        archive / "2020/03/25" / f.name for f in l2_files[2:]
    ]
    assert len(server.requests("download")) == 2


def _netrc(tmp_path: Path, password: str = "s3cret") -> Path:
    path = tmp_path / "netrc"
    path.write_text(f"machine identity.dataspace.copernicus.eu login alice password {password}\n")
    return path


def test_dropped_connection_resumes_from_the_received_offset(server, settings, l2_files, tmp_path):
    archive = tmp_path / "archive"
    product, fake = _one(server, l2_files, settings)
    server.add_fault(Fault(drop_after=200_000))
    [path] = download([product], archive, settings, GOOD)
    assert path.read_bytes() == fake.data
    first, second = server.requests("download")
    assert (first["range_start"], first["sent"]) == (None, 200_000)
    assert (second["status"], second["range_start"]) == (206, 200_000)
    assert first["sent"] + second["sent"] == len(fake.data)  # nothing fetched twice


def test_token_expiring_mid_download_is_refreshed(server, settings, l2_files, tmp_path):
    archive = tmp_path / "archive"
    product, fake = _one(server, l2_files, settings)
    server.add_fault(Fault(drop_after=100_000, revoke_tokens=True))
    [path] = download([product], archive, settings, GOOD)
    assert path.read_bytes() == fake.data
    statuses = [(e["status"], e["range_start"]) for e in server.requests("download")]
    assert statuses == [(200, None), (401, 100_000), (206, 100_000)]
    assert [e["grant"] for e in server.requests("token")] == ["password", "refresh_token"]


def test_token_is_refreshed_before_it_expires(server):
    now = [0.0]
    tokens = TokenManager(GOOD, server.base_url + "/auth/realms/CDSE/protocol/openid-connect/token",
                          clock=lambda: now[0])
    first = tokens.token()
    now[0] = 500.0  # token lifetime 600 s: still fresh
    assert tokens.token() == first
    now[0] = 545.0  # within 60 s of expiry
    assert tokens.token() != first
    assert [e["grant"] for e in server.requests("token")] == ["password", "refresh_token"]
    now[0] = 10_000.0  # refresh token expired too: log in again
    tokens.token()
    assert server.requests("token")[-1]["grant"] == "password"


def test_429_and_500_are_retried(server, settings, l2_files, tmp_path):
    archive = tmp_path / "archive"
    product, fake = _one(server, l2_files, settings)
    server.add_fault(Fault(status=429, retry_after="0"))
    server.add_fault(Fault(status=500))
    [path] = download([product], archive, settings, GOOD)
    assert path.read_bytes() == fake.data
    assert [e["status"] for e in server.requests("download")] == [429, 500, 200]


def test_persistent_errors_give_up_and_keep_the_partial_file(server, settings, l2_files, tmp_path):
    archive = tmp_path / "archive"
    product, fake = _one(server, l2_files, settings)
    server.add_fault(Fault(drop_after=50_000))
    server.add_fault(Fault(status=503), count=3)
    with pytest.raises(TransferError, match="HTTP 503; gave up after 3 attempts"):
        download([product], archive, settings, GOOD)
    assert len(server.requests("download")) == 4
    [part] = _staged(archive)
    assert part.name.endswith(".part") and part.stat().st_size == 50_000
    [path] = download([product], archive, settings, GOOD)  # the next run resumes
    assert server.requests("download")[-1]["range_start"] == 50_000
    assert path.read_bytes() == fake.data


def test_wrong_credentials_fail_once_without_retry_storm(server, settings, tmp_path):
    products = find_products(DAY, DAY, bbox_polygon(BBOX), settings)
    wrong = Credentials("alice", "wrong", "test")
    with pytest.raises(AuthenticationError, match="refused the credentials of user 'alice'") as err:
        download(products, tmp_path / "archive", settings, wrong)
    assert "wrong" not in str(err.value) and "Invalid user credentials" in str(err.value)
    assert len(server.requests("token")) == 1
    assert server.requests("download") == []


def test_missing_credentials_name_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(CredentialsError, match="set CDSE_USERNAME and CDSE_PASSWORD.*netrc"):
        load_credentials(environ={})
    with pytest.raises(CredentialsError, match="CDSE_PASSWORD is not set"):
        load_credentials(environ={"CDSE_USERNAME": "alice"})
    with pytest.raises(CredentialsError, match="does not exist"):
        load_credentials(tmp_path / "nope", environ={})
    found = load_credentials(_netrc(tmp_path), environ={"CDSE_USERNAME": "x", "CDSE_PASSWORD": "y"})
    assert (found.username, found.password) == ("alice", "s3cret") and "s3cret" not in repr(found)
    (tmp_path / ".netrc").write_text("machine other.example.org login a password b\n")
    with pytest.raises(CredentialsError, match="machine identity.dataspace.copernicus.eu"):
        load_credentials(environ={})
    with pytest.raises(ConfigError, match="credentials must not be in the configuration"):
        AcquireSettings.from_mapping({"password": "s3cret"})


def test_corrupted_download_is_rejected(server, settings, l2_files, tmp_path):
    archive = tmp_path / "archive"
    product, fake = _one(server, l2_files, settings)
    fake.served = fake.data[:1000] + bytes([fake.data[1000] ^ 0xFF]) + fake.data[1001:]
    with pytest.raises(DownloadError, match="MD5 .* differs from the catalogue"):
        download([product], archive, settings, GOOD)
    assert _archive_files(archive) == [] and _staged(archive) == []
    assert not (archive / MANIFEST_NAME).exists()


def test_a_file_that_is_not_an_l2_product_is_rejected(server, settings, l2_files, tmp_path):
    archive = tmp_path / "archive"
    name = ProductName.parse(l2_files[0]).with_(orbit=99999).filename
    truncated = server.add(name, l2_files[0].read_bytes()[:300_000])
    products = [p for p in find_products(DAY, DAY, bbox_polygon(BBOX), settings)
                if p.id == truncated.id]
    with pytest.raises(DownloadError, match="not a valid L2 NO2 product"):
        download(products, archive, settings, GOOD)
    assert _archive_files(archive) == [] and _staged(archive) == []


def test_zipped_delivery_is_unzipped(server, settings, l2_files, tmp_path):
    """The zip of a product holds the .nc and a .cdl (the header as text)."""
    archive = tmp_path / "archive"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.write(l2_files[0], l2_files[0].name)
        zipped.writestr(l2_files[0].with_suffix(".cdl").name, "netcdf S5P {\n}\n")
    server.products.clear()
    server.add(l2_files[0].name, buffer.getvalue())
    products = find_products(DAY, DAY, bbox_polygon(BBOX), settings)
    [path] = download(products, archive, settings, GOOD)
    assert path.read_bytes() == l2_files[0].read_bytes()
    [entry] = json.loads((archive / MANIFEST_NAME).read_text())
    assert entry["source_size"] == len(buffer.getvalue())
    assert entry["size"] == l2_files[0].stat().st_size
    assert plan_downloads(products, archive).download == []


def test_disk_full_at_placement_leaves_nothing(server, settings, l2_files, tmp_path, monkeypatch):
    archive = tmp_path / "archive"
    product, _ = _one(server, l2_files, settings)
    os_replace = os.replace

    def full(src, dst):
        if STAGING_DIR not in Path(dst).parts:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os_replace(src, dst)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(ArchiveWriteError, match="No space left on device"):
        download([product], archive, settings, GOOD)
    assert _archive_files(archive) == [] and _staged(archive) == []


def test_archive_under_a_file_is_a_clear_error(server, settings, l2_files, tmp_path):
    (tmp_path / "file").write_text("")
    archive = tmp_path / "file" / "archive"
    product, _ = _one(server, l2_files, settings)
    with pytest.raises(ArchiveWriteError, match="cannot create .*: Not a directory"):
        download([product], archive, settings, GOOD)


# --- command line ---------------------------------------------------------------------------
def test_cli_dry_run_lists_without_credentials(server, tmp_path, monkeypatch, l2_files):
    monkeypatch.delenv("CDSE_USERNAME", raising=False)
    args = ["--start", "2020-03-25", "--end", "2020-03-25", "--country", "ITA",
            "--archive", str(tmp_path / "a"), "--base-url", server.base_url, "--dry-run"]
    result = CliRunner().invoke(acquire, args)
    assert result.exit_code == 0, result.output
    total = sum(f.stat().st_size for f in l2_files)
    assert "found 4 products (4 orbits): 0 already in" in result.output
    assert "4 to download" in result.output and f"volume: 1.8 MiB ({total} bytes)" in result.output
    assert "time: at least 0.0 h" in result.output and "with 3 connections" in result.output
    assert all(f.name in result.output for f in l2_files)
    assert server.requests("token") == [] and not (tmp_path / "a").exists()


def test_cli_downloads_with_environment_credentials(server, tmp_path, monkeypatch):
    monkeypatch.setenv("CDSE_USERNAME", "alice")
    monkeypatch.setenv("CDSE_PASSWORD", "s3cret")
    args = ["--start", "2020-03-25", "--end", "2020-03-25", "--bbox", *map(str, BBOX),
            "--stream", "rpro", "--archive", str(tmp_path / "a"), "--base-url", server.base_url,
            "--jobs", "2", "--retry-delay", "0"]
    result = CliRunner().invoke(acquire, args)
    assert result.exit_code == 0, result.output
    assert "summary: found 4, downloaded 4, skipped 0" in result.output
    assert len(_archive_files(tmp_path / "a")) == 4


def test_cli_needs_one_area(tmp_path):
    result = CliRunner().invoke(acquire, ["--start", "2020-03-25", "--end", "2020-03-25",
                                          "--archive", str(tmp_path)])
    assert result.exit_code == 2 and "exactly one of --bbox and --country" in result.output
