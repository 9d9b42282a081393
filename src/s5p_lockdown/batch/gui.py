"""Jupyter monitor of a batch: progress per state, job table, logs, buttons and a live map.

``BatchMonitor(job)`` displays (``display(monitor)`` or as a cell's last expression):

* one progress bar per state (idle, running, held, done, failed, removed, skipped);
* a table of the input files with their job (``cluster.proc``), state, exit status, run time
  and message (hold reason, or the exception of a failed file);
* a log viewer (the :meth:`BatchJob.logs` text, with the user's traceback) for a chosen file;
* buttons *Refresh*, *Remove jobs* and *Retry failed*;
* an ipyleaflet map in EPSG:4326 without basemap tiles (works offline): the shipped country
  outlines as a GeoJSON layer, one ImageOverlay (PNG data URL) per output grid, added as soon as
  the output appears, a layers control and a colour bar.

The colour range is ``vmin``/``vmax`` if given, else the 2nd-98th percentile of the first
output that has data; all layers share it. ``start()`` refreshes in a background thread every
``interval`` seconds until the batch is finished (buttons stay usable meanwhile); ``refresh()``
does one update by hand.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterable

import ipywidgets as w
import shapely
from ipyleaflet import GeoJSON, ImageOverlay, LayersControl, Map, WidgetControl, projections

from s5p_lockdown.batch.render import colorbar as colorbar_control
from s5p_lockdown.batch.render import read_grid
from s5p_lockdown.batch.submit import STATES, BatchJob, BatchStatus
from s5p_lockdown.regions import load_countries

STATE_COLORS = {"idle": "#9e9e9e", "running": "#1e88e5", "held": "#fb8c00", "done": "#43a047",
                "failed": "#e53935", "removed": "#6d4c41", "skipped": "#8e24aa"}


def countries_geojson(iso3: Iterable[str] | None = None) -> dict:
    """The shipped country boundaries (all, or ``iso3``) as a GeoJSON FeatureCollection."""
    countries = load_countries()
    codes = list(countries) if iso3 is None else list(iso3)
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"iso3": c, "name": countries[c].name},
         "geometry": shapely.geometry.mapping(countries[c].geometry)}
        for c in codes
    ]}


class BatchMonitor:
    """Widgets following a :class:`~s5p_lockdown.batch.BatchJob` (see the module docstring).

    Parameters
    ----------
    job
        The batch.
    variable
        Output variable to draw (default: the first one on latitude/longitude).
    vmin, vmax
        Colour range in the variable's units (default: from the first output with data).
    countries
        ISO3 codes of the outlines to draw (default: every shipped country).
    center, zoom
        Initial map view (degrees north, east; Leaflet zoom in EPSG:4326).
    map
        Draw on this map (e.g. a :class:`~s5p_lockdown.batch.preview.PreviewMap`'s) instead of
        a new one; the monitor's widget then leaves the map out.
    interval
        Seconds between refreshes of :meth:`start`.
    """

    def __init__(self, job: BatchJob, *, variable: str | None = None,
                 vmin: float | None = None, vmax: float | None = None,
                 countries: Iterable[str] | None = None,
                 center: tuple[float, float] = (52.0, 10.0), zoom: int = 3,
                 interval: float = 3.0, map: Map | None = None,
                 colorbar: WidgetControl | None = None):
        self.job = job
        self.variable = variable
        self.vmin, self.vmax = vmin, vmax
        self.interval = interval
        self.status: BatchStatus | None = None
        self.layers: dict[int, ImageOverlay] = {}
        self.not_drawn: dict[int, str] = {}
        """Outputs that are not drawable grids (index → reason)."""
        self._shown_problems: set[int] = set()
        self.colorbar = colorbar
        """The map's colour bar; one given (e.g. the preview's, on ``map``) is replaced by the
        outputs' when the first output is drawn."""
        self._colorbar_drawn = False
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

        n = len(job.inputs)
        self.progress = {s: w.IntProgress(value=0, min=0, max=n, description=s,
                                          style={"bar_color": STATE_COLORS[s]})
                         for s in STATES}
        self.counts = {s: w.Label(f"0 / {n}") for s in STATES}
        self.title = w.HTML()
        self.message = w.HTML()
        self.table = w.HTML()
        self.log_select = w.Dropdown(description="logs of", options=[
            (p.name, i) for i, p in enumerate(job.inputs)], layout={"width": "95%"})
        self.log_view = w.Textarea(layout={"width": "100%", "height": "220px"},
                                   disabled=True)
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.remove_button = w.Button(description="Remove jobs", icon="trash",
                                      button_style="danger")
        self.retry_button = w.Button(description="Retry failed", icon="repeat",
                                     button_style="warning")
        self.refresh_button.on_click(lambda _: self._guarded(self.refresh))
        self.remove_button.on_click(lambda _: self._guarded(self._remove))
        self.retry_button.on_click(lambda _: self._guarded(self.retry_failed))
        self.log_select.observe(lambda _: self._show_logs(), names="value")

        own_map = map is None
        if own_map:
            outlines = GeoJSON(data=countries_geojson(countries), name="countries",
                               style={"color": "#333333", "weight": 1, "fillOpacity": 0.0})
            # explicit layers and EPSG:4326: no basemap tiles are requested, outputs align
            map = Map(crs=projections.EPSG4326, layers=(outlines,), center=center, zoom=zoom,
                      scroll_wheel_zoom=True, layout={"height": "480px"})
            map.add(LayersControl(position="topright"))
        self.map = map

        bars = [w.HBox([self.progress[s], self.counts[s]]) for s in STATES]
        buttons = w.HBox([self.refresh_button, self.remove_button, self.retry_button])
        self.widget = w.VBox([
            self.title, w.HBox([w.VBox(bars), w.VBox([buttons, self.message])]),
            w.Accordion(children=[self.table, w.VBox([self.log_select, self.log_view])],
                        titles=("jobs", "logs"), selected_index=0),
        ] + ([self.map] if own_map else []))
        self.refresh()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # --- updates ---------------------------------------------------------------------------
    def refresh(self) -> BatchStatus:
        """Read the batch state and update every widget; add map layers for new outputs."""
        with self._lock:
            status = self.status = self.job.status()
            clusters = ", ".join(map(str, self.job.cluster_ids)) or "none (all outputs existed)"
            self.title.value = (f"<b>{html.escape(self.job.name)}</b>: "
                                f"{len(status.files)} files, clusters {clusters}")
            for state, bar in self.progress.items():
                bar.value = status.counts[state]
                self.counts[state].value = f"{status.counts[state]} / {len(status.files)}"
            self.table.value = self._table_html(status)
            for f in status.files:
                if (f.state in ("done", "skipped") and f.index not in self.layers
                        and f.index not in self.not_drawn):
                    try:
                        self._add_layer(f.index, f.output)
                    except (OSError, ValueError, KeyError) as exc:  # not a grid we can draw
                        self.not_drawn[f.index] = f"{f.output.name}: {exc}"
                        self.message.value = html.escape(
                            f"{len(self.not_drawn)} output(s) not drawn, e.g. {exc}")
            problems = {f.index for f in status.files if f.state in ("failed", "held")}
            if problems - self._shown_problems:  # show the logs of a newly failed or held file
                self.log_select.value = min(problems - self._shown_problems)
            self._shown_problems |= problems
            self._show_logs()
            return status

    def _table_html(self, status: BatchStatus) -> str:
        rows = []
        for f in status.files:
            color = STATE_COLORS[f.state]
            exit_code = "" if f.exit_code is None else str(f.exit_code)
            seconds = "" if f.seconds is None else f"{f.seconds:.1f}"
            rows.append(
                f"<tr><td>{f.job}</td><td>{html.escape(f.input.name)}</td>"
                f"<td style='color:{color};font-weight:bold'>{f.state}</td>"
                f"<td>{exit_code}</td><td>{seconds}</td>"
                f"<td>{html.escape(f.message)}</td></tr>")
        head = ("<tr><th>job</th><th>input file</th><th>state</th><th>exit status</th>"
                "<th>seconds</th><th>message</th></tr>")
        return (f"<table style='font-size:90%;border-collapse:collapse'>{head}"
                f"{''.join(rows)}</table>")

    def _show_logs(self) -> None:
        if self.log_select.value is not None:
            self.log_view.value = self.job.logs(self.log_select.value)

    def _add_layer(self, index: int, path) -> None:
        grid = read_grid(path, self.variable)
        if self.vmin is None or self.vmax is None:
            value_range = grid.value_range()
            if value_range is None:
                return  # nothing to draw yet, and no range to take; try the next output
            self.vmin, self.vmax = value_range
        if not self._colorbar_drawn:  # an HTML widget: drawn from the refresh thread too
            bar = colorbar_control(grid.variable, grid.units, self.vmin, self.vmax)
            if self.colorbar in self.map.controls:
                self.map.substitute(self.colorbar, bar)
            else:
                self.map.add(bar)
            self.colorbar, self._colorbar_drawn = bar, True
        layer = ImageOverlay(url=grid.png_data_url(self.vmin, self.vmax), bounds=grid.bounds,
                             name=path.stem[:40], opacity=0.8)
        self.map.add(layer)
        self.layers[index] = layer

    # --- actions ---------------------------------------------------------------------------
    def _guarded(self, action) -> None:
        try:
            action()
        except Exception as exc:  # shown to the user instead of vanishing in the kernel log
            self.message.value = f"<span style='color:red'>{html.escape(repr(exc))}</span>"

    def _remove(self) -> None:
        removed = self.job.remove()
        self.message.value = f"removed {removed} job(s)"
        self.refresh()

    def retry_failed(self, function=None) -> int | None:
        """What the Retry button does (:meth:`BatchJob.retry_failed`), also with a fixed
        ``function``: the new attempt's cluster (and the function) shown, the table and the map
        followed until it finishes; returns the cluster id (None: nothing to retry)."""
        cluster = self.job.retry_failed(function=function)
        fixed = "" if function is None else \
            f" with {html.escape(getattr(function, '__qualname__', repr(function)))}"
        self.message.value = ("nothing to retry" if cluster is None
                              else f"resubmitted as cluster {cluster}{fixed}")
        self.refresh()
        if cluster is not None and self._thread is not None:
            self.start()
        return cluster

    def start(self, interval: float | None = None) -> None:
        """Refresh in a background thread every ``interval`` seconds until finished."""
        self.stop()
        self._stop.clear()
        period = self.interval if interval is None else interval

        def loop():
            while not self._stop.wait(period):
                self._guarded(self.refresh)
                if self.status is not None and self.status.finished:
                    break

        self._thread = threading.Thread(target=loop, name="batch-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background refresh (if running)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
