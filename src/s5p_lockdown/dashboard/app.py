"""The dashboard's widget tree, built by the notebook ``dashboards/lockdown.ipynb``.

Every figure is sent to the browser as a plotly mime bundle inside an ``Output`` widget and
drawn there by the JupyterLab plotly renderer that ships with plotly (served by Voilà, no
CDN). Choosing a country replaces the time series bundle and the numbers table.

Why no ``FigureWidget``: importing it loads ``plotly.io._renderers`` → nbformat → jsonschema,
about 4 s of kernel start-up here, and each FigureWidget ships a ~5 MB JavaScript bundle over
the websocket; a re-sent bundle of ~20 kB redraws the time series in well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go
import plotly.io as pio
from IPython.display import display

from s5p_lockdown.dashboard import figures, tables
from s5p_lockdown.dashboard.data import (
    DashboardData, ResultsError, country_shapes, load_europe_maps, load_results,
    resolve_results_dir,
)

PLOTLY_MIME = "application/vnd.plotly.v1+json"


def plotly_bundle(fig: go.Figure) -> dict:
    """The mime bundle of a figure (data, layout, :data:`figures.PLOT_CONFIG`), numpy arrays
    as base64 typed arrays."""
    spec = json.loads(pio.to_json(fig, validate=False))
    spec["config"] = figures.PLOT_CONFIG
    return {PLOTLY_MIME: spec}


def _show(out: widgets.Output, fig: go.Figure) -> None:
    """Make ``fig`` the only content of ``out``.

    The widget's ``outputs`` state is set directly instead of capturing a display with
    ``with out:``: while Voilà executes the notebook, a capture makes its executor (nbclient)
    send the widget's state to the kernel on the channel it is waiting on for the cell's
    reply, and with large figures the reply is then missed and the page hangs.
    """
    out.outputs = ({"output_type": "display_data", "data": plotly_bundle(fig), "metadata": {}},)


def _plot(fig: go.Figure, **layout) -> widgets.Output:
    """A new Output widget showing ``fig``; ``layout``: the widget's CSS layout."""
    out = widgets.Output(layout={"width": "100%", **layout})
    _show(out, fig)
    return out


def _section(title: str) -> widgets.HTML:
    return widgets.HTML(f"<h2 style='margin:18px 0 4px 0'>{title}</h2>")


class Dashboard:
    """All sections for one results directory; :meth:`select` shows another country.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The whole page body.
    selector : ipywidgets.Dropdown
        Country choice (value = iso3).
    numbers : ipywidgets.HTML
        The chosen country's table of numbers.
    timeseries : ipywidgets.Output
        The chosen country's daily series.
    """

    def __init__(self, data: DashboardData):
        self.data = data
        shapes = country_shapes()
        notices = [widgets.HTML(tables.message_html("Note:", p, "warning")) for p in data.problems]
        try:
            europe = _plot(figures.europe_map_figure(load_europe_maps(data), shapes))
        except ResultsError as exc:
            europe = widgets.HTML(tables.message_html("Europe map unavailable:", str(exc)))

        ok = data.stats.index[data.stats["status"] == "ok"]
        first = ok[0] if len(ok) else data.stats.index[0]
        self.selector = widgets.Dropdown(options=data.countries, value=first,
                                         description="Country", layout={"width": "320px"})
        self.numbers = widgets.HTML(tables.country_summary_html(data, first),
                                    layout={"width": "440px"})
        self.timeseries = _plot(figures.timeseries_figure(data, first),
                                flex="1 1 560px", min_width="0")
        self.selector.observe(lambda change: self.select(change["new"]), names="value")

        self.widget = widgets.VBox([
            widgets.HTML(tables.header_html(data)),
            widgets.HTML(tables.download_link_html(data)),
            *notices,
            _section("Europe: gridded NO₂ on the common reference window"),
            europe,
            _section("Change per country"),
            _plot(figures.choropleth_figure(data, shapes)),
            _plot(figures.ranking_figure(data)),
            _section("Country detail"),
            self.selector,
            widgets.HBox([self.numbers, self.timeseries],
                         layout={"align_items": "flex-start", "flex_flow": "row wrap"}),
        ], layout={"width": "100%"})

    def select(self, iso3: str) -> None:
        """Show ``iso3`` in the numbers table and the time series."""
        self.numbers.value = tables.country_summary_html(self.data, iso3)
        _show(self.timeseries, figures.timeseries_figure(self.data, iso3))


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
