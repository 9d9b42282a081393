"""Synthetic archive: real structure, realistic geometry and fields, known truth."""

from __future__ import annotations

from datetime import date

import netCDF4
import numpy as np
import pandas as pd
import pytest

from conftest import DEMO_STEPS, STRIPPED_REAL_FILE
from s5p_lockdown.io import read_l2
from s5p_lockdown.regions import country_of_points, load_countries
from s5p_lockdown.synth import orbit as orbit_geometry
from s5p_lockdown.synth.archive import ArchiveGenerator, SynthSettings
from s5p_lockdown.synth.scenario import Scenario

# What HARP's S5P NO2 ingestion reads (sources: docs/references.md), with the real dtypes.
HARP_REQUIRED = {
    "PRODUCT": {
        "time": "int32", "delta_time": "int32", "latitude": "float32", "longitude": "float32",
        "nitrogendioxide_tropospheric_column": "float32",
        "nitrogendioxide_tropospheric_column_precision": "float32", "qa_value": "uint8",
        "air_mass_factor_troposphere": "float32", "air_mass_factor_total": "float32",
        "averaging_kernel": "float32", "tm5_tropopause_layer_index": "int32",
        "tm5_constant_a": "float32", "tm5_constant_b": "float32",
        "scanline": "int32", "ground_pixel": "int32", "corner": "int32", "layer": "int32",
    },
    "PRODUCT/SUPPORT_DATA/GEOLOCATIONS": {
        "latitude_bounds": "float32", "longitude_bounds": "float32",
        "satellite_latitude": "float32", "satellite_longitude": "float32",
        "satellite_altitude": "float32", "solar_zenith_angle": "float32",
        "solar_azimuth_angle": "float32", "viewing_zenith_angle": "float32",
        "viewing_azimuth_angle": "float32",
    },
    "PRODUCT/SUPPORT_DATA/DETAILED_RESULTS": {
        "processing_quality_flags": "uint32",
        "nitrogendioxide_summed_total_column": "float32",
        "nitrogendioxide_summed_total_column_precision": "float32",
        "nitrogendioxide_stratospheric_column": "float32",
        "nitrogendioxide_stratospheric_column_precision": "float32",
        "air_mass_factor_stratosphere": "float32",
        "nitrogendioxide_slant_column_density": "float32",
        "nitrogendioxide_slant_column_density_precision": "float32",
        "cloud_fraction_crb_nitrogendioxide_window": "float32",
        "cloud_radiance_fraction_nitrogendioxide_window": "float32",
    },
    "PRODUCT/SUPPORT_DATA/INPUT_DATA": {
        "surface_pressure": "float32", "aerosol_index_354_388": "float32",
        "cloud_albedo_crb": "float32", "cloud_pressure_crb": "float32", "scene_albedo": "float32",
        "apparent_scene_pressure": "float32",
        "surface_albedo_nitrogendioxide_window": "float32", "surface_altitude": "float32",
        "surface_altitude_precision": "float32", "snow_ice_flag": "uint8",
        "eastward_wind": "float32", "northward_wind": "float32",
    },
}


def _group_tree(group, prefix=""):
    paths = set()
    for name, child in group.groups.items():
        path = f"{prefix}/{name}"
        paths.add(path)
        paths |= _group_tree(child, path)
    return paths


def _group(nc, path):
    node = nc
    for part in path.split("/"):
        node = node.groups[part]
    return node


def test_metadata_layout_equals_real_file(orbit_file):
    with netCDF4.Dataset(STRIPPED_REAL_FILE) as real, netCDF4.Dataset(orbit_file) as synth:
        assert set(real.ncattrs()) <= set(synth.ncattrs())
        assert _group_tree(real.groups["METADATA"]) == _group_tree(synth.groups["METADATA"])
        real_dims = {k: len(v) for k, v in real.groups["PRODUCT"].dimensions.items()}
        synth_dims = {k: len(v) for k, v in synth.groups["PRODUCT"].dimensions.items()}
        assert set(real_dims) == set(synth_dims)
        for dim in ("corner", "time", "layer", "vertices", "polynomial_exponents"):
            assert synth_dims[dim] == real_dims[dim]
        granule = synth["METADATA/GRANULE_DESCRIPTION"]
        assert granule.ProductShortName == "L2__NO2___"
        assert granule.InstrumentName == "TROPOMI" and granule.MissionShortName == "S5P"
        assert granule.ProcessingMode == "Reprocessing"
        assert synth.id == orbit_file.stem and len(synth.id) == 83
        assert synth.time_coverage_resolution.startswith("PT")
        # the real file's id does not survive anywhere in the copied metadata
        fixed = synth["METADATA/ESA_METADATA/earth_explorer_header/fixed_header"]
        assert fixed.File_Name == orbit_file.stem


def test_harp_required_variables_dtypes_and_fill_values(orbit_file):
    with netCDF4.Dataset(orbit_file) as nc:
        for group_path, variables in HARP_REQUIRED.items():
            group = _group(nc, group_path)
            for name, dtype in variables.items():
                assert name in group.variables, f"{group_path}/{name} missing"
                var = group.variables[name]
                assert str(var.dtype) == dtype, f"{group_path}/{name} is {var.dtype}"
                if var.dtype.kind == "f":
                    assert "_FillValue" in var.ncattrs(), f"{group_path}/{name} lacks _FillValue"
        product = nc["PRODUCT"]
        assert "_FillValue" in product["time"].ncattrs()
        assert product["time"].units == "seconds since 2010-01-01 00:00:00"
        assert product["delta_time"].units.startswith("milliseconds since 2020-03-25")
        qa = product["qa_value"]
        assert qa.scale_factor == np.float32(0.01) and qa._FillValue == 255
        column = product["nitrogendioxide_tropospheric_column"]
        assert column.units == "mol m-2"
        assert column._FillValue == np.float32(9.96921e36)
        assert column.multiplication_factor_to_convert_to_molecules_percm2 == np.float32(6.02214e19)
        assert column.filters()["zlib"]
        assert product["averaging_kernel"].dimensions == ("time", "scanline", "ground_pixel", "layer")


def test_corners_are_shared_between_neighbours(orbit_file):
    ds = read_l2(orbit_file)
    for name in ("latitude_bounds", "longitude_bounds"):
        b = ds[name].values
        np.testing.assert_array_equal(b[:, :-1, 1], b[:, 1:, 0])  # across track
        np.testing.assert_array_equal(b[:, :-1, 2], b[:, 1:, 3])
        np.testing.assert_array_equal(b[:-1, :, 3], b[1:, :, 0])  # along track
        np.testing.assert_array_equal(b[:-1, :, 2], b[1:, :, 1])
    # centres lie inside their corner box
    lat_b = ds["latitude_bounds"].values
    assert np.all(ds["latitude"].values >= lat_b.min(-1)) and np.all(ds["latitude"].values <= lat_b.max(-1))


def test_qa_fraction_and_noise_are_realistic(small_archive):
    ds_list = [read_l2(p) for p in sorted(small_archive.glob("2020/03/25/*.nc"))]
    qa = np.concatenate([d["qa_value"].values.ravel() for d in ds_list])
    column = np.concatenate([d["nitrogendioxide_tropospheric_column"].values.ravel() for d in ds_list])
    lat = np.concatenate([d["latitude"].values.ravel() for d in ds_list])
    valid = np.isfinite(column)
    failing = np.mean(~(qa[valid] > 0.75))
    assert 0.2 < failing < 0.8
    north, south = lat[valid] > 60, lat[valid] < 45
    assert np.mean(~(qa[valid][north] > 0.75)) > np.mean(~(qa[valid][south] > 0.75))
    assert 1e-5 < np.nanmedian(column) < 6e-5
    hotspots = np.concatenate([
        read_l2(p)["nitrogendioxide_tropospheric_column"].values.ravel()
        for p in small_archive.glob("2019/03/25/*.nc")
    ])
    assert np.nanmax(hotspots) > 1e-4  # city and industrial plumes (no lockdown in 2019)


def test_native_resolution_noise_reaches_below_zero(tmp_path):
    """At full resolution the retrieval noise (~1.2e-5) exceeds clean background columns, so
    some columns are negative, as in real products; the noise matches the written precision."""
    settings = SynthSettings(seed=2, lat_band=(56, 58))
    path = ArchiveGenerator(settings).write_day(tmp_path, date(2020, 3, 25))[2]
    ds = read_l2(path)
    column = ds["nitrogendioxide_tropospheric_column"].values
    precision = ds["nitrogendioxide_tropospheric_column_precision"].values
    assert ds.sizes["ground_pixel"] == 450
    assert 0.01 < np.nanmean(column < 0) < 0.3
    # the scatter of neighbouring-pixel differences matches the precision (smooth truth)
    diff = (column[:, 1:] - column[:, :-1]) / np.hypot(precision[:, 1:], precision[:, :-1])
    assert 0.85 < np.nanstd(diff) < 1.15


def test_scan_geometry_of_full_orbit():
    day = date(2020, 3, 25)
    orbits = orbit_geometry.orbits_crossing_day(day)
    assert 14 <= len(orbits) <= 15
    g = orbit_geometry.swath(orbits[0], day, lat_band=None, n_scanlines=4172)
    assert g.latitude.shape == (4172, 450)
    assert g.latitude.min() < -80 and g.latitude.max() > 80
    assert 2500 < g.across_track_km.sum() < 2900
    assert 3.4 < g.across_track_km.min() < 3.6
    assert g.across_track_km.max() > 3 * g.across_track_km.min()
    # ascending, local time ~13:30 at the equator crossing
    middle = g.latitude.shape[0] // 2
    assert g.latitude[middle + 10, 225] > g.latitude[middle - 10, 225]
    utc = g.times[middle].astype("datetime64[s]").astype(object)
    local = (utc.hour + utc.minute / 60 + g.longitude[middle, 225] / 15) % 24
    assert abs(local - 13.5) < 0.3


@pytest.mark.parametrize("day, km", [(date(2019, 7, 1), 7.0), (date(2019, 9, 1), 5.5)])
def test_along_track_pixel_size_changes_on_2019_08_06(day, km):
    g = orbit_geometry.swath(orbit_geometry.orbits_crossing_day(day)[7], day, lat_band=(-5, 5))
    i = g.latitude.shape[0] // 2
    step = np.hypot(
        g.corner_latitude[i + 1, 225] - g.corner_latitude[i, 225],
        g.corner_longitude[i + 1, 225] - g.corner_longitude[i, 225],
    ) * 111.2
    assert abs(step - km) < 0.5


def test_consecutive_orbits_overlap_at_high_latitude():
    day = date(2020, 3, 25)
    a, b = (orbit_geometry.swath(o, day) for o in orbit_geometry.orbits_crossing_day(day)[8:10])
    row = np.argmin(np.abs(a.latitude[:, 225] - 65))
    row_b = np.argmin(np.abs(b.latitude[:, 225] - 65))
    a_lon = a.longitude[row]
    b_lon = b.longitude[row_b]
    assert b_lon.max() > a_lon.min()  # b is west of a and reaches into a's swath


def test_injected_reduction_visible_in_masked_mean(small_archive):
    """Same weather in 2019 and 2020: the mean over Italy drops by the injected 30 %.

    Orbits differ between the two days, so pixels are first averaged in 1-degree boxes and the
    boxes seen in both years are compared (a simple masked mean with matched sampling)."""
    countries = load_countries()
    box_means = {}
    for year in (2019, 2020):
        sums, counts = np.zeros(11 * 13), np.zeros(11 * 13)
        for path in sorted(small_archive.glob(f"{year}/03/25/*.nc")):
            ds = read_l2(path, bbox=(36, 47, 6, 19))  # all valid pixels, cloudy too
            lat, lon = ds["latitude"].values, ds["longitude"].values
            column = ds["nitrogendioxide_tropospheric_column"].values
            use = np.isfinite(column) & (country_of_points(lon, lat, countries) == "ITA")
            index = (np.floor(lat[use]) - 36) * 13 + (np.floor(lon[use]) - 6)
            sums += np.bincount(index.astype(int), column[use], minlength=sums.size)
            counts += np.bincount(index.astype(int), minlength=sums.size)
        with np.errstate(invalid="ignore"):
            box_means[year] = sums / counts
    both = np.isfinite(box_means[2019]) & np.isfinite(box_means[2020])
    assert both.sum() >= 10
    change = box_means[2020][both].mean() / box_means[2019][both].mean() - 1
    scenario = pd.read_csv(small_archive / "scenario.csv", index_col="iso3")
    assert scenario.loc["ITA", "reduction"] == pytest.approx(0.30)
    assert change == pytest.approx(-0.30, abs=0.05)


def test_truth_table(small_archive):
    truth = pd.read_csv(small_archive / "truth_daily.csv")
    assert set(truth["date"]) == {"2019-03-25", "2020-03-25"}
    day19 = truth[truth["date"] == "2019-03-25"].set_index("iso3")
    day20 = truth[truth["date"] == "2020-03-25"].set_index("iso3")
    assert (day19["reduction"] == 0).all()
    assert day20.loc["ITA", "reduction"] == pytest.approx(0.3)
    assert day20.loc["SWE", "reduction"] == 0
    # identical weather: the truth ratio is exactly the injected reduction
    ratio = day20["no2_truth"] / day19["no2_truth"] - 1
    assert ratio["ITA"] == pytest.approx(-0.3, abs=1e-9)
    assert ratio["SWE"] == pytest.approx(0.0, abs=1e-9)
    assert {"MLT", "LUX", "CYP"} <= set(day20.index)


def test_deterministic_for_a_seed(tmp_path):
    settings = SynthSettings(seed=5, lat_band=(45, 50), **DEMO_STEPS)
    day = date(2020, 3, 25)
    first = ArchiveGenerator(settings).write_day(tmp_path / "a", day)
    second = ArchiveGenerator(settings).write_day(tmp_path / "b", day)
    other = ArchiveGenerator(SynthSettings(seed=6, lat_band=(45, 50), **DEMO_STEPS)).write_day(tmp_path / "c", day)
    assert [p.name for p in first] == [p.name for p in second]
    for a, b, c in zip(first, second, other):
        col_a = read_l2(a)["nitrogendioxide_tropospheric_column"].values
        np.testing.assert_array_equal(col_a, read_l2(b)["nitrogendioxide_tropospheric_column"].values)
        assert not np.array_equal(col_a, read_l2(c)["nitrogendioxide_tropospheric_column"].values, equal_nan=True)


def _file_content(group, path="") -> dict:
    """Every attribute, dimension and variable (dtype, dimensions, attributes, values) of a
    netCDF group tree, by path."""
    content = {f"{path}@attrs": {k: repr(group.getncattr(k)) for k in group.ncattrs()},
               f"{path}@dims": {k: len(d) for k, d in group.dimensions.items()}}
    for name, var in group.variables.items():
        var.set_auto_maskandscale(False)
        content[f"{path}/{name}"] = (str(var.dtype), var.dimensions,
                                     {k: repr(var.getncattr(k)) for k in var.ncattrs()},
                                     np.asarray(var[...]).tolist())
    for name, child in group.groups.items():
        content.update(_file_content(child, f"{path}/{name}"))
    return content


def test_orbit_from_a_skeleton_equals_a_fresh_write(tmp_path):
    """Orbits are written into a copy of a skeleton built from the first orbit of the same
    shape: an orbit's file must not depend on which orbit built the skeleton."""
    from s5p_lockdown.synth import writer

    settings = SynthSettings(seed=2, lat_band=(40, 55), **DEMO_STEPS)
    day = date(2020, 3, 25)
    writer._SKELETONS.clear()
    after_others = ArchiveGenerator(settings).write_day(tmp_path / "a", day)
    assert len(after_others) >= 3
    last = after_others[-1]
    writer._SKELETONS.clear()  # the last orbit now builds the skeleton itself
    generator = ArchiveGenerator(settings)
    orbit = int(last.name.split("_")[-4])
    geometry = orbit_geometry.swath(orbit, day, lat_band=settings.lat_band, **DEMO_STEPS)
    fresh = writer.write_orbit(tmp_path / "b", geometry,
                               generator.orbit_fields(geometry, day, orbit,
                                                      generator.model.weather(day)),
                               writer.product_name(geometry, orbit))
    assert fresh.name == last.name
    with netCDF4.Dataset(last) as a, netCDF4.Dataset(fresh) as b:
        content_a, content_b = _file_content(a), _file_content(b)
    assert content_a.keys() == content_b.keys()
    differ = [k for k in content_a if content_a[k] != content_b[k]]
    assert differ == []
    # the skeleton's own orbit id appears nowhere in another orbit's file
    skeleton_id = after_others[0].stem
    assert skeleton_id not in repr(content_a)
    assert last.stem in content_a["/METADATA/ESA_METADATA/earth_explorer_header/fixed_header@attrs"]["File_Name"]


def test_scenario_file_round_trip_and_errors(tmp_path):
    from s5p_lockdown.errors import ConfigError

    path = tmp_path / "scenario.csv"
    Scenario.default().write(path)
    again = Scenario.read(path)
    assert again.reduction_on(date(2020, 3, 20))["ITA"] == pytest.approx(0.3)
    assert "SWE" not in again.reduction_on(date(2020, 3, 20))
    assert again.reduction_on(date(2019, 3, 20)) == {}
    path.write_text("iso3,reduction,start,end\nITA,1.5,2020-03-10,\n")
    with pytest.raises(ConfigError, match=r"scenario .*ITA: reduction must be in \[0, 1\)"):
        Scenario.read(path)


def test_cli_synth(tmp_path):
    from click.testing import CliRunner

    from s5p_lockdown.cli import cli

    result = CliRunner().invoke(
        cli, ["synth", str(tmp_path), "--start", "2020-03-02", "--end", "2020-03-02",
              "--lat-band", "40", "45", "--across-track-step", "15", "--along-track-step", "10"],
    )
    assert result.exit_code == 0, result.output
    files = list(tmp_path.glob("2020/03/02/S5P_RPRO_L2__NO2____2020030*.nc"))
    assert 3 <= len(files) <= 7
    assert (tmp_path / "scenario.csv").exists() and (tmp_path / "synth.json").exists()
    result = CliRunner().invoke(cli, ["synth", str(tmp_path), "--start", "2020-03-05", "--end", "2020-03-01"])
    assert result.exit_code != 0


def test_constant_truth_field_changes_only_by_the_lockdown():
    """``constant_truth``: no season and no wind dispersion, so the same place reads the same
    on days of different weather and seasons, until the lockdown reduction applies."""
    from s5p_lockdown.synth.field import TruthModel

    lon, lat = np.array([2.35, 10.0, -3.7]), np.array([48.86, 50.0, 40.4])
    countries = np.array(["FRA", "DEU", "ESP"])
    model = TruthModel(Scenario.default(), seed=2, constant_truth=True)
    winter = model.column(lon, lat, date(2019, 1, 10), countries)
    spring = model.column(lon, lat, date(2019, 4, 20), countries)
    np.testing.assert_allclose(winter, spring, rtol=1e-12)
    weathered = TruthModel(Scenario.default(), seed=2)
    assert not np.allclose(weathered.column(lon, lat, date(2019, 1, 10), countries),
                           weathered.column(lon, lat, date(2019, 4, 20), countries), rtol=0.01)
    locked = model.column(lon, lat, date(2020, 4, 20), countries)
    reduction = Scenario.default().reduction_of(countries, date(2020, 4, 20))
    np.testing.assert_allclose(locked, winter * (1 - reduction), rtol=1e-12)


def test_plume_inverse_law_ventilates_only_the_plumes_as_one_over_the_wind():
    """``dispersion_law="plume-inverse"`` with ``uniform_wind``: the day's one wind everywhere,
    far from every hotspot the column does not depend on it, and a plume's excess over that
    background is ``seasonal x clip(4.5 / speed, 0.3, 3)`` times its wind-free shape."""
    from s5p_lockdown.synth.field import FREE_TROPOSPHERE, TruthModel

    model = TruthModel(Scenario.default(), seed=3, dispersion_law="plume-inverse", uniform_wind=True)
    lon, lat = np.array([2.35, -20.0]), np.array([48.86, 40.0])  # Paris; the open Atlantic
    countries = np.array(["FRA", ""])
    speeds = []
    for day in (date(2019, 3, 3), date(2019, 3, 4)):
        u, v = model.weather(day).wind(np.linspace(-10, 30, 50), np.linspace(36, 70, 50))
        assert np.ptp(u) == 0 and np.ptp(v) == 0  # one wind a day
        speed = float(np.hypot(u[0], v[0]))
        speeds.append(speed)
        column = model.column(lon, lat, day, countries)
        background = FREE_TROPOSPHERE + model.boundary_layer(lat, lon)
        assert column[1] == pytest.approx(background[1], rel=1e-12)
        plume = model.anthropogenic(lon, lat)[0]
        factor = model.seasonal(day) * np.clip(4.5 / max(speed, 1.0), 0.3, 3.0)
        assert column[0] == pytest.approx(background[0] + factor * plume, rel=1e-12)
    assert speeds[0] != pytest.approx(speeds[1])
    with pytest.raises(ValueError, match="dispersion_law 'linear'"):
        TruthModel(Scenario.default(), dispersion_law="linear")


def test_cloud_shift_makes_one_year_sunnier():
    """``cloud_shift`` {2020: -0.6}: 2020's cloud driver is lower on every day, so more of
    Europe is clear in 2020 than on the same days of 2019 with the same weather otherwise."""
    from s5p_lockdown.synth.field import TruthModel

    lon, lat = np.meshgrid(np.arange(-10, 30, 1.0), np.arange(36, 70, 1.0))
    model = TruthModel(Scenario.default(), seed=1, same_weather_every_year=True, cloud_shift={2020: -0.6})
    for day in (date(2020, 3, 10), date(2020, 3, 25)):
        sunny = model.weather(day).cloud_fraction(lon, lat)
        usual = model.weather(day.replace(year=2019)).cloud_fraction(lon, lat)
        assert (sunny < usual).all()
        assert (usual < 0.35).mean() + 0.1 < (sunny < 0.35).mean()


def test_orbits_sample_different_latitudes():
    """The scanline clock is not locked to the orbit: the scanlines of different orbits cross a
    given latitude at different places (a fixed phase made every orbit sample the same
    latitudes, a bias for small regions)."""
    day = date(2020, 3, 25)
    offsets = []
    for orbit in orbit_geometry.orbits_crossing_day(day)[5:11]:
        g = orbit_geometry.swath(orbit, day, lat_band=(40, 60))
        centre = g.latitude[:, 225]
        row = np.argmin(np.abs(centre - 50))
        step = centre[row + 1] - centre[row]
        offsets.append(((centre[row] - 50) / step) % 1)  # where 50 N falls between scanlines
    assert np.ptp(offsets) > 0.5
    assert len({round(o, 2) for o in offsets}) == len(offsets)


def test_hotspot_truth_is_the_mean_over_its_disc():
    """A hotspot's true mean is taken on a 2 km lattice inside its radius: Bratislava's disc
    reaches into Austria, so Austria's lockdown lowers Bratislava's truth by the Austrian share of
    the disc (a 0.2 degree lattice had no point there), while Zurich's disc, all Swiss, is
    untouched."""
    table = pd.DataFrame({"reduction": [0.5], "start": [pd.Timestamp("2020-03-16")], "end": [pd.NaT]},
                         index=pd.Index(["AUT"], name="iso3"))
    generator = ArchiveGenerator(SynthSettings(seed=1, box=(43.0, 58.0, -2.0, 24.0), constant_truth=True),
                                 Scenario(table))
    truth = generator.daily_truth(date(2020, 3, 25)).set_index("iso3")
    ratio = truth["no2_truth"] / truth["no2_no_lockdown"] - 1
    lon, lat, countries, _, slices = generator._hotspot_lattice()
    bratislava = countries[slices["Bratislava"]]
    assert len(bratislava) > 100 and 0.05 < np.mean(bratislava == "AUT") < 0.5
    assert -0.5 < ratio["Bratislava"] < -0.01
    assert ratio["Zurich"] == 0 and ratio["AUT"] == pytest.approx(-0.5)


def test_the_workflows_generator_keeps_the_per_year_settings():
    """The workflow hands the synthetic settings over as JSON, whose keys are strings: both
    per-year settings reach the model keyed by the year (a sunnier 2020 was silently lost)."""
    import json
    from dataclasses import asdict

    from s5p_lockdown.daily import _generator
    from s5p_lockdown.synth.archive import SynthSettings

    settings = asdict(SynthSettings(wind_scale={2020: 1.45}, cloud_shift={2020: -0.6}))
    generator = _generator(json.dumps(settings, default=list), None)
    assert generator.model.wind_scale == {2020: 1.45}
    assert generator.model.cloud_shift == {2020: -0.6}
