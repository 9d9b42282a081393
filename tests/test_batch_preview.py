"""Tests of the batch preview (s5p_lockdown.batch.viewport and .preview), in-process.

The preview is checked against the batch: the same function run by the batch runner (as an
HTCondor job runs it) at full resolution, aggregated over each preview cell with the batch's
own weights, gives the preview's value; without weights every preview value lies between the
smallest and largest batch values of its cell. The browser tests are in
``test_batch_preview_browser.py``.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from s5p_lockdown.batch import BatchFunctionError, prepare, runner, write_grid
from s5p_lockdown.batch.render import colorbar
from s5p_lockdown.batch.preview import (
    PreviewMap,
    combine,
    image_value,
    nice_range,
    parameter_widgets,
)
from s5p_lockdown.batch.render import GridImage, read_grid
from s5p_lockdown.batch.viewport import (
    OutsideView,
    PreviewCancelled,
    PreviewContext,
    Viewport,
    current_viewport,
    fit_to_view,
    preview_grid,
    previewing,
)
from s5p_lockdown.gridding import GridAccumulator, GridSpec
from s5p_lockdown.gridding.schema import VALUE
from s5p_lockdown.io import read_l2
from s5p_lockdown.synth.archive import ArchiveGenerator, SynthSettings

BOX = (45.0, 56.0, 2.0, 18.0)  # south, north, west, east
FULL_RESOLUTION = 0.05
#: the jobs' environment for ``no2_grid``: a function of this module travels by reference, so
#: the jobs must find the module (else submit refuses it)
TESTS_ON_PATH = {"PYTHONPATH": str(Path(__file__).resolve().parent)}


def no2_grid(input_path, output_path, *, qa_threshold=0.75, resolution=FULL_RESOLUTION):
    """The documented pattern: grid over BOX, restricted to the view when previewed."""
    grid = preview_grid(GridSpec.from_bbox(*BOX, resolution))
    accumulator = GridAccumulator(grid, threads=1)
    accumulator.add_dataset(read_l2(input_path, bbox=grid.bounds), qa_threshold)
    write_grid(accumulator.finalize(), output_path, inputs=[input_path])


@pytest.fixture(scope="module")
def orbits(tmp_path_factory) -> list[Path]:
    """Synthetic orbits of one day at a quarter of the native pixel counts, over 40-60 N."""
    settings = SynthSettings(seed=5, across_track_step=2, along_track_step=2,
                             lat_band=(40.0, 60.0))
    files = ArchiveGenerator(settings).generate(tmp_path_factory.mktemp("orbits"),
                                                [date(2020, 3, 25)])
    return sorted(files)


@pytest.fixture(scope="module")
def central_orbit(orbits) -> Path:
    """The orbit with the most valid pixels in BOX."""
    def valid(path):
        return int(np.isfinite(read_l2(path, bbox=BOX, qa_threshold=0.75)[
            "nitrogendioxide_tropospheric_column"].values).sum())
    return max(orbits, key=valid)


# --------------------------------------------------------------------------------------------
# Viewport helpers
# --------------------------------------------------------------------------------------------
def test_viewport_grid_nests_in_the_full_grid_at_about_two_pixels_per_cell():
    full = GridSpec.from_bbox(*BOX, 0.05)
    # 800 px showing 16 degrees: 0.02 deg per pixel, 0.04 per 2 pixels -> 1 cell (capped)
    assert Viewport.from_map_state(40, 60, 2, 18, 800).factor(full) == 1
    view = Viewport.from_map_state(47.03, 51.97, 4.01, 14.0, 100)  # 0.2 deg -> 4 cells
    assert view.resolution == pytest.approx(0.19980)
    grid = view.grid(full)
    assert grid.lat_edge_step == grid.lon_edge_step == pytest.approx(0.2)
    # first edges on multiples of 4 full cells from the full grid's first edges, covering
    # the view, inside the full grid
    for first, full_first in ((grid.lat_edge_offset, 45.0), (grid.lon_edge_offset, 2.0)):
        assert ((first - full_first) / 0.2) == pytest.approx(round((first - full_first) / 0.2))
    south, north, west, east = grid.bounds
    assert south <= 47.03 and north >= 51.97 and west <= 4.01 and east >= 14.0
    assert grid.bounds == pytest.approx((47.0, 52.0, 4.0, 14.0))
    assert set(np.round(full.lat_edges, 9)) >= set(np.round(grid.lat_edges, 9))
    # a view reaching past the grid keeps only whole merged cells inside it
    edge = Viewport(50.0, 70.0, 10.0, 30.0, 0.15).grid(full)  # k = 3
    assert edge.bounds == pytest.approx((49.95, 55.95, 9.95, 17.9))
    with pytest.raises(OutsideView, match="no 0.05 degree cell in the view"):
        Viewport(60.0, 70.0, 2.0, 18.0, 0.05).grid(full)
    with pytest.raises(ValueError, match="map width must be positive"):
        Viewport.from_map_state(0, 1, 0, 1, 0)


def test_helpers_outside_and_inside_a_preview():
    full = GridSpec.from_bbox(*BOX, 0.05)
    assert preview_grid(full) is full and current_viewport() is None  # in a batch job
    view = Viewport(47.0, 52.0, 4.0, 14.0, 0.2)
    with previewing(PreviewContext(view)) as context:
        assert current_viewport() is view
        assert preview_grid(full) == view.grid(full)
        assert context.grids == [(full, view.grid(full))]
        context.cancelled.set()
        with pytest.raises(PreviewCancelled):
            preview_grid(full)
        with pytest.raises(PreviewCancelled):
            current_viewport()
    assert current_viewport() is None


def test_fit_to_view_crops_and_averages_finite_values():
    values = np.arange(48.0).reshape(6, 8)  # north first: row 5 is the southern one
    values[5, 0] = np.nan
    image = GridImage("v", "u", values, ((0.0, 0.0), (6.0, 8.0)))  # 1 degree cells
    # 2 x 2 blocks from the south-west corner; the view covers rows 0-5 and columns 0-7
    fitted = fit_to_view(image, Viewport(0.5, 5.5, 0.2, 7.9, 2.0))
    assert fitted.bounds == ((0.0, 0.0), (6.0, 8.0))
    np.testing.assert_allclose(fitted.values, [
        [4.5, 6.5, 8.5, 10.5],
        [20.5, 22.5, 24.5, 26.5],
        [np.mean([32, 33, 41]), 38.5, 40.5, 42.5]])
    # 3 x 3 blocks: only whole blocks from the south-west corner (the view is 1-5 N, 3-8 E)
    three = fit_to_view(image, Viewport(1.0, 5.0, 3.5, 8.0, 3.0))
    assert three.bounds == ((0.0, 3.0), (6.0, 6.0))
    np.testing.assert_allclose(three.values, [[np.mean(values[:3, 3:6])],
                                              [np.mean(values[3:, 3:6])]])
    cropped = fit_to_view(image, Viewport(1.5, 3.5, 2.5, 4.5, 1.0))
    assert cropped.bounds == ((1.0, 2.0), (4.0, 5.0))
    np.testing.assert_array_equal(cropped.values, values[2:5, 2:5])
    with pytest.raises(OutsideView):
        fit_to_view(image, Viewport(10.0, 12.0, 0.0, 8.0, 1.0))


def test_value_lookup_and_combining_files():
    image = GridImage("v", "u", np.array([[1.0, np.nan], [3.0, 4.0]]), ((0.0, 0.0), (2.0, 2.0)))
    assert image_value(image, 1.5, 0.5) == 1.0 and image_value(image, 0.5, 1.5) == 4.0
    assert np.isnan(image_value(image, 1.5, 1.5)) and image_value(image, 2.5, 0.5) is None
    other = GridImage("v", "u", np.array([[3.0, 2.0], [np.nan, 6.0]]), image.bounds)
    np.testing.assert_array_equal(combine([image, other]).values, [[2.0, 2.0], [3.0, 5.0]])
    with pytest.raises(ValueError, match="different grids"):
        combine([image, GridImage("v", "u", np.ones((1, 1)), ((0, 0), (1, 1)))])


def test_colorbar_labels_large_values_in_a_power_of_ten():
    bar = colorbar("preview: NO2", "molecules cm-2", 2.7e15, 9.1e15)
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", bar.widget.value)
    assert labels == ["2.7", "3.8", "4.8", "5.9", "7.0", "8.0", "9.1",
                      "preview: NO2 (×1e15 molecules cm-2)"]
    small = re.findall(r"<text[^>]*>([^<]*)</text>",
                       colorbar("v", "mol m-2", 0.5, 2.0).widget.value)
    assert small[0] == "0.5" and small[-2:] == ["2.0", "v (mol m-2)"]


def test_nice_colour_ranges():
    assert nice_range(2.715e14, 5.92e15) == pytest.approx((2e14, 6e15))
    assert nice_range(-0.013, 0.4) == pytest.approx((-0.02, 0.4))
    assert nice_range(1.0, 1.0) == (1.0, 1.0)
    assert nice_range(0.0, 0.0) == (0.0, 0.0)
    low, high = nice_range(2.715e14, 5.92e15)
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", colorbar("NO2", "u", low, high).widget.value)
    assert (labels[0], labels[-2]) == ("0.2", "6.0")


def test_parameter_widgets_from_the_signature_or_controls():
    def f(input_path, output_path, *, box, qa_threshold=0.75, mode="mean", fill=True,
          items=(1, 2)):
        pass

    auto = parameter_widgets(f, {"box": (0, 1, 0, 1)}, None)
    assert list(auto) == ["qa_threshold", "mode", "fill"]  # simple defaults only
    assert [type(x).__name__ for x in auto.values()] == ["FloatSlider", "Text", "Checkbox"]
    chosen = parameter_widgets(f, {}, {"qa_threshold": (0.0, 1.0, 0.05),
                                       "mode": ["mean", "max"]})
    slider = chosen["qa_threshold"]
    assert (slider.min, slider.max, slider.step, slider.value) == (0.0, 1.0, 0.05, 0.75)
    assert chosen["mode"].options == ("mean", "max") and chosen["mode"].value == "mean"
    with pytest.raises(ValueError, match="no parameter 'qa'"):
        parameter_widgets(f, {}, {"qa": (0.0, 1.0)})
    with pytest.raises(ValueError, match="both fixed"):
        parameter_widgets(f, {"mode": "max"}, {"mode": ["mean", "max"]})


def test_preview_map_refuses_a_function_it_cannot_call(orbits, tmp_path):
    def needs_box(input_path, output_path, *, box):
        pass

    with pytest.raises(BatchFunctionError, match="cannot be called as f"):
        PreviewMap(needs_box, orbits, tmp_path / "out")


# --------------------------------------------------------------------------------------------
# Scheduling: debounced, one at a time, cancellable
# --------------------------------------------------------------------------------------------
CALLS, CANCELLED, RUNNING, RUNNING_LOCK = [], [], {"now": 0, "max": 0}, threading.Lock()


def slow(input_path, output_path, *, level=1.0):
    """0.4 s of work that checks for a newer request every 10 ms; records its calls (module
    level, so that it pickles by reference with its records)."""
    with RUNNING_LOCK:
        RUNNING["now"] += 1
        RUNNING["max"] = max(RUNNING["max"], RUNNING["now"])
    try:
        view = current_viewport()
        CALLS.append((view, level))
        for _ in range(40):
            time.sleep(0.01)
            try:
                current_viewport()
            except PreviewCancelled:
                CANCELLED.append((view, level))
                raise
        grid = GridSpec.from_bbox(view.south, view.north, view.west, view.east, view.resolution)
        accumulator = GridAccumulator(grid, threads=1)
        accumulator.add_points(np.array([level]), np.array([0.1]),
                               np.array([view.south + view.resolution / 2]),
                               np.array([view.west + view.resolution / 2]))
        write_grid(accumulator.finalize(), output_path)
    finally:
        with RUNNING_LOCK:
            RUNNING["now"] -= 1


def test_previews_are_debounced_run_one_at_a_time_and_cancelled(orbits, tmp_path):
    calls, cancelled, running = CALLS, CANCELLED, RUNNING
    preview = PreviewMap(slow, orbits, tmp_path / "out", debounce=0.2)
    try:
        views = [Viewport(40.0 + i, 44.0 + i, 0.0, 8.0, 1.0) for i in range(6)]
        for view in views[:5]:  # a burst within the debounce: only the last one runs
            preview._request(view)
            time.sleep(0.02)
        preview.wait_idle()
        assert [c[0] for c in calls] == [views[4]] and cancelled == []
        assert preview.current.viewport == views[4]
        preview._request(views[5])            # starts, then is superseded while running
        time.sleep(0.35)
        preview.controls["level"].value = 2.0  # a parameter change is a new request
        preview.wait_idle()
        assert cancelled == [(views[5], 1.0)]
        assert calls[-1] == (views[5], 2.0) and preview.current.params == {"level": 2.0}
        assert running["max"] == 1
        assert preview.current.value_at(45.5, 0.5) == 2.0
        preview._interaction(type="mousemove", coordinates=[45.5, 0.5])  # as from the map
        assert preview.readout.value.startswith("45.500° N, 0.500° E: 2 ")
        assert preview.readout.value.endswith("(preview)")
        preview._interaction(type="mousemove", coordinates=[45.5, 1.5])
        assert preview.readout.value == "45.500° N, 1.500° E: no data (preview)"
        assert "level=2.0" in preview.status.value
    finally:
        preview.close()


def test_a_failing_function_is_reported_not_raised(orbits, tmp_path):
    def broken(input_path, output_path, *, qa_threshold=0.75):
        raise ValueError(f"cannot read {Path(input_path).name}")

    preview = PreviewMap(broken, orbits, tmp_path / "out")
    try:
        with pytest.raises(RuntimeError, match="preview failed: ValueError: cannot read S5P_"):
            preview.show(Viewport(45.0, 50.0, 0.0, 10.0, 0.1))
        assert "cannot read S5P_" in preview.status.value and preview.overlay is None
        with pytest.raises(RuntimeError, match="nothing to preview here"):
            PreviewMap(no2_grid, orbits, tmp_path / "out2").show(
                Viewport(-10.0, 0.0, 0.0, 10.0, 0.1))
    finally:
        preview.close()


# --------------------------------------------------------------------------------------------
# The preview agrees with the batch output where they overlap
# --------------------------------------------------------------------------------------------
def test_preview_agrees_with_the_batch_output(central_orbit, tmp_path):
    layout = prepare(no2_grid, [central_orbit], tmp_path / "out",
                     params={"qa_threshold": 0.6}, environment=TESTS_ON_PATH)
    assert runner.main([str(layout.root), "local", "0"]) == 0  # what a job runs
    output = tmp_path / "out" / (central_orbit.stem + ".nc")

    preview = PreviewMap(no2_grid, [central_orbit], tmp_path / "out",
                         controls={"qa_threshold": (0.0, 1.0, 0.05)})
    try:
        preview.controls["qa_threshold"].value = 0.6
        view = Viewport.from_map_state(46.1, 54.9, 3.1, 16.9, 69)  # 0.4 deg: 8 x 8 cells
        result = preview.show(view)
    finally:
        preview.close()
    k = 8
    assert result.grids[0][1].lat_edge_step == pytest.approx(k * FULL_RESOLUTION)
    (south, west), (north, east) = result.image.bounds
    with xr.open_dataset(output) as ds:
        ds = ds.isel(time=0).sel(latitude=slice(south, north), longitude=slice(west, east))
        fine = ds[VALUE].values[::-1]  # north first, like the preview
        weight = ds["weight"].values[::-1]
    rows, columns = result.image.values.shape
    assert fine.shape == (rows * k, columns * k)

    def blocks(a):
        return a.reshape(rows, k, columns, k)

    fine_weight = np.where(np.isfinite(fine), weight, 0.0)
    total = blocks(fine_weight).sum(axis=(1, 3))
    with np.errstate(invalid="ignore"):
        weighted = blocks(np.nan_to_num(fine) * fine_weight).sum(axis=(1, 3)) / total
    coarse = result.image.values
    seen = np.isfinite(coarse)
    assert seen.sum() > 100
    np.testing.assert_array_equal(seen, total > 0)
    # the same binning: the batch cells' weighted means over each preview cell
    np.testing.assert_allclose(coarse[seen], weighted[seen], rtol=1e-9)
    # and, without weights, within the spread of the batch cells it covers
    with np.errstate(invalid="ignore"):
        low = np.fmin.reduce(blocks(fine), axis=(1, 3))
        high = np.fmax.reduce(blocks(fine), axis=(1, 3))
    assert (coarse[seen] >= low[seen] - 1e-12 * abs(low[seen])).all()
    assert (coarse[seen] <= high[seen] + 1e-12 * abs(high[seen])).all()
    assert (high - low)[seen].max() > 0  # the comparison is not between constants
    # the read-out gives the drawn value
    lat, lon = south + 0.5 * k * FULL_RESOLUTION, west + 0.5 * k * FULL_RESOLUTION
    assert result.value_at(lat, lon) == pytest.approx(coarse[-1, 0], nan_ok=True)
    # a function that ignores the helpers previews the same cells, averaged without weights
    full = read_grid(output)
    fitted = fit_to_view(full, view)
    assert np.allclose(fitted.bounds, result.image.bounds)
    block_sums = blocks(np.nan_to_num(fine)).sum(axis=(1, 3))
    block_counts = blocks(np.isfinite(fine)).sum(axis=(1, 3))
    unweighted = block_sums / np.maximum(block_counts, 1)
    np.testing.assert_allclose(fitted.values[seen], unweighted[seen], rtol=1e-12)


def test_submit_hands_the_map_to_the_monitor(central_orbit, tmp_path):
    """Every output exists already, so ``submit`` submits nothing (all files skipped) and
    needs no pool: the monitor draws the outputs on the preview's map, the preview goes, and
    the read-out gives the outputs' values."""
    layout = prepare(no2_grid, [central_orbit], tmp_path / "out", environment=TESTS_ON_PATH)
    assert runner.main([str(layout.root), "local", "0"]) == 0
    preview = PreviewMap(no2_grid, [central_orbit], tmp_path / "out")
    shown = preview.show(Viewport.from_map_state(46.1, 54.9, 3.1, 16.9, 69))
    preview_layers = [layer.name for layer in preview.map.layers]
    bar = preview.colorbar
    assert preview_layers == ["countries", "preview"] and bar in preview.map.controls
    job = preview.submit(environment=TESTS_ON_PATH)
    assert job.cluster_ids == [] and job.status().counts["skipped"] == 1
    preview.monitor.stop()
    assert preview.monitor.map is preview.map
    assert preview.map not in preview.monitor.widget.children  # shown once, above the monitor
    assert list(preview.monitor_box.children) == [preview.monitor.widget]
    assert [layer.name for layer in preview.map.layers] == ["countries", central_orbit.stem[:40]]
    assert preview.overlay is None and bar not in preview.map.controls
    # one colour bar, the monitor's, for the outputs (on the preview's range)
    outputs_bar = preview.monitor.colorbar
    assert outputs_bar in preview.map.controls and preview.colorbar is None
    assert sum(isinstance(c, type(bar)) and "svg" in c.widget.value for c in preview.map.controls) == 1
    assert "preview" not in outputs_bar.widget.value
    assert "tropospheric_NO2_column_number_density (" in outputs_bar.widget.value
    assert (preview.monitor.vmin, preview.monitor.vmax) == (preview.vmin, preview.vmax)
    assert preview.submit_button.disabled and preview.controls["qa_threshold"].disabled
    with pytest.raises(RuntimeError, match="already submitted"):
        preview.submit()
    with pytest.raises(RuntimeError, match="closed"):
        preview.show(shown.viewport)
    # the read-out now reads the output at full resolution
    output = read_grid(tmp_path / "out" / (central_orbit.stem + ".nc"))
    rows, columns = np.nonzero(np.isfinite(output.values))
    (south, west), (north, _) = output.bounds
    lat = north - (rows[0] + 0.5) * FULL_RESOLUTION
    lon = west + (columns[0] + 0.5) * FULL_RESOLUTION
    value, units, source = preview.value_at(lat, lon)
    assert value == output.values[rows[0], columns[0]] and source == central_orbit.stem + ".nc"
    assert units == output.units
