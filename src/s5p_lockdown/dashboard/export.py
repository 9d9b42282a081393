"""A static snapshot of the dashboard: HTML pages with the same figures and tables, no kernel.

:func:`export_site` writes into a directory::

    index.html            header, gridded maps with a window selector (the common reference
                          window first), change maps and rankings (countries, hotspots,
                          regions), links to every detail page, downloads
    countries/<ISO3>.html a country's numbers and daily series
    hotspots/<name>.html  the same for a hotspot (when the results have hotspot statistics)
    regions/<id>.html     the same for a region (when the run had a region file)
    plotly.min.js         plotly.js, from the installed plotly package (no CDN)
    plots.js              draws every figure of a page (the package's plots.js, those on
                          the screen first), and the gridded maps of the window chosen in
                          the selector
    data/                 country_stats.csv, hotspot_stats.csv, region_stats.csv (as the
                          workflow wrote them), the gridded maps' values of each window
                          (netCDF) and the maps of every window but the first
                          (``maps_<n>.js``, loaded when that window is chosen)

The site makes no request outside itself (no CDN, no fonts, no map tiles) and runs from
``file://`` or any static web server. Pages hold no inline script (each figure is a JSON
block drawn by ``plots.js``), so a strict ``script-src 'self'`` policy can serve them. It is
written in a temporary directory next to the target, then moved into place; an existing
target is replaced only when it is a previous export (it holds :data:`MARKER`).
"""

from __future__ import annotations

import html
import json
import re
import tempfile
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from s5p_lockdown.dashboard import figures, tables
from s5p_lockdown.dashboard.data import (
    DashboardData, EuropeMaps, ResultsError, country_shapes, crop_maps, grids_netcdf,
    load_europe_maps, load_results, map_windows,
)

MARKER = ".s5p-dashboard-export"
"""File that marks a directory as written by :func:`export_site`."""
PAGE_CSS = f"""
body {{ font-family: sans-serif; margin: 12px 18px; color: #222; max-width: 2600px; }}
h2 {{ margin: 18px 0 4px 0; }}
.row {{ display: flex; flex-wrap: wrap; align-items: flex-start; gap: 6px; width: 100%; }}
.grid-map {{ flex: 1 1 360px; min-width: 0; }}
.change-map {{ flex: 1 1 560px; min-width: 0; max-width: {figures.CHANGE_MAP_MAX_WIDTH}px; }}
.ranking {{ flex: 1 1 480px; min-width: 0; }}
.series {{ flex: 1 1 520px; min-width: 0; }}
.links a {{ margin-right: 0.8em; white-space: nowrap; line-height: 1.8; }}
"""


def slug(name: str) -> str:
    """A file name for a country code or hotspot name ('Po Valley' → 'Po_Valley')."""
    return re.sub(r"[^A-Za-z0-9-]+", "_", name).strip("_") or "_"


WINDOWS_JS = """
// The window selector of the gridded maps: the maps of window n are in data/maps_<n>.js
// (S5P_MAPS[n] = [three figures]), loaded the first time the window is chosen; the first
// window's maps are the page's own.
window.S5P_MAPS = window.S5P_MAPS || {};
document.addEventListener('DOMContentLoaded', function () {
  var select = document.getElementById('s5p-window');
  if (!select) { return; }
  var blocks = document.querySelectorAll('#s5p-grid-maps script.plot');
  S5P_MAPS[select.value] = Array.prototype.map.call(blocks, function (b) {
    return JSON.parse(b.textContent);
  });
  select.addEventListener('change', function () {
    var option = select.options[select.selectedIndex], n = option.value;
    var link = document.getElementById('s5p-grids-download');
    link.href = option.getAttribute('data-download');
    link.setAttribute('download', '');
    var draw = function () {
      if (select.value !== n) { return; }  // another window was chosen meanwhile
      S5P_MAPS[n].forEach(function (spec, k) { S5P_PLOTS.show(blocks[k], spec); });
    };
    if (S5P_MAPS[n]) { draw(); return; }
    var script = document.createElement('script');
    script.src = option.getAttribute('data-script');
    script.onload = draw;
    document.head.appendChild(script);
  });
});
"""
"""Appended to :data:`figures.PLOTS_JS` in the site's ``plots.js``."""


def _figure_html(fig: go.Figure, css_class: str) -> str:
    """A figure (drawn by ``plots.js``) in a div of class ``css_class``, following its
    container's width; as tall as the figure."""
    return (f"<div class='{css_class}'>"
            f"{figures.plot_html(figures.plot_spec(fig), fig.layout.height)}</div>")


def _page(title: str, body: str, root: str = "") -> str:
    """A whole HTML page; ``root`` is the relative path to the site's top ('' or '../')."""
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{PAGE_CSS}</style>"
            f"<script src='{root}plotly.min.js'></script><script src='{root}plots.js'></script>"
            f"</head>\n<body>\n{body}\n</body></html>\n")


def _links(data: DashboardData, folder: str, root: str = "") -> str:
    items = [f"<a href='{root}{folder}/{slug(key)}.html'>{html.escape(name)}</a>"
             for name, key in data.countries]
    return "<div class='links'>" + " ".join(items) + "</div>"


def _detail_page(data: DashboardData, key: str, site_title: str) -> str:
    fig = figures.timeseries_figure(data, key)
    body = (f"<p><a href='../index.html'>← {html.escape(site_title)}</a></p>"
            f"{tables.source_html(data)}"
            f"<div class='row'><div>{tables.country_summary_html(data, key)}</div>"
            f"{_figure_html(fig, 'series')}</div>")
    return _page(f"{data.stats.at[key, 'country']}: {site_title}", body, "../")


def _section(title: str) -> str:
    return f"<h2>{html.escape(title)}</h2>"


def _window_selector(windows: list[tuple[str, str, str]]) -> str:
    """The gridded maps' window selector and download link; ``windows``: (label, maps script,
    netCDF file) of each window set, the first shown with the page."""
    options = "".join(
        f"<option value='{n}' data-script='{html.escape(script)}' "
        f"data-download='{html.escape(grids)}'>{html.escape(label)}</option>"
        for n, (label, script, grids) in enumerate(windows))
    return (f"<div class='links'><label>Window <select id='s5p-window'>{options}</select>"
            f"</label> <a id='s5p-grids-download' class='s5p-download' "
            f"href='{html.escape(windows[0][2])}' download>⬇ The grids of this window "
            f"(netCDF)</a></div>")


def _index_page(data: DashboardData, shapes: dict, downloads: list[tuple[str, str]],
                grid_note: str, grid_figures: dict | None,
                windows: list[tuple[str, str, str]]) -> str:
    parts = [tables.header_html(data),
             "<div class='links'>" + " ".join(f"<a class='s5p-download' href='{href}' download>"
                                              f"⬇ {html.escape(what)}</a>"
                                              for href, what in downloads) + "</div>",
             _section("Gridded NO₂: the same days before and during the lockdowns")]
    if grid_figures is None:
        parts.append(tables.message_html("Gridded maps unavailable:", grid_note))
    else:
        parts.append(_window_selector(windows))
        parts.append("<div class='row' id='s5p-grid-maps'>"
                     + "".join(_figure_html(f, "grid-map") for f in grid_figures.values())
                     + "</div>")
    views = [("countries", "country", data, figures.choropleth_figure(data, shapes))]
    if data.hotspots is not None:
        views.append(("hotspots", "hotspot", data.hotspots,
                      figures.hotspot_map_figure(data.hotspots, shapes)))
    if data.regions is not None:
        views.append(("regions", "region", data.regions,
                      figures.region_map_figure(data.regions, data.region_outlines, shapes)))
    for folder, noun, view, change_map in views:
        parts += [_section(f"Change per {noun}"), tables.unranked_html(view, folder),
                  "<div class='row'>" + _figure_html(change_map, "change-map")
                  + _figure_html(figures.ranking_figure(view), "ranking") + "</div>",
                  f"<p>Details of each {noun} (numbers and daily series):</p>",
                  _links(view, folder)]
    if data.hotspots is None:
        parts.append(tables.message_html("Hotspots:", data.hotspot_note, "warning"))
    return _page("NO₂ and the lockdowns in Europe", "\n".join(parts))


def _write_window(folder: Path, n: int, maps: EuropeMaps, figs: dict) -> tuple[str, str]:
    """Write the grids of window set ``n`` (netCDF) and, but for the first (drawn from the
    page itself), its three maps as ``maps_<n>.js``; returns both paths relative to the
    site."""
    start, end = maps.windows["post_analysis"]
    grids = f"no2_grids_europe_{start}_{end}.nc" if n == 0 else \
        f"no2_grids_window{n}_{start}_{end}.nc"
    (folder / grids).write_bytes(grids_netcdf(maps))
    script = f"maps_{n}.js"
    if n > 0:
        payload = json.dumps([figures.plot_spec(fig) for fig in figs.values()])
        (folder / script).write_text(f"S5P_MAPS[{n}] = {payload};\n", encoding="utf-8")
    return f"data/{grids}", f"data/{script}"


def export_site(results: str | Path, target: str | Path) -> Path:
    """Write the static dashboard of ``results`` into ``target`` (see the module docstring);
    returns ``target``.

    Raises :class:`ResultsError` when the results cannot be shown, or when ``target`` exists
    and is not a previous export.
    """
    data = load_results(results)
    target = Path(target)
    if target.exists() and not (target / MARKER).is_file() and (
            not target.is_dir() or any(target.iterdir())):
        raise ResultsError(f"{target} exists and is not a dashboard export: choose an empty "
                           "or new directory.")
    shapes = country_shapes()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
        site = Path(tmp) / "site"
        (site / "data").mkdir(parents=True)
        (site / "plotly.min.js").write_text(get_plotlyjs(), encoding="utf-8")
        (site / "plots.js").write_text(
            figures.PLOTS_JS.read_text(encoding="utf-8") + WINDOWS_JS, encoding="utf-8")
        (site / "data" / "country_stats.csv").write_bytes(data.stats_csv)
        downloads = [("data/country_stats.csv", f"Country statistics (CSV, "
                                                f"{len(data.stats)} countries)")]
        if data.hotspots is not None:
            (site / "data" / "hotspot_stats.csv").write_bytes(data.hotspots.stats_csv)
            downloads.append(("data/hotspot_stats.csv", f"Hotspot statistics (CSV, "
                                                        f"{len(data.hotspots.stats)} hotspots)"))
        if data.regions is not None:
            (site / "data" / "region_stats.csv").write_bytes(data.regions.stats_csv)
            downloads.append(("data/region_stats.csv", f"Region statistics (CSV, "
                                                       f"{len(data.regions.stats)} regions)"))
        grid_figures, grid_note, windows = None, "", []
        for n, window in enumerate(map_windows(data) or [None]):
            try:
                maps = crop_maps(load_europe_maps(data, window), None)
            except ResultsError as exc:
                if n == 0:
                    grid_note = str(exc)
                    break
                continue  # a later window set that cannot be read is left out
            figs = figures.grid_map_figures(maps, shapes)
            grids, script = _write_window(site / "data", n, maps, figs)
            if n == 0:
                grid_figures = figs
            windows.append((window.label if window else "common reference window",
                            script, grids))
        (site / "index.html").write_text(
            _index_page(data, shapes, downloads, grid_note, grid_figures, windows),
            encoding="utf-8")
        title = "NO₂ and the lockdowns in Europe"
        for folder, view in (("countries", data), ("hotspots", data.hotspots),
                             ("regions", data.regions)):
            if view is None:
                continue
            (site / folder).mkdir()
            for _, key in view.countries:
                (site / folder / f"{slug(key)}.html").write_text(
                    _detail_page(view, key, title), encoding="utf-8")
        (site / MARKER).write_text("written by s5p-lockdown dashboard export\n")
        if target.exists():
            old = Path(tmp) / "old"
            target.rename(old)
        site.rename(target)
    return target
