"""HTML snippets of the dashboard: a country's (or hotspot's) numbers, the CSV download link,
messages.

Every value taken from the results is HTML-escaped. NO2 columns are shown in µmol m-2
(mol m-2 x 1e6), coverage and changes in percent.
"""

from __future__ import annotations

import base64
import html

import numpy as np
import pandas as pd

from s5p_lockdown.dashboard.data import CHANGES, GROUPS, WEATHER_CHANGES, DashboardData
from s5p_lockdown.dashboard.figures import NO2_UNIT, UMOL

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
CELL = "padding:2px 10px;border-bottom:1px solid #e5e5e5;text-align:right"
HEAD = "padding:2px 10px;border-bottom:1px solid #999;text-align:right"


def _esc(value) -> str:
    return html.escape(str(value))


def _number(value, fmt: str, missing: str = "–") -> str:
    return missing if value is None or not np.isfinite(value) else format(value, fmt)


def _cells(values, tag: str = "td", style: str = CELL) -> str:
    first = style.replace("text-align:right", "text-align:left")
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
    if row["status"] != "ok":
        parts.append(f"<div style='color:#a94442;margin-bottom:6px'><b>Too little data:</b> "
                     f"{_esc(row['reason'])}</div>")

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
                     _number(row[f"mean_{key}"] * UMOL, ".2f"),
                     f"{row[f'days_{key}']} / {row[f'calendar_days_{key}']}",
                     f"{_number(100 * row[f'coverage_{key}'], '.0f')} %"])
    parts.append(_table(head, body))

    head = ["change", "value", "95 % interval", "significant"]
    body = []
    for name in CHANGES + WEATHER_CHANGES:
        value, low, high = (100 * row[f"change_{name}{s}"] for s in ("", "_low", "_high"))
        body.append([CHANGE_LABELS[name], f"{_number(value, '+.1f')} %",
                     f"{_number(low, '+.1f')} to {_number(high, '+.1f')} %",
                     "yes" if row[f"significant_{name}"] else "no"])
    parts.append(_table(head, body))
    wind = [f"{label} {_number(row[key], '.1f')} m s⁻¹" for key, label in (
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


def download_link_html(data: DashboardData, filename: str = "country_stats.csv") -> str:
    """A link that downloads the statistics table exactly as the workflow wrote it (a data
    URL: no file is served)."""
    payload = base64.b64encode(data.stats_csv).decode("ascii")
    size_kb = len(data.stats_csv) / 1024
    return (f"<a class='s5p-download' download='{_esc(filename)}' "
            f"href='data:text/csv;base64,{payload}' "
            "style='font-weight:bold;text-decoration:underline'>"
            f"⬇ Download the statistics table (CSV, {len(data.stats)} countries, "
            f"{size_kb:.0f} kB)</a>")


def message_html(title: str, text: str, level: str = "error") -> str:
    """A boxed message (``level`` 'error' or 'warning') for the page."""
    colors = {"error": ("#f2dede", "#a94442"), "warning": ("#fcf8e3", "#8a6d3b")}
    background, color = colors[level]
    return (f"<div class='s5p-message s5p-{_esc(level)}' style='background:{background};"
            f"color:{color};border:1px solid {color};border-radius:4px;padding:8px 12px;"
            f"margin:6px 0'><b>{_esc(title)}</b> {_esc(text)}</div>")


def header_html(data: DashboardData) -> str:
    """One line on what the dashboard shows and where the numbers come from."""
    stats = data.stats
    analysis_year = stats["analysis_year"].iloc[0]
    baseline = " ".join(map(str, data.baseline_years))
    ok = int((stats["status"] == "ok").sum())
    first, last = stats["post_start"].min(), stats["post_end"].max()
    return (f"<p style='margin:2px 0'>Sentinel-5P TROPOMI tropospheric NO₂, {len(stats)} "
            f"countries ({ok} with enough data), lockdowns of {analysis_year} compared with "
            f"{baseline}; post windows {pd.Timestamp(first):%-d %b} – "
            f"{pd.Timestamp(last):%-d %b %Y}. Results: <code>{_esc(data.root.name)}/</code></p>")
