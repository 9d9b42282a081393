"""Small hand-made cells × days tables and window tables for the statistics tests."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from s5p_lockdown.cells import CellTable

START = {"pre_baseline": date(2019, 3, 1), "post_baseline": date(2019, 3, 15),
         "pre_analysis": date(2020, 3, 1), "post_analysis": date(2020, 3, 15)}
WINDOW_DAYS = {"pre": 14, "post": 30}


def window_dates(key: str, n: int | None = None) -> list[date]:
    period = key.split("_")[0]
    return [START[key] + timedelta(days=i) for i in range(n or WINDOW_DAYS[period])]


def windows_frame(iso3: str = "AAA") -> pd.DataFrame:
    """The four windows of one country (pre: 14 days from 1 March, post: 30 days from 15
    March, analysis year 2020, baseline 2019), as :func:`s5p_lockdown.windows.country_windows`
    writes them."""
    rows = []
    for key, start in START.items():
        period, role = key.split("_")
        rows.append({"iso3": iso3, "country": "Testland", "measure": "national",
                     "reference_window": False, "period": period, "role": role,
                     "year": start.year, "start": start,
                     "end": start + timedelta(days=WINDOW_DAYS[period] - 1)})
    return pd.DataFrame(rows)


def table(values: np.ndarray, weights: np.ndarray, dates: list[date], area=None, wind=None,
          code: str = "AAA") -> CellTable:
    """A CellTable from cell values x (days, cells) and weights W (0 = no data)."""
    values = np.asarray(values, float)
    weights = np.asarray(weights, float)
    area = np.ones(values.shape[1]) if area is None else np.asarray(area, float)
    return CellTable(
        code, np.array(dates, dtype=object), area,
        np.where(weights > 0, weights * np.nan_to_num(values), 0.0), weights,
        np.full(len(dates), np.nan) if wind is None else np.asarray(wind, float),
    )


def concat(tables: list[CellTable]) -> CellTable:
    """Tables of the same cells one after the other in time."""
    first = tables[0]
    return CellTable(first.code, np.concatenate([t.dates for t in tables]), first.area,
                     np.concatenate([t.weighted_value for t in tables]),
                     np.concatenate([t.weight for t in tables]),
                     np.concatenate([t.wind for t in tables]))


def brute_force_change(windows: list[tuple[np.ndarray, np.ndarray]],
                       area: np.ndarray) -> tuple[list[float], int, float]:
    """Common-support window means written as plainly as possible: loops over cells and days.
    ``windows``: (values, weights) of each window's (resampled) days; cells weighted by area."""
    n_cells = area.size
    composites = []
    for values, weights in windows:
        comp = [None] * n_cells
        for i in range(n_cells):
            s = n = 0.0
            for d in range(values.shape[0]):
                if weights[d, i] > 0:
                    s += weights[d, i] * values[d, i]
                    n += weights[d, i]
            comp[i] = s / n if n > 0 else None
        composites.append(comp)
    support = [i for i in range(n_cells) if all(c[i] is not None for c in composites)]
    total = sum(area[i] for i in support)
    means = [sum(area[i] * c[i] for i in support) / total for c in composites]
    return means, len(support), sum(area[i] for i in support) / area.sum()


def record_interval_days(monkeypatch, module) -> dict:
    """Patch ``module.change_columns`` (stats or weather) to record, per change name, the
    ``days`` its interval is widened for; returns that dict (filled as the module runs)."""
    seen = {}
    real = module.change_columns

    def recording(name, *args, days=None, **kwargs):
        seen[name] = days
        return real(name, *args, days=days, **kwargs)

    monkeypatch.setattr(module, "change_columns", recording)
    return seen
