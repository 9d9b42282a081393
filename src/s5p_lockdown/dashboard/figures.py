"""Plotly figures of the dashboard, built from :mod:`s5p_lockdown.dashboard.data`.

All figures work offline. Maps are drawn on longitude/latitude axes (SVG): the gridded maps
as heatmaps with country outlines as line traces, the country change map as filled outlines,
the hotspot map as markers over them. Only the region map (possibly thousands of regions) is
a ``Choroplethmap`` on the blank ``white-bg`` style with the results' GeoJSON. Nothing fetches
tiles, topojson or fonts.

No figure has a fixed width: each follows its container (``autosize``, and
:data:`PLOT_CONFIG` makes plotly redraw on window resize).

In a page a figure is its spec (:func:`plot_spec`) as a JSON block after the element it is
drawn into (:func:`plot_html`), drawn in the browser by ``plots.js`` of this package
(:data:`PLOTS_JS`), in the served dashboard as in the static export.

The country figures also take the hotspot statistics (:attr:`DashboardData.hotspots`): the
ranking labels them 'Paris (FRA)', and :func:`hotspot_map_figure` draws them as markers. A
country (or hotspot) is shown without data only when the change drawn is missing
(:meth:`DashboardData.has_change`); every change has its own reason (``reason_<name>``).

Display units: NO2 columns in µmol m-2 (mol m-2 x 1e6; 10 µmol m-2 = 6.0e15 molecules cm-2),
coverage and changes in percent; numbers written by :mod:`.text`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
import plotly.io as pio
import shapely
from plotly.subplots import make_subplots

from s5p_lockdown.dashboard.data import (
    HEADLINE_CHANGE, DashboardData, EuropeMaps, _rings, country_series,
)
from s5p_lockdown.dashboard.text import interval, percent
from s5p_lockdown.regions import hotspot_table

UMOL = 1e6
"""mol m-2 → µmol m-2."""
NO2_UNIT = "µmol m⁻²"
NO2_COLORSCALE = "Viridis"
CHANGE_COLORSCALE = "RdBu_r"
"""Diverging: decreases blue, increases red, no change white."""
MAX_CHANGE_PERCENT = 60.0
"""The change colour scale is symmetric about 0 and never wider than ±this many percent."""
NO2_PERCENTILES = (2, 98)
"""The NO2 colour scale of the gridded maps spans these percentiles of both maps' cells, so
that city plumes do not saturate it."""
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
"""Plotly config for every figure: no plotly link (the modebar's PNG export stays), redrawn
at the container's size when the window is resized."""
PLOTS_JS = Path(__file__).with_name("plots.js")
"""The script that draws every figure of a page (:func:`plot_html`) with plotly.js, those on
the screen first, one at a time (read its header)."""


def plot_spec(fig: go.Figure) -> dict:
    """The figure as plotly.js takes it: data, layout (numpy arrays as base64 typed arrays)
    and :data:`PLOT_CONFIG`."""
    spec = json.loads(pio.to_json(fig, validate=False))
    spec["config"] = PLOT_CONFIG
    return spec


def plot_html(spec: dict, height: int | float) -> str:
    """HTML of a figure for :data:`PLOTS_JS`: an empty element ``height`` px tall and as wide
    as its container, followed by ``spec`` as a JSON block (every ``<`` escaped, so that it
    cannot end its script element)."""
    payload = json.dumps(spec).replace("<", "\\u003c")
    return (f"<div style='height:{height:.0f}px'></div>"
            f"<script type='application/json' class='plot'>{payload}</script>")


GRID_MAP_HEIGHT = 470
"""Height (px) of each gridded map; widths follow the page."""

ANALYSIS_COLOR = "#c0392b"
BASELINE_COLORS = ("#34495e", "#7f8c8d", "#95a5a6", "#bdc3c7")
NO_DATA_COLOR = "#bbbbbb"
#: Fill of the countries behind the change maps (not analysed, or background of hotspots).
BLANK_COUNTRY_COLOR = "#eeeeee"
RAW_COLOR = "#2166ac"
ADJUSTED_COLOR = "#8c510a"
"""Ranking bars: raw change blue, weather-adjusted change brown."""


def _day(value) -> str:
    """'17 Mar 2020' from a date-like value."""
    return pd.Timestamp(value).strftime("%-d %b %Y")


def _span(start, end) -> str:
    """'17 Mar – 30 Mar 2020' (both days included)."""
    return f"{pd.Timestamp(start).strftime('%-d %b')} – {_day(end)}"


def change_limit(values) -> float:
    """Half-width (percent) of a symmetric change colour scale: the 98th percentile of the
    absolute changes rounded up to 10 %, between 10 and :data:`MAX_CHANGE_PERCENT`."""
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return MAX_CHANGE_PERCENT
    return float(np.clip(np.ceil(np.percentile(finite, 98) / 10.0) * 10.0, 10.0,
                         MAX_CHANGE_PERCENT))


def no2_range(maps: EuropeMaps) -> tuple[float, float]:
    """(low, high) of the common NO2 colour scale of the baseline and analysis-year maps
    (µmol m-2): :data:`NO2_PERCENTILES` of their cells with data."""
    values = np.concatenate([maps.fields[k].ravel() * UMOL
                             for k in ("post_baseline", "post_analysis")])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, NO2_PERCENTILES)
    return float(low), float(max(high, low + 1e-3))


def outline_trace(shapes: dict, bounds: tuple[float, float, float, float],
                  color: str) -> go.Scatter:
    """Country borders as one line trace (rings separated by NaN gaps), keeping only the rings
    that touch ``bounds`` = (west, south, east, north) in degrees.

    The coordinates are float32 arrays: plotly sends them as base64 typed arrays, about a
    third of the JSON of a list of numbers, and without validating each point (a list of
    tens of thousands of points took ~0.3 s per map to build)."""
    west, south, east, north = bounds
    rings = (np.asarray(ring, dtype=np.float32) for feature in shapes["features"]
             for ring in _rings(feature["geometry"]))
    x, y = _joined([ring for ring in rings
                    if not (ring[:, 0].max() < west or ring[:, 0].min() > east
                            or ring[:, 1].max() < south or ring[:, 1].min() > north)])
    return go.Scatter(x=x, y=y, mode="lines",
                      line={"color": color, "width": 0.8}, connectgaps=False,
                      hoverinfo="skip", showlegend=False, name="borders")


MAJOR_CITY_RADIUS_KM = 25
"""Cities named on the Europe-wide maps: the largest of each country if at least this big."""


def map_cities(bounds: tuple[float, float, float, float], every: bool) -> pd.DataFrame:
    """The cities of the package's hotspot table inside ``bounds`` (west, south, east, north):
    all of them when ``every``, else the largest (by radius) of each country when its radius
    is at least :data:`MAJOR_CITY_RADIUS_KM`."""
    cities = hotspot_table()
    cities = cities[cities["kind"] == "city"]
    west, south, east, north = bounds
    cities = cities[cities["lon"].between(west, east) & cities["lat"].between(south, north)]
    if not every:
        cities = cities.sort_values("radius_km", ascending=False, kind="stable")
        cities = cities.drop_duplicates("iso3")
        cities = cities[cities["radius_km"] >= MAJOR_CITY_RADIUS_KM]
    return cities


def _city_trace(cities: pd.DataFrame) -> go.Scatter:
    return go.Scatter(
        x=cities["lon"], y=cities["lat"], mode="markers+text", text=cities["name"],
        textposition="top center", hoverinfo="skip", showlegend=False, name="cities",
        marker={"size": 5, "color": "#ffffff", "line": {"color": "#000000", "width": 1}},
        textfont={"size": 11, "color": "#111111", "shadow": "0 0 3px #ffffff"},
        cliponaxis=True)


def grid_map_figure(maps: EuropeMaps, key: str, shapes: dict, title: str,
                    every_city: bool = False, no2_scale: tuple[float, float] | None = None
                    ) -> go.Figure:
    """One gridded map of ``maps``: ``key`` ``"post_baseline"`` or ``"post_analysis"`` (NO2 in
    µmol m-2 on the scale ``no2_scale``, default :func:`no2_range`) or ``"change"`` (percent,
    diverging scale centred on 0); country borders and city names on top; the colour bar
    horizontal under the map, so it stays next to it at any width."""
    lon, lat = maps.longitude, maps.latitude
    step_lon = float(np.median(np.diff(lon))) if lon.size > 1 else 1.0
    step_lat = float(np.median(np.diff(lat))) if lat.size > 1 else 1.0
    bounds = (lon.min() - step_lon / 2, lat.min() - step_lat / 2,
              lon.max() + step_lon / 2, lat.max() + step_lat / 2)
    colorbar = {"orientation": "h", "thickness": 12, "lenmode": "pixels", "len": 280,
                "x": 0.5, "xanchor": "center",
                "y": -0.02, "yanchor": "top", "title": {"side": "right"}}
    if key == "change":
        limit = change_limit(maps.fields["change"])
        trace = go.Heatmap(
            z=maps.fields["change"].astype(np.float32), zmin=-limit, zmax=limit, zmid=0,
            colorscale=CHANGE_COLORSCALE,
            colorbar={**colorbar, "title": {"text": "%", "side": "right"}, "ticksuffix": " %"},
            hovertemplate="lon %{x:.2f}, lat %{y:.2f}<br>%{z:+.0f} %<extra></extra>")
        border = "#333333"
    else:
        low, high = no2_scale or no2_range(maps)
        trace = go.Heatmap(
            z=(maps.fields[key] * UMOL).astype(np.float32), zmin=low, zmax=high,
            colorscale=NO2_COLORSCALE,
            colorbar={**colorbar, "title": {"text": NO2_UNIT, "side": "right"}},
            hovertemplate=f"lon %{{x:.2f}}, lat %{{y:.2f}}<br>%{{z:.1f}} {NO2_UNIT}"
                          "<extra></extra>")
        border = "rgba(255,255,255,0.85)"
    trace.update(x=lon, y=lat, hoverongaps=False, name=key)
    fig = go.Figure([trace, outline_trace(shapes, bounds, border),
                     _city_trace(map_cities(bounds, every_city))])
    fig.update_layout(
        title={"text": title, "x": 0.02, "font": {"size": 14}},
        xaxis={"range": [bounds[0], bounds[2]], "constrain": "domain", "showgrid": False,
               "ticksuffix": "°E", "zeroline": False},
        yaxis={"range": [bounds[1], bounds[3]], "scaleanchor": "x", "showgrid": False,
               # a degree of latitude drawn as long as on a Mercator map at the centre
               "scaleratio": 1.0 / np.cos(np.radians((bounds[1] + bounds[3]) / 2)),
               "constrain": "domain", "ticksuffix": "°N", "zeroline": False},
        autosize=True, height=GRID_MAP_HEIGHT, margin={"l": 45, "r": 10, "t": 40, "b": 70},
        plot_bgcolor="#ffffff", paper_bgcolor="#ffffff",
    )
    return fig


def grid_map_titles(maps: EuropeMaps) -> dict[str, str]:
    """Titles of the three gridded maps (baseline, analysis year, change)."""
    baseline, analysis = maps.years["post_baseline"], maps.years["post_analysis"]
    return {"post_baseline": f"Baseline {_span(*maps.windows['post_baseline'])}",
            "post_analysis": f"{'Lockdown' if analysis != baseline else 'Analysis'} "
                             f"{_span(*maps.windows['post_analysis'])}",
            "change": f"Change {analysis} vs {baseline}, same days"}


def grid_map_figures(maps: EuropeMaps, shapes: dict, every_city: bool = False
                     ) -> dict[str, go.Figure]:
    """The baseline, the analysis-year and the change maps of ``maps`` (cropped to where there
    is data by the caller), the two NO2 maps on one robust colour scale."""
    titles = grid_map_titles(maps)
    scale = no2_range(maps)
    return {key: grid_map_figure(maps, key, shapes, titles[key], every_city, scale)
            for key in ("post_baseline", "post_analysis", "change")}


def _change_line(label: str, row: pd.Series, name: str) -> str:
    """'change −30.0 % (95 % CI −35.0 to −25.0 %), significant', or why it is missing."""
    value = 100.0 * row[f"change_{name}"]
    if not np.isfinite(value):
        return f"{label}: n/a ({row[f'reason_{name}']})"
    low, high = 100.0 * row[f"change_{name}_low"], 100.0 * row[f"change_{name}_high"]
    significant = "significant" if row[f"significant_{name}"] else "not significant"
    return f"{label} {percent(value)} (95 % CI {interval(low, high)}), {significant}"


def _change_hover(data: DashboardData) -> pd.DataFrame:
    """Per-country (or hotspot) hover text for the headline change and the weather-adjusted
    change (percent, 95 % intervals; the reason of each missing change).

    Columns ``change``, ``low``, ``high`` (headline), ``adjusted``, ``adjusted_low``,
    ``adjusted_high`` (percent) and ``hover``.
    """
    stats = data.stats
    name = HEADLINE_CHANGE
    pct = 100.0 * stats[[f"change_{name}", f"change_{name}_low", f"change_{name}_high",
                         "change_weather_adjusted", "change_weather_adjusted_low",
                         "change_weather_adjusted_high"]]
    pct.columns = ["change", "low", "high", "adjusted", "adjusted_low", "adjusted_high"]
    lines = []
    for _, row in stats.iterrows():
        head = f"<b>{row['country']}</b> ({row['measure']})"
        window = "reference window" if row["reference_window"] else "lockdown"
        raw = _change_line("change", row, name)
        adjusted = _change_line("weather-adjusted", row, "weather_adjusted")
        if np.isfinite(row["change_weather_adjusted"]):
            adjusted += f"<br>({row['weather_adjustment']})"
        lines.append(
            f"{head}<br>{raw}<br>{adjusted}"
            f"<br>{window}: {_span(row['post_start'], row['post_end'])} vs same days of "
            f"{row['baseline_years']}")
    pct["hover"] = lines
    return pct


def _joined(rings) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes (float32) of ``rings`` ((n, 2) arrays or lists of lon/lat
    points) in one line, each ring followed by a NaN gap (a line breaks there; with
    ``fill="toself"`` each ring is filled on its own)."""
    gap = np.full((1, 2), np.nan, dtype=np.float32)
    parts = [part for ring in rings for part in (np.asarray(ring, dtype=np.float32), gap)]
    points = np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.float32)
    return points[:, 0], points[:, 1]


def _exteriors(geometry: dict) -> list:
    """The exterior rings of a GeoJSON Polygon or MultiPolygon."""
    polygons = ([geometry["coordinates"]] if geometry["type"] == "Polygon"
                else geometry["coordinates"])
    return [polygon[0] for polygon in polygons]


def _outlines(shapes: dict, iso3s) -> dict[str, dict]:
    """iso3 → GeoJSON geometry of the countries ``iso3s`` that the outline file has."""
    wanted = set(map(str, iso3s))
    return {f["properties"]["iso3"]: f["geometry"] for f in shapes["features"]
            if f["properties"]["iso3"] in wanted}


def change_colors(values, limit: float) -> list[str]:
    """Colours of ``values`` (percent) on the change colour scale from ``-limit`` to
    ``+limit`` (clipped), as 'rgb(r, g, b)' strings."""
    scale = plotly.colors.get_colorscale(CHANGE_COLORSCALE)
    positions = np.clip((np.asarray(values, dtype=float) + limit) / (2.0 * limit), 0.0, 1.0)
    return plotly.colors.sample_colorscale(scale, list(positions))


def _country_fill(geometry: dict, color: str, line: dict, name: str, hover: str,
                  iso3: str, label: str) -> go.Scatter:
    """One country as a filled outline with ``hover`` shown over it; ``meta`` its iso3 and
    its ``label`` in the selectors ({"iso3": ..., "label": ...}: a click on it chooses it
    there, see the dashboard template's script); in the legend group ``name`` (shown and
    hidden with it), without an entry of its own."""
    x, y = _joined(_exteriors(geometry))
    return go.Scatter(x=x, y=y, mode="lines", fill="toself", fillcolor=color, line=line,
                      name=name, legendgroup=name, showlegend=False,
                      meta={"iso3": iso3, "label": label},
                      hoveron="fills", text=hover, hoverinfo="text")


def _blank_countries(shapes: dict, iso3s: list[str], name: str, line: dict) -> go.Scatter:
    """The countries ``iso3s`` of ``shapes`` in light grey with outlines ``line``, no hover,
    as one trace: the background of the change maps."""
    x, y = _joined(ring for geometry in _outlines(shapes, iso3s).values()
                   for ring in _exteriors(geometry))
    return go.Scatter(x=x, y=y, mode="lines", fill="toself", fillcolor=BLANK_COUNTRY_COLOR,
                      line=line, hoverinfo="skip", name=name, showlegend=False)


def _colorbar_trace() -> go.Scatter:
    """An invisible trace on the colour axis: it makes plotly draw the colour bar of
    ``coloraxis`` (country fills are plain colours, not on the axis)."""
    return go.Scatter(x=[np.nan], y=[np.nan], mode="markers", showlegend=False,
                      hoverinfo="skip", name="colour scale",
                      marker={"color": [0.0], "coloraxis": "coloraxis", "size": 0.1})


def choropleth_figure(data: DashboardData, shapes: dict) -> go.Figure:
    """Countries coloured by the headline change (percent), with the 95 % interval in the
    hover; countries without a lockdown outlined in black, countries without that change in
    grey (the reason in the hover), other countries of the outline file in light grey.

    Drawn on plain longitude/latitude axes (SVG, like the gridded maps): a ``Choroplethmap``
    needs a WebGL map, which the JupyterLab renderer also draws a second time off-screen for
    its PNG copy: about 3 s of the browser's time per map on a modest machine, against
    ~0.2 s for these outlines. Each country is one trace (its ``meta``: its iso3 and its
    label in the selectors), in the legend by group."""
    stats = data.stats
    hover = _change_hover(data)
    ok = data.has_change()
    limit = change_limit(hover["change"])
    analysed = set(stats.index)
    others = [f["properties"]["iso3"] for f in shapes["features"]
              if f["properties"]["iso3"] not in analysed]
    fig = go.Figure([_blank_countries(shapes, others, "not analysed",
                                      {"width": 0.4, "color": "#999"})])
    outlines = _outlines(shapes, stats.index)
    colors = dict(zip(stats.index[ok], change_colors(hover.loc[ok, "change"], limit)))
    groups = [("lockdown", ok & ~stats["reference_window"], {"width": 0.6, "color": "#444"}),
              ("no data", ~ok, {"width": 0.6, "color": "#444"}),
              # drawn last: their thick outline on top of the neighbours' thin ones
              ("no lockdown (reference window)", ok & stats["reference_window"],
               {"width": 2.5, "color": "#000"})]
    for name, mask, line in groups:
        members = [iso3 for iso3 in stats.index[mask] if iso3 in outlines]
        for iso3 in members:
            fig.add_trace(_country_fill(outlines[iso3], colors.get(iso3, NO_DATA_COLOR), line,
                                        name, hover.at[iso3, "hover"], iso3,
                                        stats.at[iso3, "country"]))
        if members:  # the legend entry: the group's outline, grey only for "no data"
            fig.add_trace(go.Scatter(
                x=[np.nan], y=[np.nan], mode="lines", fill="toself", line=line, name=name,
                legendgroup=name, hoverinfo="skip",
                fillcolor=NO_DATA_COLOR if name == "no data" else "#ffffff"))
    fig.add_trace(_colorbar_trace())
    lon, lat = _analysed_extent(shapes, analysed)
    _change_map_layout(fig, "Change after the lockdown vs baseline year, same days"
                            "<br><sub>click a country for its numbers and series, and to zoom "
                            "the gridded maps to it</sub>", limit, lon, lat)
    # a two-line title is placed by its first line: one line lower
    fig.update_layout(margin={"t": 70}, title={"yref": "container",
                                               "y": 1.0 - 30.0 / fig.layout.height})
    return fig


CHANGE_MAP_MAX_WIDTH = 900
"""Widest the change maps are drawn (px): wider, the colour bar would stand apart from the
countries."""
CHANGE_MAP_HEIGHT = 600
"""Height (px) of the change maps."""


def _change_map_layout(fig: go.Figure, title: str, limit: float, lon: tuple, lat: tuple) -> None:
    """Shared layout of the country and hotspot change maps: diverging colour scale centred on
    0 (percent) with its bar at the map's right edge, longitude/latitude axes showing at least
    (west, east), (south, north) in degrees, a degree of latitude as long as on a Mercator map
    at the centre; the width follows the container."""
    fig.update_layout(
        title={"text": title, "x": 0.01, "y": 0.98, "yanchor": "top"},
        coloraxis={"colorscale": CHANGE_COLORSCALE, "cmin": -limit, "cmax": limit, "cmid": 0,
                   "colorbar": {"title": {"text": "%"}, "ticksuffix": " %", "thickness": 14,
                                "x": 1.0, "xanchor": "left", "xpad": 6}},
        # constrain="range": the map fills its place (more of the neighbours shown at the
        # sides or above), so the colour bar stays beside it at any width
        xaxis={"range": [lon[0], lon[1]], "constrain": "range", "showgrid": False,
               "zeroline": False, "visible": False},
        yaxis={"range": [lat[0], lat[1]], "scaleanchor": "x", "constrain": "range",
               "scaleratio": 1.0 / np.cos(np.radians((lat[0] + lat[1]) / 2)),
               "showgrid": False, "zeroline": False, "visible": False},
        legend={"x": 0.01, "y": 0.01, "bgcolor": "rgba(255,255,255,0.8)"},
        hovermode="closest", plot_bgcolor="#ffffff", paper_bgcolor="#ffffff",
        autosize=True, height=CHANGE_MAP_HEIGHT, margin={"l": 10, "r": 70, "t": 40, "b": 10},
    )


def _analysed_extent(shapes: dict, analysed: set[str]) -> tuple[tuple, tuple]:
    """(west, east), (south, north) in degrees of the analysed countries' outlines."""
    rings = [np.asarray(ring) for f in shapes["features"] if f["properties"]["iso3"] in analysed
             for ring in _rings(f["geometry"])]
    points = np.concatenate(rings or [np.array([[-10.0, 35.0], [40.0, 70.0]])])
    return ((points[:, 0].min(), points[:, 0].max()), (points[:, 1].min(), points[:, 1].max()))


def _zoom(lon: tuple, lat: tuple, width_px: float = 900, height_px: float = 540) -> float:
    """Web-Mercator zoom that fits the lon/lat extent in a ``width_px x height_px`` map."""
    def merc(y):
        return np.log(np.tan(np.pi / 4 + np.radians(y) / 2))
    span_x = max(lon[1] - lon[0], 1e-3) / 360.0
    span_y = max(merc(lat[1]) - merc(lat[0]), 1e-3) / (2 * np.pi)
    return float(np.clip(np.log2(min(width_px / span_x, height_px / span_y) / 512.0), 0, 12))


RANKING_ROW_PX = 22
"""Height of one ranked country in the ranking chart (px)."""


def ranking_figure(data: DashboardData) -> go.Figure:
    """Countries (or hotspots) with a headline change ranked by it (percent): the raw change
    and the weather-adjusted one side by side, each with its 95 % interval error bars;
    non-significant changes paler, countries without a lockdown hatched. Axis and legend at the
    top. Countries without the headline change are not drawn (see
    :func:`s5p_lockdown.dashboard.tables.unranked_html`); a missing adjusted change leaves its
    bar out and the hover of the raw bar says why."""
    stats = data.stats
    hover = _change_hover(data)
    shown = hover[data.has_change()].sort_values("change").index.tolist()
    rows, subset = hover.loc[shown], stats.loc[shown]
    names = subset["country"].tolist()
    pattern = np.where(subset["reference_window"], "/", "")
    height = max(280, RANKING_ROW_PX * len(names) + 150)
    fig = go.Figure()
    for name, key, significant, color in (
            ("raw", "", f"significant_{HEADLINE_CHANGE}", RAW_COLOR),
            ("weather-adjusted", "adjusted", "significant_weather_adjusted", ADJUSTED_COLOR)):
        value, low, high = (rows[key or "change"], rows[f"{key}_low".lstrip("_")],
                            rows[f"{key}_high".lstrip("_")])
        fig.add_trace(go.Bar(
            y=names, x=value, orientation="h", name=name,
            marker={"color": color, "opacity": np.where(subset[significant], 1.0, 0.45),
                    "pattern": {"shape": pattern, "fgcolor": "#ffffff", "solidity": 0.3}},
            error_x={"type": "data", "array": high - value, "arrayminus": value - low,
                     "color": "#333", "thickness": 1.2},
            text=rows["hover"], hovertemplate="%{text}<extra>" + name + "</extra>",
            textposition="none",
        ))
    fig.update_layout(
        title={"text": "Change after the lockdown vs baseline year, 95 % intervals<br>"
                       "<sub>pale = not significant, hatched = no lockdown "
                       "(reference window)</sub>", "x": 0.01, "xanchor": "left",
               # a two-line title is placed by its first line: one line lower
               "yref": "container", "y": 1.0 - 30.0 / height, "yanchor": "top"},
        barmode="group", bargap=0.25, bargroupgap=0.05,
        xaxis={"side": "top", "zeroline": True, "zerolinecolor": "#333", "ticksuffix": " %",
               "gridcolor": "#e5e5e5"},
        yaxis={"categoryorder": "array", "categoryarray": names, "autorange": "reversed",
               "title": "", "automargin": True},
        autosize=True, height=height, margin={"l": 10, "r": 20, "t": 120, "b": 20},
        # legend under the title, above the axis labels at the top
        legend={"orientation": "h", "x": 0.0, "xanchor": "left", "yref": "container",
                "y": 1.0 - 58.0 / height, "yanchor": "top"},
        plot_bgcolor="white",
    )
    return fig


def hotspot_map_figure(hotspots: DashboardData, shapes: dict) -> go.Figure:
    """Hotspots as markers on a blank map of the country outlines (longitude/latitude axes,
    like :func:`choropleth_figure`): placed at their centre, sized by their radius, coloured
    by the headline change (percent) with the raw and weather-adjusted changes and their 95 %
    intervals in the hover; hotspots without that change in grey. Hotspots missing from the
    package's table (no position) are left out."""
    stats = hotspots.stats
    hover = _change_hover(hotspots)
    placed = stats["lat"].notna() & stats["lon"].notna()
    has = hotspots.has_change()
    ok = has & placed
    limit = change_limit(hover.loc[ok, "change"])
    size = np.clip(stats["radius_km"].fillna(20.0) * 0.6, 8.0, 30.0)
    iso3s = [f["properties"]["iso3"] for f in shapes["features"]]
    fig = go.Figure([_blank_countries(shapes, iso3s, "countries",
                                      {"width": 0.5, "color": "#888"})])
    fig.add_trace(go.Scatter(
        y=stats.loc[ok, "lat"], x=stats.loc[ok, "lon"], mode="markers",
        marker={"size": size[ok], "color": hover.loc[ok, "change"], "coloraxis": "coloraxis",
                "opacity": 0.9, "line": {"width": 0.5, "color": "#333"}},
        text=hover.loc[ok, "hover"], hovertemplate="%{text}<extra></extra>", name="hotspot",
    ))
    missing = ~has & placed
    fig.add_trace(go.Scatter(
        y=stats.loc[missing, "lat"], x=stats.loc[missing, "lon"], mode="markers",
        marker={"size": size[missing], "color": NO_DATA_COLOR, "opacity": 0.9,
                "line": {"width": 0.5, "color": "#333"}},
        text=hover.loc[missing, "hover"], hovertemplate="%{text}<extra></extra>",
        name="no data",
    ))
    if placed.any():
        pad = 2.0
        lon = (stats.loc[placed, "lon"].min() - pad, stats.loc[placed, "lon"].max() + pad)
        lat = (stats.loc[placed, "lat"].min() - pad, stats.loc[placed, "lat"].max() + pad)
    else:
        lon, lat = _analysed_extent(shapes, set(stats["country_iso3"]))
    _change_map_layout(fig, "Hotspots: change after the lockdown vs baseline year<br>"
                            "<sub>same days of the year; marker size = hotspot radius</sub>",
                       limit, lon, lat)
    # a two-line title is placed by its first line: one line lower
    fig.update_layout(margin={"t": 70}, title={"yref": "container",
                                               "y": 1.0 - 30.0 / fig.layout.height})
    return fig


def _subset(collection: dict, key: str, locations) -> dict:
    """The features of the GeoJSON FeatureCollection ``collection`` whose property ``key`` is
    one of ``locations``: each map trace carries only the outlines it draws (with the whole
    collection in every trace, the map was several times as heavy to send and to draw)."""
    wanted = set(map(str, locations))
    return {"type": "FeatureCollection",
            "features": [f for f in collection["features"]
                         if str(f["properties"][key]) in wanted]}


def region_map_figure(regions: DashboardData, outlines: dict, shapes: dict) -> go.Figure:
    """Regions coloured by the headline change (percent) over the country outlines, with the
    raw and weather-adjusted changes and their 95 % intervals in the hover; regions without
    that change in grey (the reason in the hover). A ``Choroplethmap`` on the blank
    ``white-bg`` style (no tiles): region files may hold thousands of regions."""
    stats = regions.stats
    hover = _change_hover(regions)
    ok = regions.has_change()
    limit = change_limit(hover.loc[ok, "change"])
    iso3s = [f["properties"]["iso3"] for f in shapes["features"]]
    fig = go.Figure([go.Choroplethmap(
        geojson=_subset(shapes, "iso3", iso3s), featureidkey="properties.iso3", locations=iso3s,
        z=np.zeros(len(iso3s)), colorscale=[[0, BLANK_COUNTRY_COLOR], [1, BLANK_COUNTRY_COLOR]],
        showscale=False, marker={"line": {"width": 0.5, "color": "#888"}}, hoverinfo="skip",
        name="countries", showlegend=False)])
    fig.add_trace(go.Choroplethmap(
        geojson=_subset(outlines, "region", stats.index[ok]), featureidkey="properties.region",
        locations=stats.index[ok],
        z=hover.loc[ok, "change"], coloraxis="coloraxis", marker={"line": {"width": 0.4, "color": "#444"}},
        text=hover.loc[ok, "hover"], hovertemplate="%{text}<extra></extra>", name="region",
        showlegend=True,
    ))
    fig.add_trace(go.Choroplethmap(
        geojson=_subset(outlines, "region", stats.index[~ok]),
        featureidkey="properties.region", locations=stats.index[~ok],
        z=np.zeros(int((~ok).sum())), colorscale=[[0, NO_DATA_COLOR], [1, NO_DATA_COLOR]],
        showscale=False, marker={"line": {"width": 0.4, "color": "#444"}},
        text=hover.loc[~ok, "hover"], hovertemplate="%{text}<extra></extra>",
        name="no data", showlegend=True,
    ))
    bounds = [shapely.geometry.shape(f["geometry"]).bounds for f in outlines["features"]
              if f["properties"]["region"] in set(stats.index)]
    if bounds:
        west, south, east, north = np.array(bounds).T
        lon, lat = (west.min() - 0.5, east.max() + 0.5), (south.min() - 0.5, north.max() + 0.5)
    else:
        lon, lat = _analysed_extent(shapes, set(stats["country_iso3"]))
    _change_map_layout(fig, "Regions: change after the lockdown vs baseline year<br>"
                            "<sub>same days of the year; each region's own lockdown dates, "
                            "else its country's</sub>", limit, lon, lat)
    # the regions on a WebGL map (there may be thousands: as many SVG traces would be slow)
    fig.update_layout(
        xaxis={"visible": False}, yaxis={"visible": False},
        map={"style": "white-bg", "zoom": _zoom(lon, lat, 800, 520),
             "center": {"lon": float(np.mean(lon)), "lat": float(np.mean(lat))}})
    fig.update_layout(margin={"t": 70}, title={"yref": "container",
                                               "y": 1.0 - 30.0 / fig.layout.height})
    return fig


def timeseries_figure(data: DashboardData, iso3: str) -> go.Figure:
    """Daily country mean NO2 of the analysis year with the baseline year(s) overlaid on the
    same calendar days, and each day's coverage (percent of the country's area with data).

    The pre and post windows are shaded, the lockdown start (and its end, if known and on the
    plot) marked with vertical lines, and the coverage a day needs to count in the statistics
    drawn as a dotted line.
    """
    row = data.stats.loc[iso3]
    series = country_series(data, iso3)
    years = [int(row["analysis_year"]), *data.baseline_years]
    colors = [ANALYSIS_COLOR, *BASELINE_COLORS]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28],
                        vertical_spacing=0.08)
    for i, year in enumerate(years):
        rows = series[series["year"] == year]
        color = colors[min(i, len(colors) - 1)]
        fig.add_trace(go.Scatter(
            x=rows["date"], y=rows["mean_no2"] * UMOL, mode="lines+markers", name=str(year),
            legendgroup=str(year), marker={"size": 5},
            line={"color": color, "width": 2 if i == 0 else 1.5,
                  "dash": "solid" if i == 0 else "dot"},
            hovertemplate=f"%{{x|%-d %b}} {year}: %{{y:.1f}} {NO2_UNIT}<extra></extra>",
        ), row=1, col=1)
        fig.add_trace(go.Bar(
            x=rows["date"], y=rows["coverage"] * 100.0, name=f"{year} coverage",
            legendgroup=str(year), showlegend=False, marker={"color": color, "opacity": 0.6},
            hovertemplate=f"%{{x|%-d %b}} {year}: %{{y:.0f}} % covered<extra></extra>",
        ), row=2, col=1)
    shapes, annotations = _window_marks(data, iso3, series["date"].max())
    fig.update_layout(
        title={"text": f"{row['country']}: daily mean tropospheric NO₂, "
                       f"{' vs '.join(map(str, years))} on the same calendar days", "x": 0.01},
        shapes=shapes, annotations=annotations,
        barmode="group", bargap=0.15, height=520, plot_bgcolor="white", autosize=True,
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "xanchor": "left"},
        hovermode="x unified",
    )
    fig.update_yaxes(title_text=f"NO₂ ({NO2_UNIT})", gridcolor="#e5e5e5", rangemode="tozero",
                     row=1, col=1)
    fig.update_yaxes(title_text="coverage (%)", range=[0, 100], gridcolor="#e5e5e5", row=2, col=1)
    fig.update_xaxes(gridcolor="#e5e5e5")
    return fig


def _window_marks(data: DashboardData, iso3: str,
                  last_day: pd.Timestamp) -> tuple[list[dict], list[dict]]:
    """Shapes and labels of the pre/post windows, lockdown start/end (the end only up to
    ``last_day``, the last plotted day) and the coverage threshold."""
    row = data.stats.loc[iso3]
    reference = bool(row["reference_window"])
    half = pd.Timedelta(hours=12)  # windows include both end days: shade whole days
    shapes = [
        {"type": "rect", "xref": "x", "yref": "paper", "x0": row["pre_start"] - half,
         "x1": row["pre_end"] + half, "y0": 0, "y1": 1, "fillcolor": "#95a5a6",
         "opacity": 0.15, "line": {"width": 0}, "layer": "below"},
        {"type": "rect", "xref": "x", "yref": "paper", "x0": row["post_start"] - half,
         "x1": row["post_end"] + half, "y0": 0, "y1": 1, "fillcolor": "#e67e22",
         "opacity": 0.15, "line": {"width": 0}, "layer": "below"},
    ]
    annotations = [
        {"x": row["pre_start"] - half, "y": 1.0, "xref": "x", "yref": "paper", "text": "before",
         "showarrow": False, "xanchor": "left", "yanchor": "top", "font": {"size": 11}},
        {"x": row["post_start"] - half, "y": 1.0, "xref": "x", "yref": "paper",
         "text": "after (reference window, no lockdown)" if reference else "after",
         "showarrow": False, "xanchor": "left", "yanchor": "top", "font": {"size": 11}},
    ]
    marks = [] if reference else [(row["post_start"] - half, "lockdown start")]
    end = data.lockdown_ends.get(iso3)
    if end is not None and pd.notna(last_day) and end <= last_day:
        marks.append((end + half, "lockdown end"))
    for x, label in marks:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x,
                       "y0": 0, "y1": 1, "line": {"color": "#c0392b", "width": 1.5,
                                                  "dash": "dash"}})
        annotations.append({"x": x, "y": 0.97, "xref": "x", "yref": "paper", "text": label,
                            "showarrow": False, "textangle": -90, "xanchor": "right",
                            "yanchor": "top", "font": {"size": 11, "color": "#c0392b"}})
    if data.min_day_coverage is not None:
        threshold = 100.0 * data.min_day_coverage
        shapes.append({"type": "line", "xref": "x2 domain", "yref": "y2", "x0": 0, "x1": 1,
                       "y0": threshold, "y1": threshold,
                       "line": {"color": "#555", "width": 1, "dash": "dot"}})
        annotations.append({"x": 1, "y": 1, "xref": "x2 domain", "yref": "y2 domain",
                            "text": f"dotted: a day counts from {threshold:.0f} % coverage",
                            "showarrow": False, "xanchor": "right", "yanchor": "bottom",
                            "font": {"size": 10, "color": "#555"}})
    return shapes, annotations
