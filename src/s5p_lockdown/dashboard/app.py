"""The dashboard's widget tree, built by the notebook ``dashboards/lockdown.ipynb``.

The gridded maps (baseline, analysis year, change; :class:`GriddedMaps`) have a window
selector (the window sets of the results) and an area selector (Europe or one country);
choosing a country in the detail selector zooms them to it.

Every figure is an HTML widget (:class:`PlotView`) holding the figure's plotly spec as a
JSON block, drawn in the browser by the package's ``plots.js`` with the plotly.js that the
server serves (``s5p_lockdown.serving``, loaded by the ``s5p`` template): each figure is
drawn once, those on the screen first. Choosing a country replaces the time series' HTML and
the numbers table. When the results have hotspot statistics (and, for a run with a region
file, region statistics), a Countries / Hotspots (/ Regions) toggle switches the map, the
ranking and the selector (with its numbers and time series) between countries, hotspots and
regions; a view's figures are built on the first switch to it. Without hotspot statistics a
note says why.

Why not JupyterLab's plotly renderer (a plotly mime bundle in an ``Output`` widget): it draws
each figure three times (``Plotly.react``, then ``Plotly.redraw`` on its first update, then
again off-screen for a PNG copy, ``Plotly.toImage``): the two extra draws were 2.4 s of the
3.4 s of plotly work of the first page (dashboards/README.md, "Tests and benchmark"). Why no
``FigureWidget``: importing it loads ``plotly.io._renderers`` → nbformat → jsonschema, about
4 s of kernel start-up here, and each FigureWidget ships a ~5 MB JavaScript bundle over the
websocket (run from a ``blob:`` URL, which the page's script policy refuses).
"""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go
from IPython.display import display

from s5p_lockdown.dashboard import figures, tables
from s5p_lockdown.dashboard.data import (
    DashboardData, EuropeMaps, MapWindow, ResultsError, country_bounds, country_shapes,
    crop_maps, grids_netcdf, load_europe_maps, load_results, map_windows, resolve_results_dir,
)

COUNTRIES, HOTSPOTS, REGIONS = "Countries", "Hotspots", "Regions"
"""The views of the toggle."""
NOUNS = {COUNTRIES: ("country", "countries"), HOTSPOTS: ("hotspot", "hotspots"),
         REGIONS: ("region", "regions")}


PLOT_CLASS = "s5p-plot"
PAGE_STYLE = f"""<style>
.{PLOT_CLASS} .widget-html-content {{ width: 100%; min-width: 0; line-height: normal; }}
</style>"""
"""The figure of a :class:`PlotView` takes the whole width of the widget (the content of an
HTML widget is otherwise sized to its text)."""


class PlotView(widgets.HTML):
    """A figure in the page: :func:`figures.plot_html` of its spec, drawn by ``plots.js``.

    The widget is as tall as the figure (``layout``: the widget's CSS layout, e.g. flex
    sizes); the figure is as wide as the widget.

    Attributes
    ----------
    spec : dict
        The figure shown (:func:`figures.plot_spec`).
    """

    def __init__(self, fig: go.Figure, **layout):
        super().__init__(layout={"width": "100%", "height": f"{fig.layout.height}px",
                                 **layout})
        self.add_class(PLOT_CLASS)
        self.show(fig)

    def show(self, fig: go.Figure) -> None:
        """Make ``fig`` the figure shown (the browser draws it anew)."""
        self.spec = figures.plot_spec(fig)
        self.value = figures.plot_html(self.spec, fig.layout.height)


def _section(title: str) -> widgets.HTML:
    return widgets.HTML(f"<h2 style='margin:18px 0 4px 0'>{title}</h2>")


EUROPE_AREA = "Europe"
GRID_KEYS = ("post_baseline", "post_analysis", "change")


class GriddedMaps:
    """The baseline, analysis-year and change maps side by side (wrapping on narrow pages),
    with a window and an area selector and a download of the grids shown.

    Attributes
    ----------
    widget : ipywidgets.VBox
    window, area : ipywidgets.Dropdown
        The window set (index into ``windows``) and the area (``"Europe"`` or an iso3).
    outputs : dict
        ``"post_baseline"``, ``"post_analysis"``, ``"change"`` → :class:`PlotView`.
    shown : EuropeMaps
        The grids currently drawn (cropped to the area).
    """

    def __init__(self, data: DashboardData, shapes: dict):
        self.data, self.shapes = data, shapes
        self.windows: list[MapWindow | None] = map_windows(data) or [None]
        self._maps: dict[int, EuropeMaps] = {}
        maps = self._load(0)  # ResultsError: the caller shows why
        self.window = widgets.Dropdown(
            options=[(w.label if w else "common reference window", i)
                     for i, w in enumerate(self.windows)],
            value=0, description="Window", layout={"width": "auto", "max_width": "100%"},
            style={"description_width": "initial"})
        self.area = widgets.Dropdown(options=[(EUROPE_AREA, EUROPE_AREA), *data.countries],
                                     value=EUROPE_AREA, description="Area",
                                     layout={"width": "260px"})
        self.prepare = widgets.Button(description="Prepare the grids shown (netCDF)",
                                      layout={"width": "auto"})
        self.link = widgets.HTML()
        self.shown = crop_maps(maps, None)
        figs = figures.grid_map_figures(self.shown, shapes)
        self.outputs = {key: PlotView(figs[key], flex="1 1 360px", min_width="0",
                                      width="auto") for key in GRID_KEYS}
        self.window.observe(lambda _: self.redraw(), names="value")
        self.area.observe(lambda _: self.redraw(), names="value")
        self.prepare.on_click(lambda _: self.offer_download())
        self.widget = widgets.VBox([
            widgets.HBox([self.window, self.area],
                         layout={"flex_flow": "row wrap", "align_items": "center"}),
            widgets.HBox(list(self.outputs.values()),
                         layout={"flex_flow": "row wrap", "width": "100%"}),
            widgets.HBox([self.prepare, self.link], layout={"align_items": "center"}),
        ], layout={"width": "100%"})

    def _load(self, index: int) -> EuropeMaps:
        if index not in self._maps:
            self._maps[index] = load_europe_maps(self.data, self.windows[index])
        return self._maps[index]

    def redraw(self) -> None:
        """Draw the chosen window over the chosen area (cities all named in a country)."""
        maps = self._load(self.window.value)
        country = self.area.value != EUROPE_AREA
        bounds = country_bounds(self.shapes, self.area.value) if country else None
        self.shown = crop_maps(crop_maps(maps, None), bounds)
        figs = figures.grid_map_figures(self.shown, self.shapes, every_city=country)
        for key in GRID_KEYS:
            self.outputs[key].show(figs[key])
        self.link.value = ""

    def offer_download(self) -> None:
        """Put a link to the grids shown (netCDF, a data URL) next to the button."""
        name = "europe" if self.area.value == EUROPE_AREA else self.area.value
        start, end = self.shown.windows["post_analysis"]
        self.link.value = tables.download_link_html(
            grids_netcdf(self.shown), f"no2_grids_{name}_{start}_{end}.nc",
            "The grids shown (netCDF)", "application/x-netcdf")

    def zoom_to(self, iso3: str) -> None:
        """Show ``iso3``'s area (nothing happens for a country the selector does not have)."""
        if iso3 in dict(self.data.countries).values():
            self.area.value = iso3


class Dashboard:
    """All sections for one results directory; :meth:`select` shows another country,
    :meth:`show_view` switches between countries, hotspots and regions.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The whole page body.
    view : ipywidgets.ToggleButtons or ipywidgets.HTML
        'Countries' / 'Hotspots' / 'Regions' toggle (the views the results have), or a note
        saying why there are no hotspots.
    current : DashboardData
        The statistics shown: ``data``, ``data.hotspots`` or ``data.regions``.
    change_map, ranking : PlotView
        The change map and the ranked chart of the current view (each view has its own
        pair, the others' hidden).
    selector : ipywidgets.Dropdown
        Country (or hotspot) choice (value = iso3, or hotspot name).
    numbers : ipywidgets.HTML
        The chosen country's table of numbers.
    timeseries : PlotView
        The chosen country's daily series.
    """

    def __init__(self, data: DashboardData):
        self.data = self.current = data
        self.shapes = shapes = country_shapes()
        self._switching = False
        notices = [widgets.HTML(tables.message_html("Note:", p, "warning")) for p in data.problems]
        self.grids: GriddedMaps | None = None
        try:
            self.grids = GriddedMaps(data, shapes)
            europe = self.grids.widget
        except ResultsError as exc:
            europe = widgets.HTML(tables.message_html("Gridded maps unavailable:", str(exc)))

        first = _first_with_data(data)
        self.selector = widgets.Dropdown(options=data.countries, value=first,
                                         description="Country", layout={"width": "320px"})
        self.numbers = widgets.HTML(tables.country_summary_html(data, first),
                                    layout={"flex": "0 1 680px", "min_width": "0"})
        self.timeseries = PlotView(figures.timeseries_figure(data, first),
                                flex="1 1 520px", min_width="0", width="auto")
        self.selector.observe(self._selected, names="value")

        # one pair of figures per view, hidden when another view is shown: switching back
        # shows them as drawn, without sending or drawing them again
        self._outputs = {COUNTRIES: self._view_outputs(COUNTRIES)}
        self._view = COUNTRIES
        self.unranked = widgets.HTML(tables.unranked_html(data))
        self.change_box = widgets.HBox(list(self._outputs[COUNTRIES]),
                                       layout={"width": "100%", "flex_flow": "row wrap"})
        self.change_title = _section("Change per country")
        self.detail_title = _section("Country detail")
        self._views = {view: part for view, part in ((COUNTRIES, data), (HOTSPOTS, data.hotspots),
                                                     (REGIONS, data.regions)) if part is not None}
        tooltips = {COUNTRIES: "Change per country",
                    HOTSPOTS: "Change per hotspot (city, industrial region)",
                    REGIONS: "Change per region of the region file"}
        if len(self._views) > 1:
            self.view = widgets.ToggleButtons(options=list(self._views), value=COUNTRIES,
                                              description="Show",
                                              tooltips=[tooltips[v] for v in self._views])
            self.view.observe(lambda change: self.show_view(change["new"]), names="value")
        else:
            self.view = widgets.HTML(tables.message_html("Hotspots:", data.hotspot_note,
                                                         "warning"))

        self.widget = widgets.VBox([
            widgets.HTML(PAGE_STYLE + tables.header_html(data)),
            widgets.HTML(tables.statistics_links_html(data)),
            *notices,
            _section("Gridded NO₂: the same days before and during the lockdowns"),
            europe,
            self.change_title,
            self.view,
            self.unranked,
            self.change_box,
            self.detail_title,
            self.selector,
            widgets.HBox([self.numbers, self.timeseries],
                         layout={"align_items": "flex-start", "flex_flow": "row wrap"}),
        ], layout={"width": "100%"})

    @property
    def change_map(self) -> PlotView:
        return self._outputs[self._view][0]

    @property
    def ranking(self) -> PlotView:
        return self._outputs[self._view][1]

    def _view_outputs(self, view: str) -> tuple[PlotView, PlotView]:
        """(change map, ranking) figures of ``view``, side by side when the page is wide; the
        map no wider than :data:`figures.CHANGE_MAP_MAX_WIDTH` (its zoom is fixed: wider,
        the colour bar would stand apart from the countries)."""
        change_map, ranking = self._view_figures(view)
        return (PlotView(change_map, flex="1 1 560px", min_width="0", width="auto",
                         max_width=f"{figures.CHANGE_MAP_MAX_WIDTH}px"),
                PlotView(ranking, flex="1 1 480px", min_width="0", width="auto"))

    def _view_figures(self, view: str) -> tuple[go.Figure, go.Figure]:
        """(change map, ranking) of ``view`` (built once per view, by :meth:`_view_outputs`;
        only their specs are kept, in the :class:`PlotView` widgets)."""
        if view == HOTSPOTS:
            data = self.data.hotspots
            return figures.hotspot_map_figure(data, self.shapes), figures.ranking_figure(data)
        if view == REGIONS:
            data = self.data.regions
            return (figures.region_map_figure(data, self.data.region_outlines, self.shapes),
                    figures.ranking_figure(data))
        return figures.choropleth_figure(self.data, self.shapes), figures.ranking_figure(self.data)

    def show_view(self, view: str) -> None:
        """Show the countries (``'Countries'``), the hotspots (``'Hotspots'``) or the regions
        (``'Regions'``) in the map, the ranking and the selector (its first entry with data is
        then shown)."""
        data = self._views.get(view)
        if data is None:
            return
        self.current = data
        noun, plural = NOUNS[view]
        self.change_title.value = _section(f"Change per {noun}").value
        self.detail_title.value = _section(f"{noun.capitalize()} detail").value
        if view not in self._outputs:
            self._outputs[view] = self._view_outputs(view)
            self.change_box.children = [o for pair in self._outputs.values() for o in pair]
        for name, pair in self._outputs.items():
            for out in pair:
                out.layout.display = None if name == view else "none"
        self._view = view
        self.unranked.value = tables.unranked_html(data, plural)
        first = _first_with_data(data)
        self._switching = True
        try:
            self.selector.options = data.countries
            self.selector.value = first
            self.selector.description = noun.capitalize()
        finally:
            self._switching = False
        self.select(first)

    def _selected(self, change: dict) -> None:
        """A visitor chose a country (or hotspot): show it, and zoom the gridded maps to its
        country."""
        if not self._switching and change["new"] is not None:
            self.select(change["new"])
            if self.grids is not None:
                row = self.current.stats.loc[change["new"]]
                self.grids.zoom_to(row["country_iso3"] if "country_iso3" in row.index
                                   else change["new"])

    def select(self, iso3: str) -> None:
        """Show ``iso3`` (a country, or a hotspot name or region id in those views) in the
        numbers table and the time series."""
        self.numbers.value = tables.country_summary_html(self.current, iso3)
        self.timeseries.show(figures.timeseries_figure(self.current, iso3))


def _first_with_data(data: DashboardData) -> str:
    """The first entry of the selector with a headline change, else the first entry."""
    ok = data.stats.index[data.has_change()]
    return ok[0] if len(ok) else data.stats.index[0]


def dashboard(results_dir: str | Path | None = None) -> widgets.Widget:
    """The dashboard for ``results_dir`` (default: :func:`resolve_results_dir`), or a message
    saying why it cannot be shown."""
    root = resolve_results_dir() if results_dir is None else Path(results_dir)
    try:
        return Dashboard(load_results(root)).widget
    except ResultsError as exc:
        return widgets.HTML(tables.message_html("The results cannot be shown.", str(exc)))


def show(results_dir: str | Path | None = None) -> None:
    """Display :func:`dashboard` (the notebook's only code)."""
    display(dashboard(results_dir))
