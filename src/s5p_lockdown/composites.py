"""Period composites: merge the daily grids of a window into one grid.

``weighting="weight"`` (default) adds the daily sums, so the composite equals binning every
pixel of the window at once (each day weighted by its Σ w); ``"equal"`` gives each day the same
weight in each cell where it has data. Days of the window without a daily grid (no orbit in the
archive) are listed in the ``missing_days`` attribute.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from pathlib import Path

import xarray as xr

from s5p_lockdown.errors import InvalidProductError
from s5p_lockdown.gridding.accumulator import GridAccumulator, composite, write_netcdf
from s5p_lockdown.outputs import provenance, write_atomically
from s5p_lockdown.windows import days_of

log = logging.getLogger(__name__)


#: Memory for daily grids kept between windows (bytes): windows overlap, so most days serve
#: several composites and are read once instead of once per window.
DAILY_CACHE_BYTES = 400 * 2**20


def load_daily(path: str | Path) -> GridAccumulator:
    """A daily grid written by :mod:`s5p_lockdown.daily` as an accumulator; InvalidProductError
    naming the file if it is not in the L3 schema."""
    with xr.open_dataset(path) as ds:
        try:
            return GridAccumulator.from_dataset(ds.load())
        except ValueError as exc:
            raise InvalidProductError(path, str(exc)) from None


class DailyCache:
    """Daily accumulators by path, least recently used dropped beyond ``max_bytes`` (callers
    must not modify them: :func:`composite` leaves its inputs unchanged)."""

    def __init__(self, max_bytes: int | None = None):
        self.max_bytes = DAILY_CACHE_BYTES if max_bytes is None else max_bytes
        self._items: OrderedDict[Path, GridAccumulator] = OrderedDict()

    def load(self, path: str | Path) -> GridAccumulator:
        path = Path(path)
        if path in self._items:
            self._items.move_to_end(path)
            return self._items[path]
        acc = self._items[path] = load_daily(path)
        while sum(a.nbytes for a in self._items.values()) > self.max_bytes and len(self._items) > 1:
            self._items.popitem(last=False)
        return acc


def period_composite(
    daily_paths: list[str | Path],
    start: date,
    end: date,
    out_path: str | Path,
    weighting: str = "weight",
    config: dict | None = None,
    cache: DailyCache | None = None,
) -> Path:
    """Composite of the daily grids (files named ``YYYY-MM-DD.nc``) for ``start``..``end``
    (inclusive); written atomically. ``cache`` keeps daily grids for the next windows."""
    paths = sorted(map(Path, daily_paths))
    if not paths:
        raise ValueError(f"window {start}..{end}: no daily grid to composite")
    load = cache.load if cache is not None else load_daily
    result = composite((load(p) for p in paths), weighting=weighting)
    ds = result.finalize(history=f"s5p-lockdown period_composite {start}..{end} weighting={weighting}")
    present = {p.stem for p in paths}
    missing = [d.isoformat() for d in days_of(start, end) if d.isoformat() not in present]
    ds.attrs.update(provenance(config, result.sources))
    ds.attrs.update(
        window_start=start.isoformat(),
        window_end=end.isoformat(),
        days_used=len(paths),
        missing_days=",".join(missing),
        source_product=",".join(result.sources),
    )
    return write_atomically(out_path, lambda tmp: write_netcdf(ds, tmp))


def period_composites(
    windows: dict[str, tuple[date, date]],
    daily_path: Callable[[date], str | Path],
    out_dir: str | Path,
    weighting: str = "weight",
    config: dict | None = None,
) -> list[Path]:
    """One composite per window (``out_dir/<window id>.nc``) from the daily grids that exist
    (``daily_path(day)`` gives a day's file). A window without any daily grid is skipped with a
    warning: the statistics report it as missing data."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    cache = DailyCache()  # windows in date order: overlapping ones are next to each other
    for window, (start, end) in sorted(windows.items()):
        paths = [Path(daily_path(d)) for d in days_of(start, end)]
        paths = [p for p in paths if p.exists()]
        if not paths:
            log.warning("window %s: no daily grid, no composite", window)
            continue
        written.append(period_composite(paths, start, end, out_dir / f"{window}.nc", weighting,
                                        config, cache))
        log.info("window %s: composite of %d days", window, len(paths))
    return written
