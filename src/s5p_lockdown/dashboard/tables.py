"""HTML snippets of the dashboard: the header (with what the data are: a demonstration banner
for synthetic orbits, the Copernicus attribution for real data), a country's (or hotspot's)
numbers, the countries without a ranked change, download links, messages.

Every value taken from the results is HTML-escaped. NO2 columns are shown in µmol m-2
(mol m-2 x 1e6), coverage and changes in percent, numbers written by :mod:`.text`.
"""

from __future__ import annotations

import base64
import html

import numpy as np
import pandas as pd

from s5p_lockdown.dashboard.data import (
    ALL_CHANGES, GROUPS, HEADLINE_CHANGE, DashboardData, Provenance,
)
from s5p_lockdown.dashboard.figures import NO2_UNIT, UMOL
from s5p_lockdown.dashboard.text import interval, number, percent

CHANGE_LABELS = {
    "post_vs_baseline": "after vs same days of the baseline year",
    "post_vs_pre": "after vs before",
    "adjusted": "after vs before, relative to the baseline year",
    "weather_adjusted": "weather-adjusted (wind model), after vs baseline year",
    "low_wind": "low-wind days only, after vs baseline year",
}
ROLE_LABELS = {"pre": "before", "post": "after"}

TABLE_STYLE = ("border-collapse:collapse;font-size:13px;line-height:1.5;"
               "font-family:var(--jp-ui-font-family, sans-serif)")
CELL = ("padding:2px 10px;border-bottom:1px solid #e5e5e5;text-align:right;"
        "white-space:nowrap;vertical-align:top")
HEAD = "padding:2px 10px;border-bottom:1px solid #999;text-align:right;white-space:nowrap"
REASON = ("display:inline-block;white-space:normal;color:#666;font-size:12px;text-align:left;"
          "max-width:20em")


def _esc(value) -> str:
    return html.escape(str(value))


def _cells(values, tag: str = "td", style: str = CELL) -> str:
    first = style.replace("text-align:right", "text-align:left").replace("nowrap", "normal")
    return "".join(f"<{tag} style='{first if i == 0 else style}'>{v}</{tag}>"
                   for i, v in enumerate(values))


def country_summary_html(data: DashboardData, iso3: str) -> str:
    """The country's (or hotspot's) windows (dates, mean, usable days, coverage) and its
    changes with 95 % intervals and significance: the three of the statistics, the
    weather-adjusted and the low-wind one, then the note on the weather adjustment; as an
    HTML fragment."""
    row = data.stats.loc[iso3]
    kind = ("no lockdown: analysed on the common reference window" if row["reference_window"]
            else f"{_esc(row['measure'])} lockdown from {row['post_start']:%-d %b %Y}")
    end = data.lockdown_ends.get(iso3)
    if end is not None:
        kind += f" to {end:%-d %b %Y}"
    # hotspots: the label 'Paris (FRA)' already names the country
    code = "" if "country_iso3" in row.index else (
        f" <span style='font-weight:normal;color:#666'>({_esc(iso3)})</span>")
    parts = [f"<h3 style='margin:4px 0' data-iso3='{_esc(iso3)}'>{_esc(row['country'])}"
             f"{code}</h3>",
             f"<div style='margin-bottom:6px'>{kind}</div>"]
    if not np.isfinite(row[f"change_{HEADLINE_CHANGE}"]):
        parts.append(f"<div style='color:#a94442;margin-bottom:6px'><b>No change after vs "
                     f"baseline year:</b> {_esc(row[f'reason_{HEADLINE_CHANGE}'])}</div>")

    head = ["window", "days", f"mean NO₂ ({NO2_UNIT})", "usable days", "coverage"]
    body = []
    for period, role in GROUPS:
        key = f"{period}_{role}"
        if role == "analysis":
            year = str(row["analysis_year"])
        else:
            year = str(row["baseline_years"])
        start, end_day = row[f"{period}_start"], row[f"{period}_end"]
        body.append([f"{ROLE_LABELS[period]} {year}",
                     f"{start:%-d %b} – {end_day:%-d %b}",
                     number(row[f"mean_{key}"] * UMOL, ".2f"),
                     f"{row[f'days_{key}']} of {row[f'calendar_days_{key}']}",
                     percent(100 * row[f"coverage_{key}"], 0, signed=False)])
    parts.append(_table(head, body))

    head = ["change", "value", "95 % interval", "significant"]
    body = []
    for name in ALL_CHANGES:
        value, low, high = (100 * row[f"change_{name}{s}"] for s in ("", "_low", "_high"))
        if np.isfinite(value):
            body.append([CHANGE_LABELS[name], percent(value), interval(low, high),
                         "yes" if row[f"significant_{name}"] else "no"])
        else:  # the reason in the row, in plain words
            body.append([CHANGE_LABELS[name], "n/a",
                         f"<span class='s5p-reason' style='{REASON}'>"
                         f"{_esc(row[f'reason_{name}'])}</span>", ""])
    parts.append(_table(head, body))
    wind = [f"{label} {number(row[key], '.1f')} m s⁻¹" for key, label in (
        ("wind_post_analysis", "mean wind after"), ("wind_post_baseline", "baseline year"),
        ("low_wind_threshold", "low-wind threshold")) if np.isfinite(row[key])]
    parts.append(f"<div class='s5p-weather-note' style='font-size:12px;color:#555'>"
                 f"Weather adjustment: {_esc(row['weather_adjustment'])}"
                 f"{'; ' + _esc(', '.join(wind)) if wind else ''}.</div>")
    return "<div class='s5p-country-numbers'>" + "".join(parts) + "</div>"


def _table(head: list[str], body: list[list[str]]) -> str:
    rows = "".join(f"<tr>{_cells(r)}</tr>" for r in body)
    return (f"<table style='{TABLE_STYLE};margin:6px 0 10px 0'><thead><tr>"
            f"{_cells(head, 'th', HEAD)}</tr></thead><tbody>{rows}</tbody></table>")


def download_link_html(payload: bytes, filename: str, what: str,
                       mime: str = "text/csv") -> str:
    """A link that downloads ``payload`` as ``filename`` (a data URL: no file is served, no
    request is made); ``what`` describes it ('the statistics table (CSV, 40 countries)')."""
    encoded = base64.b64encode(payload).decode("ascii")
    return (f"<a class='s5p-download' download='{_esc(filename)}' "
            f"href='data:{_esc(mime)};base64,{encoded}' "
            "style='font-weight:bold;text-decoration:underline;margin-right:1.5em'>"
            f"⬇ {_esc(what)}, {len(payload) / 1024:.0f} kB</a>")


def statistics_links_html(data: DashboardData) -> str:
    """Download links of the country statistics and, when there are some, of the hotspot and
    region statistics, exactly as the workflow wrote them."""
    links = [download_link_html(data.stats_csv, "country_stats.csv",
                                f"Country statistics (CSV, {len(data.stats)} countries)")]
    if data.hotspots is not None:
        links.append(download_link_html(
            data.hotspots.stats_csv, "hotspot_stats.csv",
            f"Hotspot statistics (CSV, {len(data.hotspots.stats)} hotspots)"))
    if data.regions is not None:
        links.append(download_link_html(
            data.regions.stats_csv, "region_stats.csv",
            f"Region statistics (CSV, {len(data.regions.stats)} regions)"))
    return "<div class='s5p-downloads'>" + "".join(links) + "</div>"


def unranked_html(data: DashboardData, noun: str = "countries") -> str:
    """One line naming the countries (or hotspots) without the headline change, which the
    ranking and the map leave out or grey; empty when there is none."""
    missing = data.stats.loc[~data.has_change(), "country"]
    if missing.empty:
        return ""
    return (f"<div class='s5p-unranked' style='font-size:13px;color:#555;margin:2px 0 8px 0'>"
            f"Not ranked, too little data for this change: "
            f"{_esc(', '.join(missing))}. Their details below say why.</div>")


def message_html(title: str, text: str, level: str = "error") -> str:
    """A boxed message (``level`` 'error' or 'warning') for the page."""
    colors = {"error": ("#f2dede", "#a94442"), "warning": ("#fcf8e3", "#8a6d3b")}
    background, color = colors[level]
    return (f"<div class='s5p-message s5p-{_esc(level)}' style='background:{background};"
            f"color:{color};border:1px solid {color};border-radius:4px;padding:8px 12px;"
            f"margin:6px 0'><b>{_esc(title)}</b> {_esc(text)}</div>")


DEMO_BANNER = "Demonstration data (synthetic orbits): not real measurements."
DEMO_TEXT = ("These maps and numbers come from generated orbits with the structure of "
             "Sentinel-5P products and an invented lockdown effect. They show how the analysis "
             "works, not what happened.")


def source_html(data: DashboardData) -> str:
    """What the data are: the demonstration banner when the provenance says the orbits are
    synthetic, the Copernicus attribution with processor versions and processing date for real
    data, a warning when the results do not record their source."""
    prov: Provenance = data.provenance
    if prov.synthetic:
        return (f"<div class='s5p-demo-banner' role='alert' style='background:#fff3cd;"
                f"color:#664d03;border:2px solid #e0a800;border-radius:4px;padding:10px 14px;"
                f"margin:8px 0;font-size:15px'><b>{DEMO_BANNER}</b> {DEMO_TEXT}</div>")
    if prov.source_kind is None:
        return message_html("Source not recorded:", "these results do not say which data they "
                            "were made from (no provenance record).", "warning")
    years = sorted({int(data.stats["analysis_year"].iloc[0]), *data.baseline_years})
    details = []
    if prov.processor_versions:
        plural = "s" if len(prov.processor_versions) > 1 else ""
        details.append(f"TROPOMI L2 NO₂ processor version{plural} "
                       f"{', '.join(prov.processor_versions)}")
    if prov.date_created is not None:
        details.append(f"processed on {prov.date_created:%-d %b %Y}")
    return (f"<p class='s5p-attribution' style='margin:4px 0;font-size:13px;color:#333'>"
            f"Contains modified Copernicus Sentinel data {', '.join(map(str, years))} processed "
            f"by {_esc(prov.software)}{'; ' if details else ''}{_esc('; '.join(details))}.</p>")


def header_html(data: DashboardData) -> str:
    """The title, what the dashboard shows, and what the data are (:func:`source_html`)."""
    stats = data.stats
    analysis_year = stats["analysis_year"].iloc[0]
    baseline = " and ".join(map(str, data.baseline_years))
    ok = int(data.has_change().sum())
    first, last = stats["post_start"].min(), stats["post_end"].max()
    what = {"synthetic": "Synthetic tropospheric NO₂ columns", None: "Tropospheric NO₂ columns"}
    what = what.get(data.provenance.source_kind, "Sentinel-5P TROPOMI tropospheric NO₂ columns")
    return (f"<h1 style='margin:6px 0 4px 0;font-size:26px'>NO₂ and the {analysis_year} "
            f"lockdowns in Europe</h1>{source_html(data)}"
            f"<p style='margin:2px 0'>{what} after each country's lockdown, compared with the "
            f"same calendar days of {baseline}: {len(stats)} countries, {ok} with enough data; "
            f"windows after the lockdown from {pd.Timestamp(first):%-d %b} to "
            f"{pd.Timestamp(last):%-d %b %Y}.</p>")
