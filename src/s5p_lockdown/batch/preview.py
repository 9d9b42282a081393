"""Prototype a batch function on what the map shows, then run it on every file on HTCondor.

``PreviewMap(f, inputs, output_dir, ...)`` displays (``display(preview)`` or as a cell's last
expression):

* an ipyleaflet map in EPSG:4326 without basemap tiles (works offline, as the
  :class:`~s5p_lockdown.batch.gui.BatchMonitor`'s): the shipped country outlines and one
  ImageOverlay with the preview, a colour bar, and a read-out of the value under the cursor;
* a widget for each simple parameter of ``f`` (numbers, flags, text, choices; see
  ``controls``) and a choice of the input files previewed (one or a few);
* a status line (what was computed, at which cell size, in how long; or the error of ``f``);
* a button *Run on all N files* (and :meth:`PreviewMap.submit`): :func:`~s5p_lockdown.batch.submit`
  of ``f`` with the parameters as set, over every input, and a
  :class:`~s5p_lockdown.batch.gui.BatchMonitor` drawing on the same map, whose full-resolution
  outputs replace the preview as they arrive (on the same colour range).

How a preview is computed: ``f(input_path, output_path, **params)`` is called on each previewed
file, with a temporary ``output_path``, inside :func:`s5p_lockdown.batch.viewport.previewing`,
so that :func:`~s5p_lockdown.batch.viewport.preview_grid` (and
:func:`~s5p_lockdown.batch.viewport.current_viewport`) in ``f`` restrict the work to the view at
about two screen pixels per cell. The output's variable (``variable``, default the first one on
latitude/longitude) is read, fitted to the view
(:func:`~s5p_lockdown.batch.viewport.fit_to_view`) and, with several files, averaged (mean of
the files' finite values in each cell). The map's view is known once it is displayed in a
browser; before that (or from code), :meth:`PreviewMap.show` previews any
:class:`~s5p_lockdown.batch.viewport.Viewport`.

Scheduling: every change (pan, zoom, parameter, files) is a request; a request is computed
once no newer one came for ``debounce`` seconds, by one worker thread, so two previews never
run at once. A newer request cancels the running preview: the helpers in ``f`` raise
:class:`~s5p_lockdown.batch.viewport.PreviewCancelled`, no further file is started, and its
result is never drawn (a Python function cannot be interrupted elsewhere: code of ``f`` that
runs between two helper calls finishes first).

Colours: ``vmin``/``vmax`` if given, else the 2nd-98th percentile of the first preview with
data widened to two significant digits (:func:`nice_range`), kept afterwards (the colour bar
then means the same thing as the map changes) and given to the monitor.
"""

from __future__ import annotations

import html
import inspect
import math
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
from ipyleaflet import GeoJSON, ImageOverlay, Map, WidgetControl, projections
from ipywidgets.widgets.interaction import interactive

from s5p_lockdown.batch.gui import BatchMonitor, countries_geojson
from s5p_lockdown.batch.render import GridImage, colorbar, read_grid
from s5p_lockdown.batch.submit import BatchJob, resolve_inputs, serialise_function, submit
from s5p_lockdown.batch.viewport import (
    OutsideView,
    PreviewCancelled,
    PreviewContext,
    Viewport,
    fit_to_view,
    previewing,
)

#: Default types of ``f``'s keyword defaults that get a widget without being named in
#: ``controls``.
SIMPLE_TYPES = (bool, int, float, str)


@dataclass
class Preview:
    """One computed preview: the drawn image, what it was computed from, and how long it took."""

    image: GridImage
    """Values (north first) and bounds of the preview, in the output variable's units."""
    viewport: Viewport
    params: dict[str, Any]
    files: list[Path]
    seconds: float
    """Wall time of the computation (the user's function, reading and drawing)."""
    grids: list = field(default_factory=list)
    """(full grid, preview grid) pairs from :func:`~s5p_lockdown.batch.viewport.preview_grid`."""

    def value_at(self, lat: float, lon: float) -> float | None:
        """The preview's value in the cell holding (``lat``, ``lon``) (degrees), NaN for a cell
        without data, None outside the preview."""
        return image_value(self.image, lat, lon)


def nice_range(vmin: float, vmax: float) -> tuple[float, float]:
    """(``vmin``, ``vmax``) widened to two significant digits of the larger magnitude (so the
    colour bar's end labels are short and exact), e.g. (2.715e14, 5.92e15) → (2e14, 6e15)."""
    largest = max(abs(vmin), abs(vmax))
    if largest == 0:
        return vmin, vmax
    step = 10.0 ** (math.floor(math.log10(largest)) - 1)
    return math.floor(vmin / step) * step, math.ceil(vmax / step) * step


def image_value(image: GridImage, lat: float, lon: float) -> float | None:
    """Value of ``image`` in the cell holding (``lat``, ``lon``) (degrees), None outside the
    image; a point on the edge between two cells is in the southern, or the eastern, one."""
    (south, west), (north, east) = image.bounds
    rows, columns = image.values.shape
    if not (south <= lat <= north and west <= lon <= east):
        return None
    row = min(rows - 1, int((north - lat) / (north - south) * rows))
    column = min(columns - 1, int((lon - west) / (east - west) * columns))
    return float(image.values[row, column])


def parameter_widgets(function: Callable, params: dict, controls: dict | None
                      ) -> dict[str, w.ValueWidget]:
    """One widget per tunable keyword parameter of ``function``.

    ``controls`` maps a parameter to an ipywidgets abbreviation (as for
    ``ipywidgets.interact``: ``(min, max, step)`` for a slider, a list for a dropdown, a
    value, or a widget); its default is the function's default. Without ``controls``, every
    keyword parameter with a default of a :data:`SIMPLE_TYPES` type gets one. Parameters in
    ``params`` are fixed and never get a widget.
    """
    signature = inspect.signature(function)
    defaults = {name: p.default for name, p in signature.parameters.items()
                if p.default is not inspect.Parameter.empty}
    if controls is None:
        controls = {name: value for name, value in defaults.items()
                    if isinstance(value, SIMPLE_TYPES) and name not in params}
    widgets = {}
    for name, abbreviation in controls.items():
        if name in params:
            raise ValueError(f"parameter {name!r} is both fixed (params) and tuned (controls)")
        if name not in signature.parameters:
            raise ValueError(f"{getattr(function, '__name__', function)} has no parameter "
                             f"{name!r} (controls)")
        default = defaults.get(name, inspect.Parameter.empty)
        widget = interactive.widget_from_abbrev(abbreviation, default)
        if widget is None:
            raise ValueError(f"controls[{name!r}] = {abbreviation!r}: no widget for this "
                             "abbreviation (give (min, max, step), a list of choices, a "
                             "value or a widget)")
        widget.description = name
        widget.style = {"description_width": "initial"}
        widgets[name] = widget
    return widgets


class PreviewMap:
    """An interactive preview of a batch function (see the module docstring).

    Parameters
    ----------
    function
        ``f(input_path, output_path, **params)``, as for :func:`~s5p_lockdown.batch.submit`;
        it writes a netCDF grid on latitude/longitude.
    inputs
        Every input file (paths, glob patterns or a list of them, see
        :func:`~s5p_lockdown.batch.resolve_inputs`).
    output_dir
        Where :meth:`submit` writes the full-resolution outputs.
    preview
        The input files previewed at first: indices into ``inputs``, paths or file names
        (default: the first file). The user can choose others in the widget.
    params
        Fixed keyword arguments of ``function``.
    controls
        Tuned keyword arguments (see :func:`parameter_widgets`).
    variable
        Output variable drawn (default: the first one on latitude/longitude).
    vmin, vmax
        Colour range in the variable's units (default: from the first preview with data).
    debounce
        Seconds without a new change before a preview starts.
    submit_options
        More keyword arguments of :func:`~s5p_lockdown.batch.submit` (``name``,
        ``environment``, ``files_per_job``, ...), used by the button and :meth:`submit`.
    countries, center, zoom
        Outlines drawn (ISO3 codes, default all) and the initial view (degrees, Leaflet zoom
        in EPSG:4326).
    """

    def __init__(self, function: Callable, inputs, output_dir: str | Path, *,
                 preview: Iterable[int | str | Path] | int | str | Path = (0,),
                 params: dict | None = None, controls: dict | None = None,
                 variable: str | None = None, vmin: float | None = None,
                 vmax: float | None = None, debounce: float = 0.25,
                 submit_options: dict | None = None,
                 countries: Iterable[str] | None = None,
                 center: tuple[float, float] = (51.0, 10.0), zoom: int = 5):
        self.function = function
        self.inputs = resolve_inputs(inputs)
        self.output_dir = Path(output_dir)
        self.fixed_params = dict(params or {})
        self.variable = variable
        self.vmin, self.vmax = vmin, vmax
        self.debounce = debounce
        self.submit_options = dict(submit_options or {})
        self.controls = parameter_widgets(function, self.fixed_params, controls)
        serialise_function(function, self.params)  # f must accept them; raises otherwise

        self.current: Preview | None = None
        """The preview on the map (None before the first one)."""
        self.errors: list[str] = []
        """Messages of the previews that failed, most recent last."""
        self.job: BatchJob | None = None
        self.monitor: BatchMonitor | None = None
        self._outputs: dict[int, GridImage] = {}  # outputs drawn by the monitor, for read-out
        self._workdir = Path(tempfile.mkdtemp(prefix="s5p-preview-"))
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._workdir, True)
        self._cond = threading.Condition()
        self._pending: PreviewContext | None = None
        self._running: PreviewContext | None = None
        self._viewport: Viewport | None = None  # of the last request
        self._changed_at = 0.0
        self._computed = 0
        self._closed = False

        self.outlines = GeoJSON(data=countries_geojson(countries), name="countries",
                                style={"color": "#333333", "weight": 1, "fillOpacity": 0.0})
        self.overlay: ImageOverlay | None = None
        self.colorbar: WidgetControl | None = None
        # explicit layers and EPSG:4326: no basemap tiles are requested (works offline)
        self.map = Map(crs=projections.EPSG4326, layers=(self.outlines,), center=center,
                       zoom=zoom, scroll_wheel_zoom=True, layout={"height": "520px"})
        self.file_select = w.SelectMultiple(
            options=[(p.name, i) for i, p in enumerate(self.inputs)],
            value=tuple(self._indices(preview)), description="preview files",
            rows=min(6, len(self.inputs)), layout={"width": "95%"},
            style={"description_width": "initial"})
        self.status = w.HTML().add_class("s5p-preview-status")
        self.readout = w.HTML("move the cursor over the map for values").add_class(
            "s5p-preview-readout")
        self.submit_button = w.Button(
            description=f"Run on all {len(self.inputs)} files", icon="play",
            button_style="success", layout={"width": "auto"},
            tooltip=f"batch.submit over every input, outputs to {self.output_dir}")
        self.monitor_box = w.VBox()
        self.widget = w.VBox([
            w.HBox([w.VBox(list(self.controls.values()) + [self.file_select],
                           layout={"width": "40%"}),
                    w.VBox([self.submit_button, self.status, self.readout],
                           layout={"width": "60%"})]),
            self.map, self.monitor_box,
        ])

        for widget in self.controls.values():
            widget.observe(lambda _: self._request(), names="value")
        self.file_select.observe(lambda _: self._request(), names="value")
        self.map.observe(lambda _: self._request(), names=["south", "north", "west", "east",
                                                           "left", "right"])
        self.map.on_interaction(self._interaction)
        self.submit_button.on_click(lambda _: self._guarded(self.submit))
        self._worker = threading.Thread(target=self._work, name="batch-preview", daemon=True)
        self._worker.start()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _indices(self, chosen) -> list[int]:
        chosen = [chosen] if isinstance(chosen, int | str | Path) else list(chosen)
        indices = []
        for item in chosen:
            if isinstance(item, int):
                if not 0 <= item < len(self.inputs):
                    raise IndexError(f"preview: no input {item} (there are {len(self.inputs)})")
                indices.append(item)
                continue
            matches = [i for i, p in enumerate(self.inputs)
                       if Path(item) == p or str(item) == p.name]
            if not matches:
                raise KeyError(f"preview: {item} is not one of the inputs")
            indices.append(matches[0])
        return indices

    # --- state -------------------------------------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        """The keyword arguments of ``function``: the fixed ones and the widgets' values."""
        return {**self.fixed_params, **{n: c.value for n, c in self.controls.items()}}

    @property
    def preview_files(self) -> list[Path]:
        return [self.inputs[i] for i in self.file_select.value]

    def map_viewport(self) -> Viewport | None:
        """The view of the displayed map (None until a browser has drawn it)."""
        m = self.map
        try:
            return Viewport.from_map_state(m.south, m.north, m.west, m.east, m.right - m.left)
        except ValueError:
            return None

    # --- scheduling --------------------------------------------------------------------------
    def _request(self, viewport: Viewport | None = None) -> PreviewContext | None:
        """Queue a preview of ``viewport`` (default: the map's, else the last one requested)
        with the current parameters, replacing any queued one and cancelling the running
        one."""
        viewport = viewport or self.map_viewport() or self._viewport
        if viewport is None or self._closed:
            return None
        context = PreviewContext(viewport)
        with self._cond:
            self._viewport = viewport
            self._pending = context
            self._changed_at = time.monotonic()
            if self._running is not None:
                self._running.cancelled.set()
            self._cond.notify_all()
        return context

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                while (wait := self._changed_at + self.debounce - time.monotonic()) > 0:
                    self._cond.wait(wait)  # debounce: a newer request restarts the wait
                context, self._pending = self._pending, None
                self._running = context
                params, files = self.params, self.preview_files
            try:
                self._compute(context, params, files)
            finally:
                with self._cond:
                    self._running = None
                    self._computed += 1
                    self._cond.notify_all()

    def show(self, viewport: Viewport, timeout: float = 120.0) -> Preview:
        """Preview ``viewport`` now (as if the map showed it) and wait for the result; raises
        RuntimeError with the function's error if the preview failed."""
        with self._cond:
            done = self._computed
        context = self._request(viewport)
        if context is None:
            raise RuntimeError("the preview is closed (handed over to a batch)")
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending is context or self._running is context or self._computed == done:
                if not self._cond.wait(deadline - time.monotonic()):
                    raise TimeoutError(f"no preview within {timeout} s")
        if self.current is None or self.current.viewport is not viewport:
            raise RuntimeError(self.errors[-1] if self.errors else "the preview was cancelled")
        return self.current

    def wait_idle(self, timeout: float = 120.0) -> None:
        """Wait until no preview is queued or running."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending is not None or self._running is not None:
                if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"previews still running after {timeout} s")

    # --- computing ---------------------------------------------------------------------------
    def _compute(self, context: PreviewContext, params: dict, files: list[Path]) -> None:
        start = time.perf_counter()
        self.status.value = html.escape(f"computing {len(files)} file(s)…")
        try:
            if not files:
                raise ValueError("choose at least one file to preview")
            images = []
            for n, path in enumerate(files):
                context.check()
                output = self._workdir / f"preview-{n}.nc"
                output.unlink(missing_ok=True)
                with previewing(context):
                    self.function(str(path), str(output), **params)
                if not output.exists():
                    raise RuntimeError(f"{path.name}: the function returned without writing "
                                       "output_path")
                images.append(fit_to_view(read_grid(output, self.variable), context.viewport))
            context.check()
            image = combine(images)
            url = self._draw(image)
            context.check()
            self._place(image, url)
        except PreviewCancelled:
            return  # a newer request is queued; it will draw
        except Exception as exc:  # the user's function: shown, never raised in a thread
            message = (f"preview failed: {type(exc).__name__}: {exc}" if not isinstance(
                exc, OutsideView) else f"nothing to preview here: {exc}")
            self.errors.append(message)
            self.status.value = f"<span style='color:#c62828'>{html.escape(message)}</span>"
            return
        seconds = time.perf_counter() - start
        self.current = Preview(image, context.viewport, params, files, seconds,
                               list(context.grids))
        self.status.value = self._status_html(self.current)

    def _draw(self, image: GridImage) -> str:
        if self.vmin is None or self.vmax is None:
            value_range = image.value_range()
            if value_range is not None:
                self.vmin, self.vmax = nice_range(*value_range)
        if self.vmin is None:  # no data anywhere yet: transparent image, no colour bar
            return image.png_data_url(0.0, 1.0)
        return image.png_data_url(self.vmin, self.vmax)

    def _place(self, image: GridImage, url: str) -> None:
        if self.colorbar is None and self.vmin is not None:
            self.colorbar = colorbar(f"preview: {image.variable}", image.units, self.vmin,
                                     self.vmax)
            self.map.add(self.colorbar)
        overlay = ImageOverlay(url=url, bounds=image.bounds, name="preview", opacity=0.8)
        if self.overlay is None:
            self.map.add(overlay)
        else:
            self.map.substitute(self.overlay, overlay)
        self.overlay = overlay

    @staticmethod
    def _status_html(preview: Preview) -> str:
        cells = "×".join(map(str, preview.image.values.shape))
        (south, west), (north, east) = preview.image.bounds
        resolution = (north - south) / preview.image.values.shape[0]
        full = ""
        if preview.grids:
            grid, cropped = preview.grids[0]
            full = (f" ({round(cropped.lat_edge_step / grid.lat_edge_step)} × the batch's "
                    f"{grid.lat_edge_step:g}°)")
        names = ", ".join(p.name[:40] for p in preview.files)
        params = ", ".join(f"{k}={v!r}" for k, v in preview.params.items())
        return html.escape(
            f"preview of {names}: {cells} cells of {resolution:.3g}°{full} over "
            f"{south:.2f}..{north:.2f} N, {west:.2f}..{east:.2f} E in "
            f"{preview.seconds:.2f} s; {params}")

    # --- read-out ----------------------------------------------------------------------------
    def value_at(self, lat: float, lon: float) -> tuple[float | None, str, str]:
        """The value drawn at (``lat``, ``lon``), its units and where it comes from
        (``"preview"`` or an output file name); after a submit, the outputs drawn so far come
        first. (None, "", "") where nothing is drawn."""
        if self.monitor is not None:
            for index in sorted(self.monitor.layers, reverse=True):
                if index not in self._outputs:
                    self._outputs[index] = read_grid(self.job.output_paths[index],
                                                     self.monitor.variable)
                output = self._outputs[index]
                value = image_value(output, lat, lon)
                if value is not None and np.isfinite(value):
                    return value, output.units, self.job.output_paths[index].name
        if self.current is not None and self.overlay is not None:
            return self.current.value_at(lat, lon), self.current.image.units, "preview"
        return None, "", ""

    def _interaction(self, **event) -> None:
        if event.get("type") != "mousemove":
            return
        lat, lon = event["coordinates"]
        value, units, source = self.value_at(lat, lon)
        where = f"{lat:.3f}° N, {lon:.3f}° E"
        if value is None or not np.isfinite(value):
            text = f"{where}: no data" + (f" ({source})" if source else "")
        else:
            text = f"{where}: {value:.4g} {units} ({source})"
        self.readout.value = html.escape(text)

    # --- scaling up --------------------------------------------------------------------------
    def submit(self, **options) -> BatchJob:
        """Run ``function`` with the parameters as set on every input with
        :func:`~s5p_lockdown.batch.submit` (``submit_options`` updated by ``options``), stop
        previewing, and follow the batch with a :class:`BatchMonitor` on this map (shown below
        it); each output replaces the preview where it lands, and the preview is removed with
        the first one. Returns the :class:`~s5p_lockdown.batch.BatchJob`."""
        if self.job is not None:
            raise RuntimeError(f"already submitted: {self.job}")
        job = submit(self.function, self.inputs, self.output_dir, params=self.params,
                     **{**self.submit_options, **options})
        self.close()
        self.job = job
        for widget in [*self.controls.values(), self.file_select, self.submit_button]:
            widget.disabled = True
        self.map.observe(self._hand_over, names="layers")
        self.monitor = BatchMonitor(job, variable=self.variable, vmin=self.vmin,
                                    vmax=self.vmax, map=self.map, colorbar=self.colorbar)
        self.monitor_box.children = [self.monitor.widget]
        self.status.value = html.escape(f"submitted {job.name}: clusters {job.cluster_ids}; "
                                        "outputs replace the preview as they arrive")
        self.monitor.start()
        return job

    def _hand_over(self, change) -> None:
        """Remove the preview image once the monitor drew an output (after :meth:`submit` only
        the monitor adds images to the map), and the preview's colour bar for the monitor's:
        the same range, titled for the outputs."""
        if self.overlay is None:
            return
        added = set(change["new"]) - set(change["old"])
        if any(isinstance(layer, ImageOverlay) and layer is not self.overlay for layer in added):
            self.map.unobserve(self._hand_over, names="layers")
            self.map.remove(self.overlay)
            self.overlay = None
            self.colorbar = None  # the monitor replaced it: same range, titled for the outputs

    def _guarded(self, action) -> None:
        try:
            action()
        except Exception as exc:  # shown to the user instead of vanishing in the kernel log
            self.status.value = f"<span style='color:#c62828'>{html.escape(repr(exc))}</span>"

    def close(self) -> None:
        """Stop previewing (the worker thread ends after the running preview)."""
        with self._cond:
            self._closed = True
            self._pending = None
            if self._running is not None:
                self._running.cancelled.set()
            self._cond.notify_all()
        self._worker.join()


def combine(images: list[GridImage]) -> GridImage:
    """The mean of the finite values of ``images`` in each cell (NaN where none has data);
    every image must be on the same cells."""
    first = images[0]
    for other in images[1:]:
        if other.values.shape != first.values.shape or not np.allclose(
                other.bounds, first.bounds):
            raise ValueError(f"the previewed files give different grids ({first.bounds}, "
                             f"{first.values.shape} and {other.bounds}, "
                             f"{other.values.shape}); preview one file or use preview_grid")
    if len(images) == 1:
        return first
    stack = np.stack([image.values for image in images])
    finite = np.isfinite(stack)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(finite, stack, 0.0).sum(axis=0) / finite.sum(axis=0)
    return GridImage(first.variable, first.units, values, first.bounds)
