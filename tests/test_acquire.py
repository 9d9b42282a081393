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
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from cdse_fake_server import FakeCdse, Fault
from s5p_lockdown.acquire import (
    AcquireError, AcquireSettings, ArchiveWriteError, AuthenticationError, Credentials, CredentialsError,
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
    catalogue = "https://catalogue.dataspace.copernicus.eu/odata/v1/Products(x)/$value"
    assert not session.should_strip_auth(catalogue, "https://download.dataspace.copernicus.eu/x")
    assert not session.should_strip_auth("http://localhost/x", "http://127.0.0.1/y")
    assert session.should_strip_auth(catalogue, "https://elsewhere.example.org/x")


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


# --- the real service's behaviours (issue: paging cap, hosts, netrc, 2FA, sizes, slices) --------
def _name(stream: str, start: str, minutes: int, orbit: int, version: str = "020400",
          production: str = "20200401T000000") -> str:
    """A product name sensed from ``start`` (``YYYYmmddTHHMMSS``) for ``minutes``."""
    from datetime import datetime, timedelta

    end = datetime.strptime(start, "%Y%m%dT%H%M%S") + timedelta(minutes=minutes)
    return (f"S5P_{stream}_L2__NO2____{start}_{end:%Y%m%dT%H%M%S}_{orbit:05d}_01_{version}_"
            f"{production}.nc")


def test_searches_are_split_by_month_and_again_when_the_paging_cap_truncates_them(server, settings):
    from s5p_lockdown.acquire.catalogue import search_products

    server.products.clear()
    server.page_size, server.max_skip = 1000, 4  # the cap: 4 results + one page per query
    names = [_name("OFFL", f"{d:%Y%m%d}T{h:02d}0000", 100, 12000 + 4 * i + h // 6)
             for i, d in enumerate(date(2020, 2, 20) + timedelta(days=k) for k in range(15))
             for h in (0, 6, 12, 18)]  # 4 a day, 20 Feb - 5 Mar
    for name in names:
        server.add(name, b"x")
    found = search_products(date(2020, 2, 20), date(2020, 3, 5), bbox_polygon(BBOX),
                            endpoints=settings.endpoints, retry=settings.retry, page_size=2)
    assert sorted(p.name for p in found) == sorted(names)
    windows = {(q["query"]["$filter"].split("ge ")[1][:19]) for q in server.requests("search")}
    assert "2020-03-01T00:00:00" in windows  # cut at the month
    assert len(windows) > 2  # and split again where the cap truncated a search


def test_a_search_truncated_within_an_hour_is_an_error_not_a_gap(server, settings):
    from s5p_lockdown.acquire.catalogue import search_products

    server.products.clear()
    server.page_size, server.max_skip = 1000, 2
    for name in [_name("NRTI", f"20200310T12{m:02d}00", 5, 12600) for m in range(0, 40, 5)]:
        server.add(name, b"x")
    with pytest.raises(AcquireError, match="paging cap.*restrict the area, streams"):
        search_products(date(2020, 3, 10), date(2020, 3, 10), bbox_polygon(BBOX),
                        endpoints=settings.endpoints, retry=settings.retry, page_size=2)


def test_the_default_download_host_is_the_documented_one():
    from s5p_lockdown.acquire.download import product_url

    endpoints = Endpoints()
    assert endpoints.download == "https://download.dataspace.copernicus.eu/odata/v1"
    assert Endpoints.from_urls(download="https://zipper.example/odata/v1/").download == (
        "https://zipper.example/odata/v1")  # the override is kept
    product = replace(_product("S5P_OFFL_L2__NO2____20200325T010000_20200325T024000_12680_01_"
                               "020400_20200326T000000.nc"), id="abc")
    assert product_url(endpoints.download, product) == (
        "https://download.dataspace.copernicus.eu/odata/v1/Products(abc)/$value")


def _product(name: str):
    from s5p_lockdown.acquire.catalogue import Product

    return Product("id", name, 1)


def test_a_netrc_entry_for_the_download_hosts_never_replaces_the_token(
    server, settings, l2_files, tmp_path, monkeypatch
):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password s3cret\n"
                     "machine localhost login alice password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    import requests

    plain = requests.Session().prepare_request(requests.Request(
        "GET", server.base_url, headers={"Authorization": "Bearer x"}))
    assert plain.headers["Authorization"].startswith("Basic")  # the fault is real here
    # a redirect between two hosts that both have a netrc entry
    url = f"http://localhost:{server.port}/odata/v1"
    settings = replace(settings, endpoints=replace(settings.endpoints, download=url))
    server.redirect_host = "127.0.0.1"
    product, fake = _one(server, l2_files, settings)
    [path] = download([product], tmp_path / "archive", settings, GOOD)
    assert path.read_bytes() == fake.data
    hops = [(e["host"], e["status"], e["auth"]) for e in server.requests("download")]
    assert hops == [("localhost", 302, "Bearer"), ("127.0.0.1", 200, "Bearer")]
    assert [e["auth"] for e in server.requests("token")] == [""]


def test_two_factor_accounts_send_the_current_code(server, settings, l2_files, tmp_path):
    server.totp = "123456"
    product, fake = _one(server, l2_files, settings)
    with pytest.raises(AuthenticationError, match="two-factor authentication, set CDSE_TOTP"):
        download([product], tmp_path / "a", settings, GOOD)
    assert len(server.requests("token")) == 1  # refused once, never retried
    with pytest.raises(AuthenticationError, match="two-factor code is the current one"):
        download([product], tmp_path / "a", settings, replace(GOOD, totp="999999"))
    code = load_credentials(environ={"CDSE_USERNAME": "alice", "CDSE_PASSWORD": "s3cret",
                                     "CDSE_TOTP": " 123456 "})
    assert code.totp == "123456" and "123456" not in repr(code)
    [path] = download([product], tmp_path / "a", settings, code)
    assert path.read_bytes() == fake.data


def test_two_factor_code_is_asked_only_after_a_refusal(server, settings, l2_files, tmp_path):
    from s5p_lockdown.acquire import transfer

    product, fake = _one(server, l2_files, settings)
    asked = []
    ask = lambda: asked.append(1) or "123456"  # noqa: E731
    transfer([product], tmp_path / "a", settings, GOOD, ask_totp=ask).paths([product])
    assert asked == []  # an account without two-factor login is never asked
    server.totp = "123456"
    outcome = transfer([product], tmp_path / "b", settings, GOOD, ask_totp=ask)
    assert outcome.paths([product])[0].read_bytes() == fake.data and asked == [1]
    assert [e["status"] for e in server.requests("token")] == [200, 401, 200]


def test_a_short_delivery_is_a_clear_error_not_a_loop(server, settings, l2_files, tmp_path):
    """The server delivers fewer bytes than the catalogue says, consistently (the transfer is
    complete by its own Content-Length): one request, a clear error, nothing left behind."""
    archive = tmp_path / "archive"
    product, fake = _one(server, l2_files, settings)
    fake.served = fake.data[:-5000]
    with pytest.raises(DownloadError, match=f"delivered {len(fake.served)} bytes.*catalogue says "
                       f"{len(fake.data)}: catalogue and delivery disagree"):
        download([product], archive, settings, GOOD)
    assert [e["status"] for e in server.requests("download")] == [200]
    assert _archive_files(archive) == [] and _staged(archive) == []


def test_a_partial_file_longer_than_the_product_restarts_once(server, settings, l2_files, tmp_path):
    archive = tmp_path / "archive"
    product, fake = _one(server, l2_files, settings)
    (archive / STAGING_DIR).mkdir(parents=True)
    part = archive / STAGING_DIR / f"{product.product_name.stem}.part"
    part.write_bytes(fake.data + b"junk")
    [path] = download([product], archive, settings, GOOD)
    assert path.read_bytes() == fake.data
    assert [e["status"] for e in server.requests("download")] == [416, 200]


def test_a_part_holding_the_whole_file_is_finished_without_downloading_again(
    server, settings, l2_files, tmp_path
):
    archive = tmp_path / "archive"
    product, fake = _one(server, l2_files, settings)
    (archive / STAGING_DIR).mkdir(parents=True)
    (archive / STAGING_DIR / f"{product.product_name.stem}.part").write_bytes(fake.data)
    product = replace(product, size=None)  # nothing says the part is complete but the server
    [path] = download([product], archive, settings, GOOD)
    assert path.read_bytes() == fake.data
    assert [e["status"] for e in server.requests("download")] == [416]


def test_requests_per_product_are_capped(server, settings, l2_files, tmp_path):
    from s5p_lockdown.acquire.download import MAX_REQUESTS

    archive = tmp_path / "archive"
    product, fake = _one(server, l2_files, settings)
    server.add_fault(Fault(drop_after=1000), count=MAX_REQUESTS + 10)  # slow progress, forever
    with pytest.raises(TransferError, match=f"not complete after {MAX_REQUESTS} requests "
                       f"\\({MAX_REQUESTS * 1000} bytes received of {len(fake.data)}\\)"):
        download([product], archive, settings, GOOD)
    assert len(server.requests("download")) == MAX_REQUESTS
    assert _archive_files(archive) == []
    [part] = _staged(archive)
    assert part.stat().st_size == MAX_REQUESTS * 1000  # kept, to be resumed


@pytest.mark.parametrize("listed", [None, 0])
def test_null_or_zero_catalogue_sizes_use_the_http_size(server, settings, l2_files, tmp_path, listed):
    archive = tmp_path / "archive"
    for fake in server.products.values():
        fake.listed_size = listed
    products = find_products(DAY, DAY, bbox_polygon(BBOX), settings)
    assert len(products) == 4 and all(p.size is None for p in products)
    plan = plan_downloads(products, archive)
    assert (plan.download_bytes, plan.unknown_sizes) == (0, 4)
    progress = io.StringIO()
    paths = download(products, archive, settings, GOOD, progress=progress)
    assert "of ? (some sizes unknown)" in progress.getvalue()
    assert [p.read_bytes() for p in paths] == [f.read_bytes() for f in l2_files]
    manifest = json.loads((archive / MANIFEST_NAME).read_text())
    assert [e["source_size"] for e in manifest] == [f.stat().st_size for f in l2_files]
    assert plan_downloads(products, archive).download == []


def test_nrti_orbits_keep_every_slice_of_one_stream_and_version(server, settings):
    server.products.clear()
    slices = [_name("NRTI", f"20200326T10{m:02d}00", 5, 12700) for m in (0, 5, 10)]
    older_version = _name("NRTI", "20200326T101500", 5, 12700, version="020301")
    reproduced = _name("NRTI", "20200326T100500", 5, 12700, production="20200402T000000")
    offl = _name("OFFL", "20200326T114000", 100, 12701)
    nrti_of_offl = _name("NRTI", "20200326T120000", 5, 12701)
    for name in [*slices, older_version, reproduced, offl, nrti_of_offl]:
        server.add(name, b"x")
    day = date(2020, 3, 26)
    kept = [p.name for p in find_products(day, day, bbox_polygon(BBOX), settings)]
    # orbit 12700: the newest version's three slices (the newest production of the one made
    # twice); orbit 12701: the whole OFFL orbit rather than an NRTI slice
    assert kept == [slices[0], reproduced, slices[2], offl]


def test_parallel_downloads_are_capped_at_the_quota(server, tmp_path):
    with pytest.raises(ConfigError, match="allowed 1 to 4: CDSE allows 4 concurrent connections"):
        AcquireSettings(jobs=5)
    with pytest.raises(ConfigError, match="jobs: 8 parallel downloads"):
        AcquireSettings.from_mapping({"jobs": 8})
    result = CliRunner().invoke(acquire, ["--start", "2020-03-25", "--end", "2020-03-25",
                                          "--bbox", *map(str, BBOX), "--archive", str(tmp_path),
                                          "--jobs", "8", "--base-url", server.base_url])
    assert result.exit_code == 2 and "4 concurrent connections per user" in result.output
    assert server.log == []
    from s5p_lockdown.acquire import MAX_JOBS
    from s5p_lockdown.cli import acquire_cmd

    assert acquire_cmd.MAX_JOBS == MAX_JOBS


def test_cli_summary_says_found_downloaded_skipped_and_failed(server, tmp_path, monkeypatch, l2_files):
    monkeypatch.setenv("CDSE_USERNAME", "alice")
    monkeypatch.setenv("CDSE_PASSWORD", "s3cret")
    archive = tmp_path / "a"
    (archive / "old").mkdir(parents=True)
    shutil.copy(l2_files[0], archive / "old" / l2_files[0].name)
    broken = next(p for p in server.products.values() if p.name == l2_files[1].name)
    broken.served = broken.data[:-1] + bytes([broken.data[-1] ^ 0xFF])
    args = ["--start", "2020-03-25", "--end", "2020-03-25", "--bbox", *map(str, BBOX),
            "--archive", str(archive), "--base-url", server.base_url, "--retry-delay", "0"]
    result = CliRunner().invoke(acquire, args)
    assert result.exit_code == 1, result.output
    assert f"summary: found 4, downloaded 2, skipped 1 (already in {archive}), failed 1" in (
        result.output)
    assert f"  failed: {broken.name}: MD5 " in result.output
    assert len(_archive_files(archive)) == 3


# --- the shipped real-data configuration ------------------------------------------------------
def test_dry_run_of_the_europe_config_reports_orbits_volume_disk_and_time(tmp_path, monkeypatch):
    """``acquire --config config/europe_2020.yaml --dry-run`` against a catalogue of realistic
    size: every orbit of the workflow's days in RPRO and OFFL, ~450-560 MB each, a few
    without a size. Nothing is downloaded and no credentials are needed."""
    import random
    import statistics

    from s5p_lockdown.acquire.estimate import RATE_PER_CONNECTION
    from s5p_lockdown.acquire.workflow import workflow_fetch
    from workflow_helpers import ROOT

    monkeypatch.delenv("CDSE_USERNAME", raising=False)
    europe = ROOT / "config" / "europe_2020.yaml"
    days = workflow_fetch([europe], ROOT).days
    rng = random.Random(0)
    with FakeCdse(page_size=1000) as server:
        chosen = []
        for i, day in enumerate(days):
            for k in range(4):  # four orbits a day over Europe
                start = f"{day:%Y%m%d}T{8 + 2 * k:02d}0000"
                for stream in ("RPRO", "OFFL"):
                    fake = server.add(_name(stream, start, 100, 10000 + 4 * i + k), b"")
                    fake.listed_size = rng.randint(450_000_000, 560_000_000)
                    if stream == "RPRO":
                        fake.listed_size = None if len(chosen) % 50 == 7 else fake.listed_size
                        chosen.append(fake.listed_size)
        overlay = tmp_path / "local.yaml"
        overlay.write_text(json.dumps({"source": {"archive": str(tmp_path / "archive"),
                                                  "cdse": {"base_url": server.base_url}}}))
        result = CliRunner().invoke(acquire, ["--config", str(europe), "--config", str(overlay),
                                              "--workflow-dir", str(ROOT), "--dry-run"])
        assert result.exit_code == 0, result.output
        assert server.requests("download") == [] and server.requests("token") == []
    assert len(server.products) == 8 * len(days) == 1232
    known = [s for s in chosen if s is not None]
    median = int(statistics.median(known))
    volume = sum(known) + median * (len(chosen) - len(known))
    out = result.output
    assert f"154 days 2019-02-25..2020-05-10, box (34.0, 72.0, -25.0, 45.0)" in out
    assert f"found {len(chosen)} products ({len(chosen)} orbits): 0 already in" in out
    assert f"{len(chosen)} to download" in out
    assert f"({volume} bytes), counting {len(chosen) - len(known)} products without a " in out
    assert "disk: " in out and "staging room for 4 parallel downloads" in out and "free there" in out
    hours = volume / (4 * RATE_PER_CONNECTION) / 3600
    assert f"time: at least {hours:.1f} h" in out and "with 4 connections" in out
    assert not (tmp_path / "archive").exists()


def test_config_dry_run_refuses_direct_options_and_other_sources(tmp_path):
    from workflow_helpers import ROOT

    europe = str(ROOT / "config" / "europe_2020.yaml")
    result = CliRunner().invoke(acquire, ["--config", europe, "--workflow-dir", str(ROOT),
                                          "--start", "2020-03-01", "--dry-run"])
    assert result.exit_code == 2 and "--start: with --config these come from" in result.output
    result = CliRunner().invoke(acquire, ["--config", str(ROOT / "config" / "config.yaml"),
                                          "--workflow-dir", str(ROOT), "--dry-run"])
    assert isinstance(result.exception, ConfigError)
    assert "source.kind: 'synthetic'" in str(result.exception)
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: {cdse: {jobs: 6}}\n")
    result = CliRunner().invoke(acquire, ["--config", europe, "--config", str(bad),
                                          "--workflow-dir", str(ROOT), "--dry-run"])
    assert isinstance(result.exception, ConfigError) and "source.cdse.jobs: 6 is greater than the maximum of 4" in (
        str(result.exception))
