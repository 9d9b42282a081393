"""Tests of s5p_lockdown.region_files (region boundary files through geopandas) and of the
sparse region masks of s5p_lockdown.regions."""

from __future__ import annotations

import geopandas
import numpy as np
import pytest
import shapely

from s5p_lockdown import regions
from s5p_lockdown.errors import ConfigError
from s5p_lockdown.gridding import GridSpec
from s5p_lockdown.region_files import RegionFileSpec, read_region_file
from s5p_lockdown.regions import BoundaryFileError, mask_codes, mask_entries

# Three regions in northern Italy (lon/lat degrees): two halves of a box around Milan and a
# triangle east of them, none crossing a border.
POLYGONS = {
    "IT01": shapely.box(8.8, 45.0, 9.6, 45.8),
    "IT02": shapely.box(9.6, 45.0, 10.4, 45.8),
    "IT03": shapely.Polygon([(11.0, 45.0), (12.0, 45.0), (11.5, 45.6)]),
}
DRIVERS = {"gpkg": "GPKG", "shp": "ESRI Shapefile", "geojson": "GeoJSON", "fgb": "FlatGeobuf"}


def _frame(polygons=POLYGONS, crs="EPSG:4326", **extra) -> geopandas.GeoDataFrame:
    frame = geopandas.GeoDataFrame(
        {"code": list(polygons), "label": [f"Region {c}" for c in polygons],
         "level": [2, 2, 3][: len(polygons)], "cntr": ["IT"] * len(polygons), **extra},
        geometry=list(polygons.values()), crs="EPSG:4326")
    return frame.to_crs(crs) if crs else frame.set_crs(None, allow_override=True)


def _write(frame, path):
    frame.to_file(path, driver=DRIVERS[path.suffix[1:]], engine="pyogrio")
    return path


@pytest.mark.parametrize("suffix", sorted(DRIVERS))
@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3035", "EPSG:32632"])
def test_every_format_and_crs_reads_back_in_lon_lat(tmp_path, suffix, crs):
    path = _write(_frame(crs=crs), tmp_path / f"regions.{suffix}")
    read = read_region_file(RegionFileSpec(str(path), id="code", name="label"))
    assert list(read.regions) == list(POLYGONS)
    assert [r.name for r in read.regions.values()] == [f"Region {c}" for c in POLYGONS]
    for code, polygon in POLYGONS.items():
        geometry = read.regions[code].geometry
        # reprojection there and back moves vertices by far less than a metre (1e-5 degree)
        assert shapely.symmetric_difference(geometry, polygon).area < 1e-6 * polygon.area + 1e-9
        # reprojection moves the vertices and adds none
        assert shapely.get_num_coordinates(geometry) == shapely.get_num_coordinates(polygon)
    assert set(read.country_of.values()) == {"ITA"}  # found from the shipped countries


def test_same_regions_in_any_format_give_the_same_digest(tmp_path):
    digests = {read_region_file(RegionFileSpec(str(_write(_frame(), tmp_path / f"r.{s}")), "code", "label")).digest
               for s in ("gpkg", "geojson", "fgb")}
    assert len(digests) == 1
    moved = _frame({**POLYGONS, "IT03": shapely.affinity.translate(POLYGONS["IT03"], 0.1)})
    other = read_region_file(RegionFileSpec(str(_write(moved, tmp_path / "moved.gpkg")), "code", "label"))
    assert other.digest not in digests


def test_filter_selects_rows_and_a_bad_filter_names_the_key(tmp_path):
    path = _write(_frame(), tmp_path / "regions.gpkg")
    read = read_region_file(RegionFileSpec(str(path), "code", "label", filter="level == 2"))
    assert list(read.regions) == ["IT01", "IT02"]
    with pytest.raises(BoundaryFileError, match=r"regions.filter 'levl == 2' fails"):
        read_region_file(RegionFileSpec(str(path), "code", "label", filter="levl == 2"))
    with pytest.raises(BoundaryFileError, match="no region passes regions.filter"):
        read_region_file(RegionFileSpec(str(path), "code", "label", filter="level == 9"))


def test_country_column_with_eurostat_codes(tmp_path):
    frame = _frame()
    frame["cntr"] = ["EL", "UK", "ITA"]
    path = _write(frame, tmp_path / "regions.gpkg")
    read = read_region_file(RegionFileSpec(str(path), "code", "label", country="cntr"))
    assert read.country_of == {"IT01": "GRC", "IT02": "GBR", "IT03": "ITA"}
    frame["cntr"] = ["IT", "XX", "IT"]
    _write(frame, path)
    with pytest.raises(BoundaryFileError, match="region IT02: unknown country code 'XX'"):
        read_region_file(RegionFileSpec(str(path), "code", "label", country="cntr"))


def test_repeated_ids_are_a_clear_error(tmp_path):
    frame = _frame()
    frame["code"] = ["IT01", "IT02", "IT01"]
    path = _write(frame, tmp_path / "regions.gpkg")
    with pytest.raises(BoundaryFileError, match=r"regions.gpkg: region ids repeat in column 'code': IT01"):
        read_region_file(RegionFileSpec(str(path), "code", "label"))


def test_missing_crs_is_a_clear_error(tmp_path):
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        path = _write(_frame(crs=None), tmp_path / "regions.shp")
    assert not path.with_suffix(".prj").exists()
    with pytest.raises(BoundaryFileError, match=r"regions.shp: has no coordinate reference system"):
        read_region_file(RegionFileSpec(str(path), "code", "label"))


def test_invalid_geometry_is_repaired_and_logged(tmp_path, caplog):
    bowtie = shapely.Polygon([(9.0, 45.0), (10.0, 46.0), (10.0, 45.0), (9.0, 46.0)])
    assert not bowtie.is_valid
    path = _write(_frame({"IT01": bowtie, "IT02": POLYGONS["IT02"]}), tmp_path / "regions.gpkg")
    read = read_region_file(RegionFileSpec(str(path), "code", "label"))
    repaired = read.regions["IT01"].geometry
    assert read.repaired == ["IT01"] and repaired.is_valid
    assert repaired.area == pytest.approx(0.5)  # both triangles of the bow tie kept
    assert "region IT01: invalid geometry (Self-intersection" in caplog.text


def test_geometry_that_cannot_be_repaired_is_named(tmp_path):
    collapsed = shapely.Polygon([(9.0, 45.0), (10.0, 45.0), (9.5, 45.0)])  # zero area: a line
    path = _write(_frame({"IT01": POLYGONS["IT01"], "IT09": collapsed}), tmp_path / "regions.gpkg")
    with pytest.raises(BoundaryFileError, match="region IT09: invalid geometry .* no polygonal part"):
        read_region_file(RegionFileSpec(str(path), "code", "label"))


def test_points_and_missing_columns_and_files_are_named(tmp_path):
    path = _write(_frame({"IT01": shapely.Point(9, 45)}), tmp_path / "points.gpkg")
    with pytest.raises(BoundaryFileError, match="region IT01: geometry must be a Polygon or MultiPolygon, not Point"):
        read_region_file(RegionFileSpec(str(path), "code", "label"))
    good = _write(_frame(), tmp_path / "regions.gpkg")
    with pytest.raises(BoundaryFileError, match=r"no column 'NUTS_ID' \(regions.id\); columns: code, label"):
        read_region_file(RegionFileSpec(str(good), "NUTS_ID", "label"))
    with pytest.raises(BoundaryFileError, match="nothing.gpkg: no such region file"):
        read_region_file(RegionFileSpec(str(tmp_path / "nothing.gpkg"), "code", "label"))
    (tmp_path / "junk.gpkg").write_text("not a geopackage")
    with pytest.raises(BoundaryFileError, match="junk.gpkg: cannot read as a region boundary file"):
        read_region_file(RegionFileSpec(str(tmp_path / "junk.gpkg"), "code", "label"))
    with pytest.raises(ConfigError, match=r"regions: missing key\(s\) \['name'\]"):
        RegionFileSpec.from_config({"file": "x.gpkg", "id": "code"})


def test_sparse_masks_equal_dense_masks_and_are_cached(tmp_path, monkeypatch):
    grid = GridSpec.from_bbox(44.0, 47.0, 8.0, 13.0, 0.25)
    read = read_region_file(RegionFileSpec(str(_write(_frame(), tmp_path / "r.gpkg")), "code", "label"))
    dense = regions.country_fraction_masks(grid, read.regions)
    sparse = regions.load_or_build_region_masks(grid, tmp_path / "masks", read)
    assert mask_codes(sparse) == mask_codes(dense) == list(POLYGONS)
    for got, expected in zip(mask_entries(sparse), mask_entries(dense)):
        np.testing.assert_array_equal(got, expected)
    calls = []
    monkeypatch.setattr(regions, "sparse_fraction_masks", lambda *a, **k: calls.append(a))
    again = regions.load_or_build_region_masks(grid, tmp_path / "masks", read)
    assert calls == [] and mask_codes(again) == list(POLYGONS)
    np.testing.assert_array_equal(again["fraction"].values, sparse["fraction"].values)


def test_attribution_and_cell_tables_are_the_same_with_sparse_masks(orbit_file, tmp_path):
    """Demo regions of a real-sized region set: attributing an orbit and building the cell
    tables from sparse masks gives exactly what the dense masks give."""
    from datetime import date

    from s5p_lockdown.attribution import attribute_days
    from s5p_lockdown.cells import cell_tables
    from s5p_lockdown.regions import RegionSet, load_countries
    from s5p_lockdown.synth.regions import voronoi_regions

    path = tmp_path / "demo.fgb"
    voronoi_regions(load_countries(), 30, seed=4, iso3_list=["DEU", "POL", "CZE"]).to_file(path)
    read = read_region_file(RegionFileSpec(str(path), "region_id", "name", country="iso3"))
    grid = GridSpec.from_bbox(44.0, 56.0, 0.0, 25.0, 0.25)
    dense = RegionSet(read.regions, regions.country_fraction_masks(grid, read.regions))
    sparse = regions.region_set("regions", grid, tmp_path / "masks", regions=read)
    out = {name: tmp_path / name / "2020-W13.nc" for name in ("dense", "sparse")}
    attribute_days({date(2020, 3, 25): [orbit_file]}, {"dense": dense, "sparse": sparse}, out)
    with_dense = cell_tables([out["dense"]], dense.masks)
    with_sparse = cell_tables([out["sparse"]], sparse.masks)
    assert list(with_sparse) == list(read.regions) == sparse.codes
    assert sum(t.weight.sum() for t in with_sparse.values()) > 100  # pixels were attributed
    for code, table in with_dense.items():
        np.testing.assert_array_equal(with_sparse[code].area, table.area)
        np.testing.assert_array_equal(with_sparse[code].weight, table.weight)
        np.testing.assert_array_equal(with_sparse[code].weighted_value, table.weighted_value)
    assert read.country_of == dict(zip(read.regions, [c.split("-")[0] for c in read.regions]))
