"""Plotly figures of the dashboard, built from :mod:`s5p_lockdown.dashboard.data`.

All figures work offline: maps are cartesian heatmaps with country outlines drawn as line
traces, or ``Choroplethmap``/``Scattermap`` (markers only, no text: text would fetch glyphs)
traces on the blank ``white-bg`` style with the shipped GeoJSON; nothing fetches tiles,
topojson or fonts.

The country figures also take the hotspot statistics (:attr:`DashboardData.hotspots`): the
ranking labels them 'Paris (FRA)', and :func:`hotspot_map_figure` draws them as markers.

Display units: NO2 columns in µmol m-2 (mol m-2 x 1e6; 10 µmol m-2 = 6.0e15 molecules cm-2),
coverage and changes in percent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from s5p_lockdown.dashboard.data import (
    HEADLINE_CHANGE, DashboardData, EuropeMaps, country_series,
)

UMOL = 1e6
"""mol m-2 → µmol m-2."""
NO2_UNIT = "µmol m⁻²"
NO2_COLORSCALE = "Viridis"
CHANGE_COLORSCALE = "RdBu_r"
"""Diverging: decreases blue, increases red, no change white."""
MAX_CHANGE_PERCENT = 60.0
"""The change colour scale is symmetric about 0 and never wider than ±this many percent."""
PLOT_CONFIG = {"displaylogo": False}
MAP_WIDTH = 1000
"""Width of the country map (px)."""
"""Plotly config for every figure: no plotly link; the modebar's PNG export stays."""

ANALYSIS_COLOR = "#c0392b"
BASELINE_COLORS = ("#34495e", "#7f8c8d", "#95a5a6", "#bdc3c7")
MEASURE_COLORS = {"national": "#2166ac", "partial": "#4393c3", "regional": "#4393c3",
                  "targeted": "#92c5de"}
NO_LOCKDOWN_COLOR = "#f4a582"
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


def _rings(geometry: dict):
    """Exterior and interior rings of a GeoJSON Polygon/MultiPolygon."""
    polygons = ([geometry["coordinates"]] if geometry["type"] == "Polygon"
                else geometry["coordinates"])
    for polygon in polygons:
        yield from polygon


def outline_trace(shapes: dict, bounds: tuple[float, float, float, float],
                  color: str) -> go.Scatter:
    """Country borders as one line trace (rings separated by gaps), keeping only the rings
    that touch ``bounds`` = (west, south, east, north) in degrees."""
    west, south, east, north = bounds
    xs, ys = [], []
    for feature in shapes["features"]:
        for ring in _rings(feature["geometry"]):
            ring = np.asarray(ring)
            if (ring[:, 0].max() < west or ring[:, 0].min() > east
                    or ring[:, 1].max() < south or ring[:, 1].min() > north):
                continue
            xs.extend([*ring[:, 0].round(3), None])
            ys.extend([*ring[:, 1].round(3), None])
    return go.Scatter(x=xs, y=ys, mode="lines", line={"color": color, "width": 0.8},
                      hoverinfo="skip", showlegend=False, name="borders")


MAP_LAYERS = {
    "pre_baseline": "{year}, {span}",
    "post_baseline": "{year}, {span}",
    "pre_analysis": "Before: {span}",
    "post_analysis": "After: {span}",
}


def europe_map_figure(maps: EuropeMaps, shapes: dict) -> go.Figure:
    """Gridded NO2 over Europe on the common reference window, one layer per window plus the
    change (post vs baseline, percent), chosen with buttons in the figure; country borders on
    top. NO2 layers share one colour scale (2nd-98th percentile of all four windows)."""
    lon, lat = maps.longitude, maps.latitude
    no2 = {key: maps.fields[key] * UMOL for key in MAP_LAYERS}
    stacked = np.concatenate([v[np.isfinite(v)] for v in no2.values()] or [np.array([0.0])])
    low, high = (np.percentile(stacked, [2, 98]) if stacked.size else (0.0, 1.0))
    labels = {key: template.format(year=maps.years[key], span=_span(*maps.windows[key]))
              for key, template in MAP_LAYERS.items()}
    labels["change"] = (f"Change after vs {maps.years['post_baseline']} (%)")

    fig = go.Figure()
    for key in MAP_LAYERS:
        fig.add_trace(go.Heatmap(
            x=lon, y=lat, z=no2[key].astype(np.float32), zmin=low, zmax=high,
            colorscale=NO2_COLORSCALE, colorbar={"title": {"text": NO2_UNIT}},
            hoverongaps=False, name=labels[key], visible=key == "post_baseline",
            hovertemplate=("lon %{x:.2f}, lat %{y:.2f}<br>%{z:.1f} " + NO2_UNIT
                           + f"<extra>{labels[key]}</extra>"),
        ))
    limit = change_limit(maps.fields["change"])
    fig.add_trace(go.Heatmap(
        x=lon, y=lat, z=maps.fields["change"].astype(np.float32), zmin=-limit, zmax=limit,
        zmid=0, colorscale=CHANGE_COLORSCALE, colorbar={"title": {"text": "%"}},
        hoverongaps=False, name=labels["change"], visible=False,
        hovertemplate="lon %{x:.2f}, lat %{y:.2f}<br>%{z:+.0f} %<extra>change</extra>",
    ))
    step_lon = float(np.median(np.diff(lon))) if lon.size > 1 else 1.0
    step_lat = float(np.median(np.diff(lat))) if lat.size > 1 else 1.0
    bounds = (lon.min() - step_lon / 2, lat.min() - step_lat / 2,
              lon.max() + step_lon / 2, lat.max() + step_lat / 2)
    # borders: light over the dark NO2 colours, dark over the white middle of the change scale
    fig.add_trace(outline_trace(shapes, bounds, "rgba(255,255,255,0.85)"))
    fig.add_trace(outline_trace(shapes, bounds, "#333333").update(visible=False))

    layers = [*MAP_LAYERS, "change"]
    buttons = [{"label": labels[key], "method": "update",
                "args": [{"visible": [k == key for k in layers]
                          + [key != "change", key == "change"]},
                         {"title.text": _map_title(labels[key], key)}]}
               for key in layers]
    fig.update_layout(
        title={"text": _map_title(labels["post_baseline"], "post_baseline"), "x": 0.01},
        updatemenus=[{"type": "buttons", "direction": "right", "buttons": buttons,
                      "active": layers.index("post_baseline"), "x": 0, "xanchor": "left",
                      "y": 1.0, "yanchor": "bottom", "pad": {"b": 4},
                      "showactive": True}],
        xaxis={"range": [bounds[0], bounds[2]], "title": "longitude (°E)", "constrain": "domain"},
        yaxis={"range": [bounds[1], bounds[3]], "title": "latitude (°N)",
               "scaleanchor": "x",
               # a degree of latitude drawn as long as on a Mercator map at the centre
               "scaleratio": 1.0 / np.cos(np.radians((bounds[1] + bounds[3]) / 2)),
               "constrain": "domain"},
        height=620, margin={"l": 60, "r": 20, "t": 110, "b": 50},
        plot_bgcolor="#f2f2f2",
    )
    return fig


def _map_title(label: str, key: str) -> str:
    if key == "change":
        return "Tropospheric NO₂: change after vs baseline year, same days (%)"
    return f"Tropospheric NO₂ column ({NO2_UNIT}), {label}"


def _pct(value: float) -> str:
    return f"{value:+.1f}" if np.isfinite(value) else "?"


def _change_line(label: str, change: float, low: float, high: float, significant: bool) -> str:
    return (f"{label} {_pct(change)} % (95 % CI {_pct(low)} to {_pct(high)} %), "
            f"{'significant' if significant else 'not significant'}")


def _change_hover(data: DashboardData) -> pd.DataFrame:
    """Per-country (or hotspot) hover text for the headline change and the weather-adjusted
    change (percent, 95 % intervals; the reason when there is no adjusted change).

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
    for iso3, row in stats.iterrows():
        head = f"<b>{row['country']}</b> ({row['measure']})"
        if row["status"] != "ok":
            lines.append(f"{head}<br>too little data: {row['reason']}")
            continue
        c = pct.loc[iso3]
        window = "reference window" if row["reference_window"] else "lockdown"
        raw = _change_line("change", c["change"], c["low"], c["high"],
                           row[f"significant_{name}"])
        note = str(row["weather_adjustment"])
        if np.isfinite(c["adjusted"]):
            adjusted = _change_line("weather-adjusted", c["adjusted"], c["adjusted_low"],
                                    c["adjusted_high"], row["significant_weather_adjusted"])
            adjusted += f"<br>({note})"
        else:
            adjusted = f"weather-adjusted: {note}"
        lines.append(
            f"{head}<br>{raw}<br>{adjusted}"
            f"<br>{window}: {_span(row['post_start'], row['post_end'])} vs same days of "
            f"{row['baseline_years']}")
    pct["hover"] = lines
    return pct


def choropleth_figure(data: DashboardData, shapes: dict) -> go.Figure:
    """Countries coloured by the headline change (percent) on a blank map, with the 95 %
    interval in the hover; countries without a lockdown outlined, countries with too little
    data in grey, other countries of the outline file in light grey."""
    stats = data.stats
    hover = _change_hover(data)
    ok = stats["status"] == "ok"
    groups = [("lockdown", ok & ~stats["reference_window"], {"width": 0.6, "color": "#444"}),
              ("no lockdown (reference window)", ok & stats["reference_window"],
               {"width": 2.5, "color": "#000"})]
    limit = change_limit(hover["change"])
    fig = go.Figure()
    analysed = set(stats.index)
    others = [f["properties"]["iso3"] for f in shapes["features"]
              if f["properties"]["iso3"] not in analysed]
    fig.add_trace(_blank_countries(shapes, others, "not analysed", {"width": 0.4, "color": "#999"}))
    for name, mask, line in groups:
        fig.add_trace(go.Choroplethmap(
            geojson=shapes, featureidkey="properties.iso3", locations=stats.index[mask],
            z=hover.loc[mask, "change"], coloraxis="coloraxis", marker={"line": line},
            text=hover.loc[mask, "hover"], hovertemplate="%{text}<extra></extra>", name=name,
            showlegend=True,
        ))
    missing = ~ok
    fig.add_trace(go.Choroplethmap(
        geojson=shapes, featureidkey="properties.iso3", locations=stats.index[missing],
        z=np.zeros(int(missing.sum())), colorscale=[[0, NO_DATA_COLOR], [1, NO_DATA_COLOR]],
        showscale=False, marker={"line": {"width": 0.6, "color": "#444"}},
        text=hover.loc[missing, "hover"], hovertemplate="%{text}<extra></extra>",
        name="too little data", showlegend=True,
    ))
    lon, lat = _analysed_extent(shapes, analysed)
    _change_map_layout(fig, "Change in tropospheric NO₂ after the lockdown vs the same days of "
                            "the baseline year (%)", limit, lon, lat)
    return fig


def _blank_countries(shapes: dict, iso3s: list[str], name: str, line: dict) -> go.Choroplethmap:
    """The countries ``iso3s`` of ``shapes`` in light grey with outlines ``line``, no hover:
    the background of the change maps."""
    return go.Choroplethmap(
        geojson=shapes, featureidkey="properties.iso3", locations=iso3s,
        z=np.zeros(len(iso3s)), colorscale=[[0, BLANK_COUNTRY_COLOR], [1, BLANK_COUNTRY_COLOR]],
        showscale=False, marker={"line": line}, hoverinfo="skip", name=name,
    )


def _change_map_layout(fig: go.Figure, title: str, limit: float, lon: tuple, lat: tuple) -> None:
    """Shared layout of the change maps: diverging colour scale centred on 0 (percent), blank
    offline map (no tiles) fitted to (west, east), (south, north) in degrees."""
    fig.update_layout(
        title={"text": title, "x": 0.01},
        coloraxis={"colorscale": CHANGE_COLORSCALE, "cmin": -limit, "cmax": limit, "cmid": 0,
                   "colorbar": {"title": {"text": "%"}}},
        map={"style": "white-bg", "zoom": _zoom(lon, lat, MAP_WIDTH - 100, 540),
             "center": {"lon": float(np.mean(lon)), "lat": float(np.mean(lat))}},
        legend={"x": 0.01, "y": 0.01, "bgcolor": "rgba(255,255,255,0.8)"},
        # a fixed size: the WebGL map is not resized when the page is revealed
        width=MAP_WIDTH, height=600, margin={"l": 10, "r": 10, "t": 50, "b": 10},
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


def ranking_figure(data: DashboardData) -> go.Figure:
    """Countries (or hotspots) ranked by the headline change (percent): the raw change and the
    weather-adjusted one side by side, each with its 95 % interval error bars; non-significant
    changes paler, countries without a lockdown hatched, those with too little data listed
    last with a cross at 0. A missing adjusted change leaves its bar out; the hover of the raw
    bar says why."""
    stats = data.stats
    hover = _change_hover(data)
    ok = stats["status"] == "ok"
    ranked = hover[ok].sort_values("change").index.tolist() + stats.index[~ok].tolist()
    names = stats.loc[ranked, "country"].tolist()
    shown = [key for key in ranked if ok[key]]
    rows, subset = hover.loc[shown], stats.loc[shown]
    pattern = np.where(subset["reference_window"], "/", "")
    fig = go.Figure()
    for name, key, significant, color in (
            ("raw", "", f"significant_{HEADLINE_CHANGE}", RAW_COLOR),
            ("weather-adjusted", "adjusted", "significant_weather_adjusted", ADJUSTED_COLOR)):
        value, low, high = (rows[key or "change"], rows[f"{key}_low".lstrip("_")],
                            rows[f"{key}_high".lstrip("_")])
        fig.add_trace(go.Bar(
            y=subset["country"], x=value, orientation="h", name=name,
            marker={"color": color, "opacity": np.where(subset[significant], 1.0, 0.45),
                    "pattern": {"shape": pattern, "fgcolor": "#ffffff", "solidity": 0.3}},
            error_x={"type": "data", "array": high - value, "arrayminus": value - low,
                     "color": "#333", "thickness": 1.2},
            text=rows["hover"], hovertemplate="%{text}<extra>" + name + "</extra>",
            textposition="none",
        ))
    missing = stats[~ok]
    fig.add_trace(go.Scatter(
        y=missing["country"], x=np.zeros(len(missing)), mode="markers+text",
        marker={"symbol": "x", "size": 9, "color": "#777"}, text=["too little data"] * len(missing),
        textposition="middle right", name="too little data", hovertext=hover.loc[~ok, "hover"],
        hovertemplate="%{hovertext}<extra></extra>",
    ))
    fig.update_layout(
        title={"text": "Change after the lockdown vs baseline year (%), raw and weather-adjusted, "
                       "95 % intervals; pale = not significant, hatched = no lockdown", "x": 0.01},
        barmode="group", bargap=0.25, bargroupgap=0.05,
        xaxis={"title": "change (%)", "zeroline": True, "zerolinecolor": "#333",
               "ticksuffix": " %"},
        yaxis={"categoryorder": "array", "categoryarray": names, "autorange": "reversed",
               "title": ""},
        height=max(300, 30 * len(names) + 130), margin={"l": 10, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "y": -0.08 if len(names) > 10 else -0.25},
        plot_bgcolor="white",
    )
    fig.update_xaxes(gridcolor="#e5e5e5")
    return fig


def hotspot_map_figure(hotspots: DashboardData, shapes: dict) -> go.Figure:
    """Hotspots as markers on a blank map of the country outlines: placed at their centre,
    sized by their radius, coloured by the headline change (percent) with the raw and
    weather-adjusted changes and their 95 % intervals in the hover; hotspots with too little
    data in grey. Hotspots missing from the package's table (no position) are left out."""
    stats = hotspots.stats
    hover = _change_hover(hotspots)
    placed = stats["lat"].notna() & stats["lon"].notna()
    ok = (stats["status"] == "ok") & placed
    limit = change_limit(hover.loc[ok, "change"])
    size = np.clip(stats["radius_km"].fillna(20.0) * 0.6, 8.0, 30.0)
    fig = go.Figure()
    iso3s = [f["properties"]["iso3"] for f in shapes["features"]]
    fig.add_trace(_blank_countries(shapes, iso3s, "countries", {"width": 0.5, "color": "#888"})
                  .update(showlegend=False))
    fig.add_trace(go.Scattermap(
        lat=stats.loc[ok, "lat"], lon=stats.loc[ok, "lon"], mode="markers",
        marker={"size": size[ok], "color": hover.loc[ok, "change"], "coloraxis": "coloraxis",
                "opacity": 0.9},
        text=hover.loc[ok, "hover"], hovertemplate="%{text}<extra></extra>", name="hotspot",
    ))
    missing = ~(stats["status"] == "ok") & placed
    fig.add_trace(go.Scattermap(
        lat=stats.loc[missing, "lat"], lon=stats.loc[missing, "lon"], mode="markers",
        marker={"size": size[missing], "color": NO_DATA_COLOR, "opacity": 0.9},
        text=hover.loc[missing, "hover"], hovertemplate="%{text}<extra></extra>",
        name="too little data",
    ))
    if placed.any():
        pad = 2.0
        lon = (stats.loc[placed, "lon"].min() - pad, stats.loc[placed, "lon"].max() + pad)
        lat = (stats.loc[placed, "lat"].min() - pad, stats.loc[placed, "lat"].max() + pad)
    else:
        lon, lat = _analysed_extent(shapes, set(stats["country_iso3"]))
    _change_map_layout(fig, "Hotspots: change in tropospheric NO₂ after the lockdown vs the same "
                            "days of the baseline year (%); marker size = hotspot radius",
                       limit, lon, lat)
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
                        vertical_spacing=0.05)
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
        barmode="group", bargap=0.15, height=520, plot_bgcolor="white",
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
        annotations.append({"x": x, "y": 0.3, "xref": "x", "yref": "paper", "text": label,
                            "showarrow": False, "textangle": -90, "xanchor": "right",
                            "font": {"size": 11, "color": "#c0392b"}})
    if data.min_day_coverage is not None:
        threshold = 100.0 * data.min_day_coverage
        shapes.append({"type": "line", "xref": "x2 domain", "yref": "y2", "x0": 0, "x1": 1,
                       "y0": threshold, "y1": threshold,
                       "line": {"color": "#555", "width": 1, "dash": "dot"}})
        annotations.append({"x": 1, "y": threshold, "xref": "x2 domain", "yref": "y2",
                            "text": f"day counts from {threshold:.0f} %", "showarrow": False,
                            "xanchor": "right", "yanchor": "bottom", "font": {"size": 10}})
    return shapes, annotations
