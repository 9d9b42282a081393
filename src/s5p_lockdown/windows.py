"""Analysis windows per country: pre/post lockdown in the analysis year and the same calendar
windows in each baseline year.

Conventions (all dates are calendar days, both window ends *inclusive*):

- ``post`` starts on the country's lockdown start and lasts ``post_days`` days, or ends on the
  lockdown end date when that comes sooner;
- ``pre`` is the ``pre_days`` days before the lockdown start (the start day excluded);
- baseline windows are the same month/day spans in each baseline year;
- countries without a lockdown (``measure = none``) use the configured common reference window
  as ``post`` (and the ``pre_days`` before it as ``pre``), flagged ``reference_window = True``;
- a sub-national region (:func:`region_windows`) takes the windows of its own row of a regional
  lockdown table, or else its country's.

Windows are shared: countries with identical spans share one period composite, identified by
:func:`window_id` (``YYYY-MM-DD_YYYY-MM-DD``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from s5p_lockdown.errors import ConfigError

PERIODS = ("pre", "post")


@dataclass(frozen=True)
class WindowSettings:
    """``reference_start``/``reference_end`` are in the analysis year (inclusive)."""

    analysis_year: int
    baseline_years: tuple[int, ...]
    pre_days: int
    post_days: int
    reference_start: date
    reference_end: date

    def __post_init__(self) -> None:
        if self.pre_days < 1 or self.post_days < 1:
            raise ConfigError("windows: pre_days and post_days must be at least 1")
        if self.reference_end < self.reference_start:
            raise ConfigError(
                f"windows: reference_window end {self.reference_end} is before its start "
                f"{self.reference_start}"
            )
        if self.analysis_year in self.baseline_years:
            raise ConfigError(f"baseline_years must not contain the analysis year {self.analysis_year}")


def window_id(start: date, end: date) -> str:
    return f"{start:%Y-%m-%d}_{end:%Y-%m-%d}"


def _shift_year(day: date, year: int) -> date:
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February -> 28 February
        return day.replace(year=year, day=28)


def country_windows(lockdowns: pd.DataFrame, settings: WindowSettings) -> pd.DataFrame:
    """One row per (country, period, year): columns ``iso3, country, measure, period, year,
    role ('analysis' | 'baseline'), start, end, window, reference_window``.

    ``lockdowns`` is a table from :func:`s5p_lockdown.lockdowns.load_lockdown_dates` (index iso3).
    Lockdown start dates must lie in the analysis year.
    """
    rows = []
    for iso3, row in lockdowns.iterrows():
        reference = row["measure"] == "none"
        if reference:
            post_start, post_end = settings.reference_start, settings.reference_end
        else:
            post_start = row["lockdown_start"].date()
            if post_start.year != settings.analysis_year:
                raise ConfigError(
                    f"lockdown dates: {iso3} starts on {post_start}, outside the analysis year "
                    f"{settings.analysis_year}"
                )
            post_end = post_start + timedelta(days=settings.post_days - 1)
            if pd.notna(row["lockdown_end"]):
                post_end = min(post_end, row["lockdown_end"].date())
        pre_end = post_start - timedelta(days=1)
        pre_start = post_start - timedelta(days=settings.pre_days)
        spans = {"pre": (pre_start, pre_end), "post": (post_start, post_end)}
        years = [(settings.analysis_year, "analysis")] + [(y, "baseline") for y in settings.baseline_years]
        for period, (start, end) in spans.items():
            for year, role in years:
                s, e = _shift_year(start, year), _shift_year(end, year)
                rows.append(
                    {
                        "iso3": iso3,
                        "country": row["country"],
                        "measure": row["measure"],
                        "period": period,
                        "year": year,
                        "role": role,
                        "start": s,
                        "end": e,
                        "window": window_id(s, e),
                        "reference_window": reference,
                    }
                )
    return pd.DataFrame(rows)


def region_windows(country_of: Mapping[str, str], region_dates: pd.DataFrame | None,
                   countries: pd.DataFrame, settings: WindowSettings) -> pd.DataFrame:
    """Windows of regions, in the layout of :func:`country_windows` with ``iso3`` = the region
    id, ``country`` = the region's country (ISO3) and ``dates_from`` = ``region`` (its own row
    of ``region_dates``, a table from :func:`s5p_lockdown.lockdowns.load_region_lockdowns`) or
    ``country`` (no row: its country's windows, taken from ``countries``, the windows of the
    analysed countries).

    ``country_of`` maps region ids to their country, in region order; regions of countries
    without windows in ``countries`` (not analysed, or outside every country) are left out.
    """
    analysed = set(countries["iso3"])
    frames = []
    own = region_dates if region_dates is not None else pd.DataFrame()
    for region, iso3 in country_of.items():
        if iso3 not in analysed:
            continue
        if region in own.index:
            table = own.loc[[region], ["lockdown_start", "lockdown_end", "measure"]].assign(country=iso3)
            frames.append(country_windows(table, settings).assign(dates_from="region"))
        else:
            rows = countries[countries["iso3"] == iso3]
            frames.append(rows.assign(iso3=region, country=iso3, dates_from="country"))
    if not frames:
        return countries.iloc[:0].assign(dates_from=pd.Series(dtype=str))
    return pd.concat(frames, ignore_index=True)


def days_of(start: date, end: date) -> list[date]:
    """Days from ``start`` to ``end``, both inclusive."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def required_days(windows: pd.DataFrame) -> list[date]:
    """Every day some window needs, sorted."""
    days = set()
    for start, end in windows[["start", "end"]].drop_duplicates().itertuples(index=False):
        days.update(days_of(start, end))
    return sorted(days)
